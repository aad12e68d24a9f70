//! `make run`: the whole product on this machine. Against the local control plane (`make
//! cluster-up`), it installs the CRDs, applies the samples from `config/samples/` in namespace
//! `ragops-local`, runs the operator binary, runs each pod's spec (the ingest init container, then
//! the real rag-runtime) on the pod IPs KWOK assigns, waits for the pipeline to become Ready and
//! asks it a question. Then it keeps everything running until Ctrl-C, for `kubectl` and `curl`.

use std::time::Duration;

use anyhow::{Context, Result};
use e2e::{Cluster, PodServers, spec_runtime, start_operator, wait_for};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::discovery::Discovery;
use serde_json::json;

const NAMESPACE: &str = "ragops-local";
const QUESTION: &str = "How does a blue-green rollout switch traffic?";

#[tokio::main]
async fn main() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    let client = cluster.client().await?;
    let root = e2e::workspace_root();
    let apply = PatchParams::apply("ragops-local").force();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for entry in std::fs::read_dir(root.join("crds"))? {
        let crd: CustomResourceDefinition =
            serde_yaml::from_str(&std::fs::read_to_string(entry?.path())?)?;
        let name = crd.metadata.name.clone().context("a CRD without a name")?;
        crds.patch(&name, &apply, &Patch::Apply(&crd)).await?;
        e2e::wait_for_object(
            &crds,
            &name,
            Duration::from_secs(30),
            e2e::crd_established(),
        )
        .await?;
    }
    let ns = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NAMESPACE } });
    Api::<Namespace>::all(client.clone())
        .patch(NAMESPACE, &apply, &Patch::Apply(&ns))
        .await?;

    // Each pod runs the spec the operator wrote: its init container ingests the `handbook-docs`
    // ConfigMap it mounts, then the runtime serves with the config the operator rendered.
    let selector = Some("ragops.io/pipeline=handbook".to_string());
    let pods = PodServers::start(&cluster, NAMESPACE, spec_runtime(selector)).await?;
    let operator = start_operator(
        &cluster,
        NAMESPACE,
        &["--metrics-addr", "127.0.0.1:0", "--log-format", "text"],
    )?;

    let discovery = Discovery::new(client.clone()).run().await?;
    for file in ["handbook-docs.yaml", "ragindex.yaml", "ragpipeline.yaml"] {
        let obj: DynamicObject = serde_yaml::from_str(&std::fs::read_to_string(
            root.join("config/samples").join(file),
        )?)?;
        let gvk = obj
            .types
            .as_ref()
            .context("a sample without apiVersion/kind")?
            .try_into()?;
        let (resource, _) = discovery
            .resolve_gvk(&gvk)
            .context("an unknown kind in the samples")?;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, &resource);
        let name = obj
            .metadata
            .name
            .clone()
            .context("a sample without a name")?;
        api.patch(&name, &apply, &Patch::Apply(&obj)).await?;
        println!("applied {file}");
    }

    println!(
        "waiting for ragpipeline/handbook to become Ready (the operator log: {})",
        operator.log_path().display()
    );
    let out = wait_for(
        "ragpipeline/handbook Ready",
        Duration::from_secs(180),
        || async {
            Ok(cluster
                .kubectl_output(&[
                    "wait",
                    "--for=condition=Ready",
                    "ragpipeline/handbook",
                    "-n",
                    NAMESPACE,
                    "--timeout=5s",
                ])
                .ok())
        },
    )
    .await?;
    print!("{out}");
    print!(
        "{}",
        cluster.kubectl_output(&["get", "ragpipelines,deployments,services", "-n", NAMESPACE])?
    );

    let pod = pods
        .serving()
        .into_iter()
        .next()
        .context("no runtime is serving")?;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/v1/query", pod.addr))
        .json(&json!({ "query": QUESTION, "topK": 3 }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    println!(
        "\nQ: {QUESTION}\nA: {}",
        answer["answer"].as_str().unwrap_or_default()
    );
    for source in answer["sources"].as_array().into_iter().flatten() {
        println!(
            "   [{:.3}] {}",
            source["score"].as_f64().unwrap_or_default(),
            source["documentId"].as_str().unwrap_or_default()
        );
    }
    println!(
        "\nEverything keeps running until Ctrl-C. Try:\n  export KUBECONFIG={}\n  kubectl get ragp -n {NAMESPACE} -w\n  curl -s http://{}/v1/query -H 'content-type: application/json' -d '{{\"query\": \"what does autoscaling do?\"}}'",
        cluster.kubeconfig.display(),
        pod.addr
    );
    tokio::signal::ctrl_c().await?;
    drop((operator, pods));
    Ok(())
}
