//! The RagIndex controller's view of the cluster: the indexes, their source ConfigMaps (trimmed
//! to a content digest), their ingest Jobs, and the metadata of the pipelines' Deployments (the
//! collections they serve, for garbage collection).

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::COMPONENT;
use crate::api::RagIndex;
use crate::meta::{MANAGED_BY, MANAGER};
use crate::watch::{api, cached, cached_lenient, dynamic_api, trim};

#[derive(Clone)]
pub struct Stores {
    pub indexes: Store<RagIndex>,
    pub config_maps: Store<ConfigMap>,
    pub jobs: Store<Job>,
    pub deployments: Store<PartialObjectMeta<Deployment>>,
    synced: watch::Receiver<bool>,
}

impl Stores {
    /// Waits until every watch has listed once.
    pub async fn ready(&self) {
        let mut synced = self.synced.clone();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Resolves once the watches have listed; run exactly once (see the pipeline's `Stores`).
    pub async fn sync(&self, synced: watch::Sender<bool>) {
        let waits = [
            self.config_maps.wait_until_ready().boxed(),
            self.jobs.wait_until_ready().boxed(),
            self.deployments.wait_until_ready().boxed(),
        ];
        if futures::future::try_join_all(waits).await.is_ok() {
            let _ = synced.send(true);
        }
    }
}

/// The controller with its watches wired, the stores they fill and the sync sender.
pub fn controller(
    client: &Client,
    namespace: Option<&str>,
    invalid: impl Fn(&DynamicObject, &str) + Send + 'static,
) -> (Controller<RagIndex>, Stores, watch::Sender<bool>) {
    let (synced_tx, synced_rx) = watch::channel(false);
    let managed = format!("{MANAGED_BY}={MANAGER}");
    let ingest = format!("{managed},app.kubernetes.io/component={COMPONENT}");
    let dynamic = dynamic_api::<RagIndex>(client.clone(), namespace);
    let (indexes, index_stream) = cached_lenient(dynamic, watcher::Config::default(), invalid);
    let (jobs, job_stream) = cached(
        api(client, namespace),
        watcher::Config::default().labels(&ingest),
        |_| {},
    );
    let (config_maps, config_map_stream) = cached(
        api(client, namespace),
        watcher::Config::default(),
        trim::config_map,
    );
    let (deployments, deployment_stream) = cached(
        api::<PartialObjectMeta<Deployment>>(client, namespace),
        watcher::Config::default().labels(&managed),
        |_| {},
    );
    // Only kept filled, never a trigger: the collections in use matter when an ingest completes.
    tokio::spawn(deployment_stream.for_each(|_| async {}));
    let stores = Stores {
        indexes: indexes.clone(),
        config_maps,
        jobs,
        deployments,
        synced: synced_rx,
    };
    let readers = indexes.clone();
    let controller = Controller::for_stream(index_stream, indexes)
        .owns_stream(job_stream)
        .watches_stream(config_map_stream, move |cm| readers_of(&readers, &cm));
    (controller, stores, synced_tx)
}

/// The indexes that read `cm` as a source.
fn readers_of(indexes: &Store<RagIndex>, cm: &ConfigMap) -> Vec<ObjectRef<RagIndex>> {
    let name = cm.name_any();
    indexes
        .state()
        .into_iter()
        .filter(|i| i.namespace() == cm.namespace())
        .filter(|i| {
            i.spec
                .sources
                .iter()
                .any(|s| s.config_map.as_ref().is_some_and(|c| c.name == name))
        })
        .map(|i| ObjectRef::from_obj(&*i))
        .collect()
}
