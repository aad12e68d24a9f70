//! The pipeline controller's view of the cluster: one watch per kind it reads, each feeding a
//! reflector store, and the mapping from a changed object to the pipelines it concerns. Owned
//! kinds and pods are watched by the `managed-by` label; ConfigMaps and Secrets are watched whole
//! (a RagIndex's sources and the referenced Secrets carry no label of ours), a small page at a
//! time, and kept trimmed. The ConfigMap watch is the one the RagIndex controller reads too
//! ([`SharedConfigMaps`]); Secrets of types that never hold a key are not watched at all.

use std::sync::Arc;

use futures::{FutureExt, TryFutureExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::DynamicObject;
use kube::runtime::Controller;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::build::PIPELINE_LABEL;
use super::by_pipeline::{ByPipeline, Indexed};
use super::validate::referenced_secrets;
use crate::api::{RagIndex, RagPipeline};
use crate::meta::{MANAGED_BY, MANAGER};
use crate::monitoring::discovery;
use crate::watch::{
    Feed, Scope, Synced, Watched, cached, cached_lenient, cached_observed, config_maps_config,
    fan_out, secrets_config, trim,
};

/// Everything a pipeline reconciliation reads, as the watches last saw it.
#[derive(Clone)]
pub struct Stores {
    pub pipelines: Store<RagPipeline>,
    pub indexes: Store<RagIndex>,
    pub deployments: Indexed<Deployment>,
    pub services: Indexed<Service>,
    pub config_maps: Indexed<ConfigMap>,
    config_maps_synced: Synced,
    pub secrets: Store<Secret>,
    pub hpas: Indexed<HorizontalPodAutoscaler>,
    pub pdbs: Indexed<PodDisruptionBudget>,
    pub pods: Indexed<Pod>,
    /// The Prometheus Operator's kinds: whether they are served, and our objects of them.
    pub monitoring: discovery::Stores,
    /// Whether every watch has listed once (see [`Stores::sync`]).
    synced: watch::Receiver<bool>,
}

impl Stores {
    /// Waits until every watch has listed once, so no decision is made on a partial view. Any
    /// number of reconciliations may wait here at once.
    pub async fn ready(&self) {
        let mut synced = self.synced.clone();
        // Only fails once the controller (the sender's owner) is gone.
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Resolves once every watch but the pipelines' (which the controller itself waits for) has
    /// listed once, and tells [`Stores::ready`]. Run it exactly once: a store's own readiness
    /// future wakes only its last waiter, so it must never be awaited from two places at once.
    pub async fn sync(&self, synced: watch::Sender<bool>) {
        let waits = [
            self.indexes.wait_until_ready().map_err(drop).boxed(),
            self.deployments.wait_until_ready().map_err(drop).boxed(),
            self.services.wait_until_ready().map_err(drop).boxed(),
            self.config_maps_synced.wait().boxed(),
            self.secrets.wait_until_ready().map_err(drop).boxed(),
            self.hpas.wait_until_ready().map_err(drop).boxed(),
            self.pdbs.wait_until_ready().map_err(drop).boxed(),
            self.pods.wait_until_ready().map_err(drop).boxed(),
        ];
        if futures::future::try_join_all(waits).await.is_ok() {
            let _ = synced.send(true);
        }
    }
}

/// The one ConfigMap watch of the operator: both controllers read it (a RagIndex's sources, a
/// pipeline's own config and source snapshots), so the cluster's ConfigMaps are listed and held
/// once. The pipelines' half keeps the index by pipeline.
pub struct SharedConfigMaps {
    pub for_pipelines: Feed<Indexed<ConfigMap>, ConfigMap>,
    pub for_indexes: Feed<Store<ConfigMap>, ConfigMap>,
}

impl SharedConfigMaps {
    /// Starts the watch.
    pub fn watch(client: &Client, scope: &Scope) -> Self {
        let index = ByPipeline::default();
        let feed = index.clone();
        let observe = move |e: &watcher::Event<ConfigMap>| feed.apply(e);
        let (store, synced, [pipelines, indexes]) = fan_out(
            client,
            scope,
            config_maps_config(),
            trim::config_map,
            observe,
        );
        Self {
            for_pipelines: Feed {
                store: Indexed::new(store.clone(), index),
                trigger: pipelines,
                synced: synced.clone(),
            },
            for_indexes: Feed {
                store,
                trigger: indexes,
                synced,
            },
        }
    }
}

/// The controller with every watch wired to its trigger, the stores those watches fill, and the
/// sender that [`Stores::sync`] turns on once they have. `invalid` hears of a RagPipeline that
/// does not deserialize.
pub fn controller(
    client: &Client,
    scope: &Scope,
    recheck: std::time::Duration,
    config_maps: Feed<Indexed<ConfigMap>, ConfigMap>,
    measured: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<RagPipeline>>,
    invalid: impl Fn(&DynamicObject, &str) + Send + Sync + 'static,
) -> (Controller<RagPipeline>, Stores, watch::Sender<bool>) {
    let (synced_tx, synced_rx) = watch::channel(false);
    let managed = || watcher::Config::default().labels(&format!("{MANAGED_BY}={MANAGER}"));
    let all = watcher::Config::default;
    let (pipelines, pipeline_stream) = cached_lenient(client, scope, all(), invalid);
    let (indexes, index_stream) = cached(client, scope, all(), trim::unmanaged);
    let (deployments, deployment_stream) = indexed(client, scope, managed(), trim::deployment);
    let (services, service_stream) = indexed(client, scope, managed(), trim::owned);
    let (hpas, hpa_stream) = indexed(client, scope, managed(), trim::owned);
    let (pdbs, pdb_stream) = indexed(client, scope, managed(), trim::owned);
    let (pods, pod_stream) = indexed(client, scope, managed(), trim::pod);
    let (secrets, secret_stream) = cached(client, scope, secrets_config(), trim::secret);
    let discovery = discovery::spawn(client.clone(), scope.clone(), recheck);
    let stores = Stores {
        pipelines: pipelines.clone(),
        indexes: indexes.clone(),
        deployments,
        services,
        config_maps: config_maps.store,
        config_maps_synced: config_maps.synced,
        secrets,
        hpas,
        pdbs,
        pods,
        monitoring: discovery.stores.clone(),
        synced: synced_rx,
    };

    let users = Users { pipelines, indexes };
    let (by_index, by_config_map, by_secret) = (users.clone(), users.clone(), users);
    let controller = Controller::for_stream(pipeline_stream, stores.pipelines.clone())
        .owns_stream(deployment_stream)
        .owns_stream(service_stream)
        .owns_stream(hpa_stream)
        .owns_stream(pdb_stream)
        .watches_stream(pod_stream, |pod| pipeline_of_pod(&pod))
        .watches_stream(index_stream, move |index| by_index.of_index(&index))
        .watches_stream(config_maps.trigger, move |cm| {
            by_config_map.of_config_map(&cm)
        })
        .watches_stream(secret_stream, move |s| by_secret.of_secret(&s))
        .reconcile_all_on(discovery.changes())
        .reconcile_on(owners(discovery.owners))
        .reconcile_on(owners(measured));
    (controller, stores, synced_tx)
}

/// A watch of `K` feeding a store and its index by pipeline.
fn indexed<K>(
    client: &Client,
    scope: &Scope,
    config: watcher::Config,
    trim: fn(&mut K),
) -> (
    Indexed<K>,
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Watched,
{
    let index = ByPipeline::default();
    let feed = index.clone();
    let (store, stream) = cached_observed(client, scope, config, trim, move |e| feed.apply(e));
    (Indexed::new(store, index), stream)
}

/// Pipelines to reconcile (owners of changed monitoring objects, or whose analysis queries came
/// back), as a stream.
fn owners(
    rx: tokio::sync::mpsc::UnboundedReceiver<ObjectRef<RagPipeline>>,
) -> impl futures::Stream<Item = ObjectRef<RagPipeline>> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|o| (o, rx)) })
}

fn pipeline_of_pod(pod: &Pod) -> Option<ObjectRef<RagPipeline>> {
    let name = pod.labels().get(PIPELINE_LABEL)?;
    Some(ObjectRef::new(name).within(&pod.namespace()?))
}

/// Finds the pipelines that use an index, a ConfigMap or a Secret.
#[derive(Clone)]
struct Users {
    pipelines: Store<RagPipeline>,
    indexes: Store<RagIndex>,
}

impl Users {
    fn in_namespace(&self, ns: Option<String>) -> impl Iterator<Item = Arc<RagPipeline>> + use<> {
        self.pipelines
            .state()
            .into_iter()
            .filter(move |p| p.namespace() == ns)
    }

    fn index_of(&self, p: &RagPipeline) -> Option<Arc<RagIndex>> {
        let ns = p.namespace().unwrap_or_default();
        crate::watch::get(&self.indexes, &ns, &p.spec.index_ref.name)
    }

    fn of_index(&self, index: &RagIndex) -> Vec<ObjectRef<RagPipeline>> {
        let name = index.name_any();
        self.in_namespace(index.namespace())
            .filter(|p| p.spec.index_ref.name == name)
            .map(|p| ObjectRef::from_obj(&*p))
            .collect()
    }

    /// The pipeline that owns it (its config and source snapshots), and those whose index
    /// reads it as a source.
    fn of_config_map(&self, cm: &ConfigMap) -> Vec<ObjectRef<RagPipeline>> {
        let name = cm.name_any();
        let owner = cm
            .owner_references()
            .iter()
            .filter(|o| o.kind == "RagPipeline" && o.controller == Some(true))
            .filter_map(|o| Some(ObjectRef::new(&o.name).within(&cm.namespace()?)));
        let readers = self.in_namespace(cm.namespace()).filter(|p| {
            self.index_of(p).is_some_and(|i| {
                i.spec
                    .sources
                    .iter()
                    .any(|s| s.config_map.as_ref().is_some_and(|c| c.name == name))
            })
        });
        let golden = self.in_namespace(cm.namespace()).filter(|p| {
            let set = p.spec.rollout.golden_set.as_ref();
            set.is_some_and(|g| g.config_map_ref.name == name)
        });
        owner
            .chain(readers.chain(golden).map(|p| ObjectRef::from_obj(&*p)))
            .collect()
    }

    fn of_secret(&self, secret: &Secret) -> Vec<ObjectRef<RagPipeline>> {
        let name = secret.name_any();
        self.in_namespace(secret.namespace())
            .filter(|p| {
                let index = self.index_of(p);
                referenced_secrets(p, index.as_deref()).any(|(_, r)| r.name == name)
            })
            .map(|p| ObjectRef::from_obj(&*p))
            .collect()
    }
}
