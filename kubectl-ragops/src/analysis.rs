//! `get`: the metric analysis of a pipeline's rollout (`status.analysis`) as tree lines: the
//! run's stage, revision and phase, why it ended, and per metric its counts and latest
//! measurement, so that whoever promotes by hand sees the result first; and the golden-set run
//! (`status.goldenSet`): both colours' scores and the queries that regressed. Pure.

use jiff::Timestamp;
use rag_operator::api::{
    AnalysisRunStatus, AnalysisStage, GoldenScore, GoldenSetStatus, Measurement, MetricStatus,
};

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

/// The golden-set node, when the pipeline has run its set.
pub fn golden_node(run: Option<&GoldenSetStatus>, now: Timestamp) -> Option<Node> {
    let run = run?;
    let label = format!(
        "golden set of {} ({}): {:?}, started {} ago",
        run.revision,
        run.color,
        run.phase,
        age(run.started_at.0, now)
    );
    let score = |s: &GoldenScore| {
        format!(
            "{} ({}): recall@K {:.3}, MRR {:.3}",
            s.color, s.revision, s.recall_at_k, s.mrr
        )
    };
    let mut children: Vec<Node> = [&run.target, &run.active]
        .into_iter()
        .flatten()
        .map(|s| Node::leaf(score(s)))
        .collect();
    if let Some(queries) = run.queries {
        let regressed = run.regressed.unwrap_or(0);
        children.push(Node::leaf(format!(
            "{queries} queries, {regressed} regressed"
        )));
    }
    children.extend(run.message.iter().map(Node::leaf));
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

    #[test]
    fn a_regressed_golden_set_shows_both_colours_scores_and_the_queries() {
        let run: GoldenSetStatus = serde_json::from_value(json!({
            "revision": "bbb222", "color": "green", "phase": "Failed",
            "startedAt": "2026-12-07T10:00:00Z",
            "target": { "color": "green", "revision": "bbb222", "recallAtK": 0.75, "mrr": 0.7 },
            "active": { "color": "blue", "revision": "aaa111", "recallAtK": 1.0, "mrr": 0.95 },
            "queries": 300, "regressed": 75,
            "message": "recall@5 0.750 is 0.250 below blue's 1.000; regressed: \"q1\", \"q2\""
        }))
        .unwrap();
        let now: Timestamp = "2026-12-07T10:00:20Z".parse().unwrap();
        assert_eq!(
            golden_node(Some(&run), now).unwrap().lines(),
            [
                "golden set of bbb222 (green): Failed, started 20s ago",
                "├─ green (bbb222): recall@K 0.750, MRR 0.700",
                "├─ blue (aaa111): recall@K 1.000, MRR 0.950",
                "├─ 300 queries, 75 regressed",
                "└─ recall@5 0.750 is 0.250 below blue's 1.000; regressed: \"q1\", \"q2\"",
            ]
        );
        assert!(golden_node(None, now).is_none());
    }
}
