//! Watches feeding reflector stores, shared by the controllers: every read a reconciliation makes
//! is a look into one of these stores, never a GET or LIST.
//!
//! Two things here go beyond kube's defaults: objects are trimmed before they are stored (only
//! what the operator reads is kept, and Secret values never are), and the watch of the operator's
//! own kinds survives an object that does not deserialize (it is reported and skipped instead of
//! failing the list for every object).

mod scope;
mod shared;
pub mod trim;

pub use scope::Scope;
pub use shared::{Feed, Synced, Trigger, fan_out};

use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt, future};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

/// A namespaced kind a watch can hold in a store.
pub trait Watched:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// Objects a watch deserializes at once while it lists: trimming happens per object, so a page is
/// the most of a kind the operator ever holds untrimmed (kube's default is 500, which for big
/// Secrets or ConfigMaps is megabytes at every relist).
pub const LIST_PAGE: u32 = 100;

/// Secret types that never hold a key a RagPipeline or RagIndex references: Helm's release
/// records (up to 1 MiB each, and a busy cluster has thousands), ServiceAccount tokens and image
/// pull credentials. The API server leaves them out of the list and the watch.
pub const IGNORED_SECRET_TYPES: [&str; 4] = [
    "helm.sh/release.v1",
    "kubernetes.io/service-account-token",
    "kubernetes.io/dockerconfigjson",
    "kubernetes.io/dockercfg",
];

/// How Secrets are watched: without [`IGNORED_SECRET_TYPES`], a small page at a time.
pub fn secrets_config() -> watcher::Config {
    let fields: Vec<String> = IGNORED_SECRET_TYPES
        .iter()
        .map(|t| format!("type!={t}"))
        .collect();
    watcher::Config::default()
        .fields(&fields.join(","))
        .page_size(LIST_PAGE)
}

/// How ConfigMaps are watched (sources carry no label of ours, so all of them): a small page at
/// a time.
pub fn config_maps_config() -> watcher::Config {
    watcher::Config::default().page_size(LIST_PAGE)
}

/// A store of `K` in `scope` and the stream of changed objects that keeps it filled (deletions
/// included, so a child deleted by hand triggers its owner). `trim` shapes each object before it
/// is stored.
pub fn cached<K>(
    client: &Client,
    scope: &Scope,
    config: watcher::Config,
    trim: fn(&mut K),
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Watched,
{
    cached_observed(client, scope, config, trim, |_| {})
}

/// [`cached`], with `observe` called on every watch event once the store has taken it: how an
/// index kept beside the store follows it.
pub fn cached_observed<K>(
    client: &Client,
    scope: &Scope,
    config: watcher::Config,
    trim: fn(&mut K),
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Watched,
{
    let (reader, writer) = reflector::store();
    let watch = |ns: Option<&str>| {
        watcher(api::<K>(client, ns), config.clone())
            .default_backoff()
            .modify(trim)
    };
    let stream = scope
        .events(reader.clone(), watch)
        .reflect(writer)
        .inspect_ok(observe)
        .touched_objects();
    (reader, stream)
}

/// Like [`cached`] for one of the operator's own kinds, read untyped and parsed one object at a
/// time: an object that does not parse is handed to `invalid` and left out, and every other
/// object keeps flowing. Only applied objects come out (the controller's own trigger).
pub fn cached_lenient<K>(
    client: &Client,
    scope: &Scope,
    config: watcher::Config,
    invalid: impl Fn(&DynamicObject, &str) + Send + Sync + 'static,
) -> (
    Store<K>,
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let invalid = Arc::new(invalid);
    let watch = |ns: Option<&str>| {
        let (held, invalid) = (reader.clone(), invalid.clone());
        let stored = move |r: &ObjectRef<K>| held.get(r);
        watcher(dynamic_api::<K>(client.clone(), ns), config.clone())
            .default_backoff()
            .try_filter_map(move |event| future::ready(Ok(typed(event, &*invalid, &stored))))
    };
    let stream = scope
        .events(reader.clone(), watch)
        .reflect(writer)
        .applied_objects()
        .boxed();
    (reader, stream)
}

/// The API of a namespaced kind `K`, in all namespaces or one: where a watch looks.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The object `ns/name` as `store` holds it.
pub fn get<K>(store: &Store<K>, ns: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(ns))
}

/// The untyped API of the operator's own kind `K`, in all namespaces or one.
pub fn dynamic_api<K: Resource<DynamicType = ()>>(
    client: Client,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client, ns, &resource),
        None => Api::all_with(client, &resource),
    }
}

/// One watch event of untyped objects as typed ones (without managed fields, which nothing
/// reads); `None` drops an object that does not parse.
/// The deletion of an object that no longer parses removes the version the store holds
/// (`stored`), so the store never keeps an object that is gone.
fn typed<K>(
    event: watcher::Event<DynamicObject>,
    invalid: &impl Fn(&DynamicObject, &str),
    stored: &impl Fn(&ObjectRef<K>) -> Option<Arc<K>>,
) -> Option<watcher::Event<K>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned,
{
    let parse = |o: DynamicObject| match o.clone().try_parse::<K>() {
        Ok(mut k) => {
            trim::unmanaged(&mut k);
            Some(k)
        }
        Err(e) => {
            invalid(&o, &e.to_string());
            None
        }
    };
    match event {
        watcher::Event::Apply(o) => parse(o).map(watcher::Event::Apply),
        watcher::Event::InitApply(o) => parse(o).map(watcher::Event::InitApply),
        watcher::Event::Delete(o) => {
            let key = ObjectRef::<K>::new(&o.name_any()).within(&o.namespace().unwrap_or_default());
            let deleted = o
                .try_parse::<K>()
                .ok()
                .or_else(|| stored(&key).map(|k| (*k).clone()));
            deleted.map(watcher::Event::Delete)
        }
        watcher::Event::Init => Some(watcher::Event::Init),
        watcher::Event::InitDone => Some(watcher::Event::InitDone),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::api::RagIndex;

    fn object(name: &str, spec: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "ragops.io/v1alpha1", "kind": "RagIndex",
            "metadata": { "name": name, "namespace": "a", "uid": name },
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn a_bad_object_is_reported_and_the_rest_flow() {
        let good = json!({ "vectorStore": { "embedded": {} }, "embedding": { "provider": "local", "dimensions": 8 } });
        let bad = json!({ "vectorStore": { "embedded": {} }, "embedding": { "provider": "carrier-pigeon" } });
        let reported = Mutex::new(vec![]);
        let invalid =
            |o: &DynamicObject, _: &str| reported.lock().unwrap().push(o.metadata.name.clone());
        let held = Mutex::new(None::<Arc<RagIndex>>);
        let stored = |_: &ObjectRef<RagIndex>| held.lock().unwrap().clone();
        let applied = |o| typed::<RagIndex>(watcher::Event::Apply(o), &invalid, &stored);

        let Some(watcher::Event::Apply(first)) = applied(object("idx", good)) else {
            panic!("a good object was dropped")
        };
        *held.lock().unwrap() = Some(Arc::new(first));
        // The same object edited into something that does not parse: reported, not passed on.
        assert!(applied(object("idx", bad.clone())).is_none());
        assert_eq!(*reported.lock().unwrap(), [Some("idx".to_string())]);
        // Deleting it removes the version the store still holds.
        let deleted = typed::<RagIndex>(
            watcher::Event::Delete(object("idx", bad)),
            &invalid,
            &stored,
        );
        let Some(watcher::Event::Delete(i)) = deleted else {
            panic!("deletion dropped")
        };
        assert_eq!(i.metadata.name.as_deref(), Some("idx"));
    }
}
