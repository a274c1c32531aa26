//! The order flow sorts keys in: an order-preserving byte encoding of any serde key (bytes
//! compare as the keys do), so that batch mode emits each key's results together and keys in
//! a stated order, as Flink's sort-based batch execution does, without asking keys for `Ord`.
//!
//! The order: numbers by value (signed and unsigned integers, floats in IEEE total order),
//! `false` before `true`, strings and byte strings by their bytes (a prefix first), `None`
//! before `Some`, tuples, structs and sequences element by element (a shorter prefix first),
//! enums by variant then content. Maps sort by their entries in iteration order.

use serde::ser::{self, Serialize};

/// The key's sort bytes.
///
/// # Examples
/// ```
/// use flow_runtime::sort_key::sort_key;
/// assert!(sort_key(&-3i64) < sort_key(&2i64));
/// assert!(sort_key(&"ab") < sort_key(&"b"));
/// assert!(sort_key(&("a", 10u32)) < sort_key(&("a", 9u32 + 2)));
/// ```
pub fn sort_key<K: Serialize + ?Sized>(key: &K) -> Vec<u8> {
    let mut out = SortKey(Vec::with_capacity(16));
    // Every serde data type has an encoding here: serializing cannot fail.
    key.serialize(&mut out)
        .expect("every serde type has a sort encoding");
    out.0
}

struct SortKey(Vec<u8>);

/// Never produced (every type encodes); serde needs an error type.
#[derive(Debug)]
struct Never(String);

impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Never {}

impl ser::Error for Never {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Never(msg.to_string())
    }
}

impl SortKey {
    fn signed(&mut self, v: i128, bytes: usize) {
        // Flipping the sign bit makes two's complement order unsigned order.
        let flipped = (v as u128) ^ (1u128 << (bytes * 8 - 1));
        self.0
            .extend_from_slice(&flipped.to_be_bytes()[16 - bytes..]);
    }
    fn unsigned(&mut self, v: u128, bytes: usize) {
        self.0.extend_from_slice(&v.to_be_bytes()[16 - bytes..]);
    }
    /// Bytes with `0` escaped as `0, 0xff` and ended by `0, 0`: a prefix sorts first.
    fn bytes(&mut self, v: &[u8]) {
        for &b in v {
            self.0.push(b);
            if b == 0 {
                self.0.push(0xff);
            }
        }
        self.0.extend_from_slice(&[0, 0]);
    }
}

macro_rules! signed {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Never> {
            self.signed(v as i128, std::mem::size_of::<$t>());
            Ok(())
        }
    )*};
}

macro_rules! unsigned {
    ($($f:ident: $t:ty),*) => {$(
        fn $f(self, v: $t) -> Result<(), Never> {
            self.unsigned(v as u128, std::mem::size_of::<$t>());
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut SortKey {
    type Ok = ();
    type Error = Never;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = &'a mut SortKey;
    type SerializeTupleStruct = &'a mut SortKey;
    type SerializeTupleVariant = &'a mut SortKey;
    type SerializeMap = Seq<'a>;
    type SerializeStruct = &'a mut SortKey;
    type SerializeStructVariant = &'a mut SortKey;

    signed!(serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64, serialize_i128: i128);
    unsigned!(serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_u64: u64, serialize_u128: u128);

    fn serialize_bool(self, v: bool) -> Result<(), Never> {
        self.0.push(v as u8);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Never> {
        self.serialize_f64(v as f64)
    }
    fn serialize_f64(self, v: f64) -> Result<(), Never> {
        // IEEE total order: flip every bit of a negative number, the sign bit of the others.
        let bits = v.to_bits();
        let ordered = if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        };
        self.0.extend_from_slice(&ordered.to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Never> {
        self.unsigned(v as u128, 4);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), Never> {
        self.bytes(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Never> {
        self.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Never> {
        self.0.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<(), Never> {
        self.0.push(1);
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Never> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, i: u32, _: &'static str) -> Result<(), Never> {
        self.unsigned(i as u128, 4);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), Never> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        i: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), Never> {
        self.unsigned(i as u128, 4);
        v.serialize(self)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Seq<'a>, Never> {
        Ok(Seq(self))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        i: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        self.unsigned(i as u128, 4);
        Ok(self)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Seq<'a>, Never> {
        Ok(Seq(self))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, Never> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        i: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self, Never> {
        self.unsigned(i as u128, 4);
        Ok(self)
    }
}

/// A sequence or map: each element after a `1`, the end a `0`, so that a prefix sorts first.
struct Seq<'a>(&'a mut SortKey);

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Never> {
        self.0 .0.push(1);
        v.serialize(&mut *self.0)
    }
    fn end(self) -> Result<(), Never> {
        self.0 .0.push(0);
        Ok(())
    }
}

impl ser::SerializeMap for Seq<'_> {
    type Ok = ();
    type Error = Never;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Never> {
        self.0 .0.push(1);
        k.serialize(&mut *self.0)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Never> {
        v.serialize(&mut *self.0)
    }
    fn end(self) -> Result<(), Never> {
        self.0 .0.push(0);
        Ok(())
    }
}

/// Tuples, structs and their variants: the fields one after the other (a fixed count).
macro_rules! fields {
    ($($t:ident),*) => {$(
        impl ser::$t for &mut SortKey {
            type Ok = ();
            type Error = Never;
            fields!(@method $t);
            fn end(self) -> Result<(), Never> {
                Ok(())
            }
        }
    )*};
    (@method SerializeTuple) => {
        fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Never> {
            v.serialize(&mut **self)
        }
    };
    (@method SerializeTupleStruct) => {
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Never> {
            v.serialize(&mut **self)
        }
    };
    (@method SerializeTupleVariant) => {
        fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Never> {
            v.serialize(&mut **self)
        }
    };
    (@method SerializeStruct) => {
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Result<(), Never> {
            v.serialize(&mut **self)
        }
    };
    (@method SerializeStructVariant) => {
        fn serialize_field<T: Serialize + ?Sized>(&mut self, _: &'static str, v: &T) -> Result<(), Never> {
            v.serialize(&mut **self)
        }
    };
}

fields!(
    SerializeTuple,
    SerializeTupleStruct,
    SerializeTupleVariant,
    SerializeStruct,
    SerializeStructVariant
);

#[cfg(test)]
mod tests {
    use super::sort_key;

    fn assert_sorted<T: serde::Serialize + std::fmt::Debug>(values: &[T]) {
        for w in values.windows(2) {
            assert!(
                sort_key(&w[0]) < sort_key(&w[1]),
                "{:?} sorts before {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn keys_sort_as_their_values() {
        assert_sorted(&[i64::MIN, -300, -1, 0, 1, 255, 256, i64::MAX]);
        assert_sorted(&[0u64, 1, 255, 256, u64::MAX]);
        assert_sorted(&[i8::MIN, -1, 0, i8::MAX]);
        assert_sorted(&[f64::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-9, 3.0, f64::INFINITY]);
        assert_sorted(&["", "\0", "\0a", "a", "a\0", "ab", "b"]);
        assert_sorted(&[None, Some(-1i32), Some(0)]);
        assert_sorted(&[("a", 2u8), ("a", 10), ("b", 0)]);
        assert_sorted(&[vec![], vec![1u8], vec![1, 0], vec![2]]);
        assert_sorted(&[false, true]);
        assert_sorted(&['a', 'b', 'é']);
    }
}
