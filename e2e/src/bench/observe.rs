//! What the bench sees, timestamped on arrival: each object's progress, when each pod was first
//! seen Ready, and each change of an active Service's selector. Three watches feed it; the phases
//! wait on it and the cutover latencies are computed from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::subject::{NAMESPACE, Progress, Subject};

type Labels = BTreeMap<String, String>;

#[derive(Default)]
pub struct Seen {
    pub objects: HashMap<String, Progress>,
    /// Pod name → (labels, when first seen Ready).
    pub ready_pods: HashMap<String, (Labels, Instant)>,
    /// Pods not terminating, by name.
    pub live_pods: HashMap<String, Labels>,
    /// Service name → every selector it had, with when it was seen.
    pub selectors: HashMap<String, Vec<(Instant, Labels)>>,
}

pub struct Observer {
    pub seen: Arc<Mutex<Seen>>,
    pub changed: Arc<Notify>,
    _watches: JoinSet<()>,
}

impl Observer {
    pub fn start(client: &Client, subject: Subject) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let mut watches = JoinSet::new();
        let objects: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), NAMESPACE, &subject.resource());
        let (s, n) = (seen.clone(), changed.clone());
        watches.spawn(each(objects, move |o: DynamicObject, gone| {
            let mut seen = s.lock().unwrap();
            match gone {
                true => seen.objects.remove(&o.name_any()),
                false => seen.objects.insert(o.name_any(), subject.progress(&o)),
            };
            n.notify_waiters();
        }));
        let (s, n) = (seen.clone(), changed.clone());
        watches.spawn(each(
            Api::namespaced(client.clone(), NAMESPACE),
            move |p: Pod, gone| {
                s.lock().unwrap().pod(&p, gone);
                n.notify_waiters();
            },
        ));
        let s = seen.clone();
        watches.spawn(each(
            Api::namespaced(client.clone(), NAMESPACE),
            move |svc: Service, _| {
                s.lock().unwrap().service(&svc);
            },
        ));
        Self {
            seen,
            changed,
            _watches: watches,
        }
    }
}

impl Seen {
    fn pod(&mut self, p: &Pod, gone: bool) {
        let name = p.name_any();
        if gone || p.metadata.deletion_timestamp.is_some() {
            self.live_pods.remove(&name);
            return;
        }
        self.live_pods.insert(name.clone(), p.labels().clone());
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready && !self.ready_pods.contains_key(&name) {
            self.ready_pods
                .insert(name, (p.labels().clone(), Instant::now()));
        }
    }

    fn service(&mut self, svc: &Service) {
        let selector = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        let history = self.selectors.entry(svc.name_any()).or_default();
        if history.last().is_none_or(|(_, s)| *s != selector) {
            history.push((Instant::now(), selector));
        }
    }

    pub fn healthy(&self, serving_other_than: Option<&HashMap<String, Option<String>>>) -> usize {
        self.objects
            .iter()
            .filter(|(name, p)| {
                p.healthy
                    && serving_other_than
                        .is_none_or(|before| before.get(*name).is_none_or(|b| *b != p.serving))
            })
            .count()
    }

    /// Objects with exactly `replicas` live pods (the old colour gone), by `owner` label.
    pub fn settled(&self, owner: &str, replicas: usize) -> usize {
        let mut pods: HashMap<&str, usize> = HashMap::new();
        for labels in self.live_pods.values() {
            if let Some(o) = labels.get(owner) {
                *pods.entry(o.as_str()).or_default() += 1;
            }
        }
        self.objects
            .keys()
            .filter(|o| pods.get(o.as_str()) == Some(&replicas))
            .count()
    }

    /// How long after its new pods were Ready each object's active Service switched to them,
    /// for the switches seen after `since`.
    pub fn cutover_latencies(&self, since: Instant, replicas: usize) -> Vec<f64> {
        self.objects
            .keys()
            .filter_map(|name| {
                let (at, selector) = self.selectors.get(name)?.last()?;
                if *at < since {
                    return None;
                }
                let mut ready: Vec<Instant> = self
                    .ready_pods
                    .values()
                    .filter(|(labels, t)| *t >= since && matches(labels, selector))
                    .map(|(_, t)| *t)
                    .collect();
                ready.sort();
                let all_ready = *ready.get(replicas.checked_sub(1)?)?;
                Some(at.saturating_duration_since(all_ready).as_secs_f64())
            })
            .collect()
    }
}

fn matches(labels: &Labels, selector: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Runs `f(object, deleted)` for every event of a watch of `api`, forever.
async fn each<K>(api: Api<K>, mut f: impl FnMut(K, bool) + Send + 'static)
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
{
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => f(o, false),
            Ok(watcher::Event::Delete(o)) => f(o, true),
            Ok(_) => {}
            Err(e) => eprintln!("bench: watch: {e}"),
        }
    }
}
