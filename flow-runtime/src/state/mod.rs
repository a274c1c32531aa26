//! Keyed state: the values a function keeps per key (`#[state]`), scoped to the current key.
//!
//! The operator owns one map from key to the function's generated state struct (all of its
//! `#[state]` fields), looks it up once per row, and hands the function `&mut` to the fields.

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

/// The per-key state of one keyed operator instance.
#[derive(Clone)]
pub struct KeyedState<K, S> {
    map: FlowHashMap<K, S>,
}

impl<K, S> Default for KeyedState<K, S> {
    fn default() -> Self {
        KeyedState {
            map: FlowHashMap::default(),
        }
    }
}

impl<K: Hash + Eq, S> KeyedState<K, S> {
    /// The state of `key`, if it has any.
    #[inline(always)]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut S> {
        self.map.get_mut(key)
    }
    /// Sets the state of `key`.
    #[inline]
    pub fn insert(&mut self, key: K, state: S) {
        self.map.insert(key, state);
    }
    /// Every key's state, in no particular order (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &S)> {
        self.map.iter()
    }
    /// Takes every key's state out (batch-mode final emission).
    pub fn drain(&mut self) -> impl Iterator<Item = (K, S)> + '_ {
        self.map.drain()
    }
}

impl<K: Hash + Eq, S: Default> KeyedState<K, S> {
    /// The state of `key`, created empty on first use.
    #[inline(always)]
    pub fn get_or_default(&mut self, key: K) -> &mut S {
        // Probe first: `entry` reserves and takes a slower path even when the key exists,
        // which is almost every row (measured at half the speed of this in W1's loop).
        if let Some(state) = self.map.get_mut(&key) {
            let state: *mut S = state;
            // SAFETY: the borrow of `self.map` from `get_mut` ends here (rustc's borrow checker
            // cannot see that the early return does not overlap the insert below).
            return unsafe { &mut *state };
        }
        self.map.entry(key).or_default()
    }
    /// How many keys have state.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
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
    type State: Default + Send + 'static;
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
