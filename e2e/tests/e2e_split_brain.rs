//! Split brain: two operator replicas with distinct identities (`ragops-operator` and
//! `ragops-operator-b`, so the API server's audit log tells their requests apart). The leader
//! reaches the API server through a proxy that the test freezes for longer than the Lease: the
//! leader's process runs on, with its caches, while none of its requests arrive. It must stop
//! writing at its renew deadline, on its own clock, and exit; the standby takes over and rolls
//! out a change made during the freeze. The audit log must show no write by the old leader after
//! the new leader's first write, and the live Service must never select a colour without ready
//! pods.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::{TrafficGuard, World, fast_rollout, new_revision, operator_args};
use e2e::{
    AuditLog, ChildProcess, Cluster, FreezingProxy, OPERATOR_B_USER, OPERATOR_USER,
    PodServersOptions, wait_for,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rag_operator::api::Color;

const LEASE: &str = "ragops-split";
/// Lease 4 s, renew deadline 3 s, a try every second: a takeover within seconds.
const ELECTION: [&str; 10] = [
    "--leader-elect",
    "--lease-name",
    LEASE,
    "--lease-duration-seconds",
    "4",
    "--renew-deadline-seconds",
    "3",
    "--retry-period-seconds",
    "1",
    "--lease-namespace",
];

fn election(ns: &str) -> Vec<String> {
    let mut args: Vec<&str> = ELECTION.to_vec();
    args.push(ns);
    operator_args(&args)
}

/// A copy of `kubeconfig` whose server is `server`.
fn via(kubeconfig: &std::path::Path, server: &str, out: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let mut replaced = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.trim_start().strip_prefix("server: ") {
            Some(_) => {
                replaced += 1;
                format!("    server: {server}")
            }
            None => l.to_string(),
        })
        .collect();
    if replaced != 1 {
        bail!("expected one server in {}", kubeconfig.display());
    }
    std::fs::write(out, lines.join("\n"))?;
    Ok(())
}

/// The API server's address, from the operator's kubeconfig.
fn api_server(kubeconfig: &std::path::Path) -> Result<SocketAddr> {
    let text = std::fs::read_to_string(kubeconfig)?;
    let server = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("server: https://"))
        .context("no https server in the kubeconfig")?;
    Ok(server.trim().parse()?)
}

async fn holder(leases: &Api<Lease>) -> Result<Option<String>> {
    let held = leases.get_opt(LEASE).await?;
    Ok(held
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty()))
}

async fn wait_holder(leases: &Api<Lease>, pid: u32) -> Result<String> {
    let suffix = format!("-{pid}");
    wait_for(
        &format!("process {pid} to hold the Lease"),
        Duration::from_secs(30),
        || async { Ok(holder(leases).await?.filter(|h| h.ends_with(&suffix))) },
    )
    .await
}

#[tokio::test]
async fn a_leader_cut_off_from_the_api_server_stops_writing_before_the_standby_takes_over()
-> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    let b_kubeconfig = cluster.operator_b_kubeconfig()?;
    let a_kubeconfig = cluster.operator_kubeconfig()?;
    let proxy = FreezingProxy::start(api_server(&a_kubeconfig)?).await?;

    // Replica A (user ragops-operator) through the proxy, alone at first, so it leads.
    let start_a = |cluster: &Cluster, ns: &str| -> Result<ChildProcess> {
        let proxied = cluster
            .state_dir
            .join(format!("kubeconfig/{ns}-a.kubeconfig"));
        via(&a_kubeconfig, &proxy.url(), &proxied)?;
        let args = election(ns);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        e2e::start_operator_as(cluster, &proxied, ns, &args)
    };
    let mut world = World::with_operator("split", PodServersOptions::default(), start_a).await?;
    let ns = world.ns.name().to_string();
    let leases: Api<Lease> = world.ns.api();
    let a_pid = world.operator.as_ref().context("operator a")?.id();
    let a_identity = wait_holder(&leases, a_pid).await?;

    // Replica B (user ragops-operator-b), straight to the API server: the standby.
    let b_args = election(&ns);
    let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
    let mut b = e2e::start_operator_as(&cluster, &b_kubeconfig, &ns, &b_args)?;

    let guard = TrafficGuard::start(&world, "docs");
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    assert_eq!(holder(&leases).await?.as_deref(), Some(a_identity.as_str()));
    b.ensure_running()?;

    // Cut A off; change the pipeline meanwhile: only a leader that sees it can roll it out.
    proxy.freeze();
    let frozen_at = jiff::Timestamp::now();
    world.patch_spec("docs", new_revision("2")).await?;

    // A stops by its own clock (renew deadline 3 s after its last renewal began) and exits,
    // while still cut off.
    let a = world.operator.as_mut().context("operator a")?;
    let exited = wait_for(
        "the cut-off leader to exit",
        Duration::from_secs(20),
        || {
            let status = a.try_wait();
            async move { status }
        },
    )
    .await;
    let exited = exited.with_context(|| a.log_tail(30))?;
    assert!(!exited.success(), "{exited:?}");
    let log = a.log();
    assert!(log.contains("lost the Lease"), "{}", a.log_tail(30));
    let b_identity = wait_holder(&leases, b.id()).await?;
    assert_ne!(a_identity, b_identity);
    world.wait_healthy_on("docs", Color::Green).await?;
    proxy.thaw();

    let audit = AuditLog::new(&cluster)?;
    audit.sync(&world.ns.client()).await?;
    let in_ns = |user: &str| -> Result<Vec<e2e::AuditEvent>> {
        Ok(audit
            .writes_by(user, ..)?
            .into_iter()
            .filter(|e| e.namespace.as_deref() == Some(ns.as_str()))
            .collect())
    };
    let b_writes = in_ns(OPERATOR_B_USER)?;
    let b_first = b_writes
        .iter()
        .map(|e| e.received)
        .min()
        .context("the new leader wrote nothing")?;
    let a_writes = in_ns(OPERATOR_USER)?;
    let a_last = a_writes.iter().map(|e| e.received).max();
    let late: Vec<String> = a_writes
        .iter()
        .filter(|e| e.received >= b_first)
        .map(|e| format!("{} {:?}/{:?} at {}", e.verb, e.resource, e.name, e.received))
        .collect();
    assert_eq!(late, Vec::<String>::new(), "writes by the old leader");
    println!(
        "split brain: frozen at {frozen_at}; the old leader's last write at {a_last:?} ({} in all), \
         the new leader's first at {b_first} ({} in all)",
        a_writes.len(),
        b_writes.len()
    );
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
