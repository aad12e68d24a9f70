//! The election's decisions, pure: given what this replica has seen of the Lease (and when, on
//! its own monotonic clock), its identity and now, whether to create the Lease, renew it, take it
//! over, or wait. Follows client-go's `leaderelection`: another holder's Lease counts as expired
//! `leaseDurationSeconds` after this replica last saw its record change, never by the holder's
//! `renewTime`, so clocks of different machines never have to agree.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use tokio::time::Instant;

/// The Lease's spec as the election reads and writes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Empty when nobody holds it (released).
    pub holder: String,
    pub duration: Duration,
    pub acquired: Option<Timestamp>,
    pub renewed: Option<Timestamp>,
    pub transitions: i32,
}

/// What this replica last saw of the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub record: Record,
    /// The resourceVersion to write over (compare-and-swap).
    pub version: String,
    /// When this replica saw `record` change last, on its own clock.
    pub since: Instant,
}

/// Records a look at the Lease: an unchanged record keeps the moment it was first seen, so a
/// holder that stopped renewing expires `duration` after its last renewal reached us.
pub fn observe(
    previous: Option<&Observed>,
    record: Record,
    version: String,
    now: Instant,
) -> Observed {
    let since = match previous {
        Some(p) if p.record == record => p.since,
        _ => now,
    };
    Observed {
        record,
        version,
        since,
    }
}

/// What to do after a look at the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// There is no Lease: create it, held by this replica.
    Create(Record),
    /// This replica holds it: write it renewed over `version`.
    Renew { record: Record, version: String },
    /// Nobody holds it, or its holder let it expire: write it held by this replica over `version`.
    Take { record: Record, version: String },
    /// `holder` holds it, at least until `until`.
    Wait { holder: String, until: Instant },
}

/// Decides the next step of replica `me`, which holds Leases for `duration`.
pub fn decide(
    observed: Option<&Observed>,
    me: &str,
    duration: Duration,
    now: Instant,
    wall: Timestamp,
) -> Step {
    let mine = |acquired, transitions| Record {
        holder: me.to_string(),
        duration,
        acquired: Some(acquired),
        renewed: Some(wall),
        transitions,
    };
    let Some(o) = observed else {
        return Step::Create(mine(wall, 0));
    };
    let (record, version) = (&o.record, o.version.clone());
    if record.holder == me {
        let acquired = record.acquired.unwrap_or(wall);
        let record = mine(acquired, record.transitions);
        return Step::Renew { record, version };
    }
    let until = o.since + record.duration;
    if record.holder.is_empty() || now >= until {
        let record = mine(wall, record.transitions.saturating_add(1));
        return Step::Take { record, version };
    }
    Step::Wait {
        holder: record.holder.clone(),
        until,
    }
}

/// The record that gives the Lease up: no holder, and a duration of one second, so a standby
/// that missed the release still takes over at once (client-go writes the same).
pub fn released(record: &Record, wall: Timestamp) -> Record {
    Record {
        holder: String::new(),
        duration: Duration::from_secs(1),
        acquired: Some(wall),
        renewed: Some(wall),
        transitions: record.transitions,
    }
}

/// The election's clock settings, checked as client-go checks them: the holder stops writing
/// (`renew_deadline` after its last successful renewal began) before any standby may take over
/// (`duration` after it saw that renewal), and tries to renew several times in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Timing {
    pub fn new(
        duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, String> {
        if renew_deadline >= duration {
            return Err(format!(
                "the renew deadline ({renew_deadline:?}) must be shorter than the lease duration ({duration:?})"
            ));
        }
        // client-go's JitterFactor: a retry may come 1.2 periods late and still be in time.
        if retry_period.is_zero() || renew_deadline <= retry_period.mul_f64(1.2) {
            return Err(format!(
                "the renew deadline ({renew_deadline:?}) must be longer than 1.2 retry periods ({retry_period:?})"
            ));
        }
        Ok(Self {
            duration,
            renew_deadline,
            retry_period,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn record(holder: &str, transitions: i32) -> Record {
        Record {
            holder: holder.into(),
            duration: 15 * SECOND,
            acquired: Some(Timestamp::UNIX_EPOCH),
            renewed: Some(Timestamp::UNIX_EPOCH),
            transitions,
        }
    }

    fn seen(holder: &str, since: Instant) -> Observed {
        Observed {
            record: record(holder, 3),
            version: "41".into(),
            since,
        }
    }

    #[test]
    fn each_look_at_the_lease_decides_one_step() {
        let t0 = Instant::now();
        let wall = Timestamp::from_second(1_000).unwrap();
        let mine = |acquired: Timestamp, transitions| Record {
            holder: "me".into(),
            duration: 15 * SECOND,
            acquired: Some(acquired),
            renewed: Some(wall),
            transitions,
        };
        let take = |transitions| Step::Take {
            record: mine(wall, transitions),
            version: "41".into(),
        };
        let cases: Vec<(&str, Option<Observed>, Instant, Step)> = vec![
            ("no Lease: create it", None, t0, Step::Create(mine(wall, 0))),
            (
                "mine: renew, keeping when it was acquired and the transitions",
                Some(seen("me", t0)),
                t0 + 30 * SECOND,
                Step::Renew {
                    record: mine(Timestamp::UNIX_EPOCH, 3),
                    version: "41".into(),
                },
            ),
            ("released: take it at once", Some(seen("", t0)), t0, take(4)),
            (
                "held and seen renewed within the duration: wait",
                Some(seen("other", t0)),
                t0 + 14 * SECOND,
                Step::Wait {
                    holder: "other".into(),
                    until: t0 + 15 * SECOND,
                },
            ),
            (
                "held, no renewal seen for the duration: take it over",
                Some(seen("other", t0)),
                t0 + 15 * SECOND,
                take(4),
            ),
        ];
        for (what, observed, now, want) in cases {
            let got = decide(observed.as_ref(), "me", 15 * SECOND, now, wall);
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn expiry_runs_from_when_a_change_was_seen_not_from_the_holders_clock() {
        let t0 = Instant::now();
        let first = observe(None, record("other", 1), "1".into(), t0);
        assert_eq!(first.since, t0);
        // The same record again (the holder stopped renewing): its age keeps growing.
        let same = observe(
            Some(&first),
            record("other", 1),
            "1".into(),
            t0 + 10 * SECOND,
        );
        assert_eq!(same.since, t0);
        // A renewal (any change of the record) restarts it, whatever renewTime says.
        let mut renewed = record("other", 1);
        renewed.renewed = Some(Timestamp::UNIX_EPOCH - 3600 * SECOND);
        let later = observe(Some(&same), renewed, "2".into(), t0 + 12 * SECOND);
        assert_eq!(later.since, t0 + 12 * SECOND);
        let wall = Timestamp::UNIX_EPOCH;
        let step = decide(Some(&later), "me", 15 * SECOND, t0 + 26 * SECOND, wall);
        assert!(matches!(step, Step::Wait { .. }), "{step:?}");
    }

    #[test]
    fn a_release_frees_the_lease_and_keeps_the_transitions() {
        let wall = Timestamp::from_second(5).unwrap();
        let gone = released(&record("me", 7), wall);
        assert_eq!(gone.holder, "");
        assert_eq!((gone.duration, gone.transitions), (SECOND, 7));
    }

    #[test]
    fn timings_where_a_standby_could_take_over_before_the_holder_stops_are_refused() {
        let s = SECOND;
        assert!(Timing::new(15 * s, 10 * s, 2 * s).is_ok());
        assert!(Timing::new(4 * s, 3 * s, s).is_ok());
        let refused = [
            (10 * s, 10 * s, 2 * s),
            (10 * s, 12 * s, 2 * s),
            (15 * s, 10 * s, 9 * s),
            (15 * s, 10 * s, Duration::ZERO),
        ];
        for (d, r, p) in refused {
            assert!(Timing::new(d, r, p).is_err(), "{d:?} {r:?} {p:?}");
        }
        let message = Timing::new(10 * s, 10 * s, 2 * s).unwrap_err();
        assert!(message.contains("renew deadline (10s)"), "{message}");
    }
}
