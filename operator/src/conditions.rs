//! kstatus-style conditions, merged by a pure function that keeps `lastTransitionTime` unless
//! the status of a condition actually changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const DEGRADED: &str = "Degraded";

/// A condition before it is stamped with a time and generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Wanted {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `current` updated with `wanted`; conditions of other types are kept as they are.
pub fn merge(
    current: &[Condition],
    wanted: &[Wanted],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = current
        .iter()
        .filter(|c| !wanted.iter().any(|w| w.type_ == c.type_))
        .cloned()
        .collect();
    for w in wanted {
        let status = if w.status { "True" } else { "False" };
        let previous = current.iter().find(|c| c.type_ == w.type_);
        let last_transition_time = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => Time(now),
        };
        out.push(Condition {
            type_: w.type_.into(),
            status: status.into(),
            reason: w.reason.clone(),
            message: w.message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let first = merge(
            &[],
            &[Wanted::new(READY, false, "RolloutInProgress", "a")],
            Some(1),
            t0,
        );
        let same = merge(
            &first,
            &[Wanted::new(READY, false, "Other", "b")],
            Some(2),
            t1,
        );
        assert_eq!(same[0].last_transition_time, Time(t0));
        assert_eq!(
            (same[0].reason.as_str(), same[0].observed_generation),
            ("Other", Some(2))
        );
        let flipped = merge(
            &same,
            &[Wanted::new(READY, true, "Healthy", "c")],
            Some(2),
            t1,
        );
        assert_eq!(
            (flipped[0].status.as_str(), &flipped[0].last_transition_time),
            ("True", &Time(t1))
        );
    }

    #[test]
    fn other_conditions_are_kept_and_order_is_stable() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let a = merge(
            &[],
            &[
                Wanted::new(READY, true, "R", ""),
                Wanted::new(DEGRADED, false, "D", ""),
            ],
            None,
            t0,
        );
        let b = merge(&a, &[Wanted::new(PROGRESSING, true, "P", "")], None, t0);
        let types: Vec<_> = b.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [DEGRADED, PROGRESSING, READY]);
    }
}
