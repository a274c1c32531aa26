//! State schemas as numbers the compiler computes: the fingerprint of the layout a checkpoint
//! saves a type in. The `flow.lock` file records each stateful operator's fingerprint, and a
//! build whose operator state changed since then fails (see the README, "State-schema lock").
//!
//! A fingerprint follows the bincode layout, not the names: a struct is its field types in
//! order (renaming a field or the struct keeps it; reordering, adding, removing or retyping a
//! field changes it), a tuple its element types, a container its kind and element types.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// A type whose saved layout has a fingerprint the compiler computes.
///
/// `#[derive(Row)]` and `#[derive(KeyedState)]` implement it, as do the state structs of
/// `#[state]` functions; for another type kept in state, `#[derive(flow::StateSchema)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is kept in operator state, so flow needs its state schema for `flow.lock`",
    label = "no `StateSchema`",
    note = "`#[derive(Row)]` implements `StateSchema`; for another type, add `#[derive(flow::StateSchema)]`"
)]
pub trait StateSchema {
    /// The fingerprint of the type's saved layout.
    const FINGERPRINT: u64;
}

/// The fingerprint of a name (FNV-1a, 64 bits).
pub const fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

/// `a` followed by `b`: order matters.
pub const fn combine(a: u64, b: u64) -> u64 {
    let x = a.rotate_left(17) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // A final mix (splitmix64's), so that nearby inputs spread.
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The fingerprint of a struct (or tuple) with fields of the fingerprints `fields`, in order.
pub const fn record(fields: &[u64]) -> u64 {
    sequence("record", fields)
}

/// The fingerprint of an enum whose variants have the fingerprints `variants` (each a
/// [`record`] of its fields), in order.
pub const fn variants(variants: &[u64]) -> u64 {
    sequence("enum", variants)
}

/// `kind`, its number of parts, then the parts in order.
const fn sequence(kind: &str, parts: &[u64]) -> u64 {
    let mut h = combine(fingerprint(kind), parts.len() as u64);
    let mut i = 0;
    while i < parts.len() {
        h = combine(h, parts[i]);
        i += 1;
    }
    h
}

macro_rules! named {
    ($($t:ty),* $(,)?) => {
        $(impl StateSchema for $t {
            const FINGERPRINT: u64 = fingerprint(stringify!($t));
        })*
    };
}

named!(
    bool,
    char,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    f32,
    f64,
    ()
);

named!(
    std::time::Duration,
    std::time::SystemTime,
    std::net::IpAddr,
    std::net::Ipv4Addr,
    std::net::Ipv6Addr,
    std::net::SocketAddr,
    std::path::PathBuf,
);

impl StateSchema for Box<str> {
    const FINGERPRINT: u64 = fingerprint("string");
}

/// `<SchemaProbe<T>>::FINGERPRINT` in code where `T` is a concrete type: `T`'s fingerprint, or
/// 0 when `T` has none (a type of another crate, which cannot implement [`StateSchema`] here).
/// The derives use it for fields, falling back to the field type's name, so that a row with
/// such a field still builds (only a type kept in state *directly* needs a schema).
#[doc(hidden)]
pub struct SchemaProbe<T: ?Sized>(std::marker::PhantomData<T>);

/// The fallback of [`SchemaProbe`]: bring it into scope to use the probe.
#[doc(hidden)]
pub trait NoSchema {
    const FINGERPRINT: u64 = 0;
}

impl<T: ?Sized> NoSchema for SchemaProbe<T> {}

impl<T: StateSchema + ?Sized> SchemaProbe<T> {
    /// `T`'s fingerprint (an inherent const: it wins over [`NoSchema`]'s where it applies).
    pub const FINGERPRINT: u64 = T::FINGERPRINT;
}

// A `&'static str` is saved as a string.
impl StateSchema for String {
    const FINGERPRINT: u64 = fingerprint("string");
}
impl StateSchema for &'static str {
    const FINGERPRINT: u64 = fingerprint("string");
}

macro_rules! container {
    ($name:literal, $t:ident; $ty:ty) => {
        impl<$t: StateSchema> StateSchema for $ty {
            const FINGERPRINT: u64 = combine(fingerprint($name), $t::FINGERPRINT);
        }
    };
}

container!("option", T; Option<T>);
container!("seq", T; Vec<T>);
container!("seq", T; VecDeque<T>);
container!("seq", T; BTreeSet<T>);
container!("box", T; Box<T>);

impl<T: StateSchema, S> StateSchema for HashSet<T, S> {
    const FINGERPRINT: u64 = combine(fingerprint("seq"), T::FINGERPRINT);
}

impl<T: StateSchema, const N: usize> StateSchema for [T; N] {
    const FINGERPRINT: u64 = combine(combine(fingerprint("array"), N as u64), T::FINGERPRINT);
}

impl<K: StateSchema, V: StateSchema> StateSchema for BTreeMap<K, V> {
    const FINGERPRINT: u64 = combine(combine(fingerprint("map"), K::FINGERPRINT), V::FINGERPRINT);
}

impl<K: StateSchema, V: StateSchema, S> StateSchema for HashMap<K, V, S> {
    const FINGERPRINT: u64 = combine(combine(fingerprint("map"), K::FINGERPRINT), V::FINGERPRINT);
}

macro_rules! tuple {
    ($($t:ident),+) => {
        impl<$($t: StateSchema),+> StateSchema for ($($t,)+) {
            const FINGERPRINT: u64 = record(&[$($t::FINGERPRINT),+]);
        }
    };
}

tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);
tuple!(A, B, C, D, E, F);
tuple!(A, B, C, D, E, F, G);
tuple!(A, B, C, D, E, F, G, H);
tuple!(A, B, C, D, E, F, G, H, I);
tuple!(A, B, C, D, E, F, G, H, I, J);
tuple!(A, B, C, D, E, F, G, H, I, J, K);
tuple!(A, B, C, D, E, F, G, H, I, J, K, L);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_that_differ_have_different_fingerprints() {
        let all = [
            i64::FINGERPRINT,
            i32::FINGERPRINT,
            u32::FINGERPRINT,
            String::FINGERPRINT,
            <(i64, String)>::FINGERPRINT,
            <(String, i64)>::FINGERPRINT,
            <(i64, String, i64)>::FINGERPRINT,
            <Vec<i64>>::FINGERPRINT,
            <Option<i64>>::FINGERPRINT,
            <HashMap<i64, String>>::FINGERPRINT,
            <HashMap<String, i64>>::FINGERPRINT,
            <[u8; 4]>::FINGERPRINT,
            <[u8; 5]>::FINGERPRINT,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_probe_gives_a_schema_or_zero() {
        struct Foreign;
        assert_eq!(<SchemaProbe<i64>>::FINGERPRINT, i64::FINGERPRINT);
        assert_eq!(<SchemaProbe<Vec<Foreign>>>::FINGERPRINT, 0);
    }

    #[test]
    fn layouts_that_match_have_equal_fingerprints() {
        assert_eq!(String::FINGERPRINT, <&'static str>::FINGERPRINT);
        assert_eq!(<Vec<i64>>::FINGERPRINT, <VecDeque<i64>>::FINGERPRINT);
        assert_eq!(
            <(i64, String)>::FINGERPRINT,
            record(&[i64::FINGERPRINT, String::FINGERPRINT])
        );
        assert_eq!(
            <BTreeMap<i64, u8>>::FINGERPRINT,
            <HashMap<i64, u8>>::FINGERPRINT
        );
    }
}
