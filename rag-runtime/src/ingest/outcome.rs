//! What `rag-runtime ingest --report-file` writes: one JSON object small enough for a Kubernetes
//! termination message (the kubelet reads at most 4096 bytes of `/dev/termination-log`).

use serde::Serialize;

use super::Report;
use crate::redact;

/// Upper bound of a report file, in bytes (below the kubelet's 4096).
pub const REPORT_FILE_LIMIT: usize = 4000;
/// Failed documents listed in a report file at most; `failedTotal` counts them all.
pub const FAILED_SHOWN: usize = 5;
/// Characters of a failed document's id or reason kept in a report file.
const FAILED_TEXT_CHARS: usize = 300;

/// The result of an ingest run: its report, the collection written, and whether the sources were
/// unchanged (`--unless-digest`), in which case nothing was stored and no collection is named.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    #[serde(flatten)]
    pub report: Report,
    /// The concrete collection written (`<alias>-<revision>` with `--revision`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub unchanged: bool,
}

/// [`Outcome`] with a shortened `failed` map and, when entries were left out, their total.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shortened<'a> {
    #[serde(flatten)]
    outcome: &'a Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_total: Option<usize>,
}

#[derive(Serialize)]
struct Failure<'a> {
    error: &'a str,
}

/// The report file's text for a run's result: the outcome, or `{"error": "..."}` with the error
/// chain on one line (URLs redacted). Always under [`REPORT_FILE_LIMIT`] bytes.
pub fn report_json(result: Result<&Outcome, &anyhow::Error>) -> String {
    match result {
        Ok(outcome) => outcome_json(outcome),
        Err(err) => error_json(&one_line(&redact::urls_in(&format!("{err:#}")))),
    }
}

fn outcome_json(outcome: &Outcome) -> String {
    let total = outcome.report.failed.len();
    let mut shown = total.min(FAILED_SHOWN);
    loop {
        let mut short = outcome.clone();
        short.report.failed = (outcome.report.failed.iter())
            .take(shown)
            .map(|(id, reason)| (clip(id, FAILED_TEXT_CHARS), clip(reason, FAILED_TEXT_CHARS)))
            .collect();
        let json = serde_json::to_string(&Shortened {
            outcome: &short,
            failed_total: (shown < total).then_some(total),
        })
        .expect("a report serialises");
        if json.len() < REPORT_FILE_LIMIT || shown == 0 {
            return json;
        }
        shown -= 1;
    }
}

fn error_json(message: &str) -> String {
    let mut keep = message.chars().count();
    loop {
        let text = if keep < message.chars().count() {
            clip(message, keep)
        } else {
            message.to_string()
        };
        let json = serde_json::to_string(&Failure { error: &text }).expect("a string serialises");
        if json.len() < REPORT_FILE_LIMIT {
            return json;
        }
        // In proportion to the bytes per character so far, with room for the quotes and `…`.
        keep = (keep * (REPORT_FILE_LIMIT - 64) / json.len()).min(keep.saturating_sub(1));
    }
}

/// `text` cut to `max` characters, ending in `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Lines joined by spaces.
fn one_line(text: &str) -> String {
    (text.lines().map(str::trim))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use anyhow::Context;
    use serde_json::{Value, json};

    fn outcome(failed: usize, reason: &str) -> Outcome {
        let mut report = Report {
            documents: 3,
            chunks: 7,
            source_digest: "ab".repeat(32),
            elapsed: Duration::from_millis(1234),
            ..Default::default()
        };
        for i in 0..failed {
            report
                .failed
                .insert(format!("doc-{i:03}.md"), reason.into());
        }
        Outcome {
            report,
            collection: Some("handbook-3f2a9c01de".into()),
            unchanged: false,
        }
    }

    fn parse(json: &str) -> Value {
        assert!(json.len() < REPORT_FILE_LIMIT, "{} bytes", json.len());
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_success_is_the_report_with_its_collection() {
        let json = report_json(Ok(&outcome(0, "")));
        assert_eq!(
            parse(&json),
            json!({
                "documents": 3, "chunks": 7, "failed": {}, "sourceDigest": "ab".repeat(32),
                "elapsed": 1.234, "collection": "handbook-3f2a9c01de", "unchanged": false
            })
        );
    }

    #[test]
    fn many_failures_are_cut_to_the_first_few_and_counted() {
        let json = report_json(Ok(&outcome(2, "short")));
        assert_eq!(parse(&json)["failed"]["doc-001.md"], "short");
        assert!(parse(&json).get("failedTotal").is_none());

        let value = parse(&report_json(Ok(&outcome(500, "unreadable"))));
        let failed = value["failed"].as_object().unwrap();
        let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
        assert_eq!(
            ids,
            [
                "doc-000.md",
                "doc-001.md",
                "doc-002.md",
                "doc-003.md",
                "doc-004.md"
            ]
        );
        assert_eq!(value["failedTotal"], 500);
    }

    #[test]
    fn long_reasons_and_ids_still_fit() {
        let value = parse(&report_json(Ok(&outcome(50, &"\u{1}".repeat(10_000)))));
        assert_eq!(value["failedTotal"], 50);
        let reason = value["failed"]["doc-000.md"].as_str().unwrap();
        assert_eq!(reason.chars().count(), FAILED_TEXT_CHARS);
        assert!(reason.ends_with('…'));
    }

    #[test]
    fn an_error_is_its_chain_on_one_line_without_credentials() {
        let err = Err::<(), _>(anyhow::anyhow!(
            "connect to http://u:secret@q:6334/?k=s\nrefused"
        ))
        .context("vector store")
        .unwrap_err();
        let json = report_json(Err(&err));
        assert_eq!(
            parse(&json),
            json!({"error": "vector store: connect to http://q:6334 refused"})
        );
    }

    #[test]
    fn a_huge_error_is_clipped_under_the_limit() {
        for filler in ["x", "\"", "\u{7}", "é"] {
            let json = report_json(Err(&anyhow::anyhow!(filler.repeat(20_000))));
            let error = parse(&json)["error"].as_str().unwrap().to_string();
            assert!(
                error.ends_with('…') && error.len() > 500,
                "{filler}: {}",
                error.len()
            );
        }
    }
}
