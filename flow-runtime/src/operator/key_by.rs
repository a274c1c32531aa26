//! `key_by`: partitions a stream by key. Across workers it is an exchange that routes each row
//! to `stable_hash(key)` of the downstream subtasks; inside one worker it costs nothing (the
//! keyed operators after it compute the key themselves).

use crate::channel::Partition;
use crate::function::{Key, KeySelector};
use crate::hash::key_to_subtask;
use crate::port::{Checked, Stream};

/// Hash partitioning by a key selector.
#[derive(Clone)]
pub struct ByKey<KS>(pub KS);

impl<T, KS: KeySelector<T>> Partition<T> for ByKey<KS> {
    #[inline(always)]
    fn route(&mut self, row: &T, n: usize) -> usize {
        key_to_subtask(&self.0.key(row), n)
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `key_by` with a function: the stream keyed by its key type.
    pub fn key_by<KS: KeySelector<T>>(&self, ks: KS) -> (Checked<KS::Key, KS>, Stream<T, KS::Key>) {
        (ks, Stream::new())
    }
    /// `key_by` with a closure.
    pub fn key_by_closure<KN, F>(&self, f: F) -> (Checked<KN, F>, Stream<T, KN>)
    where
        KN: Key,
        F: Fn(&T) -> KN + Clone + Send + 'static,
    {
        (f, Stream::new())
    }
}
