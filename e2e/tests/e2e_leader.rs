//! Two operator replicas with leader election: only the leader reconciles; when it dies in the
//! middle of a rollout the standby takes over, completes the rollout exactly once, and traffic is
//! never on a colour without ready pods.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use common::{TrafficGuard, World, fast_rollout, free_loopback_addr, merge, new_revision};
use e2e::{ChildProcess, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rag_operator::api::Color;

/// The identity holding `lease` in `default`, once someone does.
async fn holder(leases: &Api<Lease>, lease: &str) -> Result<String> {
    wait_for(
        &format!("a holder of Lease {lease}"),
        Duration::from_secs(30),
        || async {
            let held = leases.get_opt(lease).await?;
            Ok(held
                .and_then(|l| l.spec?.holder_identity)
                .filter(|h| !h.is_empty()))
        },
    )
    .await
}

async fn readyz(addr: SocketAddr) -> Result<u16> {
    Ok(reqwest::get(format!("http://{addr}/readyz"))
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn a_standby_takes_over_mid_rollout_and_completes_it_once() -> Result<()> {
    let lease = format!("ragops-e2e-{}", jiff::Timestamp::now().as_nanosecond());
    let (a_addr, b_addr) = (free_loopback_addr()?, free_loopback_addr()?);
    let election = |addr: SocketAddr| {
        [
            "--leader-elect".to_string(),
            "--lease-namespace".into(),
            "default".into(),
            "--lease-name".into(),
            lease.clone(),
            "--lease-duration-seconds".into(),
            "4".into(),
            "--renew-deadline-seconds".into(),
            "3".into(),
            "--retry-period-seconds".into(),
            "1".into(),
            "--metrics-addr".into(),
            addr.to_string(),
        ]
    };
    let a_args = election(a_addr);
    let a_refs: Vec<&str> = a_args.iter().map(String::as_str).collect();
    let mut world = World::with_operator_args("leader", &a_refs).await?;
    let b_args = election(b_addr);
    let b_args = common::operator_args(&b_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut b = Some(common::start_operator_with(
        &world.cluster,
        world.ns.name(),
        &b_args,
    )?);

    let leases: Api<Lease> = Api::namespaced(world.cluster.client().await?, "default");
    let first = holder(&leases, &lease).await?;
    let a_pid = world.operator.as_ref().context("operator a")?.id();
    let a_leads = first.ends_with(&format!("-{a_pid}"));
    let (leader_addr, standby_addr) = if a_leads {
        (a_addr, b_addr)
    } else {
        (b_addr, a_addr)
    };

    let guard = TrafficGuard::start(&world, "docs");
    let mut spec = fast_rollout();
    merge(&mut spec, common::hold_on_failing_probes());
    world.create_pipeline("docs", spec).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    // Readiness says who leads: the standby has not even started its controller.
    assert_eq!(readyz(leader_addr).await?, 200);
    assert_eq!(readyz(standby_addr).await?, 503);

    // Hold the rollout of a new revision between "green is up" and "switch", then kill the leader.
    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("2")).await?;
    world
        .wait_pipeline("docs", "green up and failing probes", |p| {
            p.status
                .as_ref()
                .and_then(|s| s.rollout.as_ref())
                .is_some_and(|r| r.health_failures > 0)
        })
        .await?;
    let killed: Option<ChildProcess> = if a_leads {
        world.operator.take()
    } else {
        b.take()
    };
    drop(killed); // SIGKILL: no chance to release the Lease; it must expire.
    world.pods.set_status(200);

    world.wait_healthy_on("docs", Color::Green).await?;
    let second = holder(&leases, &lease).await?;
    assert_ne!(first, second, "the standby holds the Lease now");
    assert_eq!(readyz(standby_addr).await?, 200);
    let events = world.wait_event_note("docs", "Promoted", "green").await?;
    let promotions = events
        .iter()
        .filter(|(r, n)| r == "Promoted" && n.contains("green"))
        .count();
    assert_eq!(promotions, 1, "{events:?}");
    guard
        .wait_switches(&["blue", "green"], Duration::from_secs(10))
        .await?;
    assert_eq!(guard.violations(), Vec::<String>::new());
    Ok(())
}
