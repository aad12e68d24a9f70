//! Apply: brings the cluster in line with [`Desired`]. Every kind is listed explicitly, in the
//! order that keeps pods working (config and sources, then Deployments, then the Services that
//! route to them, then what hangs off the active colour); then children no longer wanted are
//! swept, found by label and owner in the caches. It runs after the status recording the decision
//! was written (see `reconcile`), so every write here repeats safely from that status.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::build::{Monitoring, PIPELINE_LABEL};
use super::cache::Stores;
use super::desired::{Desired, Workload};
use super::observe::Snapshot;
use super::route::{self, RouteWrite};
use crate::api::Color;
use crate::apply::{self, Applied};
use crate::client::Call;
use crate::context::Shared;
use crate::crash;
use crate::error::Error;
use crate::meta::controlled_by;
use crate::monitoring::discovery;

/// A write the applier made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: String,
    pub name: String,
    pub applied: Applied,
}

/// The pipeline the children belong to.
pub struct Owner<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

struct Writer<'a> {
    shared: &'a Shared,
    owner: &'a Owner<'a>,
    changes: Vec<Change>,
}

impl Writer<'_> {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.shared.client.clone(), self.owner.namespace)
    }

    async fn apply<K>(&mut self, desired: &K, observed: Option<&K>) -> Result<(), Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Serialize + DeserializeOwned + Clone + Debug,
    {
        let (api, name) = (self.api(), desired.name_any());
        let call = Call {
            verb: "apply",
            kind: kind_of::<K>(),
            name: &name,
        };
        let request = apply::apply(&api, desired, observed);
        let applied = self
            .shared
            .call(call, request, |source| Error::Apply {
                kind: kind_of::<K>(),
                name: name.clone(),
                source,
            })
            .await?;
        if applied != Applied::Unchanged {
            self.changes.push(Change {
                kind: K::kind(&()).into(),
                name: desired.name_any(),
                applied,
            });
        }
        Ok(())
    }

    /// Brings one colour's Deployment in line; whether it wrote anything.
    async fn workload(
        &mut self,
        color: Color,
        w: Workload,
        observed: &Snapshot,
    ) -> Result<bool, Error> {
        let current = observed.deployment(color);
        match w {
            Workload::Keep => Ok(false),
            Workload::Apply(d) => {
                let before = self.changes.len();
                self.apply(&*d, current).await?;
                Ok(self.changes.len() > before)
            }
            Workload::Scale(replicas) => {
                let Some(current) = current else {
                    return Ok(false);
                };
                if current.spec.as_ref().and_then(|s| s.replicas) == Some(replicas) {
                    return Ok(false);
                }
                let (api, name) = (self.api::<Deployment>(), current.name_any());
                let call = Call {
                    verb: "scale",
                    kind: "Deployment",
                    name: &name,
                };
                let request = apply::scale(&api, &name, replicas);
                self.shared
                    .call(call, request, |source| Error::Scale {
                        kind: "Deployment",
                        name: name.clone(),
                        source,
                    })
                    .await?;
                Ok(true)
            }
        }
    }

    /// The traffic-moving write: Service `<name>` selects the decided colour. The one place a
    /// check that this replica still leads belongs, right before the write goes out.
    async fn move_traffic(
        &mut self,
        live: &Service,
        observed: Option<&Service>,
    ) -> Result<(), Error> {
        let before = self.changes.len();
        self.apply(live, observed).await?;
        if self.changes.len() > before {
            crash::point(crash::at::TRAFFIC_MOVED);
        }
        Ok(())
    }

    /// New weights on the canary's HTTPRoute: traffic moves, like the Service's selector.
    async fn weigh(&mut self, r: RouteWrite) -> Result<(), Error> {
        let api = Api::namespaced_with(
            self.shared.client.clone(),
            self.owner.namespace,
            &route::resource(),
        );
        let call = Call {
            verb: "patch",
            kind: "HTTPRoute",
            name: &r.name,
        };
        let request = async {
            route::write(&api, &r.name, r.patch)
                .await
                .map(|_| Applied::Updated {
                    field: ".spec.rules[].backendRefs[].weight".into(),
                })
        };
        let applied = self
            .shared
            .call(call, request, |source| Error::Apply {
                kind: "HTTPRoute",
                name: r.name.clone(),
                source,
            })
            .await?;
        self.changes.push(Change {
            kind: "HTTPRoute".into(),
            name: r.name.clone(),
            applied,
        });
        crash::point(crash::at::TRAFFIC_MOVED);
        Ok(())
    }

    /// The metrics Service, ServiceMonitor and PrometheusRule, each compared with its cache.
    async fn monitoring(
        &mut self,
        m: Monitoring,
        caches: &discovery::Stores,
        services: &Store<Service>,
    ) -> Result<(), Error> {
        let ns = self.owner.namespace;
        if let Some(svc) = &m.metrics_service {
            let current = crate::watch::get(services, ns, &svc.name_any());
            self.apply(svc, current.as_deref()).await?;
        }
        if let (Some(sm), Some(cache)) = (&m.service_monitor, caches.service_monitors()) {
            let current = crate::watch::get(cache, ns, &sm.name_any());
            self.apply(sm, current.as_deref()).await?;
        }
        if let (Some(rule), Some(cache)) = (&m.prometheus_rule, caches.prometheus_rules()) {
            let current = crate::watch::get(cache, ns, &rule.name_any());
            self.apply(rule, current.as_deref()).await?;
        }
        Ok(())
    }

    /// This pipeline's objects in `store`, found by its label (the stores without an index by
    /// pipeline are small).
    fn labelled<K>(&self, store: &Store<K>) -> Vec<Arc<K>>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        store.state_filter(|o| {
            o.namespace().as_deref() == Some(self.owner.namespace)
                && o.labels().get(PIPELINE_LABEL).map(String::as_str) == Some(self.owner.name)
        })
    }

    /// Deletes those of this pipeline's `children` of kind `K` that are not in `wanted`.
    async fn sweep<K>(&mut self, children: Vec<Arc<K>>, wanted: &[String]) -> Result<(), Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
        K: Serialize + DeserializeOwned + Clone + Debug,
    {
        let orphans = children
            .into_iter()
            .filter(|o| controlled_by(o.meta(), self.owner.uid) && !wanted.contains(&o.name_any()));
        for orphan in orphans {
            let (api, name) = (self.api::<K>(), orphan.name_any());
            let call = Call {
                verb: "delete",
                kind: kind_of::<K>(),
                name: &name,
            };
            let request = apply::delete(&api, &name);
            self.shared
                .call(call, request, |source| Error::Sweep {
                    kind: kind_of::<K>(),
                    name: name.clone(),
                    source,
                })
                .await?;
            self.changes.push(Change {
                kind: K::kind(&()).into(),
                name,
                applied: Applied::Deleted,
            });
        }
        Ok(())
    }
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => "object",
    }
}

/// Applies `desired` and sweeps what it no longer names; returns the writes made.
pub async fn apply(
    shared: &Shared,
    owner: &Owner<'_>,
    desired: Desired,
    observed: &Snapshot,
    stores: &Stores,
) -> Result<Vec<Change>, Error> {
    let names = desired.names(owner.name);
    let Desired {
        config_map,
        sources,
        blue,
        green,
        active_service,
        traffic_first,
        preview_service,
        color_services,
        route,
        hpa,
        pdb,
        monitoring,
    } = desired;
    let mut w = Writer {
        shared,
        owner,
        changes: vec![],
    };
    w.apply(&config_map, observed.config_map.as_ref()).await?;
    for source in &sources {
        let current = crate::watch::get(&stores.config_maps, owner.namespace, &source.name_any());
        w.apply(source, current.as_deref()).await?;
    }
    // Traffic leaves a colour before its pods can: a canary's end or abort.
    if let Some(active) = active_service.as_ref().filter(|_| traffic_first) {
        w.move_traffic(active, observed.active_service.as_ref())
            .await?;
    }
    for svc in &color_services {
        let current = crate::watch::get(&stores.services, owner.namespace, &svc.name_any());
        w.apply(svc, current.as_deref()).await?;
    }
    let (route_first, route_after): (Vec<_>, Vec<_>) = route.into_iter().partition(|r| r.first);
    for r in route_first {
        w.weigh(r).await?;
    }
    let blue = w.workload(Color::Blue, blue, observed).await?;
    let green = w.workload(Color::Green, green, observed).await?;
    if blue || green {
        crash::point(crash::at::DEPLOYMENTS_APPLIED);
    }
    if let Some(preview) = &preview_service {
        w.apply(preview, observed.preview_service.as_ref()).await?;
    }
    // The cutover itself: the active Service's selector moves to the new colour.
    if let Some(active) = active_service.as_ref().filter(|_| !traffic_first) {
        w.move_traffic(active, observed.active_service.as_ref())
            .await?;
    }
    for r in route_after {
        w.weigh(r).await?;
    }
    if let Some(hpa) = &hpa {
        w.apply(hpa, observed.hpa.as_ref()).await?;
    }
    if let Some(pdb) = &pdb {
        w.apply(pdb, observed.pdb.as_ref()).await?;
    }
    w.monitoring(monitoring, &stores.monitoring, &stores.services)
        .await?;
    let (ns, name) = (owner.namespace, owner.name);
    w.sweep(stores.config_maps.of(ns, name), &names.config_maps)
        .await?;
    w.sweep(stores.deployments.of(ns, name), &names.deployments)
        .await?;
    w.sweep(stores.services.of(ns, name), &names.services)
        .await?;
    w.sweep(stores.hpas.of(ns, name), &names.hpas).await?;
    w.sweep(stores.pdbs.of(ns, name), &names.pdbs).await?;
    if let Some(monitors) = stores.monitoring.service_monitors() {
        let children = w.labelled(monitors);
        w.sweep(children, &names.service_monitors).await?;
    }
    if let Some(rules) = stores.monitoring.prometheus_rules() {
        let children = w.labelled(rules);
        w.sweep(children, &names.prometheus_rules).await?;
    }
    Ok(w.changes)
}
