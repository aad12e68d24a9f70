//! `make bench-operator`: ragops and Argo Rollouts side by side at N objects each, each on a
//! fresh control plane of its own, in one run. Phases: create → all Healthy, a steady state, one
//! template change for all → all switched, the tail until the old pods are gone. Per phase: wall
//! time, the controller's memory and CPU, the API server's CPU, the controller's API requests
//! from the audit log, and cutover latency (new pods Ready → active Service switched). Every
//! phase gives up after a limit and reports where it stood.

mod bed;
mod observe;
pub mod report;
pub mod secrets;
mod standin;
mod subject;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::Value;

pub use self::bed::{Bed, ControlPlane, Sampler};
use self::observe::{Observer, Seen};
use self::report::{Phase, Requests, Run};
use self::standin::StandIn;
pub use self::subject::Subject;
use self::subject::{NAMESPACE, REPLICAS};
use crate::audit::AuditLog;
use crate::cluster::OPERATOR_USER;
use crate::process::ChildProcess;
use crate::wait::wait_for;

/// Between the create phase and the steady window.
const SETTLE: Duration = Duration::from_secs(5);

pub struct Options {
    pub sizes: Vec<usize>,
    pub subjects: Vec<Subject>,
    /// Each phase gives up after this long.
    pub limit: Duration,
    /// Length of the steady-state window.
    pub steady: Duration,
    pub control_plane: ControlPlane,
    /// Where each run's cluster state goes.
    pub state_root: PathBuf,
    /// Requests in flight while the bench itself creates or changes the objects.
    pub concurrency: usize,
}

/// Runs every subject at every size; returns the report (Markdown tables, then the requests by
/// kind).
pub async fn run(o: &Options) -> Result<String> {
    let mut tables = String::new();
    let mut details = String::new();
    for &n in &o.sizes {
        let mut runs = vec![];
        for &subject in &o.subjects {
            let run = run_one(o, subject, n)
                .await
                .with_context(|| format!("{} at N = {n}", subject.label()))?;
            eprintln!("{}", report::breakdown(&run));
            details.push_str(&report::breakdown(&run));
            runs.push(run);
        }
        tables.push_str(&report::table(&runs));
        tables.push('\n');
    }
    Ok(format!(
        "{}\n{tables}\nAPI requests of the controller by verb and resource:\n\n```\n{details}```\n",
        machine(o)
    ))
}

/// One line on where and how it ran.
fn machine(o: &Options) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown CPU", |m| m.trim_start_matches([' ', '\t', ':']));
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores ({model}); each run on a fresh control plane, kube-controller-manager and \
         kube-scheduler at client QPS {} / burst {}; {} replicas per object; phase limit {} s, \
         steady window {} s (opened {} s after the last object became Healthy).\n",
        o.control_plane.qps,
        o.control_plane.burst,
        REPLICAS,
        o.limit.as_secs(),
        o.steady.as_secs(),
        SETTLE.as_secs()
    )
}

async fn run_one(o: &Options, subject: Subject, n: usize) -> Result<Run> {
    let slug = if subject == Subject::Ragops {
        "ragops"
    } else {
        "argo"
    };
    eprintln!(
        "bench: {} at N = {n}: starting a control plane",
        subject.label()
    );
    let bed = Bed::up(
        &o.state_root.join(format!("{slug}-{n}")),
        2 * REPLICAS as usize * n,
        o.control_plane,
    )?;
    let cluster = &bed.cluster;
    let client = cluster.client().await?;
    for file in subject.crd_files()? {
        let path = file.to_string_lossy().into_owned();
        cluster.kubectl_output(&["apply", "--server-side", "-f", &path])?;
    }
    // A CRD has no conditions for a moment after it is created, which `kubectl wait` fails on.
    let established = [
        "wait",
        "--for=condition=Established",
        "crd",
        "--all",
        "--timeout=5s",
    ];
    wait_for("the CRDs established", Duration::from_secs(60), || async {
        Ok(cluster.kubectl_output(&established).ok())
    })
    .await?;
    cluster.kubectl_output(&["create", "namespace", NAMESPACE])?;
    let standin = StandIn::start(&cluster.pod_cidrs).await?;
    eprintln!(
        "bench: the stand-in listens on {} pod addresses",
        standin.addresses
    );
    for object in subject.shared_objects() {
        create(&client, object).await?;
    }
    let observer = Observer::start(&client, subject);
    let mut controller = ChildProcess::spawn(slug, subject.command(cluster)?, &cluster.logs_dir())?;
    let ctl = Sampler::start(controller.id());
    let api = Sampler::start(bed.pid("kube-apiserver")?);
    let mut clocks = vec![];

    let clock = Clock::start("create", &ctl, &api);
    let names: Vec<String> = (0..n).map(|i| format!("p-{i:04}")).collect();
    let objects = names.iter().flat_map(|name| subject.objects(name));
    futures::stream::iter(objects.map(|v| create(&client, v)))
        .buffer_unordered(o.concurrency)
        .try_collect::<Vec<()>>()
        .await?;
    let done = wait_goal(&observer, subject, n, clock.name, o.limit, |s| {
        s.healthy(None)
    })
    .await;
    clocks.push(clock.stop(done, n, &ctl, &api, None));
    let before: HashMap<String, Option<String>> = {
        let seen = observer.seen.lock().unwrap();
        seen.objects
            .iter()
            .map(|(k, p)| (k.clone(), p.serving.clone()))
            .collect()
    };

    // The writes that trail the last Healthy status (its Events) belong to the create phase, not
    // to the steady state: the window opens after a settling pause that no phase counts.
    tokio::time::sleep(SETTLE).await;
    let clock = Clock::start("steady", &ctl, &api);
    tokio::time::sleep(o.steady).await;
    let done = observer.seen.lock().unwrap().healthy(None);
    clocks.push(clock.stop(done, n, &ctl, &api, None));

    let clock = Clock::start("rollout", &ctl, &api);
    let ar = subject.resource();
    let objects: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &ar);
    let change = subject.change();
    futures::stream::iter(names.iter().map(|name| {
        let (objects, change) = (&objects, &change);
        async move {
            objects
                .patch(name, &PatchParams::default(), &Patch::Merge(change))
                .await
                .with_context(|| format!("changing {name}"))
        }
    }))
    .buffer_unordered(o.concurrency)
    .try_collect::<Vec<_>>()
    .await?;
    let done = wait_goal(&observer, subject, n, clock.name, o.limit, |s| {
        s.healthy(Some(&before))
    })
    .await;
    let latencies = observer
        .seen
        .lock()
        .unwrap()
        .cutover_latencies(clock.at, REPLICAS as usize);
    clocks.push(clock.stop(done, n, &ctl, &api, report::median_p90(latencies)));

    let clock = Clock::start("tail", &ctl, &api);
    let (owner, replicas) = (subject.owner_label(), REPLICAS as usize);
    let done = wait_goal(&observer, subject, n, clock.name, o.limit, |s| {
        s.settled(owner, replicas)
    })
    .await;
    clocks.push(clock.stop(done, n, &ctl, &api, None));
    controller.ensure_running()?;
    drop(ctl);
    let _ = controller.terminate(Duration::from_secs(10));

    let audit = AuditLog::new(cluster)?;
    audit.sync(&client).await?;
    let events = audit.requests_by(OPERATOR_USER, ..)?;
    let phases = clocks
        .into_iter()
        .map(|(mut phase, from, to)| {
            phase.requests = Requests::count(
                events
                    .iter()
                    .filter(|e| e.received >= from && e.received < to),
            );
            phase
        })
        .collect();
    eprintln!(
        "bench: the stand-in answered {} requests",
        standin.requests()
    );
    Ok(Run {
        subject: subject.label(),
        n,
        phases,
    })
}

/// Waits until `goal` of what was seen reaches `n` or `limit` passes; returns how far it got.
async fn wait_goal(
    observer: &Observer,
    subject: Subject,
    n: usize,
    phase: &str,
    limit: Duration,
    goal: impl Fn(&Seen) -> usize,
) -> usize {
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + limit;
    let mut next_report = start + Duration::from_secs(15);
    loop {
        let changed = observer.changed.notified();
        let done = goal(&observer.seen.lock().unwrap());
        if done >= n {
            return done;
        }
        if Instant::now() >= next_report {
            eprintln!(
                "bench: {} {phase}: {done} of {n} after {:.0} s",
                subject.label(),
                start.elapsed().as_secs_f64()
            );
            next_report += Duration::from_secs(15);
        }
        // Woken by any watch event; the timeout only paces the progress lines.
        if tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + Duration::from_secs(5)),
            changed,
        )
        .await
        .is_err()
            && tokio::time::Instant::now() >= deadline
        {
            return goal(&observer.seen.lock().unwrap());
        }
    }
}

/// The start of a phase, in both clocks, and the two processes' readings then.
struct Clock {
    name: &'static str,
    at: Instant,
    wall: Timestamp,
    ctl_cpu: Duration,
    api_cpu: Duration,
}

impl Clock {
    fn start(name: &'static str, ctl: &Sampler, api: &Sampler) -> Self {
        eprintln!("bench: phase {name}");
        Self {
            name,
            at: Instant::now(),
            wall: Timestamp::now(),
            ctl_cpu: ctl.now().map(|s| s.cpu).unwrap_or_default(),
            api_cpu: api.now().map(|s| s.cpu).unwrap_or_default(),
        }
    }

    /// The phase as measured, with its wall-clock window (for the audit log).
    fn stop(
        self,
        done: usize,
        of: usize,
        ctl: &Sampler,
        api: &Sampler,
        cutover: Option<(f64, f64)>,
    ) -> (Phase, Timestamp, Timestamp) {
        let (c, a) = (ctl.now(), api.now());
        let end = Instant::now();
        let phase = Phase {
            name: self.name,
            wall: end - self.at,
            done: done.min(of),
            of,
            controller_cpu: c
                .map(|s| s.cpu.saturating_sub(self.ctl_cpu))
                .unwrap_or_default(),
            apiserver_cpu: a
                .map(|s| s.cpu.saturating_sub(self.api_cpu))
                .unwrap_or_default(),
            rss_peak: ctl.peak_rss(self.at, end),
            rss_end: c.map(|s| s.rss_bytes).unwrap_or(0),
            requests: Requests::default(),
            cutover,
        };
        (phase, self.wall, Timestamp::now())
    }
}

/// Creates one object from its manifest in [`NAMESPACE`].
async fn create(client: &Client, manifest: Value) -> Result<()> {
    let object: DynamicObject = serde_json::from_value(manifest)?;
    let types = object
        .types
        .clone()
        .context("manifest without apiVersion/kind")?;
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", &types.api_version));
    let kind = types.kind.to_lowercase();
    let plural = match kind.ends_with('x') || kind.ends_with('s') {
        true => format!("{kind}es"),
        false => format!("{kind}s"),
    };
    let gvk = kube::api::GroupVersionKind::gvk(group, version, &types.kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &ar);
    api.create(&PostParams::default(), &object)
        .await
        .with_context(|| {
            format!(
                "creating {} {}",
                types.kind,
                object.metadata.name.unwrap_or_default()
            )
        })?;
    Ok(())
}
