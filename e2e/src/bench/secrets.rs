//! `make bench-secrets`: the operator's memory in a cluster full of Secrets and ConfigMaps it
//! does not use. One fresh control plane; the operator (cluster-wide, as the chart runs it without
//! `watchNamespace`) is started once on the empty cluster and once after the unrelated objects
//! were created, and its RSS is read from `/proc` from start until it reports ready and for a
//! hold window after. What the operator keeps of a Secret or ConfigMap, and how many it
//! deserializes at once while listing, is what this measures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{Bed, ControlPlane, Sampler};
use crate::process::{ChildProcess, operator_binary, workspace_root};
use crate::wait::wait_for;

/// What to fill the cluster with.
#[derive(Clone, Debug)]
pub struct Options {
    /// Opaque Secrets, spread over `namespaces`.
    pub secrets: usize,
    /// Helm release Secrets (`type: helm.sh/release.v1`), the big ones of a real cluster.
    pub helm_secrets: usize,
    /// ConfigMaps no RagIndex reads.
    pub config_maps: usize,
    /// Size of each object's payload.
    pub kib: usize,
    pub namespaces: usize,
    /// How long to keep reading after the operator is ready.
    pub hold: Duration,
    pub concurrency: usize,
    pub state: PathBuf,
}

/// One start of the operator.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub ready_after: Duration,
    pub peak_rss: u64,
    pub end_rss: u64,
}

/// The operator's memory on the empty cluster and on the filled one, as a Markdown table.
pub async fn run(o: &Options) -> Result<String> {
    let cp = ControlPlane {
        qps: 100,
        burst: 200,
    };
    let bed = Bed::up(&o.state, 10, cp)?;
    let cluster = &bed.cluster;
    let crds = workspace_root().join("crds");
    cluster.kubectl_output(&["apply", "--server-side", "-f", &crds.to_string_lossy()])?;
    let client = cluster.client().await?;
    eprintln!("bench-secrets: the operator on an empty cluster");
    let empty = measure(&bed, o.hold).await?;
    eprintln!("bench-secrets: creating the unrelated objects");
    fill(&client, o).await?;
    eprintln!("bench-secrets: the operator on the filled cluster");
    let full = measure(&bed, o.hold).await?;
    Ok(report(o, &empty, &full))
}

fn report(o: &Options, empty: &Reading, full: &Reading) -> String {
    let mib = |b: u64| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0));
    let filled = format!(
        "{} Secrets, {} Helm release Secrets, {} ConfigMaps of {} KiB in {} namespaces",
        o.secrets, o.helm_secrets, o.config_maps, o.kib, o.namespaces
    );
    let row = |what: &str, r: &Reading| {
        format!(
            "| {what} | {:.1} s | {} | {} |\n",
            r.ready_after.as_secs_f64(),
            mib(r.peak_rss),
            mib(r.end_rss)
        )
    };
    let mut out = String::from("| cluster | ready after | RSS peak | RSS after the hold |\n");
    out.push_str("| --- | --- | --- | --- |\n");
    out.push_str(&row("empty", empty));
    out.push_str(&row(&filled, full));
    out
}

/// Starts the operator on every namespace, waits until it reports ready, holds, stops it.
async fn measure(bed: &Bed, hold: Duration) -> Result<Reading> {
    let port = free_port()?;
    let mut cmd = Command::new(operator_binary()?);
    cmd.env("KUBECONFIG", bed.cluster.operator_kubeconfig()?)
        .env("RUST_LOG", "warn")
        .args(["--log-format", "text", "--metrics-addr"])
        .arg(format!("127.0.0.1:{port}"));
    let mut operator = ChildProcess::spawn("rag-operator", cmd, &bed.cluster.logs_dir())?;
    let sampler = Sampler::start(operator.id());
    let started = Instant::now();
    let url = format!("http://127.0.0.1:{port}/readyz");
    wait_for("the operator ready", Duration::from_secs(600), || async {
        let ok = reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success());
        Ok(ok.then_some(()))
    })
    .await?;
    let ready_after = started.elapsed();
    // Measuring, not waiting for a condition: the window in which a relist or a late page shows.
    tokio::time::sleep(hold).await;
    let end = sampler.now().context("reading the operator's memory")?;
    operator.ensure_running()?;
    let peak_rss = sampler.peak_rss(started, Instant::now());
    operator.terminate(Duration::from_secs(10))?;
    Ok(Reading {
        ready_after,
        peak_rss,
        end_rss: end.rss_bytes,
    })
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Creates the namespaces and every object, `concurrency` at a time.
async fn fill(client: &Client, o: &Options) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for i in 0..o.namespaces {
        let ns = Namespace {
            metadata: named(&namespace(i)),
            ..Namespace::default()
        };
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    let objects = (0..o.secrets)
        .map(|i| Object::Secret(i, "Opaque"))
        .chain((0..o.helm_secrets).map(|i| Object::Secret(o.secrets + i, "helm.sh/release.v1")))
        .chain((0..o.config_maps).map(Object::ConfigMap));
    futures::stream::iter(objects)
        .map(|object| create(client, o, object))
        .buffer_unordered(o.concurrency.max(1))
        .try_collect::<()>()
        .await
}

enum Object {
    Secret(usize, &'static str),
    ConfigMap(usize),
}

async fn create(client: &Client, o: &Options, object: Object) -> Result<()> {
    let (Object::Secret(i, _) | Object::ConfigMap(i)) = object;
    let pp = PostParams::default();
    let ns = namespace(i % o.namespaces.max(1));
    let name = format!("unrelated-{i}");
    match object {
        Object::Secret(i, type_) => {
            let secret = Secret {
                metadata: named(&name),
                type_: Some(type_.into()),
                data: Some(BTreeMap::from([(
                    "payload".into(),
                    ByteString(payload(i, o.kib)),
                )])),
                ..Secret::default()
            };
            let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
            api.create(&pp, &secret).await?;
        }
        Object::ConfigMap(i) => {
            let text = String::from_utf8_lossy(&payload(i, o.kib)).into_owned();
            let cm = ConfigMap {
                metadata: named(&name),
                data: Some(BTreeMap::from([("payload".into(), text)])),
                ..ConfigMap::default()
            };
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
            api.create(&pp, &cm).await?;
        }
    }
    Ok(())
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn namespace(i: usize) -> String {
    format!("unrelated-{i}")
}

/// `kib` KiB of printable bytes that differ per object (no two objects compress alike).
fn payload(seed: usize, kib: usize) -> Vec<u8> {
    let mut x = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..kib * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_size_asked_and_differ() {
        let (a, b) = (payload(1, 10), payload(2, 10));
        assert_eq!(a.len(), 10 * 1024);
        assert_ne!(a, b);
        assert!(a.iter().all(u8::is_ascii_lowercase));
    }
}
