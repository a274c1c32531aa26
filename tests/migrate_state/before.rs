//! The jobs of `migrate_state.rs` before their state changed.

use crate::v1;
use flow::prelude::*;
use std::path::{Path, PathBuf};

/// Counts 1..=30 by `n % 3` (ten per key) into `dir`'s final checkpoint; returns it.
pub fn first_run(dir: &Path) -> PathBuf {
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_checkpoint_dir(dir, 1);
    flow! { env =>
        let out = source(NumberSequence::new(1, 30), Watermarks::no_watermarks())
            .uid("first-numbers")
            .map(|n| v1::Count { key: n % 3, count: 1 })
            .key_by(|c| c.key)
            .reduce(|a, b| v1::Count { key: a.key, count: a.count + b.count })
            .uid("counts")
            .collect();
    }
    let result = env.execute("migrate").unwrap();
    assert_eq!(out.take().len(), 30);
    result.last_checkpoint.expect("the final checkpoint")
}

/// Counts rows per key in `#[state]`, and emits the key and the count.
#[derive(Clone, Default, KeyedState)]
struct Counter {
    #[state]
    count: ValueState<i64>,
}

#[process_function]
impl Counter {
    fn process(&mut self, _: i64, ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<(i64, i64)>) {
        let c = self.count.value().unwrap_or(0) + 1;
        self.count.update(c);
        out.push((*ctx.key(), c));
    }
    fn on_timer(&mut self, _: i64, _: &mut ProcessContext<'_, i64>, _: &mut Vec<(i64, i64)>) {}
}

/// Counts 1..=30 by `n % 3` with [`Counter`] into `dir`'s final checkpoint; returns it.
pub fn counted(dir: &Path) -> PathBuf {
    let env = StreamEnv::new()
        .with_parallelism(2)
        .with_checkpoint_dir(dir, 1);
    flow! { env =>
        source(NumberSequence::new(1, 30), Watermarks::no_watermarks())
            .uid("first-numbers")
            .key_by(|n| n % 3)
            .process(Counter::default())
            .uid("per-key")
            .sink_to(DiscardSink);
    }
    env.execute("process").unwrap().last_checkpoint.unwrap()
}
