//! Helpers shared by the integration tests.
#![allow(dead_code)]

/// Generates `p1::name` and `p2::name` tests calling `name(parallelism)`.
#[macro_export]
macro_rules! at_parallelism {
    ($($name:ident),* $(,)?) => {
        mod p1 { $( #[test] fn $name() { super::$name(1) } )* }
        mod p2 { $( #[test] fn $name() { super::$name(2) } )* }
    };
}

/// Sorted copy.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}
