//! `flow.lock`, written by a job run: a debug build's job adds the state schema of each
//! stateful operator with a `.uid(..)` (the build-time check has trybuild cases in
//! `flow-macros/tests/ui-lock`).

use flow::prelude::*;
use flow::snapshot::{fingerprint, record, StateSchema};

#[derive(Row, Clone, Debug)]
struct Count {
    key: i64,
    count: i64,
}

#[test]
fn a_debug_run_records_each_stateful_operator_with_a_uid() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("flow.lock");
    // SAFETY: the only test of this binary.
    unsafe { std::env::set_var("FLOW_LOCK_FILE", &lock) };
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        let rows = source(NumberSequence::new(1, 100), Watermarks::no_watermarks())
            .map(|n| Count { key: n % 3, count: 1 })
            .key_by(|c| c.key)
            .reduce(|a, b| Count { key: a.key, count: a.count + b.count })
            .uid("counts")
            .map(|c| c.count)
            .collect();
    }
    env.execute("state lock").unwrap();
    assert_eq!(rows.take().len(), 100);
    let text = std::fs::read_to_string(&lock).expect("the run wrote flow.lock");
    let reduce = record(&[
        fingerprint("reduce"),
        i64::FINGERPRINT,
        record(&[i64::FINGERPRINT, i64::FINGERPRINT]),
    ]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // The stateless `map` without a uid has no line; the reduce has its schema.
    assert_eq!(lines, [format!("tests/state_lock.rs counts {reduce:016x}")]);
}
