//! What one phase of one run measured, and the side-by-side table. Pure: tested as tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::audit::AuditEvent;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    pub wall: Duration,
    /// Objects that reached the phase's goal, of `of`.
    pub done: usize,
    pub of: usize,
    pub controller_cpu: Duration,
    pub apiserver_cpu: Duration,
    pub rss_peak: u64,
    pub rss_end: u64,
    pub requests: Requests,
    /// Seconds from the new pods Ready to the active Service switched: median, p90.
    pub cutover: Option<(f64, f64)>,
}

impl Phase {
    pub fn complete(&self) -> bool {
        self.done == self.of
    }
}

/// The controller's API requests in a phase, from the audit log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Requests {
    pub reads: usize,
    pub writes: usize,
    pub watches: usize,
    /// `verb resource[/subresource]` → count.
    pub by_kind: BTreeMap<String, usize>,
    /// Answers with a status of 400 and above (excluding 404 and 409) and timeouts.
    pub errors: usize,
}

impl Requests {
    pub fn count<'a>(events: impl IntoIterator<Item = &'a AuditEvent>) -> Self {
        let mut r = Self::default();
        for e in events {
            if e.is_read() {
                r.reads += 1;
            } else if e.is_write() {
                r.writes += 1;
            } else if e.verb == "watch" {
                r.watches += 1;
            }
            if e.code.is_some_and(|c| c >= 400 && c != 404 && c != 409) {
                r.errors += 1;
            }
            let resource = match (&e.resource, &e.subresource) {
                (Some(r), Some(s)) => format!("{r}/{s}"),
                (Some(r), None) => r.clone(),
                _ => "-".into(),
            };
            *r.by_kind
                .entry(format!("{} {resource}", e.verb))
                .or_default() += 1;
        }
        r
    }

    pub fn total(&self) -> usize {
        self.reads + self.writes + self.watches
    }
}

/// One controller at one size.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub subject: &'static str,
    pub n: usize,
    pub phases: Vec<Phase>,
}

impl Run {
    fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    fn rss_peak(&self) -> u64 {
        self.phases.iter().map(|p| p.rss_peak).max().unwrap_or(0)
    }
}

/// Median and 90th percentile (nearest rank).
pub fn median_p90(mut values: Vec<f64>) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank =
        |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Some((rank(0.5), rank(0.9)))
}

/// A row: label, and each run's value as a number (for the ratio) and as text.
type Row = (String, Vec<(f64, String)>);

fn rows(runs: &[Run]) -> Vec<Row> {
    let each = |f: &dyn Fn(&Run) -> (f64, String)| runs.iter().map(f).collect::<Vec<_>>();
    let mut out: Vec<Row> = vec![];
    for name in ["create", "steady", "rollout", "tail"] {
        let wall = |r: &Run| {
            r.phase(name).map_or((f64::NAN, "–".into()), |p| {
                let s = p.wall.as_secs_f64();
                let text = if p.complete() {
                    format!("{s:.0} s")
                } else {
                    format!("**{} of {} after {s:.0} s**", p.done, p.of)
                };
                (s, text)
            })
        };
        if name != "steady" {
            out.push((format!("{name}: wall time"), each(&wall)));
        }
        let count = |f: fn(&Requests) -> usize| {
            move |r: &Run| {
                r.phase(name).map_or((f64::NAN, "–".into()), |p| {
                    let n = f(&p.requests);
                    (n as f64, n.to_string())
                })
            }
        };
        out.push((
            format!("{name}: API reads (get, list)"),
            each(&count(|r| r.reads)),
        ));
        out.push((format!("{name}: API writes"), each(&count(|r| r.writes))));
        let cpu = |f: fn(&Phase) -> Duration| {
            move |r: &Run| {
                r.phase(name).map_or((f64::NAN, "–".into()), |p| {
                    let s = f(p).as_secs_f64();
                    (s, format!("{s:.1} s"))
                })
            }
        };
        if name != "steady" {
            out.push((
                format!("{name}: controller CPU"),
                each(&cpu(|p| p.controller_cpu)),
            ));
            out.push((
                format!("{name}: API server CPU"),
                each(&cpu(|p| p.apiserver_cpu)),
            ));
        }
    }
    let cutover = |i: usize| {
        move |r: &Run| {
            r.phase("rollout")
                .and_then(|p| p.cutover)
                .map_or((f64::NAN, "–".into()), |c| {
                    let v = if i == 0 { c.0 } else { c.1 };
                    (v, format!("{v:.2} s"))
                })
        }
    };
    out.push(("cutover latency, median".into(), each(&cutover(0))));
    out.push(("cutover latency, p90".into(), each(&cutover(1))));
    let mib = |b: u64| {
        (
            b as f64 / 1048576.0,
            format!("{:.0} MiB", b as f64 / 1048576.0),
        )
    };
    out.push((
        "controller RSS, peak".into(),
        each(&|r: &Run| mib(r.rss_peak())),
    ));
    let end = |r: &Run| mib(r.phases.last().map_or(0, |p| p.rss_end));
    out.push(("controller RSS, end".into(), each(&end)));
    out
}

/// The Markdown table of the runs at one size, with the ratio `first / second` when there are
/// two.
pub fn table(runs: &[Run]) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let names: Vec<&str> = runs.iter().map(|r| r.subject).collect();
    let ratio_header = match names.as_slice() {
        [a, b] => format!(" {a} / {b} |"),
        _ => String::new(),
    };
    let mut s = format!(
        "| N = {} | {} |{ratio_header}\n",
        first.n,
        names.join(" | ")
    );
    s.push_str(&"| --- ".repeat(runs.len() + 1 + usize::from(runs.len() == 2)));
    s.push_str("|\n");
    for (label, values) in rows(runs) {
        let texts: Vec<&str> = values.iter().map(|v| v.1.as_str()).collect();
        let ratio = match values.as_slice() {
            [(x, _), (y, _)] if x.is_finite() && y.is_finite() && *y > 0.0 => {
                format!(" {:.2} |", x / y)
            }
            [(x, _), (y, _)] if *x == 0.0 && *y == 0.0 => " = |".into(),
            [_, _] => " – |".into(),
            _ => String::new(),
        };
        let _ = writeln!(s, "| {label} | {} |{ratio}", texts.join(" | "));
    }
    s
}

/// The requests of one run's phases by verb and resource, most frequent first.
pub fn breakdown(run: &Run) -> String {
    let mut s = format!("{} at N = {}:\n", run.subject, run.n);
    for p in &run.phases {
        let mut kinds: Vec<_> = p.requests.by_kind.iter().collect();
        kinds.sort_by(|x, y| y.1.cmp(x.1));
        let top: Vec<String> = kinds
            .iter()
            .take(8)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let _ = writeln!(
            s,
            "  {:<8} {:>4}/{:<4} {:>6.1} s  reads {} writes {} watches {} errors {}: {}",
            p.name,
            p.done,
            p.of,
            p.wall.as_secs_f64(),
            p.requests.reads,
            p.requests.writes,
            p.requests.watches,
            p.requests.errors,
            top.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn event(verb: &str, resource: &str, code: u16) -> AuditEvent {
        AuditEvent {
            verb: verb.into(),
            user: "u".into(),
            resource: Some(resource.into()),
            subresource: None,
            namespace: None,
            name: None,
            code: Some(code),
            received: Timestamp::UNIX_EPOCH,
            uri: String::new(),
        }
    }

    #[test]
    fn requests_are_split_into_reads_writes_and_watches() {
        let events = [
            event("get", "services", 200),
            event("get", "services", 404),
            event("list", "pods", 200),
            event("watch", "pods", 200),
            event("patch", "services", 504),
            event("create", "deployments", 409),
        ];
        let r = Requests::count(&events);
        assert_eq!((r.reads, r.writes, r.watches, r.errors), (3, 2, 1, 1));
        assert_eq!(r.by_kind["get services"], 2);
        assert_eq!(r.total(), 6);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        assert_eq!(median_p90(vec![]), None);
        assert_eq!(median_p90(vec![3.0]), Some((3.0, 3.0)));
        let v: Vec<f64> = (1..=10).map(f64::from).rev().collect();
        assert_eq!(median_p90(v), Some((5.0, 9.0)));
    }

    #[test]
    fn the_table_shows_ratios_and_where_an_unfinished_phase_stood() {
        let phase = |name, secs, done, reads| Phase {
            name,
            wall: Duration::from_secs(secs),
            done,
            of: 10,
            requests: Requests {
                reads,
                ..Requests::default()
            },
            rss_peak: 64 << 20,
            ..Phase::default()
        };
        let a = Run {
            subject: "ragops",
            n: 10,
            phases: vec![phase("create", 20, 10, 0), phase("steady", 60, 10, 0)],
        };
        let b = Run {
            subject: "argo",
            n: 10,
            phases: vec![phase("create", 40, 7, 8), phase("steady", 60, 10, 0)],
        };
        assert!(table(std::slice::from_ref(&a)).contains("| create: wall time | 20 s |\n"));
        let t = table(&[a, b]);
        assert!(
            t.contains("| create: wall time | 20 s | **7 of 10 after 40 s** | 0.50 |"),
            "{t}"
        );
        assert!(
            t.contains("| create: API reads (get, list) | 0 | 8 | 0.00 |"),
            "{t}"
        );
        assert!(t.contains("| steady: API writes | 0 | 0 | = |"), "{t}");
        assert!(
            t.contains("| controller RSS, peak | 64 MiB | 64 MiB | 1.00 |"),
            "{t}"
        );
        assert!(!t.contains("steady: wall time"), "{t}");
    }
}
