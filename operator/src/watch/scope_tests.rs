use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, store::Writer};
use serde_json::json;

use super::*;

fn cm(ns: &str, name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns },
        "data": { "v": v },
    }))
    .unwrap()
}

/// A merge of namespaces `a` and `b` whose output feeds a store, as in the operator.
struct Bed {
    merge: Merge<ConfigMap>,
    writer: Writer<ConfigMap>,
    store: Store<ConfigMap>,
    /// Every event the store got, as `kind ns/name`.
    log: Vec<String>,
}

impl Bed {
    fn new() -> Self {
        let (store, writer) = reflector::store();
        let merge = Merge::new(["a".to_string(), "b".to_string()], store.clone());
        Self {
            merge,
            writer,
            store,
            log: vec![],
        }
    }

    fn feed(&mut self, ns: &str, event: Event<ConfigMap>) {
        for item in self.merge.step(ns, Ok(event)) {
            let e = item.unwrap();
            let name = |o: &ConfigMap| format!("{}/{}", o.namespace().unwrap(), o.name_any());
            self.log.push(match &e {
                Event::Init => "Init".into(),
                Event::InitDone => "InitDone".into(),
                Event::InitApply(o) => format!("InitApply {}", name(o)),
                Event::Apply(o) => format!("Apply {}", name(o)),
                Event::Delete(o) => format!("Delete {}", name(o)),
            });
            self.writer.apply_watcher_event(&e);
        }
    }

    fn list(&mut self, ns: &str, names: &[&str]) {
        self.feed(ns, Event::Init);
        for n in names {
            self.feed(ns, Event::InitApply(cm(ns, n, "1")));
        }
        self.feed(ns, Event::InitDone);
    }

    /// The store's objects as `ns/name=v`, sorted.
    fn held(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .store
            .state()
            .iter()
            .map(|o| {
                let v = &o.data.as_ref().unwrap()["v"];
                format!("{}/{}={v}", o.namespace().unwrap(), o.name_any())
            })
            .collect();
        all.sort();
        all
    }

    fn ready(&self) -> bool {
        self.store.wait_until_ready().now_or_never().is_some()
    }
}

use futures::FutureExt;

#[test]
fn the_store_is_ready_only_once_every_namespace_has_listed_and_then_holds_all_of_them() {
    let mut bed = Bed::new();
    bed.list("a", &["x", "y"]);
    assert!(
        bed.log.is_empty(),
        "nothing reaches the store before b lists"
    );
    assert!(!bed.ready());
    // a's live changes while b still lists are kept, not lost at the hand-over.
    bed.feed("a", Event::Apply(cm("a", "x", "2")));
    bed.feed("a", Event::Delete(cm("a", "y", "1")));
    bed.feed("a", Event::Apply(cm("a", "z", "1")));
    bed.list("b", &["x"]);
    assert!(bed.ready());
    assert_eq!(bed.held(), ["a/x=2", "a/z=1", "b/x=1"]);
    assert_eq!(bed.log.first().map(String::as_str), Some("Init"));
    assert_eq!(bed.log.last().map(String::as_str), Some("InitDone"));
    assert_eq!(bed.log.iter().filter(|l| *l == "InitDone").count(), 1);
}

#[test]
fn a_namespace_listing_again_deletes_only_its_own_vanished_objects() {
    let mut bed = Bed::new();
    bed.list("a", &["x", "y"]);
    bed.list("b", &["x", "y"]);
    bed.log.clear();
    // a's watch expired; y went while it was down.
    bed.list("a", &["x"]);
    assert_eq!(bed.held(), ["a/x=1", "b/x=1", "b/y=1"]);
    assert_eq!(
        bed.log,
        ["Apply a/x", "Delete a/y"],
        "never a whole-store Init"
    );
    // Live events pass through untouched.
    bed.feed("b", Event::Delete(cm("b", "x", "1")));
    assert_eq!(bed.held(), ["a/x=1", "b/y=1"]);
}

#[test]
fn a_relist_that_spans_the_hand_over_still_deletes_what_it_never_showed() {
    let mut bed = Bed::new();
    bed.list("a", &["x", "y", "w"]);
    // a lists again before b has listed once: it shows x (newer), then b finishes.
    bed.feed("a", Event::Init);
    bed.feed("a", Event::InitApply(cm("a", "x", "2")));
    bed.list("b", &["x"]);
    assert!(bed.ready());
    assert_eq!(bed.held(), ["a/w=1", "a/x=2", "a/y=1", "b/x=1"]);
    // a's list goes on after the hand-over: w is still there, y is not.
    bed.feed("a", Event::InitApply(cm("a", "w", "1")));
    bed.feed("a", Event::InitDone);
    assert_eq!(bed.held(), ["a/w=1", "a/x=2", "b/x=1"]);
}

#[test]
fn a_namespace_relisting_before_the_hand_over_replaces_its_own_list() {
    let mut bed = Bed::new();
    bed.list("a", &["x", "y"]);
    bed.list("a", &["y"]);
    bed.list("b", &[]);
    assert_eq!(bed.held(), ["a/y=1"]);
}

#[test]
fn watch_errors_pass_through_and_change_nothing() {
    let mut bed = Bed::new();
    let out = bed.merge.step("a", Err(watcher::Error::NoResourceVersion));
    assert!(matches!(
        out.as_slice(),
        [Err(watcher::Error::NoResourceVersion)]
    ));
}

#[test]
fn scope_of_the_namespace_flags() {
    assert_eq!(Scope::new(Vec::<String>::new()), Scope::Cluster);
    assert_eq!(Scope::new([" ".to_string()]), Scope::Cluster);
    let two = Scope::new(["b".into(), "a".into(), "a".into(), "".into()]);
    assert_eq!(two.describe(), "a,b");
    assert_eq!(Scope::Cluster.describe(), "*");
}

#[tokio::test]
async fn events_of_two_namespaces_fill_one_store() {
    let (store, writer) = reflector::store::<ConfigMap>();
    let scope = Scope::new(["a".to_string(), "b".to_string()]);
    let watch = |ns: Option<&str>| {
        let ns = ns.expect("a namespaced watch").to_string();
        let events = vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm(&ns, "x", "1"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(cm(&ns, "x", "2"))),
        ];
        stream::iter(events)
    };
    let events = scope.events(store.clone(), watch);
    let applied: Vec<_> = kube::runtime::WatchStreamExt::reflect(events, writer)
        .collect()
        .await;
    assert!(applied.iter().all(Result::is_ok));
    assert!(store.wait_until_ready().now_or_never().is_some());
    let mut held: Vec<String> = store
        .state()
        .iter()
        .map(|o| {
            format!(
                "{}/{}={}",
                o.namespace().unwrap(),
                o.name_any(),
                o.data.as_ref().unwrap()["v"]
            )
        })
        .collect();
    held.sort();
    assert_eq!(held, ["a/x=2", "b/x=2"]);
}
