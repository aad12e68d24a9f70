//! Leader election on a Lease, so several replicas can run and only one reconciles and writes.
//!
//! A replica waits to acquire the Lease before it starts its controllers; one that loses the
//! Lease exits at once (the Deployment restarts it as a standby), so two replicas never write
//! side by side for longer than the Lease's grace. On shutdown the leader releases the Lease, so
//! a standby takes over without waiting for it to expire. Reconciliation is idempotent and driven
//! by observed state plus status, so the new leader resumes whatever was in flight.

use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

/// Where the Lease lives and how long it holds.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the pod name in a cluster.
    pub identity: String,
    /// How long a Lease holds without renewal.
    pub duration: Duration,
    /// How long before expiry the holder renews it.
    pub grace: Duration,
}

/// This replica's part in the election.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// Joins the election; returns once this replica leads.
    pub async fn acquire(client: Client, s: &LeaseSettings) -> anyhow::Result<Self> {
        let manager = LeaseManagerBuilder::new(client, &s.name)
            .with_namespace(&s.namespace)
            .with_identity(&s.identity)
            .with_duration(s.duration.as_secs().max(2))
            .with_grace(s.grace.as_secs().clamp(1, s.duration.as_secs().max(2) - 1))
            .build()
            .await
            .with_context(|| format!("Lease {}/{}", s.namespace, s.name))?;
        let (mut leading, task) = manager.watch().await;
        info!(lease = %s.name, namespace = %s.namespace, identity = %s.identity, "waiting to lead");
        leading
            .wait_for(|l| *l)
            .await
            .context("the lease manager stopped before this replica led")?;
        info!(identity = %s.identity, "leading");
        Ok(Self { leading, task })
    }

    /// Resolves when this replica no longer leads.
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|l| !*l).await;
    }

    /// Gives the Lease up so a standby takes over at once.
    pub async fn release(self) {
        drop(self.leading);
        match self.task.await {
            Ok(Ok(manager)) => match manager.release().await {
                Ok(()) => info!("released the lease"),
                Err(e) => error!(error = %e, "releasing the lease"),
            },
            Ok(Err(e)) => error!(error = %e, "the lease manager failed"),
            Err(e) => error!(error = %e, "the lease manager task"),
        }
    }
}
