//! Retrieval regression analysis against the real control plane and real runtimes on the pod
//! IPs: a golden set of 300 generated queries over 60 generated documents runs against both
//! colours before traffic moves. A change that keeps recall promotes; a re-index that drops a
//! quarter of the documents falls more than `maxRegression` below the active colour, is stopped
//! with the regressed queries named in the condition and an Event, and the old colour keeps
//! traffic throughout.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::{TrafficGuard, World, new_revision};
use e2e::spec_runtime;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use rag_operator::api::{Color, GoldenSetPhase};
use serde_json::{Value, json};

const DOCS: usize = 60;
const DROPPED: usize = 15;
/// Two runtimes' ingest, a rollout and 300 queries on each colour, with room to spare.
const TIMEOUT: Duration = Duration::from_secs(240);

/// A made-up word for `i` and a role: distinct for every document, so lexical retrieval finds
/// exactly its document.
fn word(prefix: &str, i: usize) -> String {
    const SYLLABLES: [&str; 10] = ["ka", "lo", "mi", "nu", "pe", "ri", "so", "tu", "va", "ze"];
    let digits = format!("{i:03}");
    let tail: String = digits
        .bytes()
        .map(|d| SYLLABLES[usize::from(d - b'0')])
        .collect();
    format!("{prefix}{tail}")
}

fn doc_id(i: usize) -> String {
    format!("station-{i:02}.md")
}

/// The generated corpus, merged into the sample documents.
fn corpus() -> Value {
    let docs: BTreeMap<String, String> = (0..DOCS)
        .map(|i| {
            let (name, ledger, beacon) = (word("zor", i), word("quil", i), word("brem", i));
            let text = format!(
                "# Station {name}\nThe {name} station keeps the {ledger} ledger and lights the \
                 {beacon} beacon every night.\n"
            );
            (doc_id(i), text)
        })
        .collect();
    json!(docs)
}

/// Five questions per document, 300 lines of JSON Lines.
fn golden_set() -> String {
    let mut lines = vec![];
    for i in 0..DOCS {
        let (name, ledger, beacon) = (word("zor", i), word("quil", i), word("brem", i));
        for query in [
            format!("Which station keeps the {ledger} ledger?"),
            format!("Who lights the {beacon} beacon?"),
            format!("What does the {name} station keep?"),
            name.clone(),
            format!("{ledger} and {beacon}"),
        ] {
            let line = json!({ "query": query, "expectSourceIDs": [doc_id(i)] });
            lines.push(line.to_string());
        }
    }
    lines.join("\n")
}

/// ConfigMap `golden` with `text` under the default key.
async fn create_golden_set(world: &World, text: &str) -> Result<()> {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "golden" },
        "data": { "golden.jsonl": text },
    }))?;
    world
        .ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_reindex_that_drops_recall_is_stopped_with_the_queries_named_and_one_that_keeps_it_promotes()
-> Result<()> {
    let world = World::with_pods("golden", spec_runtime(None)).await?;
    world.edit_docs(corpus()).await?;
    create_golden_set(&world, &golden_set()).await?;
    let guard = TrafficGuard::start(&world, "handbook");
    let spec = json!({ "rollout": {
        "healthCheck": { "periodSeconds": 1, "successThreshold": 2 },
        "scaleDownDelaySeconds": 3,
        "goldenSet": {
            "configMapRef": { "name": "golden" },
            "minRecallAtK": 0.5, "maxRegression": 0.05,
            "concurrency": 4, "timeBudgetSeconds": 120
        }
    } });
    world.create_pipeline("handbook", spec).await?;

    // A first deploy: the set runs on blue alone, against minRecallAtK.
    let p = world
        .wait_healthy_on_within("handbook", Color::Blue, TIMEOUT)
        .await?;
    let run = p.status.unwrap().golden_set.expect("the run is in status");
    assert_eq!(
        (run.phase, run.queries),
        (GoldenSetPhase::Passed, Some(300))
    );
    let blue = run.target.unwrap();
    eprintln!(
        "blue: recall@5 {:.3}, MRR {:.3}",
        blue.recall_at_k, blue.mrr
    );
    assert!(blue.recall_at_k >= 0.95, "{blue:?}");
    assert_eq!(run.active, None);

    // A change that keeps recall promotes, compared with blue on the same set.
    let started = Instant::now();
    world.patch_spec("handbook", new_revision("r2")).await?;
    let p = world
        .wait_healthy_on_within("handbook", Color::Green, TIMEOUT)
        .await?;
    let run = p.status.unwrap().golden_set.unwrap();
    let (green, active) = (run.target.unwrap(), run.active.unwrap());
    eprintln!(
        "green: recall@5 {:.3}, MRR {:.3} against blue {:.3}, {:.3}; rollout {:?}",
        green.recall_at_k,
        green.mrr,
        active.recall_at_k,
        active.mrr,
        started.elapsed()
    );
    assert_eq!(
        (run.phase, active.color),
        (GoldenSetPhase::Passed, Color::Blue)
    );
    assert!(green.recall_at_k + 0.05 >= active.recall_at_k);
    world
        .wait_event_note("handbook", "GoldenSetPassed", "green")
        .await?;

    // A re-index that loses a quarter of the stations: stopped, green keeps traffic.
    let dropped: BTreeMap<String, Value> = (0..DROPPED).map(|i| (doc_id(i), Value::Null)).collect();
    world.edit_docs(json!(dropped)).await?;
    world
        .wait_pipeline_within("handbook", "the golden set to fail", TIMEOUT, |p| {
            let run = p.status.as_ref().and_then(|s| s.golden_set.as_ref());
            run.is_some_and(|r| r.color == Color::Blue && r.phase == GoldenSetPhase::Failed)
        })
        .await?;
    let message = world
        .wait_degraded("handbook", "RetrievalRegressed")
        .await?;
    eprintln!("condition: {message}");
    let first_lost = format!("Which station keeps the {} ledger?", word("quil", 0));
    assert!(message.contains("queries regressed"), "{message}");
    assert!(message.contains(&first_lost), "{message}");
    world
        .wait_event_note("handbook", "RetrievalRegressed", &first_lost)
        .await?;
    let p = world.pipelines().get("handbook").await?;
    let status = p.status.unwrap();
    let run = status.golden_set.unwrap();
    assert_eq!(
        (run.phase, run.color),
        (GoldenSetPhase::Failed, Color::Blue)
    );
    // Every query of a dropped station, and perhaps a few others whose first hit another pod
    // ranked a place lower (ties in the fused ranking).
    let regressed = run.regressed.unwrap_or_default();
    assert!((75..=90).contains(&regressed), "{run:?}");
    let (new, active) = (run.target.unwrap(), run.active.unwrap());
    eprintln!(
        "re-indexed blue: recall@5 {:.3}, MRR {:.3} against green {:.3}, {:.3}",
        new.recall_at_k, new.mrr, active.recall_at_k, active.mrr
    );
    assert!(new.recall_at_k < active.recall_at_k - 0.05);
    assert_eq!(status.active_color, Some(Color::Green));
    assert_eq!(
        world.service_color("handbook").await?.as_deref(),
        Some("green")
    );
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    assert_eq!(world.pods.errors(), Vec::<String>::new());
    Ok(())
}

#[tokio::test]
async fn a_missing_or_unparsable_golden_set_is_a_user_error_naming_the_field_and_the_line()
-> Result<()> {
    let world = World::new("golden-bad").await?;
    let mut spec = common::fast_rollout();
    common::merge(
        &mut spec,
        json!({ "rollout": { "goldenSet": { "configMapRef": { "name": "golden" } } } }),
    );
    world.create_pipeline("docs", spec).await?;
    let message = world.wait_degraded("docs", "InvalidGoldenSet").await?;
    assert_eq!(
        message,
        "spec.rollout.goldenSet.configMapRef.name: ConfigMap \"golden\" not found in this namespace"
    );

    // Created with a broken second line: the condition names the key and the line.
    let broken = "{\"query\": \"a\", \"expectSourceIDs\": [\"a.md\"]}\n{\"query\": \"b\"}\n";
    create_golden_set(&world, broken).await?;
    world
        .wait_pipeline("docs", "the line named", |p| {
            let conditions = p.status.as_ref().map(|s| s.conditions.as_slice());
            conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Degraded" && c.message.contains("line 2"))
        })
        .await?;
    let message = world.wait_degraded("docs", "InvalidGoldenSet").await?;
    assert!(
        message.starts_with(
            "spec.rollout.goldenSet.configMapRef (ConfigMap \"golden\" key \"golden.jsonl\"): \
             line 2: missing field `expectSourceIDs`"
        ),
        "{message}"
    );
    world
        .wait_event_note("docs", "InvalidGoldenSet", "line 2")
        .await?;
    Ok(())
}
