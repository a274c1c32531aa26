//! Compile-fail tests: every mistake the `flow!` macro, the function attributes and
//! `#[derive(Row)]` must catch, with its expected diagnostic in the `.stderr` next to it.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p flow-macros --test
//! ui`, then read every changed `.stderr`: the error must point at the user's own tokens.
//!
//! They live in this crate, not in `flow`'s tests, for the build: trybuild builds its cases
//! against this crate's dev-dependencies, `flow` without its default features (no Kafka, no
//! PostgreSQL, no web endpoint, no disk backend), in a target directory of its own.

///
/// `tests/ui-lock` holds the cases of the state-schema lock, against its own lock file
/// (`tests/ui-lock/flow.lock`, through `FLOW_LOCK_FILE`). Its check is evaluated when the job's
/// code is compiled to machine code, so it needs `cargo build`, which trybuild runs (instead of
/// `cargo check`) because there are `pass` cases.
#[test]
fn ui() {
    let lock = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui-lock/flow.lock");
    // SAFETY: the only test of this binary; trybuild's cargo inherits it.
    unsafe { std::env::set_var("FLOW_LOCK_FILE", lock) };
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/ui-lock/pass/*.rs");
    t.compile_fail("tests/ui-lock/fail/*.rs");
}
