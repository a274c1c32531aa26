//! `rebalance`: spreads rows round-robin over the next stage's subtasks. Also the partitioning
//! of any edge where the parallelism changes, as in Flink.

use crate::channel::Partition;
use crate::port::Stream;

/// Round-robin partitioning.
#[derive(Clone, Default)]
pub struct RoundRobin {
    next: usize,
}

impl RoundRobin {
    /// Starts at `subtask`'s slot so that parallel senders spread their first rows.
    pub fn starting_at(subtask: usize) -> Self {
        RoundRobin { next: subtask }
    }
}

impl<T> Partition<T> for RoundRobin {
    #[inline(always)]
    fn route(&mut self, _: &T, n: usize) -> usize {
        let i = self.next % n;
        self.next = i + 1;
        i
    }
}

impl<T: Send + 'static, K> Stream<T, K> {
    /// `rebalance()`: the rows, no longer keyed.
    pub fn rebalance(&self) -> Stream<T> {
        Stream::new()
    }
}
