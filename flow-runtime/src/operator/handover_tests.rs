//! A keyed stage giving its state up at a rebalance of an instance group and another one
//! adopting it ([`Control::release`], [`Control::adopt`]), through a chain as a task drives
//! it, without Kafka.

use super::reduce::Reduce;
use super::Chained;
use crate::chain::{Collector, Control, Discard};
use crate::context::RuntimeContext;
use crate::snapshot::{PartitionStore, Released};
use crate::time::Timestamp;
use std::sync::{Arc, Mutex};

/// The end of a chain that keeps what reaches it.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<(String, u64)>>>);

impl Kept {
    fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl Collector<(String, u64)> for Kept {
    fn collect(&mut self, row: (String, u64), _: Timestamp) {
        self.0.lock().unwrap().push(row);
    }
}

crate::chain::control_of_end!(Kept);

type Sum = fn((String, u64), (String, u64)) -> (String, u64);
type Key = fn(&(String, u64)) -> String;

fn sum(a: (String, u64), b: (String, u64)) -> (String, u64) {
    (a.0, a.1 + b.1)
}

fn word(row: &(String, u64)) -> String {
    row.0.clone()
}

/// The chain of a stage with a rolling sum per word.
type SumStage = Chained<(String, u64), Reduce<Key, String, Sum, (String, u64)>, Kept, Discard>;

/// A stage with a rolling sum per word (plan node 1, `sum`), opened.
fn stage(ctx: &RuntimeContext) -> (SumStage, Kept) {
    let kept = Kept::default();
    let mut chain = Chained::new(Reduce::new(word as Key, sum as Sum), 1, "sum", kept.clone());
    chain.open(ctx).unwrap();
    (chain, kept)
}

fn feed(chain: &mut impl Collector<(String, u64)>, words: &[&str]) {
    for w in words {
        chain.collect((w.to_string(), 1), 0);
    }
}

#[test]
fn a_released_stage_starts_afresh_and_the_adopting_one_goes_on_from_its_state() {
    let ctx = RuntimeContext::standalone("sum", 0, 1);
    let dir = tempfile::tempdir().unwrap();
    let store = PartitionStore::new(dir.path().to_path_buf(), 4);
    let words: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();

    let (mut a, a_out) = stage(&ctx);
    feed(&mut a, &words);
    feed(&mut a, &words);
    a_out.take();
    // A save keeps the state; a release drops it.
    let mut saved = ctx.released_state();
    a.release(&mut saved, false).unwrap();
    feed(&mut a, &words[..1]);
    assert_eq!(a_out.take(), vec![(words[0].to_string(), 3)]);
    let mut released = ctx.released_state();
    a.release(&mut released, true).unwrap();
    let all: Vec<(usize, i64)> = (0..4).map(|p| (p, 100 + p as i64)).collect();
    store.save(Released::new(released), &all).unwrap();
    feed(&mut a, &words[..1]);
    assert_eq!(
        a_out.take(),
        vec![(words[0].to_string(), 1)],
        "released: afresh"
    );

    // Another stage adopts two of the four partitions: their words go on from their sums,
    // the others' start afresh.
    let (mut b, b_out) = stage(&ctx);
    b.adopt(&ctx, &store.load(&all[..2]).unwrap()).unwrap();
    feed(&mut b, &words);
    let partition = |w: &str| crate::hash::key_to_subtask(&w.to_string(), 4);
    assert!(words.iter().any(|w| partition(w) < 2) && words.iter().any(|w| partition(w) >= 2));
    for (w, n) in b_out.take() {
        // Released at 2 per word, 3 for the first (fed once more after the save).
        let released = if w == words[0] { 3 } else { 2 };
        let expected = if partition(&w) < 2 { released + 1 } else { 1 };
        assert_eq!(n, expected, "{w} of partition {}", partition(&w));
    }
}

#[cfg(feature = "disk")]
#[test]
fn an_operator_whose_state_cannot_move_fails_the_release_naming_it() {
    let (_dir, ctx) = crate::state::keyed::disk_tests::disk(1 << 20);
    let (mut a, _) = stage(&ctx);
    feed(&mut a, &["a", "b"]);
    let e = a
        .release(&mut ctx.released_state(), true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("disk backend") && e.contains("cannot move"),
        "{e}"
    );
}
