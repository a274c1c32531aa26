//! Operator state in checkpoints: what an operator writes at a barrier ([`StateWriter`]), what
//! it reads back when a job restarts from a checkpoint ([`StateReader`]), and the key groups
//! that let keyed state move between parallelisms.
//!
//! An operator's state is a few named *sections*, each one of two kinds:
//! - **keyed** (`keyed`): entries `(key, value)`, split by the key's *key group* (one of
//!   [`KEY_GROUPS`], Flink's max parallelism). A key group belongs to one subtask at any
//!   parallelism ([`subtask_of_group`]), and `key_by` routes rows by the same rule, so a job
//!   restored at another parallelism finds each key's state on the subtask its rows go to.
//! - **list** (`list`): values of the operator instance (a source's positions, a sink's
//!   pending files, a watermark). Restored at the same parallelism, each subtask gets its own
//!   list back; at another, subtask `i` gets the lists of the old subtasks `j` with
//!   `j % parallelism == i` ([`StateReader::list`]), or every list ([`StateReader::union`]).
//!
//! Values are encoded with serde + bincode; each section records its Rust types, and reading
//! it as other types is an error naming the operator and the file, never a silent reset.

pub mod lock;
mod partitions;
mod schema;
mod storage;

pub use partitions::{Adopted, PartitionStore, Released};
pub use schema::{combine, fingerprint, record, variants, NoSchema, SchemaProbe, StateSchema};
pub(crate) use storage::{CheckpointStorage, FileEntry, FinishedTask, Restore};

use crate::hash::stable_hash;
use crate::{Error, Result};
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::hash::Hash;
use std::path::{Path, PathBuf};

/// How many key groups keyed state is split into: the largest parallelism a keyed operator
/// can be restored at (Flink's default max parallelism).
pub const KEY_GROUPS: usize = 128;

/// The key group of a key with [`stable_hash`] `hash`: its top 7 bits.
#[inline(always)]
pub fn key_group(hash: u64) -> usize {
    ((hash as u128 * KEY_GROUPS as u128) >> 64) as usize
}

/// The subtask (of `parallelism`) that owns key group `group`: contiguous ranges, as Flink's.
#[inline(always)]
pub fn subtask_of_group(group: usize, parallelism: usize) -> usize {
    group * parallelism / KEY_GROUPS
}

/// A value kept in operator state: saved by checkpoints, so it must be serializable, and its
/// layout has a fingerprint for `flow.lock` ([`StateSchema`]).
///
/// `Deserialize<'static>` rather than `DeserializeOwned`, so that `&'static str` keys (string
/// literals) qualify: a restored job keeps the checkpoint's bytes for its lifetime and such
/// values borrow from them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is kept in operator state, which checkpoints save, but it cannot be serialized",
    label = "kept in state here",
    note = "derive `serde::Serialize`, `serde::Deserialize` and `flow::StateSchema` for it (`#[derive(Row)]` does all three)"
)]
pub trait StateData: Serialize + Deserialize<'static> + StateSchema + 'static {}
impl<T: Serialize + Deserialize<'static> + StateSchema + 'static> StateData for T {}

/// The one bincode configuration of state values: variable-length integers.
fn options() -> bincode::DefaultOptions {
    bincode::DefaultOptions::new()
}

/// What state values are decoded from.
pub(crate) type Decoder =
    bincode::Deserializer<bincode::de::read::SliceReader<'static>, bincode::DefaultOptions>;

/// Turns values a checkpoint saved as an older type into the type a job keeps now
/// (`.migrate_state(..)`); type-erased, so that the reader stays one type.
pub(crate) trait ValueMigration: Send + Sync {
    /// The old type's layout ([`StateSchema::FINGERPRINT`]).
    fn old_schema(&self) -> u64;
    /// The old type's name, for messages.
    fn old_name(&self) -> &'static str;
    /// The type it makes.
    fn to(&self) -> std::any::TypeId;
    /// Decodes one old value and migrates it: the new value, boxed.
    fn decode(&self, de: &mut Decoder) -> bincode::Result<Box<dyn std::any::Any>>;
}

/// One section of an operator's state, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Section {
    pub(crate) name: String,
    /// The Rust types of its values (`K => V` for keyed sections).
    pub(crate) types: String,
    /// A keyed section's key and value layouts ([`StateSchema::FINGERPRINT`]): a value type
    /// that kept its name but changed its fields is told apart by these, and a migration
    /// (`.migrate_state(..)`) recognises the old value type by its layout. `[0, 0]` for list
    /// sections, checked by their type names only.
    pub(crate) schema: [u64; 2],
    pub(crate) data: SectionData,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum SectionData {
    /// `count` values, encoded one after the other.
    List { count: u64, bytes: Vec<u8> },
    /// Per non-empty key group: the group, its entry count and the `(key, value)` pairs.
    Keyed { groups: Vec<(u16, u64, Vec<u8>)> },
}

/// A section encoded later, on the checkpoint writer's thread, from a copy of the state.
type Deferred = Box<dyn FnOnce() -> Result<Section> + Send>;

/// What an operator instance wrote for one checkpoint.
#[derive(Default)]
pub(crate) struct OperatorState {
    pub(crate) sections: Vec<Section>,
    deferred: Vec<Deferred>,
}

impl std::fmt::Debug for OperatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorState")
            .field("sections", &self.sections)
            .field("deferred", &self.deferred.len())
            .finish()
    }
}

impl OperatorState {
    /// Every section, the deferred ones encoded now.
    pub(crate) fn materialize(mut self) -> Result<Vec<Section>> {
        for encode in self.deferred.drain(..) {
            self.sections.push(encode()?);
        }
        Ok(self.sections)
    }

    pub(crate) fn from_sections(sections: Vec<Section>) -> Self {
        OperatorState {
            sections,
            deferred: Vec::new(),
        }
    }
}

/// Every operator's sections, the deferred ones encoded now: a task's state as it is kept
/// past its checkpoint (a finished task's, a source's final position).
pub(crate) fn materialize_all(
    operators: Vec<(String, OperatorState)>,
) -> crate::Result<Vec<(String, Vec<Section>)>> {
    operators
        .into_iter()
        .map(|(uid, state)| Ok((uid, state.materialize()?)))
        .collect()
}

/// Kept sections as operator states again, to write into one more checkpoint.
pub(crate) fn states_of(operators: &[(String, Vec<Section>)]) -> Vec<(String, OperatorState)> {
    operators
        .iter()
        .map(|(uid, sections)| (uid.clone(), OperatorState::from_sections(sections.clone())))
        .collect()
}

/// Encodes the entries of a keyed section, split by key group.
pub struct KeyedEncoder {
    operator: String,
    groups: Vec<(u64, Vec<u8>)>,
}

impl KeyedEncoder {
    fn new(operator: String) -> Self {
        KeyedEncoder {
            operator,
            groups: vec![(0, Vec::new()); KEY_GROUPS],
        }
    }

    /// Adds the entry `key => value`.
    ///
    /// # Errors
    /// A key or value serde cannot encode.
    #[inline]
    pub fn entry<K: Hash + Serialize + ?Sized, E: Serialize>(
        &mut self,
        key: &K,
        value: E,
    ) -> Result<()> {
        let g = &mut self.groups[key_group(stable_hash(key))];
        g.0 += 1;
        encode(&self.operator, &mut g.1, &(key, value))
    }

    fn finish(self) -> SectionData {
        let groups = self
            .groups
            .into_iter()
            .enumerate()
            .filter(|(_, (count, _))| *count > 0)
            .map(|(g, (count, bytes))| (g as u16, count, bytes))
            .collect();
        SectionData::Keyed { groups }
    }
}

/// Where an operator writes its state at a checkpoint barrier.
///
/// # Examples
/// ```
/// use flow_runtime::snapshot::StateWriter;
/// let mut w = StateWriter::detached();
/// w.list("offsets", &[3u64, 7])?;
/// w.keyed("counts", [(&"a", &1u32), (&"b", &2)])?;
/// assert!(w.wrote());
/// # Ok::<(), flow_runtime::Error>(())
/// ```
#[derive(Debug)]
pub struct StateWriter {
    operator: String,
    state: OperatorState,
    wrote: bool,
    /// Whether a checkpoint without storage must be declined when this was written.
    required: bool,
}

fn encode<T: Serialize + ?Sized>(operator: &str, out: &mut Vec<u8>, value: &T) -> Result<()> {
    options()
        .serialize_into(out, value)
        .map_err(|e| encode_error(operator, std::any::type_name::<T>(), e))
}

#[cold]
#[inline(never)]
fn encode_error(operator: &str, type_name: &str, e: bincode::Error) -> Error {
    Error::State {
        operator: operator.to_string(),
        file: None,
        message: format!("cannot encode a `{type_name}`: {e}"),
    }
}

impl StateWriter {
    pub(crate) fn new(operator: &str) -> Self {
        StateWriter {
            operator: operator.to_string(),
            state: OperatorState::default(),
            wrote: false,
            required: true,
        }
    }

    /// A writer outside a job (tests, examples).
    pub fn detached() -> Self {
        StateWriter::new("detached")
    }

    /// Whether anything was written (an operator without state writes nothing).
    pub fn wrote(&self) -> bool {
        self.wrote
    }

    /// Says that what is written is needed only to restore the job, not to complete the
    /// checkpoint correctly: a source's positions (it also commits them to the outside, a
    /// Kafka group), a sink's pending output (committed when the checkpoint completes).
    /// Without a checkpoint directory it is dropped and the checkpoint still completes, where
    /// other state (keyed state, windows) makes the operator decline it.
    pub fn restore_only(&mut self) {
        self.required = false;
    }

    /// Says that what is written is needed for the checkpoint to be correct after all, undoing
    /// [`restore_only`](Self::restore_only) (which the sink adapter calls before a sink writes):
    /// an exactly-once sink whose pending output would be lost if the checkpoint completed
    /// without saving it. Without a checkpoint directory the checkpoint is then declined.
    pub fn required(&mut self) {
        self.required = true;
    }

    pub(crate) fn into_state(self) -> OperatorState {
        self.state
    }

    /// Writes the list section `name`: the instance's values (a source's positions).
    ///
    /// # Errors
    /// A value serde cannot encode.
    pub fn list<'a, T: Serialize + 'static>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = &'a T>,
    ) -> Result<()> {
        self.wrote = true;
        let mut bytes = Vec::new();
        let mut count = 0;
        for v in values {
            encode(&self.operator, &mut bytes, v)?;
            count += 1;
        }
        self.state.sections.push(Section {
            name: name.to_string(),
            types: std::any::type_name::<T>().to_string(),
            schema: [0, 0],
            data: SectionData::List { count, bytes },
        });
        Ok(())
    }

    /// Writes the keyed section `name`: every key's value, split by key group.
    ///
    /// # Errors
    /// A key or value serde cannot encode.
    pub fn keyed<'a, K, V>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = (&'a K, &'a V)>,
    ) -> Result<()>
    where
        K: Hash + Serialize + StateSchema + 'static,
        V: Serialize + StateSchema + 'static,
    {
        self.keyed_as::<K, V, &V>(name, entries)
    }

    /// Writes the keyed section `name` from entries whose values are encoded as `V` (a tuple
    /// of references to the parts of a value, say): [`StateReader::keyed`] reads them as `V`.
    ///
    /// # Errors
    /// A key or value serde cannot encode.
    pub fn keyed_as<'a, K, V, E>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = (&'a K, E)>,
    ) -> Result<()>
    where
        K: Hash + Serialize + StateSchema + 'static,
        V: StateSchema + 'static,
        E: Serialize,
    {
        self.wrote = true;
        let mut encoder = KeyedEncoder::new(self.operator.clone());
        for (k, v) in entries {
            encoder.entry(k, v)?;
        }
        self.state.sections.push(Section {
            name: name.to_string(),
            types: keyed_types::<K, V>(),
            schema: [K::FINGERPRINT, V::FINGERPRINT],
            data: encoder.finish(),
        });
        Ok(())
    }

    /// Writes the keyed section `name` (read back as keys `K` and values `V`) later, off the
    /// row path: `copy` is a copy of the state taken now, and `encode` adds its entries on the
    /// checkpoint writer's thread. The rows wait only for the copy: worth it where copying is
    /// cheaper than encoding (a window pane's accumulators); a hash map of a million small
    /// values took as long to clone as to encode (BENCHMARKS.md, "1M keys of `#[state]`").
    pub fn keyed_deferred<K: StateSchema + 'static, V: StateSchema + 'static, S: Send + 'static>(
        &mut self,
        name: &str,
        copy: S,
        encode: impl FnOnce(S, &mut KeyedEncoder) -> Result<()> + Send + 'static,
    ) {
        self.wrote = true;
        let name = name.to_string();
        let types = keyed_types::<K, V>();
        let schema = [K::FINGERPRINT, V::FINGERPRINT];
        let operator = self.operator.clone();
        self.state.deferred.push(Box::new(move || {
            let mut encoder = KeyedEncoder::new(operator);
            encode(copy, &mut encoder)?;
            Ok(Section {
                name,
                types,
                schema,
                data: encoder.finish(),
            })
        }));
    }
}

fn keyed_types<K: 'static, V: 'static>() -> String {
    format!(
        "{} => {}",
        std::any::type_name::<K>(),
        std::any::type_name::<V>()
    )
}

/// One old subtask's state of an operator, as read from its file.
#[derive(Debug)]
pub(crate) struct StoredState {
    pub(crate) file: PathBuf,
    pub(crate) subtask: usize,
    pub(crate) sections: Vec<Section>,
}

/// Where a restored operator reads the state its instances wrote at the checkpoint.
#[derive(Debug)]
pub struct StateReader {
    operator: String,
    subtask: usize,
    parallelism: usize,
    /// Every old subtask's state, in subtask order (kept for the process's lifetime: restored
    /// values may borrow from it).
    stored: &'static [StoredState],
    /// How values saved as an older type become the type the job keeps now.
    migration: Option<Migration>,
    /// The key groups whose keyed entries are read (bit `g` for group `g`), instead of the
    /// subtask's: the partitions an instance of a group took over.
    groups: Option<u128>,
}

/// One key group's entries of a keyed section: the file, the count, the bytes, and whether
/// the values are of a migration's old type.
type KeyedPart = (&'static Path, u64, &'static [u8], bool);

/// A [`ValueMigration`] a reader carries.
#[derive(Clone)]
struct Migration(std::sync::Arc<dyn ValueMigration>);

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Migration(from {})", self.0.old_name())
    }
}

impl StateReader {
    pub(crate) fn new(
        operator: &str,
        subtask: usize,
        parallelism: usize,
        stored: &'static [StoredState],
    ) -> Self {
        StateReader {
            operator: operator.to_string(),
            subtask,
            parallelism,
            stored,
            migration: None,
            groups: None,
        }
    }

    /// A reader of the keyed entries in key groups `groups` (bit `g` for group `g`) and of
    /// every list value in `stored`: the state of the partitions an instance of a group takes
    /// over.
    pub(crate) fn of_groups(operator: &str, stored: &'static [StoredState], groups: u128) -> Self {
        StateReader {
            groups: Some(groups),
            ..StateReader::new(operator, 0, 1, stored)
        }
    }

    /// The same state, with keyed values saved as `migration`'s old type read as its new one.
    pub(crate) fn migrating(&self, migration: std::sync::Arc<dyn ValueMigration>) -> Self {
        StateReader {
            migration: Some(Migration(migration)),
            groups: self.groups,
            ..self.as_subtask(self.subtask)
        }
    }

    /// A reader of what `writer` wrote, as subtask `subtask` of `parallelism` would read it
    /// back (tests of an operator's or a connector's restore).
    pub fn detached(writer: StateWriter, subtask: usize, parallelism: usize) -> Self {
        StateReader::detached_all(vec![writer], subtask, parallelism)
    }

    /// The same checkpoint as subtask `subtask` reads it (tests of several subtasks' restore).
    pub fn as_subtask(&self, subtask: usize) -> Self {
        StateReader::new(&self.operator, subtask, self.parallelism, self.stored)
    }

    /// A reader of what `writers` wrote as old subtasks `0..writers.len()`, as subtask
    /// `subtask` of `parallelism` would read it back (tests of a restore at another
    /// parallelism).
    pub fn detached_all(writers: Vec<StateWriter>, subtask: usize, parallelism: usize) -> Self {
        let stored: Vec<StoredState> = writers
            .into_iter()
            .enumerate()
            .map(|(old, writer)| StoredState {
                file: PathBuf::from(format!("detached.{old}")),
                subtask: old,
                sections: writer
                    .into_state()
                    .materialize()
                    .expect("a detached writer's state encodes"),
            })
            .collect();
        StateReader::new("detached", subtask, parallelism, stored.leak())
    }

    /// The sections named `name` of every old subtask whose subtask passes `mine`, with the
    /// file each came from and whether its values are read through the migration (saved as
    /// its old type); checks their types: a list section's by name, a keyed one's by layout
    /// (`schema`, so a renamed type with the same fields still reads). Not generic: compiled
    /// once.
    fn sections(
        &self,
        name: &str,
        types: &str,
        schema: [u64; 2],
        migration: Option<&dyn ValueMigration>,
        mine: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<(&'static Path, &'static SectionData, bool)>> {
        let mut out = Vec::new();
        for s in self.stored {
            let Some(section) = s.sections.iter().find(|sec| sec.name == name) else {
                continue;
            };
            let fits = if schema == [0, 0] || section.schema == [0, 0] {
                section.types == types
            } else {
                section.schema == schema
            };
            let migrated = !fits
                && schema != [0, 0]
                && migration.is_some_and(|m| section.schema == [schema[0], m.old_schema()]);
            if !fits && !migrated {
                return Err(self.type_error(&s.file, name, section, types, migration));
            }
            if mine(s.subtask) {
                out.push((s.file.as_path(), &section.data, migrated));
            }
        }
        Ok(out)
    }

    #[cold]
    fn type_error(
        &self,
        file: &Path,
        name: &str,
        section: &Section,
        types: &str,
        migration: Option<&dyn ValueMigration>,
    ) -> Error {
        let saved = if section.types == types {
            format!(
                "was saved as `{types}` with other fields (the type changed since the checkpoint)"
            )
        } else {
            format!(
                "was saved as `{}`, and this job keeps `{types}` there",
                section.types
            )
        };
        let migration = match migration {
            Some(m) => format!(
                "; its `.migrate_state(..)` reads `{}`, which does not have the saved layout either",
                m.old_name()
            ),
            None => String::new(),
        };
        Error::State {
            operator: self.operator.clone(),
            file: Some(file.to_path_buf()),
            message: format!(
                "its state `{name}` {saved}{migration}: give the operator a new uid to start it \
                 with empty state, or (an operator keeping one value per key) read the old values \
                 with `.migrate_state(|old: OldType| ..)`"
            ),
        }
    }

    /// The encoded values of list section `name` of the old subtasks that pass `mine`: per
    /// file, the count and the bytes.
    fn list_bytes(
        &self,
        name: &str,
        types: &str,
        mine: &dyn Fn(usize) -> bool,
    ) -> Result<Vec<(&'static Path, u64, &'static [u8])>> {
        let mut out = Vec::new();
        for (file, data, _) in self.sections(name, types, [0, 0], None, mine)? {
            match data {
                SectionData::List { count, bytes } => out.push((file, *count, &bytes[..])),
                SectionData::Keyed { .. } => {
                    return Err(self.kind_error(file, name, "keyed", "list"))
                }
            }
        }
        Ok(out)
    }

    /// The encoded entries of keyed section `name` in this subtask's key groups: per group,
    /// the file, the count, the bytes and whether its values are of the migration's old type.
    fn keyed_bytes(
        &self,
        name: &str,
        types: &str,
        schema: [u64; 2],
        migration: Option<&dyn ValueMigration>,
    ) -> Result<Vec<KeyedPart>> {
        let mut out = Vec::new();
        for (file, data, migrated) in self.sections(name, types, schema, migration, &|_| true)? {
            let SectionData::Keyed { groups } = data else {
                return Err(self.kind_error(file, name, "list", "keyed"));
            };
            for (group, count, bytes) in groups {
                let mine = match self.groups {
                    Some(groups) => groups >> *group & 1 == 1,
                    None => subtask_of_group(*group as usize, self.parallelism) == self.subtask,
                };
                if mine {
                    out.push((file, *count, &bytes[..], migrated));
                }
            }
        }
        Ok(out)
    }

    /// This subtask's share of list section `name`: the values the old subtasks `j` with
    /// `j % parallelism == subtask` wrote (its own at the same parallelism), in order.
    ///
    /// # Errors
    /// The section was saved with other types, or its bytes do not decode.
    pub fn list<T: Deserialize<'static> + 'static>(&self, name: &str) -> Result<Vec<T>> {
        let (p, s) = (self.parallelism, self.subtask);
        self.decode_values(self.list_bytes(name, std::any::type_name::<T>(), &|j| j % p == s)?)
    }

    /// Every old subtask's values of list section `name` (Flink's union redistribution: a
    /// watermark, broadcast state).
    ///
    /// # Errors
    /// As [`StateReader::list`].
    pub fn union<T: Deserialize<'static> + 'static>(&self, name: &str) -> Result<Vec<T>> {
        self.decode_values(self.list_bytes(name, std::any::type_name::<T>(), &|_| true)?)
    }

    fn decode_values<T: Deserialize<'static> + 'static>(
        &self,
        parts: Vec<(&'static Path, u64, &'static [u8])>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for (file, count, bytes) in parts {
            let mut de = bincode::Deserializer::from_slice(bytes, options());
            for _ in 0..count {
                out.push(decode(&self.operator, file, &mut de)?);
            }
        }
        Ok(out)
    }

    /// Calls `f` with every entry of keyed section `name` whose key belongs to this subtask.
    /// Values saved as an older type are migrated when the operator has a
    /// `.migrate_state(..)` from that type to `V`.
    ///
    /// # Errors
    /// As [`StateReader::list`].
    pub fn keyed<K: StateData, V: StateData>(
        &self,
        name: &str,
        mut f: impl FnMut(K, V),
    ) -> Result<()> {
        let migration = self
            .migration
            .as_ref()
            .map(|m| &*m.0)
            .filter(|m| m.to() == std::any::TypeId::of::<V>());
        let schema = [K::FINGERPRINT, V::FINGERPRINT];
        for (file, count, bytes, migrated) in
            self.keyed_bytes(name, &keyed_types::<K, V>(), schema, migration)?
        {
            let mut de = bincode::Deserializer::from_slice(bytes, options());
            for _ in 0..count {
                if let (true, Some(m)) = (migrated, migration) {
                    let k: K = decode(&self.operator, file, &mut de)?;
                    let v = m
                        .decode(&mut de)
                        .map_err(|e| decode_error(&self.operator, file, m.old_name(), e))?;
                    let v = v
                        .downcast::<V>()
                        .expect("a migration makes the type it was chosen for");
                    f(k, *v);
                } else {
                    let (k, v): (K, V) = decode(&self.operator, file, &mut de)?;
                    f(k, v);
                }
            }
        }
        Ok(())
    }

    fn kind_error(&self, file: &std::path::Path, name: &str, was: &str, is: &str) -> Error {
        Error::State {
            operator: self.operator.clone(),
            file: Some(file.to_path_buf()),
            message: format!("its state `{name}` was saved as {was} state and is read as {is}"),
        }
    }
}

fn decode<'de, T: Deserialize<'de>, O: Options>(
    operator: &str,
    file: &std::path::Path,
    de: &mut bincode::Deserializer<bincode::de::read::SliceReader<'de>, O>,
) -> Result<T> {
    T::deserialize(de).map_err(|e| decode_error(operator, file, std::any::type_name::<T>(), e))
}

#[cold]
#[inline(never)]
fn decode_error(operator: &str, file: &Path, type_name: &str, e: bincode::Error) -> Error {
    Error::State {
        operator: operator.to_string(),
        file: Some(file.to_path_buf()),
        message: format!(
            "cannot decode a `{type_name}`: {e} (the file is corrupt or was written by another version)"
        ),
    }
}

/// What the operators of one task wrote at a barrier (the job passes it down the chain).
#[derive(Debug)]
pub struct TaskState {
    /// Whether a checkpoint directory is configured: without one, an operator that keeps
    /// state declines (its state would be saved nowhere).
    stored: bool,
    plan: Option<&'static crate::plan::Plan>,
    graph: usize,
    /// The state of a task that ended, taken after its end of input: exchanges send no
    /// barrier (their channels are closed).
    pub(crate) last: bool,
    pub(crate) operators: Vec<(String, OperatorState)>,
    /// How long the task's chain took for the barrier (the rows waited that long).
    pub(crate) sync: std::time::Duration,
    /// How long its input gate held inputs back to align the barrier.
    pub(crate) alignment: std::time::Duration,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState::new(false, None, 0)
    }
}

impl TaskState {
    pub(crate) fn new(
        stored: bool,
        plan: Option<&'static crate::plan::Plan>,
        graph: usize,
    ) -> Self {
        TaskState {
            stored,
            plan,
            graph,
            last: false,
            operators: Vec::new(),
            sync: std::time::Duration::ZERO,
            alignment: std::time::Duration::ZERO,
        }
    }

    /// Adds what plan node `node` (named `name`) wrote; an operator that wrote state declines
    /// when there is nowhere to save it.
    pub(crate) fn add(
        &mut self,
        node: u32,
        name: &'static str,
        writer: StateWriter,
    ) -> crate::chain::Snapshot {
        if !writer.wrote() {
            return crate::chain::Snapshot::Taken;
        }
        if !self.stored {
            return if writer.required {
                crate::chain::Snapshot::Declined(name)
            } else {
                crate::chain::Snapshot::Taken
            };
        }
        let uid = match self.plan {
            Some(plan) => plan.uid(self.graph, node),
            None => format!("{name}-{node}"),
        };
        self.operators.push((uid, writer.into_state()));
        crate::chain::Snapshot::Taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::key_to_subtask;

    fn reader(writers: Vec<StateWriter>, subtask: usize, parallelism: usize) -> StateReader {
        let stored: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(j, w)| StoredState {
                file: PathBuf::from(format!("op.{j}.state")),
                subtask: j,
                sections: w.into_state().materialize().unwrap(),
            })
            .collect();
        StateReader::new("op", subtask, parallelism, stored.leak())
    }

    #[test]
    fn routing_follows_key_groups() {
        for p in 1..=8 {
            for k in 0..1000i64 {
                let g = key_group(stable_hash(&k));
                assert_eq!(key_to_subtask(&k, p), subtask_of_group(g, p));
            }
        }
    }

    #[test]
    fn keyed_state_moves_with_its_keys_between_parallelisms() {
        // Taken at parallelism 2: each subtask holds the keys routed to it.
        let mut writers = Vec::new();
        for s in 0..2 {
            let entries: Vec<(i64, i64)> = (0..100i64)
                .filter(|k| key_to_subtask(k, 2) == s)
                .map(|k| (k, k * 10))
                .collect();
            let mut w = StateWriter::detached();
            w.keyed("sums", entries.iter().map(|(k, v)| (k, v)))
                .unwrap();
            writers.push(w);
        }
        let states: Vec<_> = writers
            .into_iter()
            .map(|w| OperatorState::from_sections(w.into_state().materialize().unwrap()))
            .collect();
        for p in [1, 3, 4] {
            let mut seen = 0;
            for s in 0..p {
                let stored: Vec<_> = states
                    .iter()
                    .enumerate()
                    .map(|(j, st)| StoredState {
                        file: PathBuf::from(format!("op.{j}.state")),
                        subtask: j,
                        sections: st.sections.clone(),
                    })
                    .collect();
                let r = StateReader::new("op", s, p, stored.leak());
                r.keyed("sums", |k: i64, v: i64| {
                    assert_eq!(key_to_subtask(&k, p), s, "key {k} restored on its subtask");
                    assert_eq!(v, k * 10);
                    seen += 1;
                })
                .unwrap();
            }
            assert_eq!(seen, 100, "every key restored once at parallelism {p}");
        }
    }

    #[test]
    fn lists_go_back_to_their_subtask_or_fold_when_rescaled() {
        let writers = (0..4u64)
            .map(|j| {
                let mut w = StateWriter::detached();
                w.list("pos", &[j]).unwrap();
                w
            })
            .collect::<Vec<_>>();
        let r = reader(writers, 1, 2);
        assert_eq!(r.list::<u64>("pos").unwrap(), [1, 3]);
        assert_eq!(r.union::<u64>("pos").unwrap(), [0, 1, 2, 3]);
        assert!(r.list::<u64>("absent").unwrap().is_empty());
    }

    #[test]
    fn another_type_is_an_error_naming_the_file() {
        let mut w = StateWriter::detached();
        w.list("pos", &[1u64]).unwrap();
        let r = reader(vec![w], 0, 1);
        let e = r.list::<String>("pos").unwrap_err().to_string();
        assert!(e.contains("op.0.state") && e.contains("u64"), "{e}");
    }

    #[test]
    fn a_keyed_value_of_the_same_name_and_other_fields_is_an_error() {
        // A struct that kept its name but gained a field: its type name matches, its layout
        // (recorded with the section) does not.
        let mut w = StateWriter::detached();
        w.keyed("state", [(&1i64, &(2i64, 3i64))]).unwrap();
        let mut sections = w.into_state().materialize().unwrap();
        sections[0].schema[1] ^= 1;
        let stored = vec![StoredState {
            file: PathBuf::from("op.0.state"),
            subtask: 0,
            sections,
        }];
        let r = StateReader::new("op", 0, 1, stored.leak());
        let e = r.keyed::<i64, (i64, i64)>("state", |_, _| {}).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("with other fields") && e.contains("migrate_state"),
            "{e}"
        );
    }

    #[test]
    fn a_keyed_value_of_another_name_and_the_same_fields_reads() {
        // A renamed type with the same fields: same layout, read as it is.
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Pair(i64, i64);
        impl StateSchema for Pair {
            const FINGERPRINT: u64 = <(i64, i64)>::FINGERPRINT;
        }
        let mut w = StateWriter::detached();
        w.keyed("state", [(&1i64, &(2i64, 3i64))]).unwrap();
        let mut got = Vec::new();
        reader(vec![w], 0, 1)
            .keyed::<i64, Pair>("state", |k, v| got.push((k, v.0, v.1)))
            .unwrap();
        assert_eq!(got, [(1, 2, 3)]);
    }
}
