//! Keyed process functions with state and timers (Flink's `KeyedProcessFunction`).

mod common;

use common::sorted;
use flow::prelude::*;
use std::time::Duration;

/// Counts rows per key and, 100 ms (event time) after each row, emits the key, the timer's
/// time and the count at that moment.
#[derive(Clone, Default, KeyedState)]
struct Delayed {
    #[state]
    count: ValueState<u32>,
}

#[process_function]
impl Delayed {
    fn process(
        &mut self,
        _row: (&'static str, i64),
        ctx: &mut ProcessContext<'_, &'static str>,
        _out: &mut Vec<(String, i64, u32)>,
    ) {
        *self.count.get_mut_or_default() += 1;
        let at = ctx.timestamp().unwrap_or(0) + 100;
        ctx.register_event_time_timer(at);
        ctx.register_event_time_timer(at); // the same timer twice fires once
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        ctx: &mut ProcessContext<'_, &'static str>,
        out: &mut Vec<(String, i64, u32)>,
    ) {
        out.push((
            ctx.key().to_string(),
            timestamp,
            self.count.value().unwrap_or(0),
        ));
    }
}

fn event_time_timers_fire_in_order_once_per_key_and_time(p: usize) {
    let rows = vec![("a", 1000), ("a", 1000), ("b", 1050), ("a", 1300)];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let out = from_collection(rows, Watermarks::monotonous())
            .timestamps(|r| r.1)
            .key_by(|r| r.0)
            .process(Delayed::default())
            .collect();
    }
    env.execute("timers").unwrap();
    let fired = out.take();
    // a@1300 moves the watermark to 1299: a's 1100 (count 3 by then) and b's 1150 fire; a's
    // 1400 fires with the final watermark.
    assert_eq!(
        sorted(fired.clone()),
        vec![
            ("a".into(), 1100, 3),
            ("a".into(), 1400, 3),
            ("b".into(), 1150, 1)
        ]
    );
    let a: Vec<i64> = fired.iter().filter(|r| r.0 == "a").map(|r| r.1).collect();
    assert_eq!(
        a,
        vec![1100, 1400],
        "a key's timers fire in timestamp order"
    );
}

/// Emits each key once, from a processing-time timer 5 ms after its first row.
#[derive(Clone, Default, KeyedState)]
struct Heartbeat {
    #[state]
    armed: ValueState<bool>,
}

#[process_function]
impl Heartbeat {
    fn process(&mut self, _row: i64, ctx: &mut ProcessContext<'_, i64>, _out: &mut Vec<i64>) {
        if self.armed.value().is_none() {
            self.armed.update(true);
            let at = ctx.current_processing_time() + 5;
            ctx.register_processing_time_timer(at);
        }
    }
    fn on_timer(&mut self, _t: i64, ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<i64>) {
        out.push(*ctx.key());
    }
}

fn processing_time_timers(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let out = source(NumberSequence::new(1, 50_000), Watermarks::no_watermarks())
            .key_by(|n| n % 10)
            .process(Heartbeat::default())
            .collect();
    }
    env.execute("heartbeat").unwrap();
    assert_eq!(
        sorted(out.take()),
        (0..10).collect::<Vec<_>>(),
        "one timer per key, each fired once"
    );
}

fn event_time_timer_without_watermarks_is_an_error(p: usize) {
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        from_collection(vec![("a", 1i64)])
            .key_by(|r| r.0)
            .process(Delayed::default())
            .print();
    }
    let err = env
        .execute("no watermarks")
        .expect_err("event-time timers need watermarks");
    assert!(err.to_string().contains("no watermarks"), "{err}");
}

at_parallelism!(
    event_time_timers_fire_in_order_once_per_key_and_time,
    processing_time_timers,
    event_time_timer_without_watermarks_is_an_error,
);
