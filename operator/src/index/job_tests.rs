use k8s_openapi::api::core::v1::PodSpec;

use super::*;

const INDEX: &str = r#"
apiVersion: ragops.io/v1alpha1
kind: RagIndex
metadata: { name: handbook, namespace: team-a, uid: 7e1c0000-0000-4000-8000-000000000002 }
spec:
  vectorStore: { qdrant: { url: "http://qdrant:6334", collection: docs, apiKeySecretRef: { name: qdrant } } }
  embedding: { provider: openai, model: text-embedding-3-small, dimensions: 1536, apiKeySecretRef: { name: openai, key: token } }
  sources: [{ configMap: { name: guides } }, { url: "https://example.com/faq.md" }, { persistentVolumeClaim: { claimName: corpus, path: /team/ } }]
  ingest: { backoffLimit: 3, allowHosts: [wiki.corp], allowCIDRs: [10.20.0.0/16] }
"#;

fn plan_job(unless: Option<&str>) -> (Job, ConfigMap) {
    let index: RagIndex = serde_yaml::from_str(INDEX).unwrap();
    let sources = vec![
        SourceVersion::ConfigMap {
            name: "guides".into(),
            digest: "d".into(),
        },
        SourceVersion::Url {
            url: "https://example.com/faq.md".into(),
        },
        SourceVersion::Volume {
            claim: "corpus".into(),
            path: "/team/".into(),
        },
    ];
    let plan = Plan {
        index: &index,
        revision: "0123456789",
        spec_revision: "abcdef0123",
        sources: &sources,
        unless_digest: unless,
        default_image: "ghcr.io/ragops/rag-runtime:0.1.0",
        cluster_cidrs: &["10.96.0.0/12".parse().unwrap()],
    };
    (job(&plan), config_map(&plan))
}

fn pod(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

#[test]
fn the_job_ingests_every_source_into_the_revision() {
    let (job, _) = plan_job(Some("abc"));
    assert_eq!(
        job.metadata.name.as_deref(),
        Some("handbook-ingest-0123456789")
    );
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(
        (spec.backoff_limit, spec.active_deadline_seconds),
        (Some(3), Some(3600))
    );
    let c = &pod(&job).containers[0];
    let args = c.args.clone().unwrap();
    assert_eq!(
        args,
        [
            "ingest",
            "--config",
            "/etc/ragops/config.yaml",
            "--revision",
            "0123456789",
            "--report-file",
            "/dev/termination-log",
            "--unless-digest",
            "abc",
            "/sources/guides",
            "https://example.com/faq.md",
            "/sources/volume-2/team",
        ]
    );
    assert_eq!(pod(&job).restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some(TERMINATION_MESSAGE_PATH)
    );
    assert_eq!(c.image.as_deref(), Some("ghcr.io/ragops/rag-runtime:0.1.0"));
}

#[test]
fn sources_are_mounted_read_only_and_credentials_come_by_reference() {
    let (job, _) = plan_job(None);
    let spec = pod(&job);
    let c = &spec.containers[0];
    assert!(
        !c.args
            .as_ref()
            .unwrap()
            .contains(&"--unless-digest".to_string())
    );
    let mounts = c.volume_mounts.as_ref().unwrap();
    let source_mounts: Vec<_> = mounts
        .iter()
        .filter(|m| m.mount_path.starts_with("/sources"))
        .collect();
    assert_eq!(source_mounts.len(), 2);
    assert!(source_mounts.iter().all(|m| m.read_only == Some(true)));
    let pvc = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .unwrap();
    assert_eq!(
        (pvc.claim_name.as_str(), pvc.read_only),
        ("corpus", Some(true))
    );
    let env = c.env.as_ref().unwrap();
    assert!(
        env.iter()
            .all(|e| e.value.is_none() && e.value_from.is_some())
    );
    let names: Vec<_> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, [EMBEDDING_API_KEY_ENV, QDRANT_API_KEY_ENV]);
    assert_eq!(
        c.security_context
            .as_ref()
            .unwrap()
            .read_only_root_filesystem,
        Some(true)
    );
}

#[test]
fn the_config_names_the_alias_and_the_index_settings() {
    let (job, cm) = plan_job(None);
    assert_eq!(cm.metadata.name, job.metadata.name);
    let yaml = &cm.data.as_ref().unwrap()[CONFIG_FILE];
    let config: rag_runtime::config::RuntimeConfig = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(config.collection.0, "docs");
    assert_eq!(config.embedding.dimensions, 1536);
    // URL sources: the index's allow lists, the cluster's networks refused.
    let urls = &config.url_sources;
    assert_eq!(urls.allow_hosts, ["wiki.corp"]);
    assert_eq!(
        urls.allow_cidrs,
        ["10.20.0.0/16".parse::<ipnet::IpNet>().unwrap()]
    );
    assert_eq!(
        urls.deny_cidrs,
        ["10.96.0.0/12".parse::<ipnet::IpNet>().unwrap()]
    );
    let labels = job.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[INDEX_LABEL], "handbook");
    assert_eq!(labels["app.kubernetes.io/component"], COMPONENT);
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("RagIndex", Some(true))
    );
}

#[test]
fn long_index_names_still_make_valid_job_names() {
    let long = "a".repeat(80);
    let n = name(&long, "0123456789");
    assert!(n.len() <= 63 && n.ends_with("-ingest-0123456789"), "{n}");
}
