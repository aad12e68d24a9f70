//! Leader election on a `coordination.k8s.io/v1` Lease, so several replicas can run and only one
//! writes. A replica starts its controllers once it holds the Lease and renews it every retry
//! period. Its [`Gate`] stays open until the renew deadline after the start of its last
//! successful renewal: every write of the process checks it (`Shared::call`, the client stack,
//! the Qdrant drops), so a leader that cannot renew (a stalled API connection, a starved or
//! stopped process) stops writing by its own clock before any standby may take over, and then
//! exits (the Deployment restarts it as a standby). On shutdown it closes the gate and releases
//! the Lease, so a standby takes over at once. The decisions are pure ([`decide`]); the requests
//! are in [`elector`], on a client of their own.

pub mod decide;
pub mod elector;
pub mod gate;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

pub use self::decide::Timing;
pub use self::elector::Elector;
pub use self::gate::{Gate, NotLeading};

/// Where the Lease lives, who this replica is, and the election's clock.
#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// Unique per replica: the pod name in a cluster.
    pub identity: String,
    pub timing: Timing,
}

impl LeaseSettings {
    /// The timeout of each request on the Lease client: a stalled call gives the next retry a
    /// chance well within the renew deadline.
    pub fn request_timeout(&self) -> Duration {
        self.timing.renew_deadline / 2
    }
}

/// This replica, leading: the renewals run in a task of their own, so no reconciliation can
/// hold them up.
pub struct Leadership {
    stop: Option<oneshot::Sender<()>>,
    /// Ends with why the Lease was lost, or `None` when stopped; hands the elector back.
    renewing: JoinHandle<(Option<String>, Elector)>,
}

impl Leadership {
    /// Joins the election on `client` (the Lease client); returns once this replica leads, with
    /// `gate` open.
    pub async fn acquire(client: Client, s: &LeaseSettings, gate: Gate) -> Self {
        let api: Api<Lease> = Api::namespaced(client, &s.namespace);
        let mut elector = Elector::new(api, &s.name, &s.identity, s.timing, gate);
        info!(lease = %s.name, namespace = %s.namespace, identity = %s.identity, "waiting to lead");
        elector.acquire().await;
        info!(identity = %s.identity, "leading");
        let (stop, stopped) = oneshot::channel::<()>();
        let renewing = tokio::spawn(async move {
            let why = tokio::select! {
                why = elector.keep() => Some(why),
                _ = stopped => None,
            };
            (why, elector)
        });
        Self {
            stop: Some(stop),
            renewing,
        }
    }

    /// Resolves when this replica no longer leads (its gate is closed by then), with why.
    pub async fn lost(&mut self) -> String {
        match (&mut self.renewing).await {
            Ok((why, _)) => why.unwrap_or_else(|| "stopped".into()),
            Err(e) => format!("the renewal task ended: {e}"),
        }
    }

    /// Stops renewing, closes the gate and gives the Lease up.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.renewing.await {
            Ok((_, mut elector)) => elector.release().await,
            Err(e) => tracing::warn!(error = %e, "the renewal task; the Lease expires by itself"),
        }
    }
}

#[cfg(test)]
mod tests;
