//! Whether the cluster serves the Prometheus Operator's kinds, and the caches of the ones the
//! operator owns. The CRDs may be installed after the operator starts (or never), so the check
//! repeats: a discovery GET of `monitoring.coreos.com/v1`, answered from the API server's
//! memory, every `recheck` — but only while some pipeline asks for monitoring and the kinds have
//! not been found, so an operator whose pipelines ask for none makes no request for it. Once the
//! kinds are served, watches of our ServiceMonitors and PrometheusRules start, the checks stop,
//! and every change of the answer reconciles every pipeline.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::crd::{GROUP_VERSION, PrometheusRule, ServiceMonitor};
use crate::api::RagPipeline;
use crate::meta::{MANAGED_BY, MANAGER};
use crate::watch::{Scope, cached, trim};

/// How often the operator looks for the CRDs by default (`--monitoring-recheck-seconds`).
pub const RECHECK: Duration = Duration::from_secs(30);

/// What the operator knows of the monitoring kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crds {
    /// Not looked yet.
    Unknown,
    Absent,
    /// Served, and the caches of ours have listed once.
    Present,
}

/// The monitoring caches, filled once the kinds are served.
#[derive(Clone)]
pub struct Stores {
    crds: watch::Receiver<Crds>,
    /// Turned on by the first pipeline that asks for monitoring: discovery starts then.
    wanted: Arc<watch::Sender<bool>>,
    /// How often discovery looks again while the kinds are missing.
    pub recheck: Duration,
    service_monitors: Arc<OnceLock<Store<ServiceMonitor>>>,
    prometheus_rules: Arc<OnceLock<Store<PrometheusRule>>>,
}

impl Stores {
    pub fn crds(&self) -> Crds {
        *self.crds.borrow()
    }

    /// A pipeline asks for monitoring: make sure discovery runs.
    pub fn want(&self) {
        self.wanted
            .send_if_modified(|w| !std::mem::replace(w, true));
    }

    pub fn service_monitors(&self) -> Option<&Store<ServiceMonitor>> {
        self.service_monitors.get()
    }

    pub fn prometheus_rules(&self) -> Option<&Store<PrometheusRule>> {
        self.prometheus_rules.get()
    }

    /// The kinds of which the watches hold the object `ns/name` (the pipeline's own).
    pub fn held(&self, ns: &str, name: &str) -> Vec<&'static str> {
        let monitor = self
            .service_monitors()
            .is_some_and(|s| crate::watch::get(s, ns, name).is_some());
        let rule = self
            .prometheus_rules()
            .is_some_and(|s| crate::watch::get(s, ns, name).is_some());
        [(monitor, "ServiceMonitor"), (rule, "PrometheusRule")]
            .into_iter()
            .filter_map(|(held, kind)| held.then_some(kind))
            .collect()
    }
}

/// The discovery loop's handles: the stores, a stream of pipelines to reconcile (owners of
/// changed monitoring objects), and a stream that ticks whenever the answer changes.
pub struct Discovery {
    pub stores: Stores,
    pub owners: mpsc::UnboundedReceiver<ObjectRef<RagPipeline>>,
    changes: watch::Receiver<Crds>,
}

impl Discovery {
    /// Ticks once per change of the answer (reconcile everything then).
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.changes.clone(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }
}

/// Starts the loop in the background; it looks once a pipeline asks for monitoring.
pub fn spawn(client: Client, scope: Scope, recheck: Duration) -> Discovery {
    let (crds_tx, crds_rx) = watch::channel(Crds::Unknown);
    let (owners_tx, owners) = mpsc::unbounded_channel();
    let (wanted_tx, mut wanted) = watch::channel(false);
    let stores = Stores {
        crds: crds_rx.clone(),
        wanted: Arc::new(wanted_tx),
        recheck,
        service_monitors: Arc::default(),
        prometheus_rules: Arc::default(),
    };
    let looping = stores.clone();
    tokio::spawn(async move {
        if wanted.wait_for(|w| *w).await.is_err() {
            return;
        }
        loop {
            match served(&client).await {
                Ok(true) => {
                    start_watches(&client, &scope, &looping, &owners_tx).await;
                    crds_tx.send_replace(Crds::Present);
                    return;
                }
                Ok(false) => {
                    crds_tx
                        .send_if_modified(|c| std::mem::replace(c, Crds::Absent) != Crds::Absent);
                }
                Err(e) => warn!(error = %e, "looking for the monitoring.coreos.com kinds"),
            }
            tokio::time::sleep(recheck).await;
        }
    });
    Discovery {
        stores,
        owners,
        changes: crds_rx,
    }
}

/// Whether the API server serves both ServiceMonitor and PrometheusRule.
async fn served(client: &Client) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(GROUP_VERSION).await {
        Ok(list) => {
            let has = |plural: &str| list.resources.iter().any(|r| r.name == plural);
            Ok(has("servicemonitors") && has("prometheusrules"))
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Starts the watches of ours once, and waits until both have listed.
async fn start_watches(
    client: &Client,
    scope: &Scope,
    stores: &Stores,
    owners: &mpsc::UnboundedSender<ObjectRef<RagPipeline>>,
) {
    if stores.service_monitors.get().is_some() {
        return;
    }
    info!("monitoring.coreos.com is served: watching ServiceMonitors and PrometheusRules");
    let config = || watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
    let (monitors, monitor_events) = cached::<ServiceMonitor>(client, scope, config(), trim::owned);
    let (rules, rule_events) = cached::<PrometheusRule>(client, scope, config(), trim::owned);
    let forward = |tx: mpsc::UnboundedSender<ObjectRef<RagPipeline>>| {
        move |o: &dyn OwnedBy| {
            if let Some(owner) = o.pipeline() {
                let _ = tx.send(owner);
            }
        }
    };
    let (f1, f2) = (forward(owners.clone()), forward(owners.clone()));
    tokio::spawn(monitor_events.for_each(move |e| {
        if let Ok(o) = &e {
            f1(o);
        }
        async {}
    }));
    tokio::spawn(rule_events.for_each(move |e| {
        if let Ok(o) = &e {
            f2(o);
        }
        async {}
    }));
    let _ = futures::future::join(monitors.wait_until_ready(), rules.wait_until_ready()).await;
    let _ = stores.service_monitors.set(monitors);
    let _ = stores.prometheus_rules.set(rules);
}

/// The pipeline that controls an object of ours.
trait OwnedBy {
    fn pipeline(&self) -> Option<ObjectRef<RagPipeline>>;
}

impl<K: kube::Resource> OwnedBy for K {
    fn pipeline(&self) -> Option<ObjectRef<RagPipeline>> {
        let owner = self
            .owner_references()
            .iter()
            .find(|o| o.kind == "RagPipeline" && o.controller == Some(true))?;
        Some(ObjectRef::new(&owner.name).within(&self.namespace()?))
    }
}
