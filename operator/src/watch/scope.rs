//! Where the operator looks: the whole cluster, or a set of namespaces (`--namespace a,b`), so
//! that a chart told which namespaces to serve grants Roles in those alone and nothing
//! cluster-wide (Secrets included).
//!
//! kube's watches look at one namespace or all of them, and a reflector store takes one watch:
//! each list (`Init` … `InitDone`) replaces the whole store. Several namespaces therefore need
//! their watches merged into one stream a store can take. [`Merge`] does that: until every
//! namespace has listed once it holds their objects and hands them over as one list (so the store
//! is ready only when all are); after that, a namespace that lists again (a watch that expired)
//! turns into updates of its objects and deletions of those that are gone, leaving the other
//! namespaces' objects alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::stream::{self, BoxStream};
use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use kube::runtime::watcher::{self, Event};

type Item<K> = Result<Event<K>, watcher::Error>;

/// The namespaces the operator serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every namespace: one cluster-wide watch per kind.
    Cluster,
    /// These namespaces (at least one): one watch per kind and namespace.
    Namespaces(BTreeSet<String>),
}

impl Scope {
    /// The scope of `--namespace` values (empty: the cluster). Blank values are ignored.
    pub fn new<I: IntoIterator<Item = String>>(namespaces: I) -> Self {
        let set: BTreeSet<String> = namespaces
            .into_iter()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        if set.is_empty() {
            Self::Cluster
        } else {
            Self::Namespaces(set)
        }
    }

    /// One namespace.
    pub fn namespace(ns: &str) -> Self {
        Self::new([ns.to_string()])
    }

    /// For logs: `*` or the namespaces, comma separated.
    pub fn describe(&self) -> String {
        match self {
            Self::Cluster => "*".into(),
            Self::Namespaces(set) => set.iter().cloned().collect::<Vec<_>>().join(","),
        }
    }

    /// The events of a kind in this scope, as one stream a single store can take. `watch(None)`
    /// is the cluster-wide watch, `watch(Some(ns))` the watch of one namespace; `held` is the
    /// store the events end in (where a namespace's vanished objects are found).
    pub fn events<K, S>(
        &self,
        held: Store<K>,
        watch: impl Fn(Option<&str>) -> S,
    ) -> BoxStream<'static, Item<K>>
    where
        K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        S: Stream<Item = Item<K>> + Send + 'static,
    {
        match self {
            Self::Cluster => watch(None).boxed(),
            Self::Namespaces(set) if set.len() == 1 => {
                watch(set.first().map(String::as_str)).boxed()
            }
            Self::Namespaces(set) => {
                let tagged = set.iter().map(|ns| {
                    let tag = ns.clone();
                    watch(Some(ns)).map(move |item| (tag.clone(), item)).boxed()
                });
                let mut merge = Merge::new(set.iter().cloned(), held);
                stream::select_all(tagged)
                    .flat_map(move |(ns, item)| stream::iter(merge.step(&ns, item)))
                    .boxed()
            }
        }
    }
}

/// The state of merging several namespaces' watches (see the module docs).
pub struct Merge<K: kube::Resource<DynamicType = ()> + Clone + 'static> {
    /// Until every namespace has listed once: each namespace's objects by name, the listed ones
    /// kept current by their events, and those still listing (or listing again).
    first: Option<FirstList<K>>,
    /// After that: the names a namespace listing again has shown so far.
    relisting: HashMap<String, BTreeSet<String>>,
    held: Store<K>,
}

struct FirstList<K> {
    listed: HashMap<String, BTreeMap<String, K>>,
    listing: HashMap<String, BTreeMap<String, K>>,
    waiting: BTreeSet<String>,
}

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> Merge<K> {
    pub fn new(namespaces: impl IntoIterator<Item = String>, held: Store<K>) -> Self {
        let waiting: BTreeSet<String> = namespaces.into_iter().collect();
        Self {
            first: Some(FirstList {
                listed: HashMap::new(),
                listing: HashMap::new(),
                waiting,
            }),
            relisting: HashMap::new(),
            held,
        }
    }

    /// What the store gets for one event of namespace `ns`'s watch. Errors pass through (the
    /// watch retries on its own).
    pub fn step(&mut self, ns: &str, item: Item<K>) -> Vec<Item<K>> {
        let event = match item {
            Ok(event) => event,
            Err(e) => return vec![Err(e)],
        };
        let out = match self.first.as_mut() {
            Some(first) => match first.step(ns, event) {
                FirstStep::Held => vec![],
                FirstStep::Done(objects, relisting) => {
                    self.first = None;
                    self.relisting = relisting;
                    let list = objects.into_iter().map(Event::InitApply);
                    std::iter::once(Event::Init)
                        .chain(list)
                        .chain([Event::InitDone])
                        .collect()
                }
            },
            None => self.relist(ns, event),
        };
        out.into_iter().map(Ok).collect()
    }

    /// After the first list: a namespace's list again becomes updates and deletions.
    fn relist(&mut self, ns: &str, event: Event<K>) -> Vec<Event<K>> {
        match event {
            Event::Init => {
                self.relisting.insert(ns.to_string(), BTreeSet::new());
                vec![]
            }
            Event::InitApply(o) => {
                if let Some(seen) = self.relisting.get_mut(ns) {
                    seen.insert(o.name_any());
                }
                vec![Event::Apply(o)]
            }
            Event::InitDone => {
                let seen = self.relisting.remove(ns).unwrap_or_default();
                let mut gone: Vec<K> = self
                    .held
                    .state()
                    .into_iter()
                    .filter(|o| o.namespace().as_deref() == Some(ns))
                    .filter(|o| !seen.contains(&o.name_any()))
                    .map(|o| (*o).clone())
                    .collect();
                gone.sort_by_key(ResourceExt::name_any);
                gone.into_iter().map(Event::Delete).collect()
            }
            live => vec![live],
        }
    }
}

enum FirstStep<K> {
    Held,
    /// Every namespace has listed: all their objects, as one list, and the names shown so far by
    /// namespaces that were listing again at that moment.
    Done(Vec<K>, HashMap<String, BTreeSet<String>>),
}

impl<K: kube::Resource + Clone> FirstList<K> {
    fn step(&mut self, ns: &str, event: Event<K>) -> FirstStep<K> {
        match event {
            Event::Init => {
                self.listing.insert(ns.to_string(), BTreeMap::new());
            }
            Event::InitApply(o) => {
                self.listing
                    .entry(ns.to_string())
                    .or_default()
                    .insert(o.name_any(), o);
            }
            Event::InitDone => {
                let objects = self.listing.remove(ns).unwrap_or_default();
                self.listed.insert(ns.to_string(), objects);
                self.waiting.remove(ns);
            }
            Event::Apply(o) => {
                self.listed
                    .entry(ns.to_string())
                    .or_default()
                    .insert(o.name_any(), o);
            }
            Event::Delete(o) => {
                if let Some(objects) = self.listed.get_mut(ns) {
                    objects.remove(&o.name_any());
                }
            }
        }
        if !self.waiting.is_empty() {
            return FirstStep::Held;
        }
        // A namespace listing again: what it has shown is newer than its last list, and its list
        // goes on after the hand-over (what it never shows again is deleted then).
        let mut relisting = HashMap::new();
        for (ns, newer) in std::mem::take(&mut self.listing) {
            relisting.insert(ns.clone(), newer.keys().cloned().collect());
            self.listed.entry(ns).or_default().extend(newer);
        }
        let mut namespaces: Vec<_> = std::mem::take(&mut self.listed).into_iter().collect();
        namespaces.sort_by(|a, b| a.0.cmp(&b.0));
        let objects = namespaces.into_iter().flat_map(|(_, o)| o.into_values());
        FirstStep::Done(objects.collect(), relisting)
    }
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
