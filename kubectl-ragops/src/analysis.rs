//! `get`: the metric analysis of a pipeline's rollout (`status.analysis`) as tree lines: the
//! run's stage, revision and phase, why it ended, and per metric its counts and latest
//! measurement, so that whoever promotes by hand sees the result first. Pure.

use jiff::Timestamp;
use rag_operator::api::{AnalysisRunStatus, AnalysisStage, Measurement, MetricStatus};

use crate::tree::Node;
use crate::view::age;

/// The analysis node, when the pipeline has run one.
pub fn analysis_node(run: Option<&AnalysisRunStatus>, now: Timestamp) -> Option<Node> {
    let run = run?;
    let stage = match run.stage {
        AnalysisStage::PrePromotion => "pre-promotion",
        AnalysisStage::PostPromotion => "post-promotion",
        AnalysisStage::Canary => "canary",
    };
    let label = format!(
        "analysis {stage} of {} ({}): {:?}, started {} ago",
        run.revision,
        run.color,
        run.phase,
        age(run.started_at.0, now)
    );
    let mut children: Vec<Node> = run.message.iter().map(Node::leaf).collect();
    children.extend(run.metrics.iter().map(|m| Node::leaf(metric_line(m, now))));
    Some(Node::new(label, children))
}

/// `errors: Running, 2 successful, 1 failed, 0 inconclusive; last 0.2 Failed 5s ago (why)`.
fn metric_line(m: &MetricStatus, now: Timestamp) -> String {
    let mut line = format!(
        "{}: {:?}, {} successful, {} failed, {} inconclusive",
        m.name, m.phase, m.successful, m.failed, m.inconclusive
    );
    if let Some(last) = m.measurements.last() {
        line += &format!("; last {}", measurement(last, now));
    }
    line
}

fn measurement(x: &Measurement, now: Timestamp) -> String {
    let mut text = format!(
        "{} {:?} {} ago",
        x.value.as_deref().unwrap_or("(no value)"),
        x.outcome,
        age(x.at.0, now)
    );
    if let Some(why) = &x.message {
        text += &format!(" ({why})");
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_failed_run_shows_why_and_each_metrics_counts_and_last_measurement() {
        let run: AnalysisRunStatus = serde_json::from_value(json!({
            "stage": "prePromotion", "revision": "bbb222", "color": "green",
            "phase": "Failed", "startedAt": "2026-12-07T10:00:00Z",
            "message": "errors: 0.2 failed result <= 0.05 (failureLimit 0)",
            "metrics": [
                { "name": "errors", "phase": "Failed", "successful": 1, "failed": 1,
                  "measurements": [
                      { "at": "2026-12-07T10:00:30Z", "outcome": "Successful", "value": "0" },
                      { "at": "2026-12-07T10:01:00Z", "outcome": "Failed", "value": "0.2",
                        "message": "result <= 0.05 is false" }
                  ] },
                { "name": "p99", "phase": "Running" }
            ]
        }))
        .unwrap();
        let now: Timestamp = "2026-12-07T10:01:10Z".parse().unwrap();
        let node = analysis_node(Some(&run), now).unwrap();
        assert_eq!(
            node.lines(),
            [
                "analysis pre-promotion of bbb222 (green): Failed, started 70s ago",
                "├─ errors: 0.2 failed result <= 0.05 (failureLimit 0)",
                "├─ errors: Failed, 1 successful, 1 failed, 0 inconclusive; last 0.2 Failed 10s ago (result <= 0.05 is false)",
                "└─ p99: Running, 0 successful, 0 failed, 0 inconclusive",
            ]
        );
        assert!(analysis_node(None, now).is_none());
    }
}
