//! `.migrate_state(..)`: a job restored from a checkpoint whose per-key values were saved as an
//! older type reads them through the closure; without it (or with a closure reading another
//! layout) the restore is an error naming the operator, never a silent reset.

// The jobs before the change, in a file of their own: `flow.lock` keys operators by file and
// uid, and a file keeps one schema per uid (the migrated one, once a migration ran).
#[path = "migrate_state/before.rs"]
mod before;

use before::first_run;
use flow::prelude::*;
use std::path::Path;

/// The rows (and so the `reduce`'s state) before the change.
mod v1 {
    #[derive(flow::Row, Clone, Debug)]
    pub struct Count {
        pub key: i64,
        pub count: i64,
    }
}

/// The rows after it: a field added.
mod v2 {
    #[derive(flow::Row, Clone, Debug, PartialEq)]
    pub struct Count {
        pub key: i64,
        pub count: i64,
        pub last: i64,
    }
}

/// Restored from `checkpoint` (the first run's sources left behind), counts 31..=36 on.
fn env_after(checkpoint: &Path) -> StreamEnv {
    StreamEnv::new()
        .with_parallelism(2)
        .with_restore(checkpoint.to_str().unwrap())
        .with_allow_non_restored_state(true)
}

fn sorted(mut rows: Vec<v2::Count>) -> Vec<(i64, i64, i64)> {
    let mut out: Vec<_> = rows.drain(..).map(|c| (c.key, c.count, c.last)).collect();
    out.sort();
    out
}

#[test]
fn a_reduce_restores_its_old_rows_through_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = first_run(dir.path());
    let env = env_after(&checkpoint);
    flow! { env =>
        let out = source(NumberSequence::new(31, 36), Watermarks::no_watermarks())
            .uid("second-numbers")
            .map(|n| v2::Count { key: n % 3, count: 1, last: n })
            .key_by(|c| c.key)
            .reduce(|a, b| v2::Count { key: a.key, count: a.count + b.count, last: b.last })
            .uid("counts")
            .migrate_state(|old: v1::Count| v2::Count { key: old.key, count: old.count, last: 0 })
            .collect();
    }
    env.execute("migrate").unwrap();
    // Each key had 10; its two new rows make 11 and 12 (Flink's rolling reduce emits both;
    // which of a key's two rows comes first depends on the two source subtasks).
    let rows = sorted(out.take());
    let counts: Vec<_> = rows.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        counts,
        [(0, 11), (0, 12), (1, 11), (1, 12), (2, 11), (2, 12)]
    );
    let mut last: Vec<_> = rows.iter().map(|r| (r.0, r.2)).collect();
    last.sort();
    assert_eq!(last, [(0, 33), (0, 36), (1, 31), (1, 34), (2, 32), (2, 35)]);
}

#[test]
fn a_migration_reads_a_checkpoint_of_the_new_type_as_it_is() {
    // The migration stays in the code after the first restore: the next checkpoint holds
    // the new type, which is read directly.
    let dir = tempfile::tempdir().unwrap();
    let first = first_run(&dir.path().join("first"));
    let run = |env: StreamEnv, from: i64, to: i64| {
        flow! { env =>
            let out = source(NumberSequence::new(from, to), Watermarks::no_watermarks())
                .uid("second-numbers")
                .map(|n| v2::Count { key: n % 3, count: 1, last: n })
                .key_by(|c| c.key)
                .reduce(|a, b| v2::Count { key: a.key, count: a.count + b.count, last: b.last })
                .uid("counts")
                .migrate_state(|old: v1::Count| v2::Count { key: old.key, count: old.count, last: 0 })
                .collect();
        }
        let result = env.execute("migrate").unwrap();
        (sorted(out.take()), result.last_checkpoint)
    };
    let second_dir = dir.path().join("second");
    let (_, second) = run(
        env_after(&first).with_checkpoint_dir(&second_dir, 1),
        31,
        33,
    );
    let second = second.expect("the second run's final checkpoint");
    // The second run's source finished: a third reads new numbers under another uid.
    let env = env_after(&second);
    flow! { env =>
        let out = source(NumberSequence::new(34, 36), Watermarks::no_watermarks())
            .uid("third-numbers")
            .map(|n| v2::Count { key: n % 3, count: 1, last: n })
            .key_by(|c| c.key)
            .reduce(|a, b| v2::Count { key: a.key, count: a.count + b.count, last: b.last })
            .uid("counts")
            .migrate_state(|old: v1::Count| v2::Count { key: old.key, count: old.count, last: -1 })
            .collect();
    }
    env.execute("migrate").unwrap();
    // 12 per key, and `last` from the second run's rows (not -1: nothing was migrated).
    assert_eq!(
        sorted(out.take()),
        vec![(0, 12, 36), (1, 12, 34), (2, 12, 35)]
    );
}

#[test]
fn without_a_migration_the_restore_names_the_operator_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = first_run(dir.path());
    let env = env_after(&checkpoint);
    flow! { env =>
        source(NumberSequence::new(31, 36), Watermarks::no_watermarks())
            .uid("second-numbers")
            .map(|n| v2::Count { key: n % 3, count: 1, last: n })
            .key_by(|c| c.key)
            .reduce(|a, b| v2::Count { key: a.key, count: a.count + b.count, last: b.last })
            .uid("counts")
            .print();
    }
    let e = env.execute("migrate").unwrap_err().to_string();
    assert!(e.contains("counts"), "{e}");
    assert!(e.contains("v1::Count"), "{e}");
    assert!(e.contains("migrate_state"), "{e}");
}

#[test]
fn a_migration_from_another_layout_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = first_run(dir.path());
    let env = env_after(&checkpoint);
    flow! { env =>
        source(NumberSequence::new(31, 36), Watermarks::no_watermarks())
            .uid("second-numbers")
            .map(|n| v2::Count { key: n % 3, count: 1, last: n })
            .key_by(|c| c.key)
            .reduce(|a, b| v2::Count { key: a.key, count: a.count + b.count, last: b.last })
            .uid("counts")
            // The old rows had two fields, not one.
            .migrate_state(|old: (i64,)| v2::Count { key: old.0, count: 0, last: 0 })
            .print();
    }
    let e = env.execute("migrate").unwrap_err().to_string();
    assert!(e.contains("counts"), "{e}");
    assert!(e.contains("reads `(i64,)`"), "{e}");
}

/// The same function after a change: the count became a pair (rows, sum of the rows).
#[derive(Clone, Default, KeyedState)]
struct Totals {
    #[state]
    totals: ValueState<(i64, i64)>,
}

#[process_function]
impl Totals {
    fn process(&mut self, n: i64, ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<(i64, i64)>) {
        let (c, s) = self.totals.value().unwrap_or((0, 0));
        self.totals.update((c + 1, s + n));
        out.push((*ctx.key(), c + 1));
    }
    fn on_timer(&mut self, _: i64, _: &mut ProcessContext<'_, i64>, _: &mut Vec<(i64, i64)>) {}
}

/// What `before::Counter` kept per key, named for the migration (same field types in the same order
/// as its `#[state]` fields).
#[derive(serde::Serialize, serde::Deserialize, flow::StateSchema)]
struct CounterState {
    count: ValueState<i64>,
}

#[test]
fn a_process_function_s_state_struct_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = before::counted(dir.path());
    let env = env_after(&checkpoint);
    flow! { env =>
        let out = source(NumberSequence::new(31, 33), Watermarks::no_watermarks())
            .uid("second-numbers")
            .key_by(|n| n % 3)
            .process(Totals::default())
            .uid("per-key")
            // The new state struct is the function's, `<function>__State`.
            .migrate_state(|old: CounterState| {
                let mut totals = ValueState::default();
                if let Some(c) = old.count.value() {
                    totals.update((c, 0));
                }
                Totals__State { totals }
            })
            .collect();
    }
    env.execute("process").unwrap();
    let mut rows = out.take();
    rows.sort();
    assert_eq!(rows, vec![(0, 11), (1, 11), (2, 11)]);
}
