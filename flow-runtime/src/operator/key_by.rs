//! `key_by`: partitions a stream by key. Across workers it is an exchange that routes each row
//! to `stable_hash(key)` of the downstream subtasks; inside one worker it costs nothing (the
//! keyed operators after it compute the key themselves).

use crate::channel::Partition;
use crate::function::KeySelector;
use crate::hash::key_to_subtask;

/// Hash partitioning by a key selector.
#[derive(Clone)]
pub struct ByKey<KS>(pub KS);

impl<T, KS: KeySelector<T>> Partition<T> for ByKey<KS> {
    #[inline(always)]
    fn route(&mut self, row: &T, n: usize) -> usize {
        key_to_subtask(&self.0.key(row), n)
    }
}
