//! The start of a stage: merges the channels from every upstream subtask.

use super::{Message, Rows};
use crate::exec::worker;
use crate::exec::CheckpointId;
use crate::time::{Timestamp, MIN_WATERMARK};
use crossbeam_channel::{Receiver, RecvError, Select, TryRecvError};
use std::marker::PhantomData;
use std::time::Duration;

/// What the gate hands the stage next.
pub enum GateEvent {
    /// A batch of rows.
    Rows(Rows),
    /// A batch of rows of the second input of a two-input stage (see [`Message::SecondRows`]).
    SecondRows(Rows),
    /// The minimum watermark over all active inputs advanced.
    Watermark(Timestamp),
    /// Every open input delivered this checkpoint barrier (or a later one).
    Barrier(CheckpointId),
    /// Every open input turned idle (`true`), or one turned active again (`false`).
    Status(bool),
    /// Nothing arrived within the poll timeout.
    Idle,
    /// Every input ended.
    End,
    /// An input closed without ending: its sender failed.
    Broken,
    /// A repartition reader's request (state following partitions, a commit), or an upstream
    /// exchange's before its stage commits in an instance group (`Handover::Flush`).
    Handover(crate::instances::Handover),
}

/// The input gate of a stage whose rows are of type `T`: the channels from every upstream
/// subtask of its inputs.
pub struct InputGate<T> {
    pub(crate) gate: Gate,
    _rows: PhantomData<fn() -> T>,
}

impl<T> InputGate<T> {
    /// A gate over `inputs`, which carry rows of type `T`.
    pub fn new(inputs: Vec<Receiver<Message>>) -> Self {
        InputGate {
            gate: Gate::new(inputs),
            _rows: PhantomData,
        }
    }
}

/// Receives from every upstream subtask of a stage's inputs, tracking per-channel watermarks
/// and ends; compiled once, whatever the row type.
pub(crate) struct Gate {
    inputs: Vec<Receiver<Message>>,
    watermarks: Vec<Timestamp>,
    open: Vec<bool>,
    idle: Vec<bool>,
    all_idle: bool,
    open_count: usize,
    current: Timestamp,
    /// Per input, the newest checkpoint barrier it delivered.
    barriers: Vec<CheckpointId>,
    /// The newest barrier passed on: the minimum over open inputs.
    barrier: CheckpointId,
    /// Exactly-once: an input that delivered a barrier not yet passed on is not read until
    /// every open input delivered it (barrier alignment).
    aligned: bool,
    /// Held by a two-input stage whose other gate has not delivered the barrier this one
    /// passed on: no input is read.
    held: bool,
    /// Since when the barrier not yet passed on holds an input back.
    aligning: Option<std::time::Instant>,
    /// How long the last barrier passed on held inputs back (Flink's alignment duration).
    alignment: Duration,
    pending: Option<GateEvent>,
    /// The messages of a [`Message::Many`] not handled yet, with their input: handled before
    /// anything else is received.
    queue: std::collections::VecDeque<(usize, Message)>,
    /// On a worker: the input [`Gate::try_recv`] looks at first (the one after the last read).
    next_input: usize,
}

impl Gate {
    /// A gate over `inputs`.
    pub fn new(inputs: Vec<Receiver<Message>>) -> Self {
        let n = inputs.len();
        Gate {
            inputs,
            watermarks: vec![MIN_WATERMARK; n],
            open: vec![true; n],
            idle: vec![false; n],
            all_idle: false,
            open_count: n,
            current: MIN_WATERMARK,
            barriers: vec![0; n],
            barrier: 0,
            aligned: false,
            held: false,
            aligning: None,
            alignment: Duration::ZERO,
            pending: None,
            queue: std::collections::VecDeque::new(),
            next_input: 0,
        }
    }

    /// Aligns barriers (exactly-once checkpoints) or not (at-least-once).
    pub fn set_aligned(&mut self, aligned: bool) {
        self.aligned = aligned;
    }

    /// Holds every input back (`true`) until released: the other gate of a two-input stage
    /// has not delivered the barrier this one passed on.
    pub fn hold(&mut self, held: bool) {
        self.held = held;
    }

    /// Whether input `i` can be read: open, and not blocked by barrier alignment.
    #[inline]
    fn readable(&self, i: usize) -> bool {
        self.open[i] && !(self.aligned && (self.held || self.barriers[i] > self.barrier))
    }

    /// Waits up to `timeout` for the next event.
    pub fn next(&mut self, timeout: Duration) -> GateEvent {
        if let Some(e) = self.take_pending() {
            return e;
        }
        if worker::cooperative() {
            return self.next_on_worker(timeout);
        }
        // A deadline, not a timeout per message: messages that make no event (a watermark
        // that does not advance the minimum) must not keep `Idle`, and the stage's flush
        // with it, from coming.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.open_count == 0 {
                return GateEvent::End;
            }
            let (i, msg) = {
                let mut sel = Select::new();
                let mut ids = Vec::with_capacity(self.open_count);
                for (i, r) in self.inputs.iter().enumerate() {
                    if self.readable(i) {
                        sel.recv(r);
                        ids.push(i);
                    }
                }
                let op = match sel.select_deadline(deadline) {
                    Ok(op) => op,
                    Err(_) => return GateEvent::Idle,
                };
                let k = op.index();
                let i = ids[k];
                let msg = op.recv(&self.inputs[i]);
                worker::progress();
                (i, msg)
            };
            if let Some(e) = self.handle(i, msg) {
                return e;
            }
        }
    }

    /// [`Gate::next`] on a worker: the worker runs its other tasks while no input has a
    /// message.
    fn next_on_worker(&mut self, timeout: Duration) -> GateEvent {
        let mut deadline = None;
        loop {
            if self.open_count == 0 {
                return GateEvent::End;
            }
            match self.try_recv() {
                Some((i, msg)) => {
                    if let Some(e) = self.handle(i, msg) {
                        return e;
                    }
                }
                None => {
                    let now = std::time::Instant::now();
                    if now >= *deadline.get_or_insert(now + timeout) {
                        return GateEvent::Idle;
                    }
                    worker::wait();
                }
            }
        }
    }

    /// A message from an input that can be read and has one, if any (a disconnected input
    /// gives its `Err`): the inputs in turn, starting after the one read last, so that none
    /// starves. Tells the job's workers of the room it made ([`worker::progress`]).
    pub(crate) fn try_recv(&mut self) -> Option<(usize, Result<Message, RecvError>)> {
        let n = self.inputs.len();
        for k in 0..n {
            let i = (self.next_input + k) % n;
            if !self.readable(i) {
                continue;
            }
            match self.inputs[i].try_recv() {
                Ok(m) => {
                    self.next_input = (i + 1) % n;
                    worker::progress();
                    return Some((i, Ok(m)));
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Some((i, Err(RecvError))),
            }
        }
        None
    }

    /// The receivers of the inputs that can be read (open, not blocked by barrier
    /// alignment), with their indices (for a select over several gates).
    pub fn open_inputs(&self) -> impl Iterator<Item = (usize, &Receiver<Message>)> {
        self.inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| self.readable(*i))
    }

    /// An event `handle` held back to report after the one it returned, or the next event of
    /// a [`Message::Many`] received: every caller of `handle` takes these before it receives
    /// again.
    pub fn take_pending(&mut self) -> Option<GateEvent> {
        if let Some(e) = self.pending.take() {
            return Some(e);
        }
        while let Some((i, message)) = self.queue.pop_front() {
            if let Some(e) = self.handle(i, Ok(message)) {
                return Some(e);
            }
        }
        None
    }

    /// Whether every input ended.
    pub fn is_done(&self) -> bool {
        self.open_count == 0
    }

    /// Handles one message (or a disconnect) from input `i`; returns what the stage should see,
    /// if anything.
    pub fn handle(
        &mut self,
        i: usize,
        msg: Result<Message, crossbeam_channel::RecvError>,
    ) -> Option<GateEvent> {
        match msg {
            Ok(Message::Rows(rows)) => return Some(self.rows(i, GateEvent::Rows(rows))),
            Ok(Message::SecondRows(rows)) => {
                return Some(self.rows(i, GateEvent::SecondRows(rows)))
            }
            Ok(Message::Idle(idle)) => {
                self.idle[i] = idle;
                let all = (0..self.inputs.len())
                    .filter(|&j| self.open[j])
                    .all(|j| self.idle[j]);
                // An input turning idle may let the minimum advance.
                let wm = if idle { self.recompute() } else { None };
                if all != self.all_idle {
                    self.all_idle = all;
                    self.pending = wm.map(GateEvent::Watermark);
                    return Some(GateEvent::Status(all));
                }
                if let Some(w) = wm {
                    return Some(GateEvent::Watermark(w));
                }
            }
            Ok(Message::Watermark(w)) => {
                self.idle[i] = false;
                if let Some(w) = self.advance(i, w) {
                    return Some(GateEvent::Watermark(w));
                }
            }
            Ok(Message::Barrier(id)) => {
                self.barriers[i] = self.barriers[i].max(id);
                if id > self.barrier && self.aligning.is_none() {
                    self.aligning = Some(std::time::Instant::now());
                }
                return self.next_barrier().map(GateEvent::Barrier);
            }
            Ok(Message::End) => {
                self.open[i] = false;
                self.open_count -= 1;
                // A finished input no longer holds barriers back either.
                if self.open_count > 0 {
                    if let Some(b) = self.next_barrier() {
                        self.pending = self.advance(i, Timestamp::MAX).map(GateEvent::Watermark);
                        return Some(GateEvent::Barrier(b));
                    }
                }
                // The last input ended: so did the gate (a stage reading two gates learns it
                // here, not from `next`).
                if self.open_count == 0 {
                    return Some(GateEvent::End);
                }
                // A finished input no longer holds the watermark back.
                if let Some(w) = self.advance(i, Timestamp::MAX) {
                    return Some(GateEvent::Watermark(w));
                }
            }
            Ok(Message::Handover(h)) => return Some(GateEvent::Handover(h)),
            Ok(Message::Many(messages)) => {
                // (Received only once the queue is empty: see `take_pending`.)
                self.queue.extend(messages.into_iter().map(|m| (i, m)));
                return self.take_pending();
            }
            Err(_) => return Some(GateEvent::Broken),
        }
        None
    }

    /// Rows (`event`) from input `i`: from an idle input they make it active again, and its
    /// watermark counts from now on.
    fn rows(&mut self, i: usize, event: GateEvent) -> GateEvent {
        if self.idle[i] {
            self.idle[i] = false;
            if self.all_idle {
                self.all_idle = false;
                self.pending = Some(event);
                return GateEvent::Status(false);
            }
        }
        event
    }

    /// Whether some input holds more than `n` messages not read yet.
    pub fn fuller_than(&self, n: usize) -> bool {
        self.inputs.iter().any(|r| r.len() > n)
    }

    /// Input `i` has rows again that do not pass through the gate (a fused subtask's own):
    /// as rows from it would, it makes an idle input active, its watermark counting from now
    /// on; `Status(false)` when every input was idle.
    pub fn activate(&mut self, i: usize) -> Option<GateEvent> {
        if !self.idle[i] {
            return None;
        }
        self.idle[i] = false;
        if self.all_idle {
            self.all_idle = false;
            return Some(GateEvent::Status(false));
        }
        None
    }

    /// The minimum barrier over open inputs, if it advanced.
    fn next_barrier(&mut self) -> Option<CheckpointId> {
        let min = (0..self.inputs.len())
            .filter(|&j| self.open[j])
            .map(|j| self.barriers[j])
            .min()?;
        (min > self.barrier).then(|| {
            self.barrier = min;
            self.alignment = self.aligning.take().map_or(Duration::ZERO, |t| t.elapsed());
            min
        })
    }

    /// How long the last barrier passed on held inputs back: from the first input's barrier
    /// to the last one's.
    pub fn alignment(&self) -> Duration {
        self.alignment
    }

    /// Records input `i`'s watermark; returns the new minimum if it advanced.
    fn advance(&mut self, i: usize, w: Timestamp) -> Option<Timestamp> {
        if w <= self.watermarks[i] {
            return None;
        }
        self.watermarks[i] = w;
        self.recompute()
    }

    /// The minimum over inputs that are neither idle nor ended (ended ones sit at the
    /// maximum); returns it if it advanced.
    fn recompute(&mut self) -> Option<Timestamp> {
        let min = (0..self.inputs.len())
            .filter(|&j| !self.idle[j] || !self.open[j])
            .map(|j| self.watermarks[j])
            .min()?;
        if min > self.current {
            self.current = min;
            Some(min)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::EdgeChannels;

    #[test]
    fn watermark_is_the_minimum_over_inputs() {
        let mut edge = EdgeChannels::<u8>::new(2, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        let t = Duration::from_millis(100);
        edge.senders[0].senders[0]
            .send(Message::Watermark(10))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Idle));
        edge.senders[1].senders[0]
            .send(Message::Watermark(5))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Watermark(5)));
        edge.senders[1].senders[0].send(Message::End).unwrap();
        assert!(matches!(gate.next(t), GateEvent::Watermark(10)));
        edge.senders[0].senders[0].send(Message::End).unwrap();
        assert!(matches!(gate.next(t), GateEvent::End));
    }

    /// Watermarks that come faster than an exchange flushes (one after every row, a zero
    /// watermark interval) ride with the rows in one message per flush, and the gate hands
    /// them on in order, as if each had come on its own.
    #[test]
    fn watermarks_after_every_row_arrive_in_order_with_the_rows() {
        use crate::chain::{Collector, Control};
        let mut edge = EdgeChannels::<u8>::new(1, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        let receiver = gate.inputs[0].clone();
        let mut exchange = crate::channel::Exchange::new(
            crate::operator::rebalance::RoundRobin::default(),
            edge.senders.pop().unwrap(),
            "test",
            true,
        );
        let mut sent = Vec::new();
        // (Read as it goes, so that the channel never fills, should the test be paused for
        // longer than a flush interval now and then.)
        let mut messages: Vec<Message> = Vec::new();
        for v in 1..=100u8 {
            exchange.collect(v, i64::from(v));
            exchange.watermark(i64::from(v)).unwrap();
            sent.push(format!("r{v}"));
            sent.push(format!("w{v}"));
            messages.extend(receiver.try_iter());
        }
        exchange.finish().unwrap();
        messages.extend(receiver.try_iter());
        assert!(
            messages.len() < 40 && messages.iter().any(|m| matches!(m, Message::Many(_))),
            "a message per flush, not two per row: {messages:?}"
        );
        let mut got = Vec::new();
        let mut events: Vec<GateEvent> = Vec::new();
        for m in messages {
            events.extend(gate.handle(0, Ok(m)));
            while let Some(e) = gate.take_pending() {
                events.push(e);
            }
        }
        for e in events {
            match e {
                GateEvent::Rows(rows) => {
                    rows.feed(|v: u8, ts| {
                        assert_eq!(ts, i64::from(v));
                        got.push(format!("r{v}"));
                    });
                }
                GateEvent::Watermark(w) => got.push(format!("w{w}")),
                GateEvent::End => got.push("end".into()),
                _ => panic!("unexpected event"),
            }
        }
        sent.push("end".into());
        assert_eq!(got, sent);
    }

    /// Watermarks held between rows wait no longer than the exchange's flush interval: the
    /// exchange's next watermark or flush once that is due sends them (every task loop
    /// flushes after a batch of rows and when its inputs are quiet). A watermark alone is not
    /// held.
    #[test]
    fn held_watermarks_go_with_the_next_flush_due() {
        use crate::chain::{Collector, Control};
        let mut edge = EdgeChannels::<u8>::new(1, 1, false);
        let receiver = edge.receivers.pop().unwrap().pop().unwrap();
        let mut exchange = crate::channel::Exchange::new(
            crate::operator::rebalance::RoundRobin::default(),
            edge.senders.pop().unwrap(),
            "test",
            true,
        );
        let kinds = |receiver: &Receiver<Message>| -> Vec<String> {
            receiver
                .try_iter()
                .map(|m| match m {
                    Message::Rows(_) => "rows".to_string(),
                    Message::Watermark(w) => format!("w{w}"),
                    Message::Many(ms) => format!("many({})", ms.len()),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        exchange.watermark(0).unwrap();
        assert_eq!(kinds(&receiver), ["w0"], "a watermark alone goes at once");
        exchange.collect(1u8, 1);
        exchange.watermark(1).unwrap();
        exchange.collect(2u8, 2);
        exchange.watermark(2).unwrap();
        exchange.watermark(3).unwrap();
        let first = kinds(&receiver);
        // (Held unless the test was paused for 0.5 ms after watermark 0 or for 10 ms since
        // the exchange was made.)
        let output = |exchange: &crate::channel::Exchange<u8, _>| {
            let mut metrics = crate::exec::TaskMetrics::default();
            exchange.report(&mut metrics);
            metrics.output_watermark
        };
        if first.is_empty() {
            exchange.flush().unwrap();
            assert!(kinds(&receiver).is_empty(), "held until a flush is due");
            assert_eq!(
                output(&exchange),
                Some(0),
                "the output watermark: the last sent"
            );
            std::thread::sleep(Duration::from_millis(11));
            exchange.flush().unwrap();
            assert_eq!(kinds(&receiver), ["many(5)"]);
            assert_eq!(output(&exchange), Some(3));
        } else {
            assert_eq!(first.last().map(String::as_str), Some("w3"), "{first:?}");
        }
    }

    /// In an instance group, an in-process exchange's commit asks each downstream subtask,
    /// after the rows it sent, to make its output durable, and returns once every one
    /// answered; a subtask that fails (drops the request) fails the commit.
    #[test]
    fn an_exchange_commits_once_every_downstream_subtask_answered() {
        use crate::chain::{Collector, Control};
        use crate::instances::{Handover, Released};
        let mut edge = EdgeChannels::<u8>::new(1, 2, false);
        let receivers: Vec<Receiver<Message>> = edge
            .receivers
            .drain(..)
            .map(|mut r| r.pop().unwrap())
            .collect();
        let mut exchange = crate::channel::Exchange::new(
            crate::operator::rebalance::RoundRobin::default(),
            edge.senders.pop().unwrap(),
            "test",
            false,
        );
        let (answered, answered_rx) = crossbeam_channel::unbounded::<u64>();
        // Each downstream subtask: its rows, then the request, answered after 50 ms (the
        // second drops it in the second round).
        let downstream =
            |i: usize, r: Receiver<Message>, answered: crossbeam_channel::Sender<u64>| {
                std::thread::spawn(move || {
                    let mut rows = 0;
                    for round in 0..2 {
                        loop {
                            match r.recv().unwrap() {
                                Message::Rows(batch) => rows += batch.feed(|_: u8, _| {}),
                                Message::Handover(Handover::Flush(reply, None)) => {
                                    std::thread::sleep(Duration::from_millis(50));
                                    if round == 1 && i == 1 {
                                        drop(reply);
                                    } else {
                                        answered.send(rows).unwrap();
                                        let ctx = crate::RuntimeContext::standalone("test", i, 2);
                                        reply.send(Released::new(ctx.released_state())).unwrap();
                                    }
                                    break;
                                }
                                other => panic!("unexpected {other:?}"),
                            }
                        }
                    }
                })
            };
        let threads: Vec<_> = (receivers.into_iter().enumerate())
            .map(|(i, r)| downstream(i, r, answered.clone()))
            .collect();
        for v in 0..10u8 {
            exchange.collect(v, 0);
        }
        exchange.commit_output().unwrap();
        // Both answered, each after its five rows (round robin), before the commit returned.
        let mut got: Vec<u64> = answered_rx.try_iter().collect();
        got.sort();
        assert_eq!(got, [5, 5]);
        exchange.collect(10, 0);
        let e = exchange.commit_output().unwrap_err();
        assert!(matches!(e, crate::Error::Cancelled(_)), "{e}");
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn the_last_input_s_end_is_an_event_of_its_own() {
        let mut edge = EdgeChannels::<u8>::new(1, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        let r = gate.inputs[0].clone();
        edge.senders[0].senders[0].send(Message::End).unwrap();
        assert!(matches!(gate.handle(0, r.recv()), Some(GateEvent::End)));
        assert!(gate.is_done());
    }

    #[test]
    fn an_idle_input_does_not_hold_the_watermark_back() {
        let mut edge = EdgeChannels::<u8>::new(2, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        let t = Duration::from_millis(100);
        edge.senders[0].senders[0]
            .send(Message::Watermark(100))
            .unwrap();
        assert!(
            matches!(gate.next(t), GateEvent::Idle),
            "input 1 has no watermark yet"
        );
        edge.senders[1].senders[0]
            .send(Message::Idle(true))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Watermark(100)));
        edge.senders[0].senders[0]
            .send(Message::Idle(true))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Status(true)));
        let batch = crate::channel::Batch {
            rows: vec![1u8],
            timestamps: vec![5],
        };
        edge.senders[1].senders[0]
            .send(Message::Rows(Rows::new(batch)))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Status(false)));
        assert!(matches!(gate.next(t), GateEvent::Rows(_)));
    }

    /// A fused subtask's own input, whose rows skip the gate: activated, it holds the
    /// watermark back again, as rows through the gate would make it.
    #[test]
    fn an_activated_input_holds_the_watermark_back_again() {
        let edge = EdgeChannels::<u8>::new(2, 1, false);
        let mut gate = Gate::new(edge.receivers.into_iter().next().unwrap());
        let mut handle = |i, m| gate.handle(i, Ok(m));
        assert!(
            handle(0, Message::Watermark(10)).is_none(),
            "input 1 has none yet"
        );
        assert!(matches!(
            handle(1, Message::Idle(true)),
            Some(GateEvent::Watermark(10))
        ));
        assert!(gate.activate(0).is_none(), "input 0 was active");
        assert!(gate.activate(1).is_none(), "not every input was idle");
        assert!(
            gate.handle(0, Ok(Message::Watermark(20))).is_none(),
            "input 1, active again, holds the watermark back"
        );
        let _ = gate.handle(0, Ok(Message::Idle(true)));
        let _ = gate.handle(1, Ok(Message::Idle(true)));
        assert!(matches!(gate.activate(1), Some(GateEvent::Status(false))));
    }

    #[test]
    fn a_barrier_passes_once_every_open_input_delivered_it() {
        let mut edge = EdgeChannels::<u8>::new(3, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        let t = Duration::from_millis(10);
        edge.senders[0].senders[0]
            .send(Message::Barrier(1))
            .unwrap();
        edge.senders[1].senders[0]
            .send(Message::Barrier(2))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Idle));
        edge.senders[2].senders[0].send(Message::End).unwrap();
        assert!(matches!(gate.next(t), GateEvent::Barrier(1)));
        edge.senders[0].senders[0]
            .send(Message::Barrier(2))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Barrier(2)));
    }

    #[test]
    fn an_aligned_gate_holds_back_an_input_that_delivered_the_barrier() {
        let mut edge = EdgeChannels::<u8>::new(2, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        gate.set_aligned(true);
        let t = Duration::from_millis(10);
        let batch = |v: u8| {
            Message::Rows(Rows::new(crate::channel::Batch {
                rows: vec![v],
                timestamps: vec![],
            }))
        };
        edge.senders[0].senders[0]
            .send(Message::Barrier(1))
            .unwrap();
        edge.senders[0].senders[0].send(batch(1)).unwrap();
        assert!(matches!(gate.next(t), GateEvent::Idle));
        assert!(
            matches!(gate.next(t), GateEvent::Idle),
            "the row after input 0's barrier waits for input 1's"
        );
        edge.senders[1].senders[0].send(batch(2)).unwrap();
        let GateEvent::Rows(rows) = gate.next(t) else {
            panic!("input 1's row before its barrier passes");
        };
        assert_eq!(rows.into_batch::<u8>().rows, [2]);
        edge.senders[1].senders[0]
            .send(Message::Barrier(1))
            .unwrap();
        assert!(matches!(gate.next(t), GateEvent::Barrier(1)));
        let GateEvent::Rows(rows) = gate.next(t) else {
            panic!("input 0 is read again once the barrier passed");
        };
        assert_eq!(rows.into_batch::<u8>().rows, [1]);
    }

    #[test]
    fn a_dropped_sender_is_broken_not_ended() {
        let mut edge = EdgeChannels::<u8>::new(1, 1, false);
        let mut gate = Gate::new(edge.receivers.pop().unwrap());
        edge.senders.clear();
        assert!(matches!(
            gate.next(Duration::from_millis(10)),
            GateEvent::Broken
        ));
    }
}
