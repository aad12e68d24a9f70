use super::*;

fn target() -> Target<'static> {
    Target {
        namespace: "team-a",
        pipeline: "docs",
        progress_deadline_seconds: 300,
    }
}

fn rendered(spec: &AlertsSpec) -> (Vec<Rule>, Vec<Rule>) {
    let mut g = groups(&target(), spec).into_iter();
    let (recording, alerts) = (g.next().unwrap(), g.next().unwrap());
    assert_eq!(recording.name, "ragops.team-a.docs.recording");
    assert_eq!(alerts.name, "ragops.team-a.docs.alerts");
    (recording.rules, alerts.rules)
}

fn alert<'a>(rules: &'a [Rule], name: &str) -> &'a Rule {
    rules
        .iter()
        .find(|r| r.alert.as_deref() == Some(name))
        .unwrap()
}

#[test]
fn every_alert_says_who_how_bad_and_where_to_look() {
    let (_, alerts) = rendered(&AlertsSpec::default());
    assert_eq!(alerts.len(), 16);
    for a in &alerts {
        let name = a.alert.as_deref().unwrap();
        let severity = a.labels["severity"].as_str();
        assert!(["warning", "critical"].contains(&severity), "{name}");
        for key in ["summary", "description"] {
            assert!(
                a.annotations[key].contains("RagPipeline team-a/docs"),
                "{name} {key}"
            );
        }
        assert_eq!(
            a.annotations["runbook_url"],
            format!("https://runbooks.example.com/ragops/{name}")
        );
        assert!(a.for_.is_some(), "{name}");
        let scoped = a
            .expr
            .contains(r#"namespace="team-a",ragops_io_pipeline="docs""#)
            || a.expr.contains(r#"namespace="team-a",pipeline="docs""#);
        assert!(scoped, "{name} selects only this pipeline: {}", a.expr);
    }
}

#[test]
fn thresholds_come_from_the_spec() {
    let spec = AlertsSpec {
        error_ratio: 0.2,
        error_ratio_warning: 0.02,
        p99_latency_seconds: 7.5,
        cost_per_hour: 3.0,
        availability_objective: 0.99,
        token_prices: crate::api::TokenPrices {
            prompt_per1k: 0.5,
            completion_per1k: 1.5,
        },
        runbook_base_url: "https://wiki/rb/".into(),
        ..AlertsSpec::default()
    };
    let (recording, alerts) = rendered(&spec);
    assert!(
        alert(&alerts, "RagPipelineErrorRatioCritical")
            .expr
            .ends_with("> 0.2")
    );
    assert!(
        alert(&alerts, "RagPipelineErrorRatioWarning")
            .expr
            .ends_with("> 0.02")
    );
    assert!(
        alert(&alerts, "RagPipelineLatencyP99High")
            .expr
            .ends_with("> 7.5")
    );
    assert!(alert(&alerts, "RagPipelineCostHigh").expr.ends_with("> 3"));
    // 1 % budget: fast burn 14.4 %, slow 6 %.
    let fast = &alert(&alerts, "RagPipelineErrorBudgetBurnFast").expr;
    assert!(
        fast.contains("ratio_rate1h") && fast.contains("ratio_rate5m") && fast.contains("> 0.144"),
        "{fast}"
    );
    assert!(
        alert(&alerts, "RagPipelineErrorBudgetBurnSlow")
            .expr
            .contains("> 0.06")
    );
    let cost = recording
        .iter()
        .find(|r| r.record.as_deref() == Some("ragops:llm_cost_dollars:increase1h"))
        .unwrap();
    assert!(
        cost.expr.contains("* 0.0005") && cost.expr.contains("* 0.0015"),
        "{}",
        cost.expr
    );
    assert_eq!(
        alert(&alerts, "RagPipelineRolloutStuck").for_.as_deref(),
        Some("6m")
    );
    let quick = AlertsSpec {
        error_ratio_for_seconds: 10,
        ..AlertsSpec::default()
    };
    let (_, quick) = rendered(&quick);
    let critical = alert(&quick, "RagPipelineErrorRatioCritical");
    assert_eq!(critical.for_.as_deref(), Some("10s"));
    assert_eq!((duration(300), duration(0)), ("5m".into(), "0s".into()));
    assert!(
        alert(&alerts, "RagPipelineCostHigh").annotations["runbook_url"]
            .starts_with("https://wiki/rb/")
    );
}

#[test]
fn recording_rules_aggregate_answers_per_pipeline() {
    let (recording, _) = rendered(&AlertsSpec::default());
    let names: Vec<_> = recording
        .iter()
        .filter_map(|r| r.record.as_deref())
        .collect();
    assert_eq!(
        names,
        [
            "ragops:requests:rate5m",
            "ragops:requests_by_color:rate5m",
            "ragops:errors:ratio_rate5m",
            "ragops:errors:ratio_rate30m",
            "ragops:errors:ratio_rate1h",
            "ragops:errors:ratio_rate6h",
            "ragops:latency_seconds:p95_5m",
            "ragops:latency_seconds:p99_5m",
            "ragops:llm_latency_seconds:p95_5m",
            "ragops:llm_tokens:increase1h",
            "ragops:llm_cost_dollars:increase1h",
            "ragops:rate_limited:rate5m",
        ]
    );
    let errors = &recording[2].expr;
    assert!(
        errors.contains(r#"code=~"5..""#) && errors.contains(ANSWERS),
        "{errors}"
    );
    assert!(
        recording
            .iter()
            .all(|r| r.expr.contains(r#"ragops_io_pipeline="docs""#))
    );
}

#[test]
fn numbers_print_without_float_noise() {
    for (x, want) in [
        (0.0144, "0.0144"),
        (14.4 * 0.001, "0.0144"),
        (2.0, "2"),
        (1_000_000.0, "1000000"),
        (0.00015 / 1000.0, "0.00000015"),
    ] {
        assert_eq!(num(x), want, "{x}");
    }
}
