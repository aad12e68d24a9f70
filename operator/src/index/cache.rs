//! The RagIndex controller's view of the cluster: the indexes, their source ConfigMaps (trimmed
//! to a content digest; the pipeline controller's watch, shared), their ingest Jobs, and the metadata of the pipelines' Deployments (the
//! collections they serve, for garbage collection).

use std::collections::BTreeMap;

use futures::{FutureExt, StreamExt, TryFutureExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;

use super::{COLLECTION_ANNOTATION, COMPONENT};
use crate::api::RagIndex;
use crate::meta::{MANAGED_BY, MANAGER};
use crate::watch::{Feed, Scope, Synced, cached, cached_lenient, trim};

#[derive(Clone)]
pub struct Stores {
    pub indexes: Store<RagIndex>,
    pub config_maps: Store<ConfigMap>,
    config_maps_synced: Synced,
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
            self.config_maps_synced.wait().boxed(),
            self.jobs.wait_until_ready().map_err(drop).boxed(),
            self.deployments.wait_until_ready().map_err(drop).boxed(),
        ];
        if futures::future::try_join_all(waits).await.is_ok() {
            let _ = synced.send(true);
        }
    }
}

/// The controller with its watches wired, the stores they fill and the sync sender.
pub fn controller(
    client: &Client,
    scope: &Scope,
    config_maps: Feed<Store<ConfigMap>, ConfigMap>,
    invalid: impl Fn(&DynamicObject, &str) + Send + Sync + 'static,
) -> (Controller<RagIndex>, Stores, watch::Sender<bool>) {
    let (synced_tx, synced_rx) = watch::channel(false);
    let managed = format!("{MANAGED_BY}={MANAGER}");
    let ingest = format!("{managed},app.kubernetes.io/component={COMPONENT}");
    let (indexes, index_stream) =
        cached_lenient(client, scope, watcher::Config::default(), invalid);
    let (jobs, job_stream) = cached(
        client,
        scope,
        watcher::Config::default().labels(&ingest),
        trim::owned,
    );
    let (deployments, deployment_stream) = cached::<PartialObjectMeta<Deployment>>(
        client,
        scope,
        watcher::Config::default().labels(&managed),
        collection_only,
    );
    // Only kept filled, never a trigger: the collections in use matter when an ingest completes.
    tokio::spawn(deployment_stream.for_each(|_| async {}));
    let stores = Stores {
        indexes: indexes.clone(),
        config_maps: config_maps.store,
        config_maps_synced: config_maps.synced,
        jobs,
        deployments,
        synced: synced_rx,
    };
    let readers = indexes.clone();
    let controller = Controller::for_stream(index_stream, indexes)
        .owns_stream(job_stream)
        .watches_stream(config_maps.trigger, move |cm| readers_of(&readers, &cm));
    (controller, stores, synced_tx)
}

/// A pipeline Deployment as garbage collection reads it: the collection it serves, nothing else.
fn collection_only(d: &mut PartialObjectMeta<Deployment>) {
    let collection = d.metadata.annotations.take().and_then(|mut a| {
        let value = a.remove(COLLECTION_ANNOTATION)?;
        Some(BTreeMap::from([(COLLECTION_ANNOTATION.to_string(), value)]))
    });
    d.metadata = ObjectMeta {
        name: d.metadata.name.take(),
        namespace: d.metadata.namespace.take(),
        uid: d.metadata.uid.take(),
        resource_version: d.metadata.resource_version.take(),
        annotations: collection,
        ..ObjectMeta::default()
    };
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployments_keep_the_collection_they_serve_and_nothing_else() {
        let mut d: PartialObjectMeta<Deployment> = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "p-blue", "namespace": "a", "uid": "u", "resourceVersion": "7",
                "labels": { "app": "p" },
                "annotations": { COLLECTION_ANNOTATION: "docs-3", "other": "x" },
                "managedFields": [{ "manager": "ragops", "operation": "Apply" }],
            },
        }))
        .unwrap();
        collection_only(&mut d);
        assert_eq!(d.name_any(), "p-blue");
        assert_eq!(d.metadata.uid.as_deref(), Some("u"));
        let annotations = d.annotations();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations[COLLECTION_ANNOTATION], "docs-3");
        assert!(d.metadata.managed_fields.is_none() && d.metadata.labels.is_none());
    }
}
