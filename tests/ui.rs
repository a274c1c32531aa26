//! Compile-fail tests: every mistake the `flow!` macro, the function attributes and
//! `#[derive(Row)]` must catch, with its expected diagnostic in the `.stderr` next to it.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`, then read
//! every changed `.stderr`: the error must point at the user's own tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
}
