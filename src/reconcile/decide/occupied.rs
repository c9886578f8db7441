//! Pure: what the deletion of a room with members does next (`spec.whenOccupied`), from the policy, the progress
//! recorded on the status, the member count just read and the time.
//!
//! Only a deletion that destroys the room gets here ([`super::on_delete`] decided `Destroy`); with
//! `policy: Destroy` the room is destroyed at once without counting (today's behaviour, one call). Otherwise the
//! operator counts the members first (QueryRoomUserList), and:
//!
//! | members | policy (after a `Wait` timeout: `afterTimeout`) | phase on the status | next |
//! |---|---|---|---|
//! | 0 | any | any | destroy |
//! | > 0 | `Destroy` | any | destroy |
//! | > 0 | `Wait`, before its timeout | none, `Waiting` | wait (phase `Waiting`, deadline the timeout); look again in a minute |
//! | > 0 | `Drain` | none, `Waiting` | send the message; phase `Draining`, deadline the end of the grace period |
//! | > 0 | `Drain` | `Draining`, before the deadline | wait for the deadline |
//! | > 0 | `Drain` | `Draining` past the deadline, `Removing` | remove the members (KickoutRoomUser, 50 at a time), destroy |
//!
//! The policy is read afresh at each step, so changing `spec.whenOccupied` while a deletion waits takes effect at
//! once (`kubectl patch` on a Terminating object is allowed): `Destroy` to force, `Drain` to empty it now. A drain
//! that is under way (`Draining`, `Removing`) goes on only while the policy still drains; set back to `Wait`
//! without a timeout, it waits again. The message is sent at least once: a status write lost after the message
//! sends it again.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{
    AfterTimeout, DEFAULT_DRAIN_GRACE_SECONDS, DeletionPhase, DeletionProgress, OccupiedPolicy, WhenOccupied,
};

/// The default text of a drain's room message.
pub const DEFAULT_DRAIN_MESSAGE: &str = "This room is closing.";

/// How often a waiting deletion counts the members again (jittered by the caller).
pub const RECHECK: Duration = Duration::from_secs(60);

/// The next step of an occupied room's deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteStep {
    /// Destroy the room now.
    Destroy,
    /// Wait for the room to empty: record `progress`, count again later.
    Wait {
        /// The phase to record (`Waiting`).
        progress: DeletionProgress,
    },
    /// Send the drain message, then record `progress` (`Draining` until the end of the grace period).
    Notify {
        /// The phase to record once the message is sent.
        progress: DeletionProgress,
    },
    /// The members were told; wait for the deadline.
    Grace {
        /// The phase as recorded.
        progress: DeletionProgress,
    },
    /// Remove the members left, then destroy the room.
    Remove,
}

/// Whether a deletion under `when` counts the members before destroying (not with `policy: Destroy`).
pub fn counts_members(when: Option<&WhenOccupied>) -> bool {
    when.is_none_or(|w| w.policy != OccupiedPolicy::Destroy)
}

/// The next step for a room with `members`, under `when` (absent: `Wait` without a timeout), with the phase the
/// status records, at `now`.
pub fn next_step(
    when: Option<&WhenOccupied>,
    recorded: Option<&DeletionProgress>,
    members: u64,
    now: &Time,
) -> DeleteStep {
    if members == 0 {
        return DeleteStep::Destroy;
    }
    let default = WhenOccupied::default();
    let when = when.unwrap_or(&default);
    let phase = recorded.map(|p| p.phase);
    let draining = matches!(phase, Some(DeletionPhase::Draining | DeletionPhase::Removing));
    let policy = match when.policy {
        OccupiedPolicy::Wait => {
            // The wait began when it was first recorded (a drain under way began after a wait that timed out).
            let since = match recorded {
                Some(p) if p.phase == DeletionPhase::Waiting => p.since.clone(),
                _ => now.clone(),
            };
            let deadline = when.timeout_seconds.map(|t| plus(&since, Duration::from_secs(t.into())));
            let timed_out =
                deadline.as_ref().is_some_and(|d| now.0 >= d.0) || (draining && deadline.is_some());
            match (timed_out, when.after_timeout) {
                (true, Some(AfterTimeout::Destroy)) => OccupiedPolicy::Destroy,
                (true, Some(AfterTimeout::Drain)) => OccupiedPolicy::Drain,
                _ => {
                    let progress = DeletionProgress { phase: DeletionPhase::Waiting, since, deadline };
                    return DeleteStep::Wait { progress };
                }
            }
        }
        other => other,
    };
    match (policy, recorded) {
        (OccupiedPolicy::Destroy, _) => DeleteStep::Destroy,
        (_, Some(p)) if p.phase == DeletionPhase::Removing => DeleteStep::Remove,
        (_, Some(p)) if p.phase == DeletionPhase::Draining => match &p.deadline {
            Some(d) if now.0 < d.0 => DeleteStep::Grace { progress: p.clone() },
            _ => DeleteStep::Remove,
        },
        _ => {
            let grace = when.drain_grace_seconds.unwrap_or(DEFAULT_DRAIN_GRACE_SECONDS);
            let deadline = plus(now, Duration::from_secs(grace.into()));
            DeleteStep::Notify {
                progress: DeletionProgress {
                    phase: DeletionPhase::Draining,
                    since: now.clone(),
                    deadline: Some(deadline),
                },
            }
        }
    }
}

/// When a waiting deletion looks again: in `recheck` (default [`RECHECK`]), or at the phase's deadline if that
/// comes first (at least a second on); a drain's grace period is waited out to its deadline.
pub fn recheck_in(progress: &DeletionProgress, now: &Time, recheck: Duration) -> Duration {
    let until_deadline = progress
        .deadline
        .as_ref()
        .map(|d| d.0.duration_since(now.0).try_into().unwrap_or(Duration::ZERO).max(Duration::from_secs(1)));
    match (progress.phase, until_deadline) {
        (DeletionPhase::Draining, Some(d)) => d,
        (_, Some(d)) => d.min(recheck),
        _ => recheck,
    }
}

/// The Ready message of a deletion that waits or drains: how many members, until when, and how to proceed.
pub fn message(room_id: &str, members: u64, progress: &DeletionProgress, name: &str, ns: &str) -> String {
    let people = if members == 1 { "1 member".to_owned() } else { format!("{members} members") };
    let force = format!(
        "to destroy it now: kubectl patch zimroom {name} -n {ns} --type=merge -p '{{\"spec\":{{\"whenOccupied\":{{\"policy\":\"Destroy\"}}}}}}'; to keep the room and let the object go: set spec.deletionPolicy: Orphan"
    );
    match progress.phase {
        DeletionPhase::Waiting => {
            let until = match &progress.deadline {
                Some(d) => format!(" until {} (then whenOccupied.afterTimeout applies)", d.0),
                None => String::new(),
            };
            format!(
                "ZIM room {room_id} has {people}: the deletion waits for it to empty{until} and counts again periodically (spec.whenOccupied.policy Wait); {force}"
            )
        }
        DeletionPhase::Draining | DeletionPhase::Removing => {
            let at = progress.deadline.as_ref().map_or_else(String::new, |d| format!(" at {}", d.0));
            format!(
                "ZIM room {room_id} has {people}: they were told the room is closing and are removed{at}, then the room is destroyed (spec.whenOccupied Drain); {force}"
            )
        }
    }
}

/// Records `members` on `status`: a new count with `now` as its change time; the same count changes nothing (so a
/// room whose count stays costs no status write). Returns whether it changed.
pub fn observe(status: &mut crate::crd::ZimRoomStatus, members: u64, now: &Time) -> bool {
    if status.occupancy.as_ref().is_some_and(|o| o.members == members) {
        return false;
    }
    status.occupancy = Some(crate::crd::Occupancy { members, last_change_time: now.clone() });
    true
}

fn plus(t: &Time, d: Duration) -> Time {
    let span = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
    Time(t.0.checked_add(span).unwrap_or(jiff::Timestamp::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn when(policy: OccupiedPolicy, timeout: Option<u32>, after: Option<AfterTimeout>) -> WhenOccupied {
        WhenOccupied {
            policy,
            timeout_seconds: timeout,
            after_timeout: after,
            drain_grace_seconds: Some(60),
            ..WhenOccupied::default()
        }
    }

    fn progress(phase: DeletionPhase, since: i64, deadline: Option<i64>) -> DeletionProgress {
        DeletionProgress { phase, since: at(since), deadline: deadline.map(at) }
    }

    #[test]
    fn an_empty_room_is_destroyed_whatever_the_policy_or_phase() {
        for policy in [OccupiedPolicy::Wait, OccupiedPolicy::Drain, OccupiedPolicy::Destroy] {
            for phase in [None, Some(progress(DeletionPhase::Draining, 0, Some(60)))] {
                let w = when(policy, None, None);
                assert_eq!(
                    next_step(Some(&w), phase.as_ref(), 0, &at(10)),
                    DeleteStep::Destroy,
                    "{policy:?}"
                );
            }
        }
        assert_eq!(next_step(None, None, 0, &at(0)), DeleteStep::Destroy);
    }

    #[test]
    fn only_destroy_skips_the_count() {
        assert!(counts_members(None), "the default, Wait, counts");
        assert!(counts_members(Some(&when(OccupiedPolicy::Wait, None, None))));
        assert!(counts_members(Some(&when(OccupiedPolicy::Drain, None, None))));
        assert!(!counts_members(Some(&when(OccupiedPolicy::Destroy, None, None))));
    }

    #[test]
    fn the_default_waits_without_a_deadline_and_keeps_its_start() {
        let first = next_step(None, None, 3, &at(0));
        assert_eq!(first, DeleteStep::Wait { progress: progress(DeletionPhase::Waiting, 0, None) });
        let DeleteStep::Wait { progress: recorded } = first else { unreachable!() };
        let later = next_step(None, Some(&recorded), 2, &at(7200));
        assert_eq!(later, DeleteStep::Wait { progress: progress(DeletionPhase::Waiting, 0, None) });
        assert_eq!(recheck_in(&recorded, &at(10), RECHECK), RECHECK);
    }

    #[test]
    fn a_wait_with_a_timeout_turns_into_its_after_timeout() {
        let w = when(OccupiedPolicy::Wait, Some(600), Some(AfterTimeout::Drain));
        let waiting = progress(DeletionPhase::Waiting, 0, Some(600));
        assert_eq!(next_step(Some(&w), None, 5, &at(0)), DeleteStep::Wait { progress: waiting.clone() });
        assert_eq!(
            next_step(Some(&w), Some(&waiting), 5, &at(599)),
            DeleteStep::Wait { progress: waiting.clone() }
        );
        assert_eq!(
            recheck_in(&waiting, &at(590), RECHECK),
            Duration::from_secs(10),
            "the deadline comes before a minute"
        );
        assert_eq!(
            next_step(Some(&w), Some(&waiting), 5, &at(600)),
            DeleteStep::Notify { progress: progress(DeletionPhase::Draining, 600, Some(660)) }
        );
        // The drain that followed goes on while the wait's timeout still applies.
        let draining = progress(DeletionPhase::Draining, 600, Some(660));
        assert_eq!(
            next_step(Some(&w), Some(&draining), 5, &at(630)),
            DeleteStep::Grace { progress: draining.clone() }
        );
        assert_eq!(next_step(Some(&w), Some(&draining), 5, &at(660)), DeleteStep::Remove);
        let d = when(OccupiedPolicy::Wait, Some(600), Some(AfterTimeout::Destroy));
        assert_eq!(next_step(Some(&d), Some(&waiting), 5, &at(601)), DeleteStep::Destroy);
    }

    #[test]
    fn a_drain_tells_then_waits_the_grace_then_removes() {
        let w = when(OccupiedPolicy::Drain, None, None);
        let draining = progress(DeletionPhase::Draining, 100, Some(160));
        assert_eq!(next_step(Some(&w), None, 4, &at(100)), DeleteStep::Notify { progress: draining.clone() });
        assert_eq!(
            next_step(Some(&w), Some(&draining), 4, &at(159)),
            DeleteStep::Grace { progress: draining.clone() }
        );
        assert_eq!(
            recheck_in(&draining, &at(130), RECHECK),
            Duration::from_secs(30),
            "a grace period is waited out whole"
        );
        assert_eq!(next_step(Some(&w), Some(&draining), 4, &at(160)), DeleteStep::Remove);
        let removing = progress(DeletionPhase::Removing, 160, None);
        assert_eq!(next_step(Some(&w), Some(&removing), 1, &at(170)), DeleteStep::Remove);
        // A wait switched to Drain tells the members at once.
        let waiting = progress(DeletionPhase::Waiting, 0, None);
        assert!(matches!(next_step(Some(&w), Some(&waiting), 4, &at(100)), DeleteStep::Notify { .. }));
    }

    #[test]
    fn changing_the_policy_while_waiting_takes_effect_at_once() {
        let draining = progress(DeletionPhase::Draining, 0, Some(300));
        let destroy = when(OccupiedPolicy::Destroy, None, None);
        assert_eq!(next_step(Some(&destroy), Some(&draining), 9, &at(10)), DeleteStep::Destroy, "forced");
        let wait = when(OccupiedPolicy::Wait, None, None);
        assert_eq!(
            next_step(Some(&wait), Some(&draining), 9, &at(10)),
            DeleteStep::Wait { progress: progress(DeletionPhase::Waiting, 10, None) },
            "a drain set back to Wait waits again"
        );
    }

    #[test]
    fn only_a_new_count_changes_the_status() {
        let mut status = crate::crd::ZimRoomStatus::default();
        assert!(observe(&mut status, 0, &at(0)), "the first count is recorded, 0 included");
        assert!(!observe(&mut status, 0, &at(60)), "the same count writes nothing");
        assert_eq!(status.occupancy.as_ref().unwrap().last_change_time, at(0));
        assert!(observe(&mut status, 7, &at(120)));
        assert_eq!(status.occupancy, Some(crate::crd::Occupancy { members: 7, last_change_time: at(120) }));
    }

    #[test]
    fn the_message_says_how_many_until_when_and_how_to_proceed() {
        let m = message("lobby", 12, &progress(DeletionPhase::Waiting, 0, None), "lobby", "chat");
        assert!(m.contains("12 members") && m.contains("waits for it to empty"), "{m}");
        assert!(m.contains("\"policy\":\"Destroy\"") && m.contains("deletionPolicy: Orphan"), "{m}");
        let m = message("lobby", 1, &progress(DeletionPhase::Draining, 0, Some(60)), "lobby", "chat");
        assert!(m.contains("1 member:") && m.contains("removed at"), "{m}");
    }
}
