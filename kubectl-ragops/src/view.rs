//! `get`: what the cluster holds about a pipeline (its Deployments, Services, pods, metric
//! analysis, RagIndex and Events, listed once per scope) turned into a tree. Pure: objects and
//! `now` in, lines out.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use rag_operator::api::{Color, RagIndex, RagPipeline};
use rag_operator::pipeline::build::{COLOR_LABEL, PIPELINE_LABEL, REVISION_LABEL};

use crate::tree::Node;

/// Events shown per pipeline, the most recent ones.
pub const EVENTS_SHOWN: usize = 5;

/// Everything listed in the scope (a namespace, or all of them).
#[derive(Default)]
pub struct Snapshot {
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub pods: Vec<Pod>,
    pub indexes: Vec<RagIndex>,
    pub events: Vec<Event>,
}

/// The tree of one pipeline: its colours with their pods, its index, its latest Events.
pub fn pipeline_tree(p: &RagPipeline, s: &Snapshot, now: Timestamp) -> Node {
    let (ns, name) = (p.namespace().unwrap_or_default(), p.name_any());
    let mut children: Vec<Node> = Color::ALL
        .iter()
        .map(|&c| color_node(&ns, &name, c, s))
        .collect();
    let analysis = p.status.as_ref().and_then(|st| st.analysis.as_ref());
    children.extend(crate::analysis::analysis_node(analysis, now));
    let golden = p.status.as_ref().and_then(|st| st.golden_set.as_ref());
    children.extend(crate::analysis::golden_node(golden, now));
    children.push(index_node(p, &ns, s));
    children.push(events_node(&ns, &name, s, now));
    Node::new(headline(p), children)
}

/// `ragpipeline ns/name: Phase, active blue (rev), rolling out green (rev)`.
pub fn headline(p: &RagPipeline) -> String {
    let status = p.status.clone().unwrap_or_default();
    let phase = status
        .phase
        .map_or_else(|| "Unknown".to_string(), |ph| format!("{ph:?}"));
    let mut line = format!(
        "ragpipeline {}/{}: {phase}",
        p.namespace().unwrap_or_default(),
        p.name_any()
    );
    if let Some(active) = status.active_color {
        line += &format!(", active {active} ({})", or_dash(&status.active_revision));
    }
    if let Some(target) = status.target_color {
        line += &format!(
            ", rolling out {target} ({})",
            or_dash(&status.target_revision)
        );
    }
    let canary = status.rollout.as_ref().and_then(|r| r.canary.as_ref());
    if let (Some(c), Some(spec)) = (canary, p.spec.rollout.canary()) {
        line += &format!(
            ", canary step {} of {} at {}%",
            c.step,
            spec.steps.len(),
            c.weight
        );
    }
    line
}

fn color_node(ns: &str, name: &str, color: Color, s: &Snapshot) -> Node {
    let deployment = format!("{name}-{color}");
    let Some(d) = s
        .deployments
        .iter()
        .find(|d| d.namespace().as_deref() == Some(ns) && d.name_any() == deployment)
    else {
        return Node::leaf(format!("{color}: no Deployment {deployment}"));
    };
    let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    let ready = d
        .status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let revision = d.labels().get(REVISION_LABEL).cloned();
    let mut label = format!(
        "{color}: Deployment {deployment}, {ready}/{spec_replicas} ready, revision {}",
        or_dash(&revision)
    );
    let services = selecting_services(ns, name, color, &s.services);
    if !services.is_empty() {
        label += &format!(", serves {}", services.join(" + "));
    }
    let pods = pods_of(ns, name, color, &s.pods)
        .into_iter()
        .map(pod_line)
        .map(Node::leaf)
        .collect();
    Node::new(label, pods)
}

/// `active (Service docs)` and/or `preview (Service docs-preview)` when they select `color` (a
/// selector without a colour, a canary's split, selects both).
fn selecting_services(ns: &str, name: &str, color: Color, services: &[Service]) -> Vec<String> {
    let preview = format!("{name}-preview");
    [("active", name), ("preview", preview.as_str())]
        .into_iter()
        .filter(|(_, svc)| {
            services.iter().any(|s| {
                s.namespace().as_deref() == Some(ns)
                    && s.name_any() == *svc
                    && s.spec
                        .as_ref()
                        .and_then(|spec| spec.selector.as_ref())
                        .is_some_and(|sel| {
                            sel.get(COLOR_LABEL)
                                .is_none_or(|c| c.as_str() == color.as_str())
                        })
            })
        })
        .map(|(role, svc)| format!("{role} (Service {svc})"))
        .collect()
}

fn pods_of<'a>(ns: &str, name: &str, color: Color, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let mut mine: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            let labels = p.labels();
            p.namespace().as_deref() == Some(ns)
                && labels.get(PIPELINE_LABEL).map(String::as_str) == Some(name)
                && labels.get(COLOR_LABEL).map(String::as_str) == Some(color.as_str())
        })
        .collect();
    mine.sort_by_key(|p| p.name_any());
    mine
}

/// `pod <name>: ready|not ready[, terminating], <ip>`.
fn pod_line(p: &Pod) -> String {
    let status = p.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let mut line = format!(
        "pod {}: {}",
        p.name_any(),
        if ready { "ready" } else { "not ready" }
    );
    if p.metadata.deletion_timestamp.is_some() {
        line += ", terminating";
    }
    let ip = status.and_then(|s| s.pod_ip.clone());
    line += &format!(", {}", ip.as_deref().unwrap_or("no IP"));
    line
}

fn index_node(p: &RagPipeline, ns: &str, s: &Snapshot) -> Node {
    let name = &p.spec.index_ref.name;
    let index = s
        .indexes
        .iter()
        .find(|i| i.namespace().as_deref() == Some(ns) && i.name_any() == *name);
    Node::leaf(match index {
        None => format!("index {name}: not found"),
        Some(i) => {
            let phase = i.status.as_ref().and_then(|s| s.phase.clone());
            format!(
                "index {name}: {}",
                phase.as_deref().unwrap_or("no phase yet")
            )
        }
    })
}

fn events_node(ns: &str, name: &str, s: &Snapshot, now: Timestamp) -> Node {
    let mut about: Vec<(Timestamp, &Event)> = s
        .events
        .iter()
        .filter(|e| {
            let r = e.regarding.as_ref();
            e.namespace().as_deref() == Some(ns)
                && r.and_then(|r| r.kind.as_deref()) == Some("RagPipeline")
                && r.and_then(|r| r.name.as_deref()) == Some(name)
        })
        .map(|e| (last_seen(e), e))
        .collect();
    // Oldest first, ties by name so the order is stable.
    about.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.name_any().cmp(&y.name_any())));
    let shown = about.len().saturating_sub(EVENTS_SHOWN);
    let lines: Vec<Node> = about[shown..]
        .iter()
        .map(|(at, e)| Node::leaf(event_line(e, *at, now)))
        .collect();
    if lines.is_empty() {
        return Node::leaf("events: none");
    }
    Node::new(format!("events (last {}):", lines.len()), lines)
}

/// When an Event was last seen: its series' last observation, else when it happened.
pub fn last_seen(e: &Event) -> Timestamp {
    e.series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or_default()
}

fn event_line(e: &Event, at: Timestamp, now: Timestamp) -> String {
    let warning = if e.type_.as_deref() == Some("Warning") {
        " (Warning)"
    } else {
        ""
    };
    format!(
        "{} ago {}{warning}: {}",
        age(at, now),
        e.reason.as_deref().unwrap_or("-"),
        e.note.as_deref().unwrap_or("").trim()
    )
}

/// kubectl-style age: `42s`, `17m`, `5h`, `3d`.
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = (now.as_second() - since.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 120 * 60 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn or_dash(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("-")
}

/// Pipelines in a stable order: namespace, then name.
pub fn sorted(mut pipelines: Vec<RagPipeline>) -> Vec<RagPipeline> {
    let key = |p: &RagPipeline| (p.namespace().unwrap_or_default(), p.name_any());
    pipelines.sort_by_key(key);
    pipelines
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
