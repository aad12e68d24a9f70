//! The commands' edges: what each reads from and writes to the API server. Deciding and
//! formatting happen in `view`, `ops` and `status`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::watch_object;
use kube::{Client, Resource};
use rag_operator::api::{RagIndex, RagPipeline};
use rag_operator::pipeline::build::PIPELINE_LABEL;
use serde_json::Value;

use crate::ops::{Verb, plan, request_id};
use crate::status::{Outcome, lines, outcome};
use crate::view::{Snapshot, pipeline_tree, sorted};

/// Where `get` looks: one namespace, or all of them.
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self {
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
            Scope::All => Api::all(client.clone()),
        }
    }
}

/// Prints the tree of pipeline `name`, or of every pipeline in the scope.
pub async fn get(client: &Client, scope: Scope, name: Option<&str>) -> Result<ExitCode> {
    let pipelines_api: Api<RagPipeline> = scope.api(client);
    let pipelines = match (name, &scope) {
        (Some(_), Scope::All) => bail!("a pipeline cannot be named across all namespaces (-A)"),
        (Some(name), Scope::Namespace(ns)) => vec![
            pipelines_api
                .get_opt(name)
                .await?
                .with_context(|| format!("ragpipeline {name} not found in namespace {ns}"))?,
        ],
        (None, _) => sorted(pipelines_api.list(&ListParams::default()).await?.items),
    };
    if pipelines.is_empty() {
        match scope {
            Scope::Namespace(ns) => println!("No RagPipelines found in namespace {ns}."),
            Scope::All => println!("No RagPipelines found."),
        }
        return Ok(ExitCode::SUCCESS);
    }
    // One list per kind for the whole scope, whatever the number of pipelines.
    let children = ListParams::default().labels(&match name {
        Some(name) => format!("{PIPELINE_LABEL}={name}"),
        None => PIPELINE_LABEL.to_string(),
    });
    let snapshot = Snapshot {
        deployments: scope.api::<Deployment>(client).list(&children).await?.items,
        services: scope.api::<Service>(client).list(&children).await?.items,
        pods: scope.api::<Pod>(client).list(&children).await?.items,
        indexes: scope
            .api::<RagIndex>(client)
            .list(&Default::default())
            .await?
            .items,
        events: scope
            .api::<Event>(client)
            .list(&Default::default())
            .await?
            .items,
    };
    let now = jiff::Timestamp::now();
    let trees: Vec<String> = pipelines
        .iter()
        .map(|p| pipeline_tree(p, &snapshot, now).lines().join("\n"))
        .collect();
    println!("{}", trees.join("\n\n"));
    Ok(ExitCode::SUCCESS)
}

/// Sets `verb`'s annotation on pipeline `name` when its status says it can apply.
pub async fn operate(api: &Api<RagPipeline>, name: &str, verb: Verb) -> Result<ExitCode> {
    let p = api
        .get_opt(name)
        .await?
        .with_context(|| format!("ragpipeline {name} not found"))?;
    match plan(verb, &p) {
        Err(refusal) => {
            eprintln!("{refusal}");
            Ok(ExitCode::FAILURE)
        }
        Ok(what) => {
            println!("{what}");
            let id = request_id(std::time::SystemTime::now());
            let patch: Value = verb.patch(&id, p.metadata.resource_version.as_deref());
            let patched = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            if let Err(kube::Error::Api(s)) = &patched
                && s.code == 409
            {
                eprintln!(
                    "ragpipeline {name} changed while this was decided (someone else acted on it?); \
                     nothing was asked: run the command again"
                );
                return Ok(ExitCode::FAILURE);
            }
            patched.with_context(|| format!("annotating ragpipeline {name}"))?;
            println!(
                "ragpipeline/{name} annotated {}={id}; the operator acts on request {id} once and \
                 removes the annotation",
                verb.annotation()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the status once, or with `watch` follows it on a watch of that one object until it is
/// Healthy or Degraded at the current generation, or the deadline passes.
pub async fn status(
    api: &Api<RagPipeline>,
    name: &str,
    watch: Option<Duration>,
) -> Result<ExitCode> {
    let Some(timeout) = watch else {
        let p = api
            .get_opt(name)
            .await?
            .with_context(|| format!("ragpipeline {name} not found"))?;
        println!("{}", lines(&p).join("\n"));
        return Ok(ExitCode::SUCCESS);
    };
    let follow = async {
        let mut stream = watch_object(api.clone(), name).default_backoff().boxed();
        let mut shown: Vec<String> = vec![];
        while let Some(item) = stream.next().await {
            let p = match item {
                Ok(Some(p)) => p,
                Ok(None) => bail!("ragpipeline {name} not found (or deleted)"),
                Err(e) => {
                    eprintln!("watch: {e} (retrying)");
                    continue;
                }
            };
            let now = lines(&p);
            if now != shown {
                println!("{}", now.join("\n"));
                shown = now;
            }
            if let Some(done) = outcome(&p) {
                return Ok(done);
            }
        }
        bail!("the watch on ragpipeline {name} ended")
    };
    let done = match tokio::time::timeout(timeout, follow).await {
        Ok(result) => result?,
        Err(_) => Outcome::TimedOut,
    };
    match &done {
        Outcome::Healthy => println!("{name} is Healthy"),
        Outcome::Degraded(reason) => eprintln!("{name} is Degraded ({reason})"),
        Outcome::TimedOut => eprintln!(
            "timed out after {} waiting for {name} to be Healthy or Degraded",
            jiff::SignedDuration::try_from(timeout)
                .map_or_else(|_| format!("{timeout:?}"), |d| format!("{d:#}"))
        ),
    }
    Ok(done.exit_code())
}
