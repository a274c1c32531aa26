//! `DataGeneratorSource`: rows made from their index, split over the readers, rate-limited,
//! restored from checkpoints; `RowGenerator` rows reproducible whatever the parallelism.

mod common;

use common::{crash_once_checkpointed, finished_rows, sorted};
use flow::prelude::*;
use std::path::Path;
use std::time::Duration;

#[derive(Row, Clone, Debug, PartialEq, PartialOrd)]
struct Order {
    id: i64,
    item: String,
    qty: u32,
    price: f64,
}

fn orders(seed: u64) -> RowGenerator<Order> {
    RowGenerator::new(seed)
        .field("id", FieldGen::sequence(1, 5_000))
        .field("item", FieldGen::random().length(6))
        .field("qty", FieldGen::random().min(1).max(9))
        .field("price", FieldGen::random().min(1.0).max(100.0))
}

fn every_index_once(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let rows = source(DataGeneratorSource::new(|i| (i, i * i), 10_000), Watermarks::no_watermarks()).collect();
    }
    env.execute("indices").unwrap();
    assert_eq!(
        sorted(rows.take()),
        (0..10_000u64).map(|i| (i, i * i)).collect::<Vec<_>>()
    );
}

fn generated_rows_do_not_depend_on_the_parallelism(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let rows = source(DataGeneratorSource::new(orders(7), 5_000), Watermarks::no_watermarks()).collect();
    }
    env.execute("orders").unwrap();
    let mut got = rows.take();
    got.sort_by_key(|o| o.id);
    let g = orders(7);
    let want: Vec<Order> = (0..5_000).map(|i| g.generate(i)).collect();
    assert!(got == want, "rows differ from the generator's");
    assert!(got
        .iter()
        .all(|o| (1..=9).contains(&o.qty) && o.item.len() == 6));
    assert!(got.iter().all(|o| (1.0..100.0).contains(&o.price)));
}

fn a_rate_limit_still_gives_every_row(p: usize) {
    // The rate itself is measured by `benches/datagen.rs`; here only that no row is lost.
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let rows = source(DataGeneratorSource::new(|i| i, 2_000).rows_per_second(20_000.0), Watermarks::no_watermarks()).collect();
    }
    env.execute("rate").unwrap();
    assert_eq!(sorted(rows.take()), (0..2_000).collect::<Vec<u64>>());
}

at_parallelism!(
    every_index_once,
    generated_rows_do_not_depend_on_the_parallelism,
    a_rate_limit_still_gives_every_row,
);

#[test]
fn bad_generator_options_fail_at_start() {
    for (g, count, needle) in [
        (
            orders(1),
            5_001,
            "the sequence 1..=5000 has 5000 values, fewer than the 5001 rows",
        ),
        (
            orders(1).field("qtty", FieldGen::random()),
            10,
            "no field `qtty` in",
        ),
        (
            orders(1).field("qty", FieldGen::random().min(-1)),
            10,
            "field `qty`: random values in -1..=",
        ),
    ] {
        let env = StreamEnv::new();
        flow! { env =>
            source(DataGeneratorSource::new(g, count), Watermarks::no_watermarks()).sink_to(DiscardSink);
        }
        let e = env.execute("bad").unwrap_err().to_string();
        assert!(e.contains(needle) && e.contains("Order"), "{e}");
    }
    let env = StreamEnv::new();
    flow! { env =>
        source(DataGeneratorSource::new(|i| i, 10).rows_per_second(0.0), Watermarks::no_watermarks()).sink_to(DiscardSink);
    }
    let e = env.execute("bad rate").unwrap_err().to_string();
    assert!(e.contains("the rate must be a positive number"), "{e}");
}

/// Crashes after a checkpoint, restores at `p2`: every index once in the finished files. The
/// rows take half a second, and longer until a checkpoint completed (see
/// `crash_once_checkpointed`).
fn restore(p1: usize, p2: usize) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ck: &'static Path = Box::leak(dir.path().join("ck").into_boxed_path());
    let run = |p: usize, crash: bool, restore: bool| {
        let mut env = StreamEnv::new()
            .with_parallelism(p)
            .with_checkpoint_interval(Some(Duration::from_millis(5)))
            .with_checkpoint_dir(ck, 1);
        if restore {
            env = env.with_restore("latest");
        }
        let out = out.clone();
        flow! { env =>
            source(DataGeneratorSource::new(|i| i as i64, 4_000).rows_per_second(8_000.0), Watermarks::no_watermarks())
                .map(move |i| {
                    if crash {
                        crash_once_checkpointed(ck, i, 1_000);
                    }
                    i
                })
                .sink_to(FileSink::row_format(&out));
        }
        env.execute("datagen")
    };
    let e = run(p1, true, false).expect_err("the first run crashes");
    assert!(e.to_string().contains("crash at row"), "{e}");
    run(p2, false, true).unwrap();
    assert_eq!(
        finished_rows(&out),
        sorted((0..4_000).map(|i: i64| i.to_string()).collect::<Vec<_>>())
    );
}

#[test]
fn a_restored_generator_goes_on_where_the_checkpoint_left_it() {
    restore(1, 1);
    restore(2, 2);
    restore(2, 1);
}
