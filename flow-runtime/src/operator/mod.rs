//! The operators of a fused stage, one file per operator (the same names as
//! `flow-macros/src/ops/`), and the one adapter that chains any of them to what follows.
//!
//! An operator implements [`Operator`]: one required method, [`Operator::process`], which
//! handles a row and emits its results to an [`Output`]; every other hook (open and close,
//! watermarks, processing time, checkpoints, the end of input, metrics) has a default that
//! does nothing. [`Chained`] does, once for every operator, what each would otherwise repeat:
//! it passes watermarks, idleness, barriers and the end of input on to the next link and to
//! the side outputs, names the operator in the job's error if user code panics in it, counts
//! the rows it emits and hands them to the job's metrics.
//!
//! A two-input operator is an `Operator<Either<A, B>>`: the stage's loop tags each row with
//! the input it came from, and the match in `process` inlines away.

pub mod assign_timestamps_and_watermarks;
pub mod broadcast;
pub mod broadcast_process;
pub mod co_flat_map;
pub mod co_map;
pub mod co_process;
pub mod connect;
pub mod filter;
pub mod flat_map;
pub mod interval_join;
pub mod key_by;
pub mod keyed_process;
pub mod map;
pub mod migrate_state;
pub mod process;
pub mod rebalance;
pub mod reduce;
pub mod side_output;
pub mod sink;
pub mod source;
pub mod timestamps;
pub mod union;
pub mod window;
pub mod window_join;

use crate::chain::{Collector, Control, Snapshot};
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::function::NotKeyed;
use crate::snapshot::{StateData, StateReader, StateWriter, TaskState};
use crate::time::Timestamp;
use crate::Result;
use side_output::{NoSideOutputs, SideOutputs};
use std::cell::Cell;
use std::marker::PhantomData;

/// One operator of a fused stage: rows of type `In` in, rows of type [`Operator::Out`] out.
///
/// Only [`process`](Operator::process) is required. The hooks run at batch boundaries, never
/// per row; each default does nothing, and whatever an operator does in one, its [`Chained`]
/// link passes the event on to the operators after it (a hook cannot forget to).
pub trait Operator<In> {
    /// The rows it emits.
    type Out;

    /// Whether it emits exactly one row per input row (`map`): its output count is then its
    /// input count, which the job's metrics derive from the plan, and its chain link counts
    /// nothing per row. (A counter per row and operator costs a store per row wherever the
    /// chain ends in an opaque call: measured at 0.47x of the loop for the stateless chain
    /// with four counters, 0.93x with one.)
    const ONE_TO_ONE: bool = false;

    /// The fingerprint of the state this operator saves in checkpoints (0: it keeps none):
    /// what `flow.lock` records for it and the build checks (README, "State-schema lock").
    const STATE_SCHEMA: u64 = 0;

    /// The state schema whose checkpoints it also restores, through a `.migrate_state(..)`
    /// (0: none): the build accepts it in `flow.lock` too, and a run records the new one.
    const MIGRATES_FROM: u64 = 0;

    /// Whether it generates the watermarks of its output itself (`assign_timestamps_and_
    /// watermarks`): its link then passes on only the final watermark of its input (the end
    /// of input), not the others; the operator sends its own with
    /// `Output::emit_watermark`.
    const GENERATES_WATERMARKS: bool = false;

    /// Handles one row with its event timestamp, emitting any number of rows to `out`.
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<Self::Out>);

    /// Called in the task's thread before the first row (user functions' `open` runs here).
    /// `ctx` names this operator.
    ///
    /// # Errors
    /// A configuration the operator cannot run with (a window size that is not positive).
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// The event-time clock advanced to `watermark`: fire what is due (windows, timers). The
    /// watermark is passed on after this returns.
    ///
    /// # Errors
    /// An error the operator deferred from the row path.
    fn on_watermark(
        &mut self,
        watermark: Timestamp,
        out: &mut impl Output<Self::Out>,
    ) -> Result<()> {
        let _ = (watermark, out);
        Ok(())
    }

    /// After every input batch, and at least every 50 ms while the input is quiet: fire what
    /// is due by processing time, report errors deferred from the row path.
    ///
    /// # Errors
    /// An error the operator deferred from the row path.
    fn on_tick(&mut self, out: &mut impl Output<Self::Out>) -> Result<()> {
        let _ = out;
        Ok(())
    }

    /// A checkpoint barrier reached the operator: every row before it was processed. The
    /// operator writes its state to `state` (nothing if it keeps none) and says whether its
    /// part of checkpoint `id` is taken; the barrier is passed on either way. This runs on the
    /// row path: write a copy of the state and leave the slow part (files) to the job.
    ///
    /// # Errors
    /// Saving failed (a sink that cannot make its rows durable, a value serde cannot encode).
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        let _ = (id, state);
        Ok(Snapshot::Taken)
    }

    /// The job restarts from a checkpoint that holds state for this operator: read it back
    /// (after [`open`](Operator::open), before the first row). Called only when the checkpoint
    /// has state for the operator; an operator that writes state in
    /// [`snapshot`](Operator::snapshot) must read it here.
    ///
    /// # Errors
    /// The state is of other types, or does not decode.
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        let _ = state;
        Err(crate::Error::State {
            operator: String::new(),
            file: None,
            message: "the checkpoint holds state for this operator, which keeps none".into(),
        })
    }

    /// In an instance group, the partitions of the repartition topic this operator reads
    /// were taken away (a rebalance): after [`snapshot`](Operator::snapshot) saved its state
    /// for the instances that get them, drop every key's state and the watermark, as a fresh
    /// operator has them; [`restore`](Operator::restore) then adds the state of the
    /// partitions this instance gets. Returns `false` when the operator cannot (the default):
    /// a job whose operator saved state and cannot drop it fails, naming it.
    ///
    /// # Errors
    /// The disk backend's store could not be written.
    fn clear_state(&mut self) -> Result<bool> {
        Ok(false)
    }

    /// Checkpoint `id` completed: commit what was prepared for it (a sink's transaction).
    ///
    /// # Errors
    /// Committing failed.
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        let _ = id;
        Ok(())
    }

    /// In an instance group, the positions of the rows this operator was given are about to
    /// be committed ([`Control::commit_output`]): a sink makes its output durable and
    /// visible now. Nothing for other operators (the default).
    ///
    /// # Errors
    /// The output cannot be made durable.
    fn commit_output(&mut self) -> Result<()> {
        Ok(())
    }

    /// The end of input: emit what is still held (batch-mode results, open windows, pending
    /// timers). [`close`](Operator::close) follows.
    ///
    /// # Errors
    /// An error the operator deferred, or one emitting the final rows.
    fn end_of_input(&mut self, out: &mut impl Output<Self::Out>) -> Result<()> {
        let _ = out;
        Ok(())
    }

    /// After the end of input (user functions' `close` runs here). Not called when the job
    /// fails.
    ///
    /// # Errors
    /// Closing failed (a sink that cannot commit its output).
    fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// Adds the operator's own counters (late rows) to `metrics` under its plan node `node`;
    /// the rows it emitted are counted by its chain link (unless it is
    /// [`ONE_TO_ONE`](Operator::ONE_TO_ONE)).
    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        let _ = (node, metrics);
    }
}

/// Where an operator emits: the next operator of its chain, and its side outputs.
pub trait Output<T> {
    /// Emits one row with its timestamp.
    fn emit(&mut self, row: T, ts: Timestamp);

    /// Emits every row of `rows` with timestamp `ts`, leaving `rows` empty with its capacity
    /// (operators reuse one buffer for a function's output).
    #[inline]
    fn emit_all(&mut self, rows: &mut Vec<T>, ts: Timestamp) {
        for row in rows.drain(..) {
            self.emit(row, ts);
        }
    }

    /// The side outputs, for rows sent by tag name (a dyn call per side row: they are off the
    /// main path).
    fn side_outputs(&mut self) -> &mut dyn SideOutputs;

    /// Emits `row` to the side output named `tag`; dropped when nothing reads that tag (as in
    /// Flink).
    fn emit_to<U: 'static>(&mut self, tag: &str, row: U, ts: Timestamp) {
        let mut slot = Some(row);
        self.side_outputs().emit(tag, &mut slot, ts);
    }

    /// Sends the event-time clock `watermark` on, after the rows emitted so far (an operator
    /// that generates watermarks: [`Operator::GENERATES_WATERMARKS`]).
    ///
    /// # Errors
    /// What the operators after it fail with on the watermark (firing windows, timers).
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()>;
}

/// A row of a two-input operator, tagged with the input it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// From the first input (`a` of `a.connect(b)`).
    First(A),
    /// From the second input.
    Second(B),
}

thread_local! {
    static PANICKED_IN: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Names the operator whose code is running, for the job's error if it panics.
///
/// Created before a call and forgotten after it, so its `Drop` runs only while unwinding. It
/// holds the address of the operator's name, not the name, and its `Drop` is inlined: the
/// unwinding path computes that address from the operator's, and a row's path stores
/// nothing. (A name read per row was two stores per row and operator: W1 at 0.68x of the
/// loop instead of 0.78x. A `Drop` not inlined took the guard's address, so the guard was
/// stored before every row: W3 at 0.75x instead of 0.84x.) The innermost guard's `Drop`
/// runs first, so a panic in an operator further down the chain names that operator.
struct PanicGuard<'a>(&'a &'static str);

impl Drop for PanicGuard<'_> {
    // Inlined, so that the guard itself needs no memory: the unwinding path reads the name
    // through the operator, whose address is at hand. Not inlined, `drop` takes the guard's
    // address, and the guard is stored on the stack before every row (the row's calls, and a
    // sink's `black_box`, may read or write memory whose address escaped).
    #[inline(always)]
    fn drop(&mut self) {
        unwound_through(self.0);
    }
}

/// Remembers that a panic unwound through `operator`, unless it did through one before.
#[cold]
#[inline(never)]
fn unwound_through(operator: &'static str) {
    PANICKED_IN.with(|c| {
        if c.get().is_none() {
            c.set(Some(operator));
        }
    });
}

/// Calls `f` as the code of `operator`.
#[inline(always)]
pub(crate) fn guarded<R>(operator: &&'static str, f: impl FnOnce() -> R) -> R {
    let guard = PanicGuard(operator);
    let r = f();
    std::mem::forget(guard);
    r
}

/// The operator a panic on this thread unwound through first, if any; resets it.
pub(crate) fn take_panicked_operator() -> Option<&'static str> {
    PANICKED_IN.with(|c| c.take())
}

/// An operator chained before `next`, with side outputs `side`: the one [`Collector`] every
/// operator runs in.
pub struct Chained<In, Op, N, S = NoSideOutputs> {
    op: Op,
    out: Emit<In, Op, N, S>,
    name: &'static str,
    node: u32,
}

impl<In, Op, N> Chained<In, Op, N> {
    /// `op`, plan node `node` named `name`, emitting into `next`.
    pub fn new(op: Op, node: u32, name: &'static str, next: N) -> Self {
        Chained::with_side_outputs(op, node, name, next, NoSideOutputs)
    }
}

impl<In, Op, N, S> Chained<In, Op, N, S> {
    /// `op` with side outputs `side` (what `.side_output(&tag)` reads after it).
    pub fn with_side_outputs(op: Op, node: u32, name: &'static str, next: N, side: S) -> Self {
        Chained {
            op,
            out: Emit {
                next,
                side,
                emitted: 0,
                _op: PhantomData,
            },
            name,
            node,
        }
    }
}

/// The [`Output`] a [`Chained`] hands its operator: the rest of the chain, the side outputs,
/// and the rows emitted (counted unless the operator is one-to-one). It lives in the
/// `Chained`, so the operator gets a pointer into it; an output made per row of pointers to
/// these fields was stored to the stack before every row whose path may call out of line (a
/// window's rare paths: four stores and three address computations per row, though W4 did
/// not measurably slow down for them).
struct Emit<In, Op, N, S> {
    next: N,
    side: S,
    emitted: u64,
    _op: PhantomData<fn(In) -> Op>,
}

impl<In, Op, N, S> Output<Op::Out> for Emit<In, Op, N, S>
where
    Op: Operator<In>,
    N: Collector<Op::Out>,
    S: SideOutputs,
{
    #[inline(always)]
    fn emit(&mut self, row: Op::Out, ts: Timestamp) {
        if !Op::ONE_TO_ONE {
            self.emitted += 1;
        }
        self.next.collect(row, ts);
    }
    fn side_outputs(&mut self) -> &mut dyn SideOutputs {
        &mut self.side
    }
    fn emit_watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.side.watermark(watermark)?;
        self.next.watermark(watermark)
    }
}

impl<In, Op, N, S> Chained<In, Op, N, S>
where
    Op: Operator<In>,
    N: Collector<Op::Out>,
    S: SideOutputs,
{
    /// Runs `f` on the operator and an output into the rest of the chain, guarded.
    #[inline(always)]
    fn with_output<R>(&mut self, f: impl FnOnce(&mut Op, &mut Emit<In, Op, N, S>) -> R) -> R {
        let (op, out) = (&mut self.op, &mut self.out);
        guarded(&self.name, || f(op, out))
    }
}

impl<In, Op, N, S> Collector<In> for Chained<In, Op, N, S>
where
    Op: Operator<In>,
    N: Collector<Op::Out>,
    S: SideOutputs,
{
    #[inline(always)]
    fn collect(&mut self, row: In, ts: Timestamp) {
        // Spelled out rather than through `with_output`: a closure here is not always inlined
        // (measured: W3 at 0.51x of the loop with the per-row closure outlined, 0.70x inlined).
        let guard = PanicGuard(&self.name);
        self.op.process(row, ts, &mut self.out);
        std::mem::forget(guard);
    }
}

impl<In, Op, N, S> Control for Chained<In, Op, N, S>
where
    Op: Operator<In>,
    N: Collector<Op::Out>,
    S: SideOutputs,
{
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.out.next.open(ctx)?;
        self.out.side.open(ctx)?;
        if Op::STATE_SCHEMA != 0 {
            ctx.checkpoints.report_schema(
                ctx.graph,
                self.node,
                Op::STATE_SCHEMA,
                Op::MIGRATES_FROM,
            );
        }
        let own = ctx.for_operator(self.name);
        let op = &mut self.op;
        guarded(&self.name, || op.open(&own))?;
        let op = &mut self.op;
        restore_with(ctx, self.name, self.node, &mut |state| op.restore(state))
    }
    #[inline]
    fn flush(&mut self) -> Result<()> {
        self.with_output(|op, out| op.on_tick(out))?;
        self.out.side.flush()?;
        self.out.next.flush()
    }
    fn watermark(&mut self, watermark: Timestamp) -> Result<()> {
        self.with_output(|op, out| op.on_watermark(watermark, out))?;
        if Op::GENERATES_WATERMARKS && watermark != crate::time::MAX_WATERMARK {
            return Ok(());
        }
        self.out.side.watermark(watermark)?;
        self.out.next.watermark(watermark)
    }
    fn idle(&mut self, idle: bool) -> Result<()> {
        self.out.side.idle(idle)?;
        self.out.next.idle(idle)
    }
    fn barrier(&mut self, id: CheckpointId, state: &mut TaskState) -> Result<Snapshot> {
        let op = &mut self.op;
        let own = snapshot_with(self.name, self.node, state, &mut |w| op.snapshot(id, w))?;
        let side = self.out.side.barrier(id, state)?;
        Ok(own.and(side).and(self.out.next.barrier(id, state)?))
    }
    fn release(&mut self, state: &mut TaskState, clear: bool) -> Result<()> {
        if Op::STATE_SCHEMA != 0 {
            let op = &mut self.op;
            release_with(self.name, self.node, state, &mut |w| {
                // Not a checkpoint: no sink is asked (none keeps keyed state).
                let _ = op.snapshot(0, w)?;
                if clear {
                    op.clear_state()
                } else {
                    Ok(true)
                }
            })?;
        }
        self.out.side.release(state, clear)?;
        self.out.next.release(state, clear)
    }
    fn adopt(&mut self, ctx: &RuntimeContext, state: &crate::snapshot::Adopted) -> Result<()> {
        if Op::STATE_SCHEMA != 0 {
            let op = &mut self.op;
            adopt_with(ctx, self.name, self.node, state, &mut |r| op.restore(r))?;
        }
        self.out.side.adopt(ctx, state)?;
        self.out.next.adopt(ctx, state)
    }
    fn commit_output(&mut self) -> Result<()> {
        let op = &mut self.op;
        guarded(&self.name, || op.commit_output())?;
        self.out.side.commit_output()?;
        self.out.next.commit_output()
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        let op = &mut self.op;
        guarded(&self.name, || op.checkpoint_complete(id))?;
        self.out.side.checkpoint_complete(id)?;
        self.out.next.checkpoint_complete(id)
    }
    fn finish(&mut self) -> Result<()> {
        self.with_output(|op, out| op.end_of_input(out))?;
        let op = &mut self.op;
        guarded(&self.name, || op.close())?;
        self.out.side.finish()?;
        self.out.next.finish()
    }
    fn report(&self, metrics: &mut TaskMetrics) {
        if !Op::ONE_TO_ONE {
            metrics.add_out(self.node, self.out.emitted);
        }
        self.op.report(self.node, metrics);
        self.out.side.report(metrics);
        self.out.next.report(metrics);
    }
}

/// An operator's part of a checkpoint: `snapshot` writes its state, which goes into `state`
/// under the operator's uid. Not generic (the adapter passes the operator's hook as a `dyn`
/// closure), so that its bookkeeping compiles once and not per operator of every job.
#[inline(never)]
pub(crate) fn snapshot_with(
    name: &'static str,
    node: u32,
    state: &mut TaskState,
    snapshot: &mut dyn FnMut(&mut StateWriter) -> Result<Snapshot>,
) -> Result<Snapshot> {
    let mut writer = StateWriter::new(name);
    Ok(match guarded(&name, || snapshot(&mut writer))? {
        Snapshot::Declined(_) => Snapshot::Declined(name),
        Snapshot::Taken => state.add(node, name, writer),
    })
}

/// An operator's part of a release ([`Control::release`]): `save` writes its state (and drops
/// it, when asked), returning whether it could; not generic, as [`snapshot_with`].
#[inline(never)]
pub(crate) fn release_with(
    name: &'static str,
    node: u32,
    state: &mut TaskState,
    save: &mut dyn FnMut(&mut StateWriter) -> Result<bool>,
) -> Result<()> {
    let mut writer = StateWriter::new(name);
    let saved = guarded(&name, || save(&mut writer))
        .map_err(|e| crate::Error::Config(format!("`{name}`: {e}")))?;
    if !saved {
        return Err(crate::Error::Config(format!(
            "`{name}` keeps state that cannot move between instances of a group yet: run the job in one process, or the group without --checkpoint-dir (state then starts afresh where partitions land)"
        )));
    }
    let _ = state.add(node, name, writer);
    Ok(())
}

/// Adds to an operator the state of the partitions its stage took over, if they hold any
/// for it; not generic, as [`snapshot_with`].
#[inline(never)]
pub(crate) fn adopt_with(
    ctx: &RuntimeContext,
    name: &'static str,
    node: u32,
    state: &crate::snapshot::Adopted,
    restore: &mut dyn FnMut(&StateReader) -> Result<()>,
) -> Result<()> {
    if let Some(reader) = state.reader(&ctx.uid(node)) {
        guarded(&name, || restore(&reader)).map_err(|e| ctx.state_error(node, e))?;
    }
    Ok(())
}

/// Restores an operator from the checkpoint the job starts from, if it holds state for it;
/// not generic, as [`snapshot_with`].
#[inline(never)]
pub(crate) fn restore_with(
    ctx: &RuntimeContext,
    name: &'static str,
    node: u32,
    restore: &mut dyn FnMut(&StateReader) -> Result<()>,
) -> Result<()> {
    if let Some(state) = ctx.state_of(node)? {
        guarded(&name, || restore(&state)).map_err(|e| ctx.state_error(node, e))?;
    }
    Ok(())
}

/// The hooks of an operator over one user function `self.f` whose per-key state lives in
/// `self.keys` (a [`KeyStates`]): the function's `open` and `close`, and the state's
/// checkpoint and restore. `map`, `filter` and `flat_map` differ only in `process`.
macro_rules! function_hooks {
    () => {
        fn open(&mut self, ctx: &$crate::context::RuntimeContext) -> $crate::Result<()> {
            self.keys.open(ctx)?;
            self.f.open(ctx);
            Ok(())
        }
        /// The disk state backend's error, if a row of the batch met one.
        fn on_tick(&mut self, _: &mut impl Output<Self::Out>) -> $crate::Result<()> {
            self.keys.check()
        }
        fn end_of_input(&mut self, _: &mut impl Output<Self::Out>) -> $crate::Result<()> {
            self.keys.check()
        }
        fn snapshot(
            &mut self,
            _: $crate::exec::CheckpointId,
            state: &mut $crate::snapshot::StateWriter,
        ) -> $crate::Result<$crate::chain::Snapshot> {
            self.keys.snapshot(state)?;
            Ok($crate::chain::Snapshot::Taken)
        }
        fn restore(&mut self, state: &$crate::snapshot::StateReader) -> $crate::Result<()> {
            self.keys.restore(state)
        }
        fn clear_state(&mut self) -> $crate::Result<bool> {
            self.keys.clear()?;
            Ok(true)
        }
        fn close(&mut self) -> $crate::Result<()> {
            self.f.close();
            Ok(())
        }
    };
}
pub(crate) use function_hooks;

/// Where a keyed operator finds the state of a row's key: [`Keyed`] on a keyed stream,
/// [`NotKeyed`] (no state, no lookup) on one that is not.
pub trait KeyStates<In, S> {
    /// The fingerprint of what [`KeyStates::snapshot`] saves (0: nothing).
    const SCHEMA: u64;
    /// The state of `row`'s key, created empty on first use.
    fn state_of(&mut self, row: &In) -> &mut S;
    /// Moves the states to the job's disk backend if it has one (in the operator's `open`).
    ///
    /// # Errors
    /// The store cannot be opened.
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()>;
    /// Drops every key's state ([`Operator::clear_state`]).
    ///
    /// # Errors
    /// The disk backend's store could not be written.
    fn clear(&mut self) -> Result<()>;
    /// The disk backend's first error since the last call.
    ///
    /// # Errors
    /// The store could not be read or written.
    fn check(&mut self) -> Result<()>;
    /// Writes every key's state (nothing when there is none to keep).
    ///
    /// # Errors
    /// A value serde cannot encode.
    fn snapshot(&mut self, state: &mut StateWriter) -> Result<()>;
    /// Reads back what [`KeyStates::snapshot`] wrote.
    ///
    /// # Errors
    /// The state is of other types, or does not decode.
    fn restore(&mut self, state: &StateReader) -> Result<()>;
}

/// The per-key state of a keyed operator: its key selector and one `S` per key (all the
/// `#[state]` of a function in one struct, found with one lookup per row).
pub struct Keyed<KS, K, S> {
    key: KS,
    states: crate::state::KeyedState<K, S>,
}

impl<KS, K, S> Keyed<KS, K, S> {
    /// State per key of `key`.
    pub fn new(key: KS) -> Self {
        Keyed {
            key,
            states: crate::state::KeyedState::default(),
        }
    }
}

impl<In, KS, S: crate::state::StateFields + StateData> KeyStates<In, S> for Keyed<KS, KS::Key, S>
where
    KS: crate::function::KeySelector<In>,
    KS::Key: Sync,
{
    const SCHEMA: u64 = if std::mem::size_of::<S>() == 0 {
        0
    } else {
        keyed_states_schema(
            <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
            S::FINGERPRINT,
        )
    };
    #[inline(always)]
    fn state_of(&mut self, row: &In) -> &mut S {
        let state = self.states.get_or_default(self.key.key(row));
        if S::TTL {
            state.expire(crate::time::now_millis());
        }
        state
    }
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        if std::mem::size_of::<S>() == 0 {
            return Ok(());
        }
        self.states.open(ctx)
    }
    #[inline]
    fn check(&mut self) -> Result<()> {
        self.states.check()
    }
    fn snapshot(&mut self, state: &mut StateWriter) -> Result<()> {
        self.states.check()?;
        // A function without `#[state]` has a zero-sized state struct: nothing to keep.
        if std::mem::size_of::<S>() != 0 {
            self.states.write("state", state);
        }
        Ok(())
    }
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        state.keyed("state", |k, s| self.states.insert(k, s))
    }
    fn clear(&mut self) -> Result<()> {
        self.states.clear()
    }
}

/// Per-key state whose values a `.migrate_state(..)` can make from an older type `Old`.
#[diagnostic::on_unimplemented(
    message = "`migrate_state` needs keyed state to migrate",
    label = "this function keeps no state per key",
    note = "`.migrate_state(..)` follows a keyed operator whose function has `#[state]`"
)]
pub trait KeyStatesFrom<In, S, Old>: KeyStates<In, S> {
    /// [`KeyStates::SCHEMA`] had each key kept an `Old`.
    const MIGRATED: u64;
}

impl<In, KS, S: crate::state::StateFields + StateData, Old: StateData> KeyStatesFrom<In, S, Old>
    for Keyed<KS, KS::Key, S>
where
    KS: crate::function::KeySelector<In>,
    KS::Key: Sync,
{
    const MIGRATED: u64 = keyed_states_schema(
        <KS::Key as crate::snapshot::StateSchema>::FINGERPRINT,
        Old::FINGERPRINT,
    );
}

/// [`KeyStates::SCHEMA`] of per-key state structs `value` under keys `key` (fingerprints), and
/// with an old struct's fingerprint [`KeyStatesFrom::MIGRATED`]: one formula for both.
const fn keyed_states_schema(key: u64, value: u64) -> u64 {
    crate::snapshot::record(&[key, value])
}

/// A stream that is not keyed has no per-key state.
impl<In> KeyStates<In, ()> for NotKeyed {
    const SCHEMA: u64 = 0;
    #[inline(always)]
    fn state_of(&mut self, _: &In) -> &mut () {
        &mut self.0
    }
    fn open(&mut self, _: &RuntimeContext) -> Result<()> {
        Ok(())
    }
    #[inline]
    fn check(&mut self) -> Result<()> {
        Ok(())
    }
    fn snapshot(&mut self, _: &mut StateWriter) -> Result<()> {
        Ok(())
    }
    fn restore(&mut self, _: &StateReader) -> Result<()> {
        Ok(())
    }
    fn clear(&mut self) -> Result<()> {
        Ok(())
    }
}
