//! One namespace per test, created unique and deleted when the test is done.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::cluster::{Cluster, client_for};
use crate::wait::wait_for;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A namespace `e2e-<prefix>-<unique>` labelled `ragops.io/e2e=true`. Dropping it deletes the
/// namespace (without waiting for it to finalise), unless `RAGOPS_E2E_KEEP_NAMESPACES=1` and the
/// test is failing, so its objects can be inspected after a failure.
pub struct TestNamespace {
    name: String,
    client: Client,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// Creates the namespace and waits until its `default` ServiceAccount exists (pods are
    /// refused before that).
    pub async fn new(cluster: &Cluster, prefix: &str) -> Result<Self> {
        let client = cluster.client().await?;
        let name = unique_name(prefix);
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"ragops.io/e2e": "true"}},
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(
            &format!("ServiceAccount default in {name}"),
            Duration::from_secs(30),
            || async { Ok(sa.get_opt("default").await?.map(|_| ())) },
        )
        .await?;
        Ok(Self {
            name,
            client,
            kubeconfig: cluster.kubeconfig.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// An admin client (the one that created the namespace).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// `Api<K>` for this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking()
            && std::env::var("RAGOPS_E2E_KEEP_NAMESPACES").as_deref() == Ok("1")
        {
            eprintln!("keeping namespace {} for inspection", self.name);
            return;
        }
        // The test's runtime may be single-threaded and busy dropping us: delete from a fresh
        // thread with its own runtime and client, and wait for the request only.
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        let res = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                let api = Api::<Namespace>::all(client_for(&kubeconfig).await?);
                api.delete(&name, &DeleteParams::background()).await?;
                Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) = res {
            eprintln!("warning: deleting namespace {}: {e:#}", self.name);
        }
    }
}

fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!(
        "{:x}{:x}{n}",
        std::process::id() % 0xffff,
        nanos % 0xff_ffff
    );
    let prefix: String = prefix
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(63 - 5 - suffix.len())
        .collect();
    format!("e2e-{}-{suffix}", prefix.trim_matches('-'))
}
