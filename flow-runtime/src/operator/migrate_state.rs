//! `.migrate_state(|old: Old| new)` after an operator that keeps one value per key (`reduce`,
//! a keyed `map`/`filter`/`flat_map`/`process` whose function has `#[state]`): a job restored
//! from a checkpoint that saved those values as `Old` reads them through the closure, into
//! the type the operator keeps now. Values already of the new type are read as they are, so
//! the migration can stay in the code after the first restore.
//!
//! The answer to `flow.lock`'s error besides a new uid: the build accepts an operator whose
//! state changed when its migration reads what the lock recorded ([`MigrateFrom`] computes
//! the operator's state schema with `Old` in place of its value), and the next debug run
//! records the new schema.

use super::{Operator, Output};
use crate::chain::Snapshot;
use crate::context::RuntimeContext;
use crate::exec::{CheckpointId, TaskMetrics};
use crate::snapshot::{Decoder, StateData, StateReader, StateWriter, ValueMigration};
use crate::time::Timestamp;
use crate::Result;
use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::sync::Arc;

/// The state schema of operator `operator` keeping one `value` per `key` (fingerprints): its
/// `STATE_SCHEMA`, and with the old value's fingerprint its
/// [`MIGRATED_SCHEMA`](MigrateFrom::MIGRATED_SCHEMA). One formula for both, so that a
/// migration is checked against the schema the operator really recorded.
pub(crate) const fn per_key_schema(operator: &str, key: u64, value: u64) -> u64 {
    crate::snapshot::record(&[crate::snapshot::fingerprint(operator), key, value])
}

/// An operator that keeps one value per key, whose values a migration can make from an older
/// type `Old`.
#[diagnostic::on_unimplemented(
    message = "`migrate_state` cannot read `{Old}` into this operator",
    label = "the operator before `migrate_state` does not keep one value per key",
    note = "`.migrate_state(|old: OldType| ..)` follows `reduce`, or a keyed `map`, `filter`, `flat_map` or `process` whose function has `#[state]`: its closure turns each key's old value into the one the operator keeps now"
)]
pub trait MigrateFrom<In, Old>: Operator<In> {
    /// The value the operator keeps per key: what the migration makes.
    type Value: 'static;
    /// The operator's [`STATE_SCHEMA`](Operator::STATE_SCHEMA) had it kept `Old` per key.
    const MIGRATED_SCHEMA: u64;
}

/// Operator `Op` restoring values saved as `Old` through `f`.
pub struct MigrateState<Op, F, Old, New> {
    op: Op,
    migration: Arc<Migration<F, Old, New>>,
}

impl<Op, F, Old, New> MigrateState<Op, F, Old, New> {
    /// `op`, whose values saved as `Old` are restored as `f(old)`.
    pub fn new(op: Op, f: F) -> Self
    where
        F: Fn(Old) -> New,
    {
        MigrateState {
            op,
            migration: Arc::new(Migration {
                f,
                _types: PhantomData,
            }),
        }
    }
}

/// The closure, seen by the state reader without its types.
struct Migration<F, Old, New> {
    f: F,
    _types: PhantomData<fn(Old) -> New>,
}

impl<F, Old, New> ValueMigration for Migration<F, Old, New>
where
    F: Fn(Old) -> New + Send + Sync + 'static,
    Old: StateData,
    New: 'static,
{
    fn old_schema(&self) -> u64 {
        Old::FINGERPRINT
    }
    fn old_name(&self) -> &'static str {
        std::any::type_name::<Old>()
    }
    fn to(&self) -> TypeId {
        TypeId::of::<New>()
    }
    fn decode(&self, de: &mut Decoder) -> bincode::Result<Box<dyn Any>> {
        let old = Old::deserialize(de)?;
        Ok(Box::new((self.f)(old)))
    }
}

impl<In, Op, F, Old, New> Operator<In> for MigrateState<Op, F, Old, New>
where
    Op: MigrateFrom<In, Old, Value = New>,
    F: Fn(Old) -> New + Send + Sync + 'static,
    Old: StateData,
    New: 'static,
{
    type Out = Op::Out;
    const ONE_TO_ONE: bool = Op::ONE_TO_ONE;
    const STATE_SCHEMA: u64 = Op::STATE_SCHEMA;
    const MIGRATES_FROM: u64 = Op::MIGRATED_SCHEMA;

    #[inline(always)]
    fn process(&mut self, row: In, ts: Timestamp, out: &mut impl Output<Self::Out>) {
        self.op.process(row, ts, out);
    }
    fn open(&mut self, ctx: &RuntimeContext) -> Result<()> {
        self.op.open(ctx)
    }
    fn on_watermark(
        &mut self,
        watermark: Timestamp,
        out: &mut impl Output<Self::Out>,
    ) -> Result<()> {
        self.op.on_watermark(watermark, out)
    }
    fn on_tick(&mut self, out: &mut impl Output<Self::Out>) -> Result<()> {
        self.op.on_tick(out)
    }
    fn snapshot(&mut self, id: CheckpointId, state: &mut StateWriter) -> Result<Snapshot> {
        self.op.snapshot(id, state)
    }
    fn restore(&mut self, state: &StateReader) -> Result<()> {
        self.op.restore(&state.migrating(self.migration.clone()))
    }
    fn clear_state(&mut self) -> Result<bool> {
        self.op.clear_state()
    }
    fn checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.op.checkpoint_complete(id)
    }
    fn commit_output(&mut self) -> Result<()> {
        self.op.commit_output()
    }
    fn end_of_input(&mut self, out: &mut impl Output<Self::Out>) -> Result<()> {
        self.op.end_of_input(out)
    }
    fn close(&mut self) -> Result<()> {
        self.op.close()
    }
    fn report(&self, node: u32, metrics: &mut TaskMetrics) {
        self.op.report(node, metrics);
    }
}
