//! The members of one consumer group in this process leave it one at a time (an instance
//! at `--parallelism N` leaving its instance group has N members in each of its groups).
//!
//! A member that leaves makes the group deal the partitions anew (eager rebalancing revokes
//! every member's). A second member leaving before that rebalance is over meets a group in
//! the middle of one, which brokers handle worst: tansu built from main (a test broker of
//! instance groups) keeps a leader that leaves then as the group's leader, and nobody gets
//! partitions again. So each next member leaves only once its own consumer saw the group
//! re-form after the previous leave (its partitions revoked, then assigned), or after
//! [`TURN_LIMIT`] (longer for a group that may wait for a static member's session to
//! expire); until then it goes on as a member. (A source configured for cooperative
//! rebalancing may lose no partition at a sibling's leave, and then waits the whole limit.)
//!
//! Only leaving on purpose takes turns: at SIGTERM, and stayed repartition readers before a
//! later job of the process joins their group. A failed job's members leave together.

use rdkafka::consumer::Rebalance;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a member waits for the group to re-form after the previous leave before it
/// leaves anyway (a group that does not re-form does not get better by waiting), or a
/// margin more than the group's re-forming may take ([`InstanceConfig::regroup_bound`]).
///
/// [`InstanceConfig::regroup_bound`]: flow_runtime::instances::InstanceConfig::regroup_bound
const TURN_LIMIT: Duration = Duration::from_secs(30);

/// What [`TURN_LIMIT`] leaves to a rebalance after the group's re-forming began.
const TURN_MARGIN: Duration = Duration::from_secs(15);

/// Per group name, when a member in this process last took its turn to leave, or last sent
/// its LeaveGroup.
static LAST_LEAVE: Mutex<BTreeMap<String, Instant>> = Mutex::new(BTreeMap::new());

/// When a member's consumer was last revoked and last assigned partitions (kept by its
/// consumer context's rebalance callbacks).
#[derive(Debug, Default)]
pub(crate) struct Rebalances(Mutex<Seen>);

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    revoked: Option<Instant>,
    assigned: Option<Instant>,
}

impl Rebalances {
    /// A rebalance callback ran.
    pub(crate) fn saw(&self, rebalance: &Rebalance<'_>) {
        let mut seen = self.0.lock().expect("not poisoned");
        match rebalance {
            Rebalance::Revoke(_) => seen.revoked = Some(Instant::now()),
            Rebalance::Assign(_) => seen.assigned = Some(Instant::now()),
            Rebalance::Error(_) => {}
        }
    }

    /// Whether the group took partitions away or dealt some after `t`.
    pub(crate) fn moved_since(&self, t: Instant) -> bool {
        let seen = *self.0.lock().expect("not poisoned");
        seen.revoked.is_some_and(|r| r > t) || seen.assigned.is_some_and(|a| a > t)
    }

    /// Whether the group re-formed after `t`, as this member saw it: its partitions were
    /// revoked after `t`, and assigned after that.
    fn regrouped_since(&self, t: Instant) -> bool {
        let seen = *self.0.lock().expect("not poisoned");
        matches!((seen.revoked, seen.assigned), (Some(r), Some(a)) if r > t && a > r)
    }
}

/// Whether the member of `group` with `rebalances` may leave now: no member of the group in
/// this process left before it, or the group re-formed since the last did (or
/// [`TURN_LIMIT`] passed, or `regroup` and a margin, when longer). When it may, its leave
/// becomes the group's last.
pub(crate) fn take_turn(group: &str, rebalances: &Rebalances, regroup: Duration) -> bool {
    let limit = TURN_LIMIT.max(regroup + TURN_MARGIN);
    let mut last = LAST_LEAVE.lock().expect("not poisoned");
    let may = match last.get(group) {
        None => true,
        Some(&t) => rebalances.regrouped_since(t) || t.elapsed() >= limit,
    };
    if may {
        last.insert(group.to_owned(), Instant::now());
    }
    may
}

/// A member asked to leave (SIGTERM) that waits for its turn: [`take_turn`], saying once
/// (as `who`) that it waits.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    said: bool,
}

impl Turn {
    /// Whether the member `who` of `group` leaves now ([`take_turn`]); until then it reads on.
    pub(crate) fn take(
        &mut self,
        group: &str,
        rebalances: &Rebalances,
        regroup: Duration,
        who: &str,
    ) -> bool {
        let turn = take_turn(group, rebalances, regroup);
        if !turn && !self.said {
            self.said = true;
            tracing::info!(
                member = who,
                "the instance leaves its group: this reader leaves once the group re-formed after its sibling's leave"
            );
        }
        turn
    }
}

/// A member of `group` in this process sent its LeaveGroup: the next member's turn counts
/// from now (a rebalance for another reason between its turn and its leave is no re-forming
/// after its leave).
pub(crate) fn left(group: &str) {
    LAST_LEAVE
        .lock()
        .expect("not poisoned")
        .insert(group.to_owned(), Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::TopicPartitionList;

    const R: Duration = Duration::from_secs(10);

    #[test]
    fn a_second_member_leaves_once_it_saw_the_group_re_form() {
        let group = "leave-turns-test-group";
        let (first, second) = (Rebalances::default(), Rebalances::default());
        let tpl = TopicPartitionList::new();
        // An assignment from before the first leave does not count.
        second.saw(&Rebalance::Assign(&tpl));
        assert!(take_turn(group, &first, R));
        assert!(!take_turn(group, &second, R));
        second.saw(&Rebalance::Assign(&tpl));
        assert!(
            !take_turn(group, &second, R),
            "assigned without a revocation"
        );
        second.saw(&Rebalance::Revoke(&tpl));
        assert!(!take_turn(group, &second, R), "revoked, not assigned yet");
        second.saw(&Rebalance::Assign(&tpl));
        assert!(take_turn(group, &second, R));
        // Another group's members do not wait for this one's.
        assert!(take_turn(
            "leave-turns-test-other",
            &Rebalances::default(),
            R
        ));
    }
}
