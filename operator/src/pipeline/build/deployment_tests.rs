//! The runtime Deployments and their pod template.

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};
use rag_runtime::config::{API_KEYS_FILE_ENV, LLM_API_KEY_ENV, QDRANT_API_KEY_ENV};

use super::super::fixtures::{self, validated};
use super::probes::{LIVENESS, READINESS, STARTUP};
use super::volumes::{API_KEYS_DIR, API_KEYS_FILE};
use super::*;

const FIXTURE_RUNTIME: &str = r#"runtime: { image: "rag-runtime:test", replicas: 2 }"#;

/// The fixture pipeline with `knobs` added to its `spec.runtime` (flow YAML, e.g. `envFrom: []`).
fn with_runtime(knobs: &str) -> Validated {
    let runtime = format!(r#"runtime: {{ image: "rag-runtime:test", replicas: 2, {knobs} }}"#);
    let pipeline = fixtures::PIPELINE.replace(FIXTURE_RUNTIME, &runtime);
    fixtures::validated_with(&pipeline, fixtures::INDEX)
}

/// The fixture pipeline with `spec.server` set to `server` (flow YAML).
fn with_server(server: &str, index: &str) -> Validated {
    let pipeline = format!("{}  server: {server}\n", fixtures::PIPELINE);
    fixtures::validated_with(&pipeline, index)
}

/// The fixture index on the embedded store, with one ConfigMap source.
fn embedded_index() -> String {
    fixtures::INDEX.replace(
        r#"{ qdrant: { url: "http://qdrant:6334", apiKeySecretRef: { name: qdrant } } }"#,
        "{ embedded: {} }\n  sources: [{ configMap: { name: docs-a } }, { url: https://example.com/x.md }]",
    )
}

fn pod(v: &Validated) -> PodTemplateSpec {
    pod_template(v, "config-a.yaml")
}

fn spec(t: &PodTemplateSpec) -> &PodSpec {
    t.spec.as_ref().unwrap()
}

fn runtime(t: &PodTemplateSpec) -> &Container {
    &spec(t).containers[0]
}

fn volume<'a>(t: &'a PodTemplateSpec, name: &str) -> Option<&'a Volume> {
    spec(t).volumes.iter().flatten().find(|v| v.name == name)
}

fn env_names(c: &Container) -> Vec<&str> {
    c.env.iter().flatten().map(|e| e.name.as_str()).collect()
}

#[test]
fn pods_are_locked_down_and_get_secrets_from_env() {
    let t = pod(&validated());
    let spec = spec(&t);
    let c = &spec.containers[0];
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_string()])
    );
    assert_eq!(
        spec.security_context
            .as_ref()
            .unwrap()
            .seccomp_profile
            .as_ref()
            .unwrap()
            .type_,
        "RuntimeDefault"
    );
    assert_eq!(spec.automount_service_account_token, Some(false));
    assert_eq!(env_names(c), [LLM_API_KEY_ENV, QDRANT_API_KEY_ENV]);
    let llm = &c.env.as_ref().unwrap()[0];
    let secret = llm
        .value_from
        .as_ref()
        .unwrap()
        .secret_key_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("llm", "token")
    );
    let items = spec.volumes.as_ref().unwrap()[0]
        .config_map
        .as_ref()
        .unwrap()
        .items
        .clone()
        .unwrap();
    assert_eq!(items[0].key, "config-a.yaml");
}

#[test]
fn embedded_store_is_filled_from_config_map_sources_before_the_runtime_starts() {
    let v = fixtures::validated_with(fixtures::PIPELINE, &embedded_index());
    let t = pod(&v);
    let init = &spec(&t).init_containers.as_ref().unwrap()[0];
    let args = init.args.clone().unwrap();
    assert_eq!(args[0], "ingest");
    assert_eq!(args.last().map(String::as_str), Some("/sources/docs-a"));
    assert_eq!(init.image, runtime(&t).image);
    assert_eq!(
        volume(&t, "source-docs-a")
            .unwrap()
            .config_map
            .as_ref()
            .unwrap()
            .name,
        "docs-a"
    );
    assert!(init.readiness_probe.is_none() && init.ports.is_none());
    // A Qdrant server is filled by the indexing Job, not by every pod.
    assert!(spec(&pod(&validated())).init_containers.is_none());
}

/// A knob (flow YAML under `spec.runtime`) and the check of where it lands.
type KnobCase = (&'static str, fn(&PodTemplateSpec));

/// Every knob under `spec.runtime` and where it lands in the pod template.
fn knobs() -> [KnobCase; 7] {
    [
        ("podTemplate: { serviceAccountName: rag-reader }", |t| {
            assert_eq!(spec(t).service_account_name.as_deref(), Some("rag-reader"));
            // The runtime never calls the API server: no token, whatever the account.
            assert_eq!(spec(t).automount_service_account_token, Some(false));
        }),
        (
            "podTemplate: { imagePullSecrets: [{ name: registry }] }",
            |t| {
                let secrets = spec(t).image_pull_secrets.as_ref().unwrap();
                assert_eq!(secrets[0].name, "registry");
            },
        ),
        (
            r#"podTemplate: { annotations: { sidecar.istio.io/inject: "true" } }"#,
            |t| {
                let annotations = t.metadata.as_ref().unwrap().annotations.as_ref().unwrap();
                assert_eq!(annotations["sidecar.istio.io/inject"], "true");
            },
        ),
        (
            "podTemplate: { labels: { team: search, ragops.io/color: red, app.kubernetes.io/name: mine } }",
            |t| {
                let labels = t.metadata.as_ref().unwrap().labels.as_ref().unwrap();
                assert_eq!(labels["team"], "search");
                // The operator's identity and selector labels are never the user's.
                assert_eq!(labels["app.kubernetes.io/name"], "rag-runtime");
                assert!(!labels.contains_key(COLOR_LABEL), "{labels:?}");
            },
        ),
        (
            "envFrom: [{ configMapRef: { name: proxy } }, { secretRef: { name: provider-keys } }]",
            |t| {
                let from = runtime(t).env_from.as_ref().unwrap();
                assert_eq!(from[0].config_map_ref.as_ref().unwrap().name, "proxy");
                assert_eq!(from[1].secret_ref.as_ref().unwrap().name, "provider-keys");
            },
        ),
        ("dataSizeLimit: 2Gi, tmpSizeLimit: 256Mi", |t| {
            let limit = |name| {
                let dir = volume(t, name).unwrap().empty_dir.clone().unwrap();
                dir.size_limit.map(|q| q.0)
            };
            assert_eq!(limit("data").as_deref(), Some("2Gi"));
            assert_eq!(limit("tmp").as_deref(), Some("256Mi"));
        }),
        (
            "probes: { startup: { failureThreshold: 120 }, liveness: { periodSeconds: 20, initialDelaySeconds: 10 } }",
            |t| {
                let c = runtime(t);
                let startup = c.startup_probe.as_ref().unwrap();
                assert_eq!(startup.failure_threshold, Some(120));
                assert_eq!(startup.period_seconds, Some(STARTUP.period_seconds));
                let liveness = c.liveness_probe.as_ref().unwrap();
                assert_eq!(liveness.period_seconds, Some(20));
                assert_eq!(liveness.initial_delay_seconds, Some(10));
                assert_eq!(liveness.failure_threshold, Some(LIVENESS.failure_threshold));
            },
        ),
    ]
}

#[test]
fn runtime_knobs_reach_the_pods() {
    let plain = pod(&validated());
    for (knobs, check) in knobs() {
        let t = pod(&with_runtime(knobs));
        check(&t);
        assert_ne!(revision(&t), revision(&plain), "{knobs} reaches the pods");
    }
}

#[test]
fn without_knobs_nothing_extra_is_sent() {
    // The API server drops empty values; sending them would look like a change on every pass.
    let plain = pod(&validated());
    let plain_spec = spec(&plain);
    assert!(plain_spec.service_account_name.is_none() && plain_spec.image_pull_secrets.is_none());
    assert!(plain.metadata.as_ref().unwrap().annotations.is_none());
    assert!(runtime(&plain).env_from.is_none());
    assert!(
        volume(&plain, "data")
            .unwrap()
            .empty_dir
            .as_ref()
            .unwrap()
            .size_limit
            .is_none()
    );
}

#[test]
fn probes_default_to_a_patient_start_then_readiness_and_liveness() {
    let c = runtime(&pod(&validated())).clone();
    let probes = [
        (c.startup_probe, STARTUP, "/healthz"),
        (c.readiness_probe, READINESS, "/readyz"),
        (c.liveness_probe, LIVENESS, "/healthz"),
    ];
    for (probe, defaults, path) in probes {
        let probe = probe.unwrap();
        let get = probe.http_get.unwrap();
        assert_eq!((get.path.as_deref(), defaults.path), (Some(path), path));
        assert_eq!(get.port, IntOrString::String("http".into()));
        assert_eq!(probe.period_seconds, Some(defaults.period_seconds));
        assert_eq!(probe.timeout_seconds, Some(defaults.timeout_seconds));
        assert_eq!(probe.failure_threshold, Some(defaults.failure_threshold));
        assert_eq!(probe.initial_delay_seconds, None, "the API server drops 0");
    }
    // The startup probe gives a slow start far longer than liveness would.
    let patience = |d: probes::ProbeDefaults| d.period_seconds * d.failure_threshold;
    assert!(patience(STARTUP) >= 10 * patience(LIVENESS));
    let zero = pod(&with_runtime(
        "probes: { readiness: { initialDelaySeconds: 0 } }",
    ));
    let readiness = runtime(&zero).readiness_probe.clone().unwrap();
    assert_eq!(readiness.initial_delay_seconds, None);
}

#[test]
fn api_keys_are_a_read_only_file_for_the_runtime_only() {
    let v = with_server(
        "{ apiKeysSecretRef: { name: rag-keys, key: tokens } }",
        &embedded_index(),
    );
    let t = pod(&v);
    let secret = volume(&t, "api-keys").unwrap().secret.clone().unwrap();
    assert_eq!(secret.secret_name.as_deref(), Some("rag-keys"));
    let item = &secret.items.unwrap()[0];
    assert_eq!(
        (item.key.as_str(), item.path.as_str()),
        ("tokens", API_KEYS_FILE)
    );
    assert_eq!(item.mode, Some(0o440));
    let c = runtime(&t);
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "api-keys")
        .unwrap();
    assert_eq!(
        (mount.mount_path.as_str(), mount.read_only),
        (API_KEYS_DIR, Some(true))
    );
    let file = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == API_KEYS_FILE_ENV)
        .unwrap();
    assert_eq!(
        file.value.as_deref(),
        Some("/var/run/secrets/ragops/api-keys/keys")
    );
    // The ingest init container serves nothing: it gets neither.
    let init = &spec(&t).init_containers.as_ref().unwrap()[0];
    assert!(!env_names(init).contains(&API_KEYS_FILE_ENV));
    assert!(
        init.volume_mounts
            .iter()
            .flatten()
            .all(|m| m.name != "api-keys")
    );
    // No reference, no volume and no variable.
    let plain = pod(&validated());
    assert!(volume(&plain, "api-keys").is_none());
    assert!(!env_names(runtime(&plain)).contains(&API_KEYS_FILE_ENV));
}

#[test]
fn every_secret_key_the_pods_read_is_checked_before_they_start() {
    use super::super::super::validate::secret_refs;
    let v = with_server(
        "{ apiKeysSecretRef: { name: rag-keys, key: tokens } }",
        fixtures::INDEX,
    );
    let t = pod(&v);
    let containers = spec(&t).containers.iter();
    let from_env = containers
        .flat_map(|c| c.env.iter().flatten())
        .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
        .map(|s| (s.name.clone(), s.key.clone()));
    let from_volumes = spec(&t)
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.secret.as_ref())
        .flat_map(|s| {
            let name = s.secret_name.clone().unwrap();
            s.items
                .iter()
                .flatten()
                .map(move |i| (name.clone(), i.key.clone()))
        });
    let mut read: Vec<_> = from_env.chain(from_volumes).collect();
    let refs = secret_refs(&v.pipeline, &v.index);
    let mut checked: Vec<_> = refs
        .iter()
        .map(|(_, r)| (r.name.clone(), r.key.clone()))
        .collect();
    read.sort();
    checked.sort();
    assert_eq!(read, checked);
    let (field, _) = refs.iter().find(|(_, r)| r.name == "rag-keys").unwrap();
    assert_eq!(*field, "spec.server.apiKeysSecretRef");
}

#[test]
fn the_pod_outlives_the_runtimes_drain() {
    let cases = [
        (None, 30),
        (Some("{}"), 30),
        (Some("{ timeouts: { shutdownGraceSeconds: 120 } }"), 125),
        (Some("{ timeouts: { shutdownGraceSeconds: 0 } }"), 5),
    ];
    for (server, expected) in cases {
        let v = match server {
            Some(s) => with_server(s, fixtures::INDEX),
            None => validated(),
        };
        let grace = spec(&pod(&v)).termination_grace_period_seconds;
        assert_eq!(grace, Some(expected), "{server:?}");
        let drain = super::super::runtime_config(&v)
            .server
            .shutdown_grace_seconds;
        assert!(grace.unwrap() > i64::try_from(drain).unwrap(), "{server:?}");
    }
}

#[test]
fn revision_changes_with_anything_that_reaches_the_pods() {
    let v = validated();
    let base = revision(&pod_template(&v, "config-a.yaml"));
    assert_eq!(base, revision(&pod_template(&v, "config-a.yaml")));
    assert_ne!(base, revision(&pod_template(&v, "config-b.yaml")));
    let mut other = v.clone();
    other.pipeline.spec.runtime.image = "rag-runtime:next".into();
    assert_ne!(base, revision(&pod_template(&other, "config-a.yaml")));
    // Replicas do not reach the template: scaling is not a rollout.
    let mut scaled = v.clone();
    scaled.pipeline.spec.runtime.replicas = 7;
    assert_eq!(base, revision(&pod_template(&scaled, "config-a.yaml")));
}

#[test]
fn deployment_selects_its_colour_and_is_owned() {
    let v = validated();
    let t = pod_template(&v, "config-a.yaml");
    let d = deployment(&v, Color::Green, 3, &t, "r1");
    assert_eq!(d.metadata.name.as_deref(), Some("docs-green"));
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let selector = spec.selector.match_labels.unwrap();
    assert_eq!(selector.get(COLOR_LABEL).map(String::as_str), Some("green"));
    assert!(
        !selector.contains_key(REVISION_LABEL),
        "selectors are immutable; the revision must stay out"
    );
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(
        selector
            .iter()
            .all(|(k, val)| pod_labels.get(k) == Some(val))
    );
    assert_eq!(
        pod_labels.get(REVISION_LABEL).map(String::as_str),
        Some("r1")
    );
    let owner = &d.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("RagPipeline", Some(true))
    );
}
