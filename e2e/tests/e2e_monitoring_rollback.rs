//! Post-promotion analysis on the real monitoring chain: a revision that is healthy at the
//! switch and starts failing after it is rolled back automatically. r2 answers through a model
//! server the test controls; once the Service selects green, r2 has answered and Prometheus has
//! measured it healthy, the test flips that model server to 503. The runtimes answer 5xx,
//! Prometheus scrapes that from green's pods (through the operator's own ServiceMonitor), the
//! built-in `errorRatio` fails, and the selector goes back to blue, which post-promotion analysis
//! kept up. A client asks through the live Service's colour throughout and counts the answers of
//! each revision and the failures.
//!
//! It prints the rollback reaction time: from the flip, from the first scrape that saw a failed
//! answer and from the first failed measurement to the selector back on blue (README,
//! "Performance").
//!
//! Ignored in the plain suite for the same reason as e2e_monitoring_bed (EndpointSlices refuse
//! loopback pod IPs); `make e2e-monitoring` runs it on routed pod IPs in a network namespace.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use common::model::{fixed_model_server, llm, model_server};
use common::query::query;
use common::{TrafficGuard, World, is_ready, merge};
use e2e::monitoring::MonitoringBed;
use e2e::wait_for;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::api::ListParams;
use rag_operator::api::{AnalysisPhase, AnalysisStage, Color, MeasurementOutcome, Phase};
use serde_json::json;

const PIPELINE: &str = "postrb";
const TIMEOUT: Duration = Duration::from_secs(180);
const QUESTION: &str = "How does a blue-green rollout switch traffic?";
/// The ServiceMonitor's scrape interval, in seconds.
const SCRAPE_SECONDS: u64 = 2;

/// What the client saw: per revision, answers that were 200 and answers that were not (and
/// whether each of those came after the flip), and every request that got no answer.
#[derive(Default, Debug)]
struct Seen {
    ok: BTreeMap<String, u64>,
    /// Per revision: (non-200 answers received before the flip, after it).
    not_ok: BTreeMap<String, (u64, u64)>,
    /// When the client first saw a non-200 answer.
    first_failure: Option<Instant>,
    errors: Vec<String>,
}

/// A client asking through the live Service throughout: each time the colour the Service
/// selects, one of that colour's ready pods, noting the pod's revision.
struct Client {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn start(world: &World, flipped: Arc<AtomicBool>) -> Self {
        let (services, pods): (Api<Service>, Api<Pod>) = (world.ns.api(), world.ns.api());
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (s, out) = (stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                match ask(&services, &pods).await {
                    Ok((revision, 200)) => {
                        *out.lock().unwrap().ok.entry(revision).or_default() += 1
                    }
                    Ok((revision, _)) => {
                        // The model server reads the flag before the runtime answers, so a
                        // failure caused by the flip is seen with the flag set.
                        let after = flipped.load(Ordering::SeqCst);
                        let mut seen = out.lock().unwrap();
                        let counts = seen.not_ok.entry(revision).or_default();
                        if after {
                            counts.1 += 1
                        } else {
                            counts.0 += 1
                        }
                        seen.first_failure.get_or_insert_with(Instant::now);
                    }
                    Err(e) => out.lock().unwrap().errors.push(format!("{e:#}")),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { stop, seen, task }
    }

    fn ok(&self, revision: &str) -> u64 {
        self.seen
            .lock()
            .unwrap()
            .ok
            .get(revision)
            .copied()
            .unwrap_or(0)
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// One question through the live colour: the revision of the pod asked and the status code.
async fn ask(services: &Api<Service>, pods: &Api<Pod>) -> Result<(String, u16)> {
    let svc = services.get(PIPELINE).await?;
    let color = svc
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("ragops.io/color").cloned())
        .context("the Service selects no colour")?;
    let selector = format!("ragops.io/pipeline={PIPELINE},ragops.io/color={color}");
    let list = pods.list(&ListParams::default().labels(&selector)).await?;
    let pod = list
        .items
        .iter()
        .find(|p| is_ready(p))
        .with_context(|| format!("the Service selects {color}, which has no ready pod"))?;
    let revision = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("ragops.io/revision").cloned())
        .context("a pod without a revision label")?;
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    let addr = SocketAddr::new(ip.context("a ready pod without an IP")?.parse()?, 8080);
    let (code, _) = query(addr, QUESTION, None).await?;
    Ok((revision, code))
}

/// Seconds since the epoch.
fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The time of the first scrape that saw a 5xx answer of green, from the samples themselves.
async fn first_failing_scrape(bed: &MonitoringBed, ns: &str) -> Result<f64> {
    let promql = format!(
        r#"rag_http_requests_total{{namespace="{ns}",ragops_io_pipeline="{PIPELINE}",ragops_io_color="green",route="/v1/query",code=~"5.."}}[10m]"#
    );
    let result = bed.query(&promql).await?;
    let first = result
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|series| series["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|sample| sample[0].as_f64())
        .fold(f64::INFINITY, f64::min);
    anyhow::ensure!(first.is_finite(), "no 5xx sample of green: {result}");
    Ok(first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs pod IPs that EndpointSlices accept: `make e2e-monitoring` runs it"]
async fn a_revision_that_fails_after_the_switch_is_rolled_back_by_post_promotion_error_ratio()
-> Result<()> {
    let world = World::monitored("postrb").await?;
    let bed = MonitoringBed::start(&world.cluster, world.ns.name()).await?;
    let flipped = Arc::new(AtomicBool::new(false));
    let good = fixed_model_server(false).await?;
    let switchable = model_server(flipped.clone()).await?;
    let mut spec = llm(good);
    merge(
        &mut spec,
        json!({
            "rollout": { "smokeQueries": null, "scaleDownDelaySeconds": 2,
                         "healthCheck": { "periodSeconds": 1, "successThreshold": 1 } },
            "monitoring": { "serviceMonitor": { "interval": format!("{SCRAPE_SECONDS}s") } }
        }),
    );
    world.create_pipeline(PIPELINE, spec).await?;
    let p = world.wait_healthy_on(PIPELINE, Color::Blue).await?;
    let rev1 = p.status.and_then(|s| s.active_revision).unwrap_or_default();
    let guard = TrafficGuard::start(&world, PIPELINE);
    let client = Client::start(&world, flipped.clone());
    wait_for("an answer from r1", TIMEOUT, || async {
        Ok((client.ok(&rev1) > 0).then_some(()))
    })
    .await?;

    // r2 answers through the switchable model server, under post-promotion errorRatio. Count
    // is long enough that the analysis cannot pass before the flip; the first measurements
    // (green has had no answers yet) are inconclusive, which the limit tolerates.
    let mut r2 = llm(switchable);
    merge(
        &mut r2,
        json!({ "rollout": { "analysis": {
            "prometheus": { "address": bed.url() },
            "metrics": [{ "name": "errors", "builtin": "errorRatio", "threshold": 0.2,
                          "intervalSeconds": 5, "count": 36, "inconclusiveLimit": 10 }],
            "postPromotion": { "metrics": ["errors"] }
        } } }),
    );
    world.patch_spec(PIPELINE, r2).await?;
    wait_for("the Service on green", TIMEOUT, || async {
        Ok((world.service_color(PIPELINE).await?.as_deref() == Some("green")).then_some(()))
    })
    .await?;
    let rev2 = world
        .pipelines()
        .get(PIPELINE)
        .await?
        .status
        .and_then(|s| s.active_revision)
        .unwrap_or_default();
    assert_ne!(rev1, rev2);

    // Healthy at the switch: r2 answers through the live Service, and its post-promotion
    // analysis has measured it healthy at least once.
    wait_for("an answer from r2", TIMEOUT, || async {
        Ok((client.ok(&rev2) > 0).then_some(()))
    })
    .await?;
    world
        .wait_pipeline_within(
            PIPELINE,
            "a successful post-promotion measurement",
            TIMEOUT,
            |p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.analysis.as_ref())
                    .is_some_and(|run| {
                        run.stage == AnalysisStage::PostPromotion
                            && run.revision == rev2
                            && run.phase == AnalysisPhase::Running
                            && run.metrics.iter().any(|m| m.successful > 0)
                    })
            },
        )
        .await?;

    // r2 goes bad.
    let (flip_instant, flip_time) = (Instant::now(), SystemTime::now());
    flipped.store(true, Ordering::SeqCst);
    wait_for("the Service back on blue", TIMEOUT, || async {
        Ok((world.service_color(PIPELINE).await?.as_deref() == Some("blue")).then_some(()))
    })
    .await?;
    let (back_instant, back_time) = (Instant::now(), SystemTime::now());

    let p = world
        .wait_pipeline_within(
            PIPELINE,
            "Degraded: PostPromotionAnalysisFailed",
            TIMEOUT,
            |p| {
                p.status.as_ref().is_some_and(|s| {
                    s.phase == Some(Phase::Degraded)
                        && s.conditions.iter().any(|c| {
                            c.type_ == "Degraded"
                                && c.status == "True"
                                && c.reason == "PostPromotionAnalysisFailed"
                        })
                })
            },
        )
        .await?;
    let status = p.status.unwrap();
    let message = &status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap()
        .message;
    assert!(
        message.contains("metric errors failed with result"),
        "{message}"
    );
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(status.active_revision.as_deref(), Some(rev1.as_str()));
    let rollback = status.rollback.clone().expect("status.rollback is set");
    assert_eq!(
        (rollback.from.as_str(), rollback.to.as_str()),
        (rev2.as_str(), rev1.as_str())
    );
    let run = status.analysis.clone().expect("the run is in status");
    assert_eq!(
        (run.stage, run.phase, run.revision.as_str()),
        (
            AnalysisStage::PostPromotion,
            AnalysisPhase::Failed,
            rev2.as_str()
        )
    );
    let first_failed_measurement = run
        .metrics
        .iter()
        .flat_map(|m| &m.measurements)
        .filter(|m| m.outcome == MeasurementOutcome::Failed)
        .map(|m| m.at.0.as_millisecond() as f64 / 1000.0)
        .fold(f64::INFINITY, f64::min);
    world
        .wait_event_note_within(
            PIPELINE,
            "PostPromotionAnalysisFailed",
            "traffic back on blue",
            TIMEOUT,
        )
        .await?;

    // r1 answers again through the live Service.
    let r1_before = client.ok(&rev1);
    wait_for("an answer from r1 after the rollback", TIMEOUT, || async {
        Ok((client.ok(&rev1) > r1_before).then_some(()))
    })
    .await?;

    // Not promoted again: the failed colour winds down while blue keeps the traffic and the
    // rollback stays in force.
    wait_for(
        "green to be scaled to zero",
        Duration::from_secs(60),
        || async { Ok((world.replicas(PIPELINE, "green").await? == Some(0)).then_some(())) },
    )
    .await?;
    let p = world.pipelines().get(PIPELINE).await?;
    let status = p.status.unwrap();
    assert_eq!(status.active_color, Some(Color::Blue));
    assert_eq!(status.phase, Some(Phase::Degraded));
    assert!(status.rollback.is_some(), "{status:?}");
    assert_eq!(
        world.service_color(PIPELINE).await?.as_deref(),
        Some("blue")
    );

    let seen = client.finish().await;
    let first_scrape = first_failing_scrape(&bed, world.ns.name()).await?;
    guard
        .wait_switches(&["blue", "green", "blue"], Duration::from_secs(15))
        .await?;
    assert_eq!(guard.switches(), ["blue", "green", "blue"]);
    assert_eq!(guard.violations(), Vec::<String>::new());

    eprintln!("answers (200) per revision: {:?}", seen.ok);
    eprintln!(
        "non-200 answers per revision (before the flip, after): {:?}",
        seen.not_ok
    );
    eprintln!("requests without an answer: {:?}", seen.errors);
    assert!(seen.ok.get(&rev1).copied().unwrap_or(0) > 0);
    assert!(
        seen.ok.get(&rev2).copied().unwrap_or(0) > 0,
        "r2 answered before it failed"
    );
    assert_eq!(seen.not_ok.get(&rev1), None, "r1 never failed");
    let (before, after) = seen.not_ok.get(&rev2).copied().unwrap_or_default();
    assert_eq!(before, 0, "r2 failed only after the flip");
    assert!(after > 0, "the client saw r2 fail");
    assert_eq!(seen.errors, Vec::<String>::new());

    let back = epoch(back_time);
    let first_failure = seen
        .first_failure
        .map(|t| t.duration_since(flip_instant).as_secs_f64())
        .unwrap_or(f64::NAN);
    eprintln!(
        "rollback reaction (scrape {SCRAPE_SECONDS}s, intervalSeconds 5, failureLimit 0, \
         threshold 0.2): flip -> selector back on blue {:.1} s; first failed answer {first_failure:.1} s \
         after the flip; first failing scrape -> back {:.1} s; first failed measurement -> back {:.1} s \
         (flip at {:.1}, first failing scrape at {first_scrape:.1}, first failed measurement at \
         {first_failed_measurement:.1}, back at {back:.1})",
        back_instant.duration_since(flip_instant).as_secs_f64(),
        back - first_scrape,
        back - first_failed_measurement,
        epoch(flip_time),
    );
    Ok(())
}
