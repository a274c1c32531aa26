//! Keyed state: the values a function keeps per key (`#[state]`), scoped to the current key.
//!
//! The operator owns one map from key to the function's generated state struct (all of its
//! `#[state]` fields), looks it up once per row, and hands the function `&mut` to the fields.

mod backend;
#[cfg(feature = "disk")]
mod cache;
#[cfg(feature = "disk")]
mod disk;
pub(crate) mod keyed;
#[cfg(not(feature = "disk"))]
mod no_disk;
#[cfg(feature = "disk")]
mod pane_store;
pub(crate) mod panes;
pub(crate) mod timers;

pub use backend::{StateBackendConfig, StateBackendKind, DEFAULT_STATE_CACHE_MB};
#[cfg(feature = "disk")]
use cache::{Cached, StoreView};
#[cfg(feature = "disk")]
pub(crate) use disk::DiskBackend;
pub use keyed::{KeyedSnapshot, KeyedState, Layer};
#[cfg(not(feature = "disk"))]
pub(crate) use no_disk::DiskBackend;
#[cfg(not(feature = "disk"))]
use no_disk::{Cached, PaneStore, PaneStoreView, StoreView};
#[cfg(feature = "disk")]
use pane_store::{PaneStore, PaneStoreView};

use crate::hash::FlowHashMap;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

impl<T: crate::snapshot::StateSchema> crate::snapshot::StateSchema for ValueState<T> {
    const FINGERPRINT: u64 =
        crate::snapshot::combine(crate::snapshot::fingerprint("option"), T::FINGERPRINT);
}

impl<T: crate::snapshot::StateSchema> crate::snapshot::StateSchema for ListState<T> {
    const FINGERPRINT: u64 =
        crate::snapshot::combine(crate::snapshot::fingerprint("seq"), T::FINGERPRINT);
}

impl<K: crate::snapshot::StateSchema, V: crate::snapshot::StateSchema> crate::snapshot::StateSchema
    for MapState<K, V>
{
    const FINGERPRINT: u64 = crate::snapshot::combine(
        crate::snapshot::combine(crate::snapshot::fingerprint("map"), K::FINGERPRINT),
        V::FINGERPRINT,
    );
}

/// One value per key (Flink's `ValueState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<T> {
    value: Option<T>,
}

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        ValueState { value: None }
    }
}

impl<T> ValueState<T> {
    /// The current key's value, if one was set.
    ///
    /// # Examples
    /// ```
    /// use flow_runtime::state::ValueState;
    /// let mut count = ValueState::<u32>::default();
    /// assert_eq!(count.value(), None);
    /// count.update(1);
    /// assert_eq!(count.value(), Some(1));
    /// ```
    #[inline]
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        self.value.clone()
    }
    /// A reference to the current key's value.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
    /// A mutable reference to the value, set to `T::default()` first if absent.
    #[inline]
    pub fn get_mut_or_default(&mut self) -> &mut T
    where
        T: Default,
    {
        self.value.get_or_insert_with(T::default)
    }
    /// Sets the current key's value.
    #[inline]
    pub fn update(&mut self, value: T) {
        self.value = Some(value);
    }
    /// Removes the current key's value.
    #[inline]
    pub fn clear(&mut self) {
        self.value = None;
    }
    /// Takes the value out, leaving the state empty.
    #[inline]
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }
}

/// A list of values per key (Flink's `ListState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState<T> {
    items: Vec<T>,
}

impl<T> Default for ListState<T> {
    fn default() -> Self {
        ListState { items: Vec::new() }
    }
}

impl<T> ListState<T> {
    /// Appends a value.
    pub fn add(&mut self, value: T) {
        self.items.push(value);
    }
    /// Appends several values.
    pub fn add_all(&mut self, values: impl IntoIterator<Item = T>) {
        self.items.extend(values);
    }
    /// The values, oldest first.
    pub fn get(&self) -> &[T] {
        &self.items
    }
    /// Replaces the values.
    pub fn update(&mut self, values: Vec<T>) {
        self.items = values;
    }
    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }
    /// How many values the current key has.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether the current key has no values.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A map per key (Flink's `MapState`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, V: Serialize",
    deserialize = "K: Deserialize<'de> + Hash + Eq, V: Deserialize<'de>"
))]
pub struct MapState<K, V> {
    map: FlowHashMap<K, V>,
}

impl<K, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState {
            map: FlowHashMap::default(),
        }
    }
}

impl<K: Hash + Eq, V> MapState<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
    /// Sets the value under `key`, returning the old one.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.map.insert(key, value)
    }
    /// Removes the value under `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.map.remove(key)
    }
    /// Whether `key` has a value.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter()
    }
    /// A mutable reference to the value under `key`, inserted with `V::default()` if absent.
    pub fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        self.map.entry(key).or_default()
    }
    /// Removes every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }
    /// How many entries the current key's map has.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether the current key's map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A value per key that added values are folded into with the reduce function `F` (Flink's
/// `ReducingState`): a `#[reduce_function]` fn, or a `Default` type implementing
/// [`ReduceFunction`](crate::function::ReduceFunction). Saved as its value alone.
///
/// # Examples
/// ```
/// use flow_runtime::state::ReducingState;
/// #[derive(Clone, Default)]
/// struct Max;
/// impl flow_runtime::function::ReduceFunction<i64> for Max {
///     type Out = i64;
///     fn reduce(&mut self, a: i64, b: i64) -> i64 { a.max(b) }
/// }
/// let mut max = ReducingState::<i64, Max>::default();
/// assert_eq!(max.get(), None);
/// max.add(3);
/// max.add(7);
/// max.add(5);
/// assert_eq!(max.get(), Some(&7));
/// ```
#[derive(Clone, Debug)]
pub struct ReducingState<T, F> {
    value: Option<T>,
    f: F,
}

impl<T, F: Default> Default for ReducingState<T, F> {
    fn default() -> Self {
        ReducingState {
            value: None,
            f: F::default(),
        }
    }
}

impl<T, F: crate::function::ReduceFunction<T>> ReducingState<T, F> {
    /// Folds `value` into the key's value (the first one becomes it).
    pub fn add(&mut self, value: T) {
        self.value = Some(match self.value.take() {
            Some(acc) => self.f.reduce(acc, value),
            None => value,
        });
    }
}

impl<T, F> ReducingState<T, F> {
    /// The key's folded value, if any value was added.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
    /// Removes the key's value.
    pub fn clear(&mut self) {
        self.value = None;
    }
}

impl<T: Serialize, F> Serialize for ReducingState<T, F> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, F: Default> Deserialize<'de> for ReducingState<T, F> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ReducingState {
            value: Option::deserialize(d)?,
            f: F::default(),
        })
    }
}

impl<T: crate::snapshot::StateSchema, F> crate::snapshot::StateSchema for ReducingState<T, F> {
    const FINGERPRINT: u64 =
        crate::snapshot::combine(crate::snapshot::fingerprint("reducing"), T::FINGERPRINT);
}

/// An accumulator per key that added values go into with the aggregate function `A`, read as
/// its result (Flink's `AggregatingState`): `A` is a `Default` type implementing
/// [`AggregateFunction`](crate::window::AggregateFunction). Saved as its accumulator.
pub struct AggregatingState<In, A: crate::window::AggregateFunction<In>> {
    acc: Option<A::Acc>,
    f: A,
}

impl<In, A: crate::window::AggregateFunction<In> + Default> Default for AggregatingState<In, A> {
    fn default() -> Self {
        AggregatingState {
            acc: None,
            f: A::default(),
        }
    }
}

impl<In, A: crate::window::AggregateFunction<In>> Clone for AggregatingState<In, A> {
    fn clone(&self) -> Self {
        AggregatingState {
            acc: self.acc.clone(),
            f: self.f.clone(),
        }
    }
}

impl<In, A: crate::window::AggregateFunction<In>> std::fmt::Debug for AggregatingState<In, A>
where
    A::Acc: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregatingState")
            .field("acc", &self.acc)
            .finish()
    }
}

impl<In, A: crate::window::AggregateFunction<In>> AggregatingState<In, A> {
    /// Adds `value` to the key's accumulator (created empty first).
    pub fn add(&mut self, value: In) {
        let f = &mut self.f;
        let acc = self.acc.get_or_insert_with(|| f.create_accumulator());
        self.f.add(value, acc);
    }
    /// The result of the key's accumulator, if any value was added.
    pub fn get(&mut self) -> Option<A::Out> {
        let acc = self.acc.as_ref()?;
        Some(self.f.get_result(acc))
    }
    /// Removes the key's accumulator.
    pub fn clear(&mut self) {
        self.acc = None;
    }
}

impl<In, A: crate::window::AggregateFunction<In>> Serialize for AggregatingState<In, A>
where
    A::Acc: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.acc.serialize(s)
    }
}

impl<'de, In, A: crate::window::AggregateFunction<In> + Default> Deserialize<'de>
    for AggregatingState<In, A>
where
    A::Acc: Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AggregatingState {
            acc: Option::deserialize(d)?,
            f: A::default(),
        })
    }
}

impl<In, A: crate::window::AggregateFunction<In>> crate::snapshot::StateSchema
    for AggregatingState<In, A>
where
    A::Acc: crate::snapshot::StateSchema,
{
    const FINGERPRINT: u64 = crate::snapshot::combine(
        crate::snapshot::fingerprint("aggregating"),
        <A::Acc as crate::snapshot::StateSchema>::FINGERPRINT,
    );
}

/// The per-key struct of a function's `#[state]` fields (generated by the function macros
/// and `#[derive(KeyedState)]`; `()` for none): its state fields with a time to live expire
/// before each call.
pub trait StateFields: Default + Clone + Send + Sync + 'static {
    /// Whether a field has a time to live ([`Ttl`]): only then is the clock read per row.
    const TTL: bool = false;
    /// Empties the fields whose time to live passed by `now` (processing time, ms since the
    /// epoch); `now` is the time of the call that follows.
    #[inline(always)]
    fn expire(&mut self, _now: crate::time::Timestamp) {}
}

impl StateFields for () {}

/// No write yet: a [`Ttl`] state that holds nothing.
const NEVER: crate::time::Timestamp = crate::time::Timestamp::MIN;

/// Keyed state `S` with a time to live of `MILLIS` milliseconds of processing time (Flink's
/// `StateTtlConfig`): a key's value that was not written (with [`OnReadAndWrite`]: not
/// accessed) for that long is gone, as if never set, the next time the key is seen, and is
/// left out of checkpoints. Reads go through `Deref`, writes (`&mut` methods) through
/// `DerefMut`: `#[state] seen: &mut Ttl<ValueState<u32>, 60_000>` is used as the
/// `ValueState` it holds. `S` is one of Flink's state kinds ([`Expirable`]).
///
/// Expired state is dropped when its key is next seen and when a checkpoint is written; the
/// state of a key never seen again keeps its memory until the job restarts from a checkpoint.
pub struct Ttl<S, const MILLIS: u64, U = OnCreateAndWrite> {
    state: S,
    /// When the state was last written (or accessed, with [`OnReadAndWrite`]); [`NEVER`].
    written: crate::time::Timestamp,
    /// The time of the current call.
    now: crate::time::Timestamp,
    update: std::marker::PhantomData<fn() -> U>,
}

/// [`Ttl`]'s default: the time to live restarts when the state is written (Flink's
/// `UpdateType.OnCreateAndWrite`).
#[derive(Debug)]
pub enum OnCreateAndWrite {}

/// The time to live restarts whenever the function reads or writes the state (Flink's
/// `UpdateType.OnReadAndWrite`).
#[derive(Debug)]
pub enum OnReadAndWrite {}

/// When a [`Ttl`]'s time to live restarts: [`OnCreateAndWrite`] or [`OnReadAndWrite`].
pub trait UpdateType: 'static {
    /// Whether an access without a write restarts it.
    const ON_READ: bool;
}

impl UpdateType for OnCreateAndWrite {
    const ON_READ: bool = false;
}

impl UpdateType for OnReadAndWrite {
    const ON_READ: bool = true;
}

/// The state kinds that can have a time to live: Flink's (`ValueState`, `ListState`,
/// `MapState`, `ReducingState`, `AggregatingState`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot have a time to live",
    label = "not one of Flink's state kinds",
    note = "`Ttl<S, MILLIS>` holds a `ValueState`, `ListState`, `MapState`, `ReducingState` or `AggregatingState`"
)]
pub trait Expirable: Default {}

impl<T> Expirable for ValueState<T> {}
impl<T> Expirable for ListState<T> {}
impl<K, V> Expirable for MapState<K, V> {}
impl<T, F: Default> Expirable for ReducingState<T, F> {}
impl<In, A: crate::window::AggregateFunction<In> + Default> Expirable for AggregatingState<In, A> {}

impl<S: Default, const MILLIS: u64, U> Default for Ttl<S, MILLIS, U> {
    fn default() -> Self {
        Ttl {
            state: S::default(),
            written: NEVER,
            now: NEVER,
            update: std::marker::PhantomData,
        }
    }
}

impl<S: Clone, const MILLIS: u64, U> Clone for Ttl<S, MILLIS, U> {
    fn clone(&self) -> Self {
        Ttl {
            state: self.state.clone(),
            written: self.written,
            now: self.now,
            update: std::marker::PhantomData,
        }
    }
}

impl<S: std::fmt::Debug, const MILLIS: u64, U> std::fmt::Debug for Ttl<S, MILLIS, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ttl")
            .field("state", &self.state)
            .field("written", &self.written)
            .finish()
    }
}

impl<S, const MILLIS: u64, U> Ttl<S, MILLIS, U> {
    /// Whether the state written at `written` is gone by `now`.
    fn expired(written: crate::time::Timestamp, now: crate::time::Timestamp) -> bool {
        written != NEVER && now.saturating_sub(written) >= MILLIS as i64
    }
}

impl<S: Expirable, const MILLIS: u64, U: UpdateType> Ttl<S, MILLIS, U> {
    /// Empties the state if its time to live passed by `now`, the time of the call that
    /// follows (what the operator calls before each call of the function).
    #[inline]
    pub fn expire(&mut self, now: crate::time::Timestamp) {
        self.now = now;
        if Self::expired(self.written, now) {
            self.state = S::default();
            self.written = NEVER;
        } else if U::ON_READ && self.written != NEVER {
            self.written = now;
        }
    }
}

impl<S, const MILLIS: u64, U> std::ops::Deref for Ttl<S, MILLIS, U> {
    type Target = S;
    #[inline(always)]
    fn deref(&self) -> &S {
        &self.state
    }
}

impl<S, const MILLIS: u64, U> std::ops::DerefMut for Ttl<S, MILLIS, U> {
    /// A write: the time to live restarts.
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut S {
        self.written = self.now;
        &mut self.state
    }
}

/// Saved as (last write, state); a state already expired when the checkpoint is written is
/// saved empty (Flink's cleanup in full snapshots).
impl<S: Serialize + Default, const MILLIS: u64, U> Serialize for Ttl<S, MILLIS, U> {
    fn serialize<Z: serde::Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        if Self::expired(self.written, crate::time::now_millis()) {
            (NEVER, &S::default()).serialize(s)
        } else {
            (self.written, &self.state).serialize(s)
        }
    }
}

impl<'de, S: Deserialize<'de>, const MILLIS: u64, U> Deserialize<'de> for Ttl<S, MILLIS, U> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (written, state) = <(crate::time::Timestamp, S)>::deserialize(d)?;
        Ok(Ttl {
            state,
            written,
            now: NEVER,
            update: std::marker::PhantomData,
        })
    }
}

impl<S: crate::snapshot::StateSchema, const MILLIS: u64, U> crate::snapshot::StateSchema
    for Ttl<S, MILLIS, U>
{
    /// The time to live itself is not part of the schema: changing it keeps the state.
    const FINGERPRINT: u64 =
        crate::snapshot::combine(crate::snapshot::fingerprint("ttl"), S::FINGERPRINT);
}

/// Expires a `#[state]` field with a time to live (the generated [`StateFields::expire`]
/// calls it; a state kind that cannot expire is reported here).
#[doc(hidden)]
#[inline(always)]
pub fn expire_ttl<S: Expirable, const MILLIS: u64, U: UpdateType>(
    state: &mut Ttl<S, MILLIS, U>,
    now: crate::time::Timestamp,
) {
    state.expire(now);
}

/// Implemented by `#[derive(KeyedState)]`: moves a function struct's `#[state]` fields in and
/// out of the per-key state struct around each call.
///
/// The swap is a few word moves per field, no allocation, so `self.count.value()` in an
/// impl-block function reads the current key's state.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not declare its keyed state",
    label = "impl-block functions need their struct to derive `KeyedState`",
    note = "add `#[derive(KeyedState)]` to the struct (with `#[state]` on its state fields, or none)"
)]
pub trait FunctionState {
    /// The per-key struct holding every `#[state]` field.
    type State: StateFields;
    /// [`HasState`] or [`NoState`]: whether the struct has any `#[state]` field.
    type Kind;
    /// Swaps the struct's state fields with `state`'s.
    fn swap_state(&mut self, state: &mut Self::State);
}

/// [`FunctionState::Kind`] of a function with `#[state]` fields.
pub enum HasState {}
/// [`FunctionState::Kind`] of a function without `#[state]` fields.
pub enum NoState {}

/// Holds for an impl-block function without keyed state (paired with the row type so that the
/// bound is checked where the function is used, not where it is declared).
#[diagnostic::on_unimplemented(
    message = "this function keeps keyed state (`#[state]`), so it needs a keyed stream",
    label = "used on a stream that is not keyed",
    note = "add `key_by(..)` before this operator"
)]
pub trait Stateless {}
impl<F: FunctionState<Kind = NoState>, T> Stateless for (F, T) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Sum;
    impl crate::function::ReduceFunction<u64> for Sum {
        type Out = u64;
        fn reduce(&mut self, a: u64, b: u64) -> u64 {
            a + b
        }
    }

    #[derive(Clone, Default)]
    struct Count;
    impl crate::window::AggregateFunction<&'static str> for Count {
        type Acc = u32;
        type Out = String;
        fn create_accumulator(&mut self) -> u32 {
            0
        }
        fn add(&mut self, _: &'static str, acc: &mut u32) {
            *acc += 1;
        }
        fn get_result(&mut self, acc: &u32) -> String {
            format!("{acc} rows")
        }
        fn merge(&mut self, a: u32, b: u32) -> u32 {
            a + b
        }
    }

    #[test]
    fn reducing_and_aggregating_state_save_their_value_alone() {
        use bincode::Options;
        let mut sum = ReducingState::<u64, Sum>::default();
        sum.add(2);
        sum.add(40);
        let mut count = AggregatingState::<&'static str, Count>::default();
        assert_eq!(count.get(), None);
        count.add("a");
        count.add("b");
        let o = bincode::DefaultOptions::new();
        // As a `ValueState` of the value (the accumulator): `Option<u64>`, `Option<u32>`.
        assert_eq!(
            o.serialize(&sum).unwrap(),
            o.serialize(&Some(42u64)).unwrap()
        );
        assert_eq!(
            o.serialize(&count).unwrap(),
            o.serialize(&Some(2u32)).unwrap()
        );
        let back: ReducingState<u64, Sum> = o.deserialize(&o.serialize(&sum).unwrap()).unwrap();
        assert_eq!(back.get(), Some(&42));
        let mut back: AggregatingState<&'static str, Count> =
            o.deserialize(&o.serialize(&count).unwrap()).unwrap();
        assert_eq!(back.get().as_deref(), Some("2 rows"));
        back.clear();
        assert_eq!(back.get(), None);
    }

    #[test]
    fn ttl_state_expires_and_is_left_out_of_checkpoints() {
        use bincode::Options;
        let o = bincode::DefaultOptions::new();
        let mut seen = Ttl::<ValueState<u32>, 1000>::default();
        seen.expire(10_000);
        seen.update(7); // written at 10 000
        seen.expire(10_999);
        assert_eq!(seen.value(), Some(7), "999 ms later: alive");
        seen.expire(11_000);
        assert_eq!(seen.value(), None, "1 s after the write: gone");
        // Reads do not restart the time to live by default; with OnReadAndWrite they do.
        let mut read = Ttl::<ValueState<u32>, 1000, OnReadAndWrite>::default();
        read.expire(0);
        read.update(1);
        read.expire(900);
        assert_eq!(read.value(), Some(1));
        read.expire(1800);
        assert_eq!(read.value(), Some(1), "read at 900: alive until 1900");
        // A checkpoint saves a live state with its write time, an expired one empty.
        let now = crate::time::now_millis();
        let mut live = Ttl::<ValueState<u32>, 60_000>::default();
        live.expire(now);
        live.update(3);
        let back: Ttl<ValueState<u32>, 60_000> =
            o.deserialize(&o.serialize(&live).unwrap()).unwrap();
        assert_eq!(back.value(), Some(3));
        let mut old = Ttl::<ValueState<u32>, 60_000>::default();
        old.expire(now - 120_000);
        old.update(3);
        let back: Ttl<ValueState<u32>, 60_000> =
            o.deserialize(&o.serialize(&old).unwrap()).unwrap();
        assert_eq!(back.value(), None);
    }
}
