//! Pure: what the periodic prober does with a converged room — whether it may probe it with the credentials its
//! Secret gives now, and what a probe's answer means for the room.
//!
//! | before the probe | decision |
//! |---|---|
//! | the credentials resolve to the AppId the status records (or none is recorded) | probe in that app |
//! | they resolve to another AppId | no call; hand the room to a reconcile, which reports `AppIdChanged` |
//!
//! | the probe's answer | decision |
//! |---|---|
//! | the room exists | nothing (the next probe one period on) |
//! | the room is gone | hand the room to a reconcile that recreates it without probing again |
//! | a terminal failure (authentication, app configuration, refused parameters, quota) | hand the room to a reconcile: its own probe meets the same failure and turns Ready to the matching reason, so the not-Ready alerts see revoked credentials |
//! | a retryable failure (busy, throttled, transport, unknown code) | nothing: counted in `zim_operator_existence_probes_total{result="error"}`, tried again next period; a Ready room stays Ready through it, as in a reconcile |

use crate::zim::Class;

/// Whether the prober may probe a room whose status records `recorded` with credentials of `resolved`.
pub fn may_probe(recorded: Option<u32>, resolved: u32) -> bool {
    recorded.is_none_or(|app| app == resolved)
}

/// What a probe's answer means for a converged room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeVerdict {
    /// The room exists: nothing to do.
    Exists,
    /// The room is gone: a reconcile recreates it (without probing again).
    Gone,
    /// A failure that a person must fix (the credentials, the app): a reconcile reports it on the status.
    Report,
    /// A failure that may pass: counted, tried again next period.
    Retry,
}

/// The verdict on a probe that answered `result` (`Err`: the failure's class).
pub fn after_probe(result: Result<bool, Class>) -> ProbeVerdict {
    match result {
        Ok(true) => ProbeVerdict::Exists,
        Ok(false) => ProbeVerdict::Gone,
        Err(Class::Terminal(_)) => ProbeVerdict::Report,
        Err(_) => ProbeVerdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zim::Terminal;

    #[test]
    fn the_prober_probes_only_in_the_recorded_app() {
        for (recorded, resolved, may) in [(None, 7, true), (Some(7), 7, true), (Some(7), 8, false)] {
            assert_eq!(may_probe(recorded, resolved), may, "recorded {recorded:?}, resolved {resolved}");
        }
    }

    #[test]
    fn each_answer_has_one_verdict() {
        let cases = [
            (Ok(true), ProbeVerdict::Exists),
            (Ok(false), ProbeVerdict::Gone),
            (Err(Class::Terminal(Terminal::Auth)), ProbeVerdict::Report),
            (Err(Class::Terminal(Terminal::InvalidParams)), ProbeVerdict::Report),
            (Err(Class::Terminal(Terminal::Quota)), ProbeVerdict::Report),
            (Err(Class::Transient), ProbeVerdict::Retry),
            (Err(Class::Throttled), ProbeVerdict::Retry),
            (Err(Class::Unknown), ProbeVerdict::Retry),
        ];
        for (result, verdict) in cases {
            assert_eq!(after_probe(result), verdict, "{result:?}");
        }
    }
}
