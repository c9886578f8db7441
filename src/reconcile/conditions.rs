//! Condition updates: `lastTransitionTime` changes only when a condition's status flips, so rewriting the same
//! outcome leaves the status byte-for-byte unchanged (and no status write happens).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The longest condition message: a hostile or broken endpoint's text must not bloat the status (kubectl, Argo CD
/// and every watcher read it). Longer messages are cut at a character boundary, marked with "…".
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary.
pub fn bounded(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Sets condition `type_` in `conditions`. The transition time is `now` only when the status changed.
pub fn set(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if status { "True" } else { "False" };
    let mut message = bounded(message.into());
    if message.is_empty() {
        message = reason.to_owned();
    }
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now.clone();
            }
            c.status = status.to_owned();
            c.reason = reason.to_owned();
            c.message = message;
            c.observed_generation = generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: now.clone(),
        }),
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Whether `type_` is currently `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn messages_are_bounded_at_a_character_boundary() {
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "ApiUnavailable", "é".repeat(5000), Some(1), &t(1));
        assert!(c[0].message.len() <= MAX_MESSAGE_BYTES);
        assert!(c[0].message.ends_with('…'));
        assert_eq!(bounded("short".into()), "short");
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        set(&mut c, "Ready", false, "Creating", "", Some(1), &t(10));
        set(&mut c, "Ready", false, "ApiUnavailable", "busy", Some(1), &t(20));
        assert_eq!(c[0].last_transition_time, t(10));
        assert_eq!(c[0].reason, "ApiUnavailable");
        set(&mut c, "Ready", true, "Available", "", Some(2), &t(30));
        assert_eq!(c[0].last_transition_time, t(30));
        let before = c.clone();
        set(&mut c, "Ready", true, "Available", "", Some(2), &t(40));
        assert_eq!(c, before);
        assert!(is_true(&c, "Ready"));
    }
}
