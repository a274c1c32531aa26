//! [`RowGenerator`]: rows of any serde struct, each field random or a sequence (the SQL
//! `datagen` connector's options), made by driving the struct's own `Deserialize`.

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

/// How one field is generated (the SQL `datagen` connector's `fields.<name>.*` options).
///
/// | kind | numbers | strings | `bool`, `char` |
/// |---|---|---|---|
/// | [`random`](FieldGen::random) (default) | uniform in `[min, max]`; default the type's range (floats: `[0, 1)`) | `length` hex digits (default 100) | uniform |
/// | [`sequence(start, end)`](FieldGen::sequence) | `start + index` | its decimal digits | not allowed |
///
/// An `Option` field is always `Some`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldGen {
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Random {
        min: Option<Number>,
        max: Option<Number>,
        length: usize,
    },
    Sequence {
        start: i128,
        end: i128,
    },
}

/// A bound of a random field: an integer or a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    /// An integer bound.
    Int(i128),
    /// A float bound.
    Float(f64),
}

macro_rules! number_from {
    ($($int:ty),*) => {$(
        impl From<$int> for Number {
            fn from(v: $int) -> Self {
                Number::Int(v as i128)
            }
        }
    )*};
}
number_from!(i8, i16, i32, i64, u8, u16, u32, u64, i128, usize, isize);

impl From<f64> for Number {
    fn from(v: f64) -> Self {
        Number::Float(v)
    }
}

impl From<f32> for Number {
    fn from(v: f32) -> Self {
        Number::Float(v as f64)
    }
}

impl Number {
    fn int(self) -> i128 {
        match self {
            Number::Int(i) => i,
            Number::Float(f) => f as i128,
        }
    }
    fn float(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

impl FieldGen {
    /// Random values (the default for every field).
    pub fn random() -> Self {
        FieldGen {
            kind: Kind::Random {
                min: None,
                max: None,
                length: 100,
            },
        }
    }
    /// `start`, `start + 1`, ... `end`: row `i` gets `start + i`. A source of more rows than
    /// the sequence has fails at start.
    pub fn sequence(start: i64, end: i64) -> Self {
        FieldGen {
            kind: Kind::Sequence {
                start: start as i128,
                end: end as i128,
            },
        }
    }
    /// The smallest random number.
    pub fn min(mut self, v: impl Into<Number>) -> Self {
        if let Kind::Random { min, .. } = &mut self.kind {
            *min = Some(v.into());
        }
        self
    }
    /// The largest random number (inclusive for integers).
    pub fn max(mut self, v: impl Into<Number>) -> Self {
        if let Kind::Random { max, .. } = &mut self.kind {
            *max = Some(v.into());
        }
        self
    }
    /// The length of a random string.
    pub fn length(mut self, n: usize) -> Self {
        if let Kind::Random { length, .. } = &mut self.kind {
            *length = n;
        }
        self
    }
}

/// Rows of type `T` (a `#[derive(Row)]` struct, any serde struct or tuple of numbers, strings,
/// `bool`s, `char`s and `Option`s of them) with generated fields: random unless configured with
/// [`field`](RowGenerator::field). Row `i` depends only on the seed and `i`.
///
/// # Examples
/// ```
/// use flow_connectors::datagen::{FieldGen, RowGenerator};
///
/// #[derive(serde::Deserialize, Debug)]
/// struct Order { id: i64, item: String, qty: u32 }
///
/// let g = RowGenerator::<Order>::new(7)
///     .field("id", FieldGen::sequence(1, 1_000))
///     .field("item", FieldGen::random().length(8))
///     .field("qty", FieldGen::random().min(1).max(5));
/// g.check(1_000).unwrap();
/// let o = g.generate(41);
/// assert_eq!(o.id, 42);
/// assert_eq!(o.item.len(), 8);
/// assert!((1..=5).contains(&o.qty));
/// assert!(g.check(1_001).is_err(), "the sequence has 1,000 values");
/// ```
pub struct RowGenerator<T> {
    seed: u64,
    fields: Vec<(String, FieldGen)>,
    row: PhantomData<fn() -> T>,
}

impl<T> Clone for RowGenerator<T> {
    fn clone(&self) -> Self {
        RowGenerator {
            seed: self.seed,
            fields: self.fields.clone(),
            row: PhantomData,
        }
    }
}

impl<T> fmt::Debug for RowGenerator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowGenerator")
            .field("row", &std::any::type_name::<T>())
            .field("seed", &self.seed)
            .field("fields", &self.fields)
            .finish()
    }
}

impl<T: DeserializeOwned> RowGenerator<T> {
    /// Every field random, from `seed`.
    pub fn new(seed: u64) -> Self {
        RowGenerator {
            seed,
            fields: Vec::new(),
            row: PhantomData,
        }
    }

    /// Generates field `name` (a struct field's name; `"0"`, `"1"`, ... for a tuple) as `gen`.
    pub fn field(mut self, name: &str, gen: FieldGen) -> Self {
        self.fields.retain(|f| f.0 != name);
        self.fields.push((name.to_string(), gen));
        self
    }

    /// Checks that the row type can be generated with these options and that `count` rows fit
    /// every sequence field.
    ///
    /// # Errors
    /// A field name the row does not have, a field type that cannot be generated, `min` above
    /// `max`, a sequence on a `bool`, or more rows than a sequence has values.
    pub fn check(&self, count: u64) -> Result<(), String> {
        let seen = RefCell::new(Vec::new());
        T::deserialize(RowDe {
            gen: &self.seed_and_fields(),
            index: 0,
            seen: Some(&seen),
        })
        .map_err(|e| e.0)?;
        let seen = seen.into_inner();
        for (name, gen) in &self.fields {
            if !seen.iter().any(|s| s == name) {
                return Err(format!(
                    "no field `{name}` in `{}` (its fields: {})",
                    std::any::type_name::<T>(),
                    seen.join(", ")
                ));
            }
            if let Kind::Sequence { start, end } = gen.kind {
                let values = (end - start + 1).max(0) as u128;
                if count as u128 > values {
                    return Err(format!(
                        "field `{name}`: the sequence {start}..={end} has {values} values, fewer than the {count} rows"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Row `index`.
    ///
    /// # Panics
    /// When [`check`](RowGenerator::check) fails (a `DataGeneratorSource` checks it before
    /// the job starts) or `index` is past a sequence's end.
    pub fn generate(&self, index: u64) -> T {
        match T::deserialize(RowDe {
            gen: &self.seed_and_fields(),
            index,
            seen: None,
        }) {
            Ok(row) => row,
            Err(e) => panic!("RowGenerator: row {index}: {}", e.0),
        }
    }

    fn seed_and_fields(&self) -> Config<'_> {
        Config {
            seed: self.seed,
            fields: &self.fields,
        }
    }
}

struct Config<'a> {
    seed: u64,
    fields: &'a [(String, FieldGen)],
}

/// Why a row cannot be generated.
#[derive(Debug)]
struct GenError(String);

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenError {}

impl de::Error for GenError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        GenError(msg.to_string())
    }
}

/// The row: a struct or tuple whose fields are generated.
struct RowDe<'a> {
    gen: &'a Config<'a>,
    index: u64,
    /// The field names asked for (when checking).
    seen: Option<&'a RefCell<Vec<String>>>,
}

impl<'de> de::Deserializer<'de> for RowDe<'_> {
    type Error = GenError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GenError> {
        Err(GenError(format!(
            "a generated row must be a struct or a tuple, not `{}`",
            std::any::type_name::<V::Value>()
        )))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GenError> {
        visitor.visit_map(Fields {
            row: self,
            names: fields.iter().map(|s| s.to_string()).collect(),
            next: 0,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, GenError> {
        visitor.visit_seq(Fields {
            row: self,
            names: (0..len).map(|i| i.to_string()).collect(),
            next: 0,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, GenError> {
        self.deserialize_tuple(len, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq map enum identifier ignored_any
    }
}

/// The fields of a row, in order.
struct Fields<'a> {
    row: RowDe<'a>,
    names: Vec<String>,
    next: usize,
}

impl Fields<'_> {
    fn value(&self, name: &str) -> ValueDe {
        let gen = self
            .row
            .gen
            .fields
            .iter()
            .find(|f| f.0 == name)
            .map(|f| &f.1);
        ValueDe {
            gen: gen.cloned().unwrap_or_else(FieldGen::random),
            random: Random::new(self.row.gen.seed, name, self.row.index),
            index: self.row.index,
        }
    }

    fn see(&self, name: &str) {
        if let Some(seen) = self.row.seen {
            seen.borrow_mut().push(name.to_string());
        }
    }
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = GenError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, GenError> {
        let Some(name) = self.names.get(self.next) else {
            return Ok(None);
        };
        self.see(name);
        seed.deserialize(name.as_str().into_deserializer())
            .map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, GenError> {
        let name = self.names[self.next].clone();
        self.next += 1;
        seed.deserialize(self.value(&name))
            .map_err(|e| GenError(format!("field `{name}`: {}", e.0)))
    }
}

impl<'de> de::SeqAccess<'de> for Fields<'_> {
    type Error = GenError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, GenError> {
        let Some(name) = self.names.get(self.next).cloned() else {
            return Ok(None);
        };
        self.see(&name);
        self.next += 1;
        seed.deserialize(self.value(&name))
            .map(Some)
            .map_err(|e| GenError(format!("field `{name}`: {}", e.0)))
    }
}

/// A stream of random `u64`s for one field of one row: splitmix64 over a hash of the seed,
/// the field's name and the row's index.
struct Random(u64);

impl Random {
    fn new(seed: u64, field: &str, index: u64) -> Self {
        // FNV-1a of the name: stable across runs and platforms.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in field.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Random(seed ^ h.rotate_left(17) ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One field's value.
struct ValueDe {
    gen: FieldGen,
    random: Random,
    index: u64,
}

impl ValueDe {
    /// An integer of the type with range `lo..=hi`.
    fn int(&mut self, lo: i128, hi: i128) -> Result<i128, GenError> {
        match self.gen.kind {
            Kind::Random { min, max, .. } => {
                let min = min.map_or(lo, Number::int);
                let max = max.map_or(hi, Number::int);
                if min < lo || max > hi || min > max {
                    return Err(GenError(format!(
                        "random values in {min}..={max} do not fit the field's type ({lo}..={hi})"
                    )));
                }
                let span = (max - min) as u128 + 1;
                let r = ((self.random.next() as u128) << 64 | self.random.next() as u128) % span;
                Ok(min + r as i128)
            }
            Kind::Sequence { start, end } => {
                let v = start + self.index as i128;
                if start < lo || end > hi {
                    return Err(GenError(format!(
                        "the sequence {start}..={end} does not fit the field's type ({lo}..={hi})"
                    )));
                }
                if v > end {
                    return Err(GenError(format!(
                        "row {} is past the end of the sequence {start}..={end}",
                        self.index
                    )));
                }
                Ok(v)
            }
        }
    }

    fn float(&mut self) -> f64 {
        match self.gen.kind {
            Kind::Random { min, max, .. } => {
                let min = min.map_or(0.0, Number::float);
                let max = max.map_or(1.0, Number::float);
                let unit = (self.random.next() >> 11) as f64 / (1u64 << 53) as f64;
                min + unit * (max - min)
            }
            Kind::Sequence { start, .. } => (start + self.index as i128) as f64,
        }
    }

    fn string(&mut self) -> Result<String, GenError> {
        match self.gen.kind {
            Kind::Random { length, .. } => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut s = String::with_capacity(length);
                let mut bits = 0u64;
                for i in 0..length {
                    if i % 16 == 0 {
                        bits = self.random.next();
                    }
                    s.push(HEX[(bits & 15) as usize] as char);
                    bits >>= 4;
                }
                Ok(s)
            }
            Kind::Sequence { .. } => Ok(self.int(i128::MIN, i128::MAX)?.to_string()),
        }
    }

    fn not_a_sequence(&self, what: &str) -> Result<(), GenError> {
        match self.gen.kind {
            Kind::Sequence { .. } => Err(GenError(format!("a {what} cannot be a sequence"))),
            Kind::Random { .. } => Ok(()),
        }
    }
}

macro_rules! ints {
    ($($method:ident $visit:ident $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
            let v = self.int(<$t>::MIN as i128, <$t>::MAX as i128)?;
            visitor.$visit(v as $t)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDe {
    type Error = GenError;

    /// Values are generated, not read from text: a type with a text form (a SQL timestamp)
    /// takes its binary one.
    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, GenError> {
        Err(GenError(format!(
            "cannot generate a `{}` (numbers, String, bool, char and Option of them can be)",
            std::any::type_name::<V::Value>()
        )))
    }

    ints! {
        deserialize_i8 visit_i8 i8, deserialize_i16 visit_i16 i16, deserialize_i32 visit_i32 i32,
        deserialize_i64 visit_i64 i64, deserialize_u8 visit_u8 u8, deserialize_u16 visit_u16 u16,
        deserialize_u32 visit_u32 u32, deserialize_u64 visit_u64 u64,
    }

    fn deserialize_f32<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        visitor.visit_f32(self.float() as f32)
    }

    fn deserialize_f64<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        visitor.visit_f64(self.float())
    }

    fn deserialize_bool<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        self.not_a_sequence("bool")?;
        visitor.visit_bool(self.random.next() & 1 == 1)
    }

    fn deserialize_char<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        self.not_a_sequence("char")?;
        visitor.visit_char(b"0123456789abcdef"[(self.random.next() & 15) as usize] as char)
    }

    fn deserialize_str<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        visitor.visit_string(self.string()?)
    }

    fn deserialize_string<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, GenError> {
        visitor.visit_string(self.string()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GenError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, GenError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Reading {
        id: i64,
        sensor: String,
        value: f64,
        ok: bool,
        level: Option<u8>,
    }

    #[test]
    fn rows_follow_the_options_and_the_seed() {
        let g = RowGenerator::<Reading>::new(1)
            .field("id", FieldGen::sequence(100, 199))
            .field("sensor", FieldGen::random().length(5))
            .field("value", FieldGen::random().min(-1.0).max(1.0))
            .field("level", FieldGen::random().min(3).max(4));
        g.check(100).unwrap();
        let rows: Vec<Reading> = (0..100).map(|i| g.generate(i)).collect();
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.id, 100 + i as i64);
            assert_eq!(r.sensor.len(), 5);
            assert!(r.sensor.bytes().all(|b| b.is_ascii_hexdigit()));
            assert!((-1.0..1.0).contains(&r.value));
            assert!(matches!(r.level, Some(3 | 4)));
        }
        // Both bounds are reached, both booleans drawn: the values are spread.
        assert!(rows.iter().any(|r| r.level == Some(3)) && rows.iter().any(|r| r.level == Some(4)));
        assert!(rows.iter().any(|r| r.ok) && rows.iter().any(|r| !r.ok));
        // The same seed gives the same rows; another seed others.
        assert_eq!(g.generate(17), rows[17]);
        let other = RowGenerator::<Reading>::new(2).field("id", FieldGen::sequence(100, 199));
        assert_ne!(other.generate(17).sensor, g.generate(17).sensor);
    }

    #[test]
    fn bad_options_are_errors_at_check() {
        let g = RowGenerator::<Reading>::new(1).field("idd", FieldGen::random());
        let e = g.check(1).unwrap_err();
        assert!(
            e.contains("no field `idd`") && e.contains("id, sensor"),
            "{e}"
        );
        let e = RowGenerator::<Reading>::new(1)
            .field("level", FieldGen::random().min(0).max(300))
            .check(1)
            .unwrap_err();
        assert!(
            e.starts_with("field `level`: ") && e.contains("0..=255"),
            "{e}"
        );
        let e = RowGenerator::<Reading>::new(1)
            .field("ok", FieldGen::sequence(0, 1))
            .check(1)
            .unwrap_err();
        assert!(e.contains("bool cannot be a sequence"), "{e}");
        let e = RowGenerator::<i64>::new(1).check(1).unwrap_err();
        assert!(e.contains("struct or a tuple"), "{e}");
        let e = RowGenerator::<(i64, Vec<u8>)>::new(1).check(1).unwrap_err();
        assert!(e.starts_with("field `1`: cannot generate"), "{e}");
        let ok = RowGenerator::<(u8, String)>::new(1)
            .field("0", FieldGen::sequence(0, 9))
            .field("1", FieldGen::sequence(5, 20));
        ok.check(10).unwrap();
        assert_eq!(ok.generate(3), (3, "8".to_string()));
        assert!(ok.check(11).unwrap_err().contains("has 10 values"));
    }
}
