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

fn processing_time_timers_need_no_watermarks(p: usize) {
    // (A function that registers event-time timers on such a stream does not compile:
    // flow-macros/tests/ui/keyed/event_timers_without_watermarks.rs.)
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let out = from_collection(vec![1i64, 2, 3]).key_by(|n| *n).process(Heartbeat::default()).collect();
    }
    env.execute("no watermarks").unwrap();
    assert_eq!(sorted(out.take()), vec![1, 2, 3]);
}

at_parallelism!(
    event_time_timers_fire_in_order_once_per_key_and_time,
    processing_time_timers,
    processing_time_timers_need_no_watermarks,
);

/// Orders and payments of one order id share state: a payment marks its order paid; an
/// order still unpaid 1 s (event time) after it was placed is reported.
#[derive(Clone, Default, KeyedState)]
struct PaymentCheck {
    #[state]
    paid: ValueState<bool>,
}

#[co_process_function]
impl PaymentCheck {
    fn process1(
        &mut self,
        order: (u32, i64),
        ctx: &mut ProcessContext<'_, u32>,
        _out: &mut Vec<String>,
    ) {
        ctx.register_event_time_timer(order.1 + 1000);
    }
    fn process2(
        &mut self,
        payment: (u32, i64),
        _ctx: &mut ProcessContext<'_, u32>,
        out: &mut Vec<String>,
    ) {
        self.paid.update(true);
        out.push(format!("paid {}", payment.0));
    }
    fn on_timer(&mut self, _at: i64, ctx: &mut ProcessContext<'_, u32>, out: &mut Vec<String>) {
        if self.paid.value() != Some(true) {
            out.push(format!("unpaid {}", ctx.key()));
        }
    }
}

fn co_process_shares_state_and_timers(p: usize) {
    let orders = vec![(1u32, 100i64), (2, 200), (3, 300)];
    let payments = vec![(1u32, 150i64), (3, 1500)];
    let env = StreamEnv::new()
        .with_parallelism(p)
        .with_auto_watermark_interval(Duration::ZERO);
    flow! { env =>
        let orders = from_collection(orders, Watermarks::monotonous()).timestamps(|o| o.1).key_by(|o| o.0);
        let payments = from_collection(payments, Watermarks::monotonous()).timestamps(|p| p.1).key_by(|p| p.0);
        let out = orders.connect(payments).process(PaymentCheck::default()).collect();
    }
    env.execute("payments").unwrap();
    // The timers of orders 1 and 3 fire only once the payments' watermark passes them, after
    // their payments; order 2 has none.
    assert_eq!(sorted(out.take()), vec!["paid 1", "paid 3", "unpaid 2"]);
}

mod co_process {
    use super::*;
    at_parallelism!(co_process_shares_state_and_timers);
}

/// Sends negative readings to one side output and huge ones (as text) to another.
#[derive(Clone, KeyedState)]
struct Router {
    negative: flow::OutputTag<i64>,
    huge: flow::OutputTag<String>,
}

#[process_function]
impl Router {
    fn process(&mut self, row: (u8, i64), ctx: &mut ProcessContext<'_, u8>, out: &mut Vec<i64>) {
        if row.1 < 0 {
            ctx.output(&self.negative, row.1);
        } else if row.1 > 1000 {
            ctx.output(&self.huge, format!("huge {}", row.1));
        } else {
            out.push(row.1);
        }
    }
}

fn side_outputs_from_a_process_function(p: usize) {
    let negative = flow::OutputTag::<i64>::new("negative");
    let huge = flow::OutputTag::<String>::new("huge");
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let routed = from_collection(vec![(1u8, 5i64), (2, -3), (1, 5000), (2, 7), (1, -1)])
            .key_by(|r| r.0)
            .process(Router { negative: negative.clone(), huge: huge.clone() });
        let main = routed.collect();
        let negatives = routed.side_output(&negative).collect();
        let huges = routed.side_output(&huge).collect();
    }
    env.execute("side outputs").unwrap();
    assert_eq!(sorted(main.take()), vec![5, 7]);
    assert_eq!(sorted(negatives.take()), vec![-3, -1]);
    assert_eq!(huges.take(), vec!["huge 5000".to_string()]);
}

mod side_outputs {
    use super::*;
    at_parallelism!(side_outputs_from_a_process_function);
}

/// Flink's `ProcessFunction` on a stream that is not keyed: splits lines into words, sends
/// the empty ones to a side output, and tags each word with the row's timestamp.
#[derive(Clone, KeyedState)]
struct Words {
    empty: flow::OutputTag<i64>,
}

#[process_function]
impl Words {
    fn process(
        &mut self,
        line: (i64, &'static str),
        ctx: &mut ProcessContext<'_>,
        out: &mut Vec<(String, Option<i64>)>,
    ) {
        if line.1.is_empty() {
            ctx.output(&self.empty, line.0);
            return;
        }
        for w in line.1.split(' ') {
            out.push((w.to_string(), ctx.timestamp()));
        }
    }
}

fn process_on_a_stream_that_is_not_keyed(p: usize) {
    let empty = flow::OutputTag::<i64>::new("empty");
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let words = from_collection(vec![(10i64, "a b"), (20, ""), (30, "c")], Watermarks::monotonous())
            .timestamps(|l| l.0)
            .rebalance()
            .process(Words { empty: empty.clone() });
        let out = words.collect();
        let empties = words.side_output(&empty).collect();
        // A closure works too.
        let lengths = source(NumberSequence::new(1, 4), Watermarks::no_watermarks())
            .process(|n, _ctx, out| out.extend(std::iter::repeat_n(n, n as usize)))
            .collect();
    }
    env.execute("process").unwrap();
    assert_eq!(
        sorted(out.take()),
        vec![
            ("a".to_string(), Some(10)),
            ("b".to_string(), Some(10)),
            ("c".to_string(), Some(30)),
        ]
    );
    assert_eq!(empties.take(), vec![20]);
    assert_eq!(sorted(lengths.take()), vec![1, 2, 2, 3, 3, 3, 4, 4, 4, 4]);
}

mod not_keyed {
    use super::*;
    at_parallelism!(process_on_a_stream_that_is_not_keyed);
}
