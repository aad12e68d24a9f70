use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::*;
use crate::pod_runner::fixtures::{inputs, pod, scratch};
use crate::pod_runner::volumes::materialise;

/// The runtime container and its ingest init container as the operator writes them, plus an
/// API-keys Secret mounted as a file.
fn operator_spec() -> Value {
    let mounts = json!([
        {"name": "config", "mountPath": "/etc/ragops", "readOnly": true},
        {"name": "data", "mountPath": "/data"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "api-keys", "mountPath": "/etc/ragops-keys", "readOnly": true},
    ]);
    let mut ingest_mounts = mounts.clone();
    ingest_mounts
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "source-docs", "mountPath": "/sources/docs", "readOnly": true}));
    json!({
        "initContainers": [{
            "name": "ingest",
            "image": "ghcr.io/ragops/rag-runtime:0.1.0",
            "args": ["ingest", "--config", "/etc/ragops/config.yaml", "--data-dir", "/data", "/sources/docs"],
            "volumeMounts": ingest_mounts,
        }],
        "containers": [{
            "name": "runtime",
            "image": "ghcr.io/ragops/rag-runtime:0.1.0",
            "args": ["serve", "--config", "/etc/ragops/config.yaml", "--listen", "0.0.0.0:8080", "--data-dir", "/data"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "env": [
                {"name": "RAG_LLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "llm", "key": "token"}}},
                {"name": "RAG_API_KEYS_FILE", "value": "/etc/ragops-keys/keys"},
            ],
            "volumeMounts": mounts,
        }],
        "volumes": [
            {"name": "config", "configMap": {"name": "docs", "items": [{"key": "a.md", "path": "config.yaml"}]}},
            {"name": "data", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "api-keys", "secret": {"secretName": "api-keys"}},
            {"name": "source-docs", "configMap": {"name": "docs"}},
        ],
    })
}

/// Plans container `name` (an init container or the container) of `spec`'s pod in `dir`.
fn plan_in(runner: &SpecRunner, spec: Value, name: &str, dir: &Path) -> Result<Launch> {
    let pod = pod(spec);
    let pod_spec = pod.spec.as_ref().unwrap();
    let inputs = inputs();
    let volumes = materialise(pod_spec, &inputs, &dir.join("volumes"))?;
    let ctx = PodContext {
        pod: &pod,
        inputs: &inputs,
        volumes: &volumes,
        dir,
        ip: "127.1.0.5".parse().unwrap(),
    };
    let c = super::super::inputs::containers(pod_spec)
        .find(|c| c.name == name)
        .unwrap();
    plan(runner, c, &ctx)
}

fn runtime_runner() -> SpecRunner {
    SpecRunner::new().with_image("rag-runtime", std::env::current_exe().unwrap())
}

#[test]
fn the_operators_containers_run_with_paths_in_the_pod_dir_and_the_pod_ip() {
    let dir = scratch("operator-spec");
    let v = |name: &str| dir.join("volumes").join(name).display().to_string();
    let runner = runtime_runner();
    let ingest = plan_in(&runner, operator_spec(), "ingest", &dir).unwrap();
    assert_eq!(ingest.program, std::env::current_exe().unwrap());
    let config = format!("{}/config.yaml", v("config"));
    assert_eq!(
        ingest.args,
        [
            "ingest",
            "--config",
            &config,
            "--data-dir",
            &v("data"),
            &v("source-docs")
        ]
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), "# A\n");

    let runtime = plan_in(&runner, operator_spec(), "runtime", &dir).unwrap();
    let expected = [
        "serve",
        "--config",
        &config,
        "--listen",
        "127.1.0.5:8080",
        "--data-dir",
        &v("data"),
    ];
    assert_eq!(runtime.args, expected);
    let keys_file = format!("{}/keys", v("api-keys"));
    assert_eq!(runtime.env["RAG_API_KEYS_FILE"], keys_file);
    assert_eq!(
        std::fs::read_to_string(&keys_file).unwrap(),
        "token-one\ntoken-two\n"
    );
    assert_eq!(runtime.env["RAG_LLM_API_KEY"], "sk-llm");
    assert_eq!(runtime.env["HOSTNAME"], "handbook-blue-x");
    assert_eq!(runtime.env["TMPDIR"], v("tmp"));
    assert_eq!(runtime.cwd, dir);
    assert_eq!(runtime.termination_log, dir.join("termination/runtime"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_process_environment_is_only_what_the_spec_gives() {
    let dir = scratch("env-only");
    // `env` prints its environment: the process sees exactly what the plan holds.
    let runner = SpecRunner::new().with_image("printenv", "/usr/bin/env");
    let spec = json!({"containers": [{
        "name": "show", "image": "example.com/printenv:1", "command": ["/usr/bin/env"],
        "env": [{"name": "ONLY", "value": "this"}],
    }]});
    let launch = plan_in(&runner, spec, "show", &dir).unwrap();
    let out = launch.command().output().unwrap();
    assert!(out.status.success());
    let seen: BTreeSet<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    let mut expected: BTreeSet<String> = ["ONLY", "HOSTNAME"].map(String::from).into();
    expected.extend(
        ["PATH", "RUST_LOG"]
            .into_iter()
            .filter(|k| std::env::var_os(k).is_some())
            .map(String::from),
    );
    assert_eq!(seen, expected);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_command_must_name_the_images_binary() {
    let dir = scratch("command");
    let runner = runtime_runner();
    let exe = std::env::current_exe().unwrap();
    let name = exe.file_name().unwrap().to_str().unwrap();
    let spec = |command: &str| {
        json!({"containers": [{"name": "c", "image": "rag-runtime",
            "command": [command, "ingest"], "args": ["$(DIR)/x", "/dev/termination-log"],
            "env": [{"name": "DIR", "value": "/d"}]}]})
    };
    let launch = plan_in(&runner, spec(&format!("/usr/local/bin/{name}")), "c", &dir).unwrap();
    let log = dir.join("termination/c").display().to_string();
    assert_eq!(launch.args, ["ingest", "/d/x", &log]);
    let err = plan_in(&runner, spec("sh"), "c", &dir).unwrap_err();
    assert!(format!("{err:#}").contains("only provides"), "{err:#}");
    let unknown = json!({"containers": [{"name": "c", "image": "busybox:1.36"}]});
    let err = plan_in(&runner, unknown, "c", &dir).unwrap_err();
    assert!(format!("{err:#}").contains("no local binary"), "{err:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn listen_on_every_interface_means_the_pod_ip() {
    let ip: IpAddr = "127.1.0.5".parse().unwrap();
    let mut args: Vec<String> = [
        "--listen",
        "0.0.0.0:8080",
        "--listen=[::]:9090",
        "--listen",
        ":7070",
        "--listen",
        "127.0.0.1:6060",
        "0.0.0.0:1",
    ]
    .map(String::from)
    .into();
    bind_listen(&mut args, ip);
    assert_eq!(
        args,
        [
            "--listen",
            "127.1.0.5:8080",
            "--listen=127.1.0.5:9090",
            "--listen",
            "127.1.0.5:7070",
            "--listen",
            "127.0.0.1:6060",
            "0.0.0.0:1",
        ]
    );
}

#[test]
fn termination_messages_come_from_the_file_or_the_log() {
    let dir = scratch("termination");
    let spec = |policy: &str| {
        json!({"containers": [{"name": "job", "image": "rag-runtime",
            "terminationMessagePath": "/run/msg", "terminationMessagePolicy": policy}]})
    };
    let runner = runtime_runner();
    let file = plan_in(&runner, spec("File"), "job", &dir).unwrap();
    file.prepare().unwrap();
    let tail = |n: usize| format!("last {n} lines");
    assert_eq!(file.termination_message(1, tail), "");
    std::fs::write(&file.termination_log, "x".repeat(5000)).unwrap();
    assert_eq!(file.termination_message(0, tail).len(), 4096);

    let logs = plan_in(&runner, spec("FallbackToLogsOnError"), "job", &dir).unwrap();
    logs.prepare().unwrap();
    assert_eq!(logs.termination_message(0, tail), "");
    assert_eq!(logs.termination_message(2, tail), "last 80 lines");
    std::fs::write(&logs.termination_log, "done: 3 documents").unwrap();
    assert_eq!(logs.termination_message(2, tail), "done: 3 documents");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_serving_port_is_the_first_tcp_port() {
    let c: Container = serde_json::from_value(json!({"name": "c", "ports": [
        {"containerPort": 53, "protocol": "UDP"}, {"containerPort": 8080}, {"containerPort": 9090},
    ]}))
    .unwrap();
    assert_eq!(serving_port(&c), Some(8080));
    assert_eq!(serving_port(&Container::default()), None);
}
