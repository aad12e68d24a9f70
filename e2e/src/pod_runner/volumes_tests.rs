use std::os::unix::fs::PermissionsExt;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::{Value, json};

use super::*;
use crate::pod_runner::fixtures::{inputs, scratch};

fn spec(volumes: Value, mounts: Value) -> PodSpec {
    serde_json::from_value(json!({
        "containers": [{"name": "c", "image": "rag-runtime", "volumeMounts": mounts}],
        "volumes": volumes,
    }))
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn files(dir: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn config_map_items_map_keys_to_paths_with_their_modes() {
    let root = scratch("cm-items");
    let spec = spec(
        json!([{"name": "config", "configMap": {"name": "docs", "items": [
            {"key": "a.md", "path": "config.yaml"},
            {"key": "b.md", "path": "nested/b.txt", "mode": 0o400},
        ]}}]),
        json!([{"name": "config", "mountPath": "/etc/ragops"}]),
    );
    let volumes = materialise(&spec, &inputs(), &root).unwrap();
    let dir = &volumes.dirs["config"];
    assert_eq!(dir, &root.join("config"));
    assert_eq!(files(dir), ["config.yaml", "nested/b.txt"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("config.yaml")).unwrap(),
        "# A\n"
    );
    assert_eq!(mode(&dir.join("config.yaml")), 0o644);
    assert_eq!(mode(&dir.join("nested/b.txt")), 0o400);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_config_map_without_items_shows_every_key_text_and_binary() {
    let root = scratch("cm-all");
    let spec = spec(
        json!([{"name": "src", "configMap": {"name": "docs", "defaultMode": 0o440}}]),
        json!([]),
    );
    let volumes = materialise(&spec, &inputs(), &root).unwrap();
    let dir = &volumes.dirs["src"];
    assert_eq!(files(dir), ["a.md", "b.md", "logo.bin"]);
    assert_eq!(std::fs::read(dir.join("logo.bin")).unwrap(), [0, 1, 2]);
    assert_eq!(mode(&dir.join("a.md")), 0o440);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn secret_volumes_hold_the_decoded_bytes() {
    let root = scratch("secret");
    let spec = spec(
        json!([
            {"name": "keys", "secret": {"secretName": "api-keys", "defaultMode": 0o400,
                "items": [{"key": "keys", "path": "tokens"}]}},
            {"name": "llm", "secret": {"secretName": "llm"}},
            {"name": "data", "emptyDir": {}},
        ]),
        json!([]),
    );
    let volumes = materialise(&spec, &inputs(), &root).unwrap();
    let tokens = volumes.dirs["keys"].join("tokens");
    assert_eq!(
        std::fs::read_to_string(&tokens).unwrap(),
        "token-one\ntoken-two\n"
    );
    assert_eq!(mode(&tokens), 0o400);
    assert_eq!(files(&volumes.dirs["llm"]), ["raw", "token"]);
    assert_eq!(
        std::fs::read(volumes.dirs["llm"].join("raw")).unwrap(),
        [0xff]
    );
    assert!(volumes.dirs["data"].is_dir());
    assert_eq!(files(&volumes.dirs["data"]), Vec::<String>::new());
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn missing_objects_and_keys_fail_unless_optional() {
    let root = scratch("missing");
    let one = |volume: Value| materialise(&spec(json!([volume]), json!([])), &inputs(), &root);
    let err = one(json!({"name": "v", "configMap": {"name": "nope"}})).unwrap_err();
    assert!(
        format!("{err:#}").contains("ConfigMap nope not found"),
        "{err:#}"
    );
    let ok = one(json!({"name": "v", "configMap": {"name": "nope", "optional": true}})).unwrap();
    assert_eq!(files(&ok.dirs["v"]), Vec::<String>::new());
    let err = one(json!({"name": "v", "secret": {"secretName": "llm",
        "items": [{"key": "absent", "path": "x"}]}}))
    .unwrap_err();
    assert!(format!("{err:#}").contains("has no key absent"), "{err:#}");
    let err = one(json!({"name": "v", "configMap": {"name": "docs",
        "items": [{"key": "a.md", "path": "../escape"}]}}))
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("not a plain relative path"),
        "{err:#}"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn projected_volumes_hold_their_config_map_and_secret_sources() {
    let root = scratch("projected");
    let spec = spec(
        json!([{"name": "all", "projected": {"sources": [
            {"configMap": {"name": "docs", "items": [{"key": "a.md", "path": "a.md"}]}},
            {"secret": {"name": "llm", "items": [{"key": "token", "path": "token"}]}},
            {"serviceAccountToken": {"path": "token-sa"}},
        ]}}]),
        json!([{"name": "all", "mountPath": "/var/run/all"}]),
    );
    let volumes = materialise(&spec, &inputs(), &root).unwrap();
    assert_eq!(files(&volumes.dirs["all"]), ["a.md", "token"]);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn unsupported_volumes_fail_only_when_mounted() {
    let root = scratch("unsupported");
    let host = json!([{"name": "host", "hostPath": {"path": "/etc"}}]);
    let volumes = materialise(&spec(host.clone(), json!([])), &inputs(), &root).unwrap();
    assert!(volumes.dirs.is_empty());
    let mounted = spec(host, json!([{"name": "host", "mountPath": "/host"}]));
    let err = materialise(&mounted, &inputs(), &root).unwrap_err();
    assert!(format!("{err:#}").contains("unsupported type"), "{err:#}");
    std::fs::remove_dir_all(&root).unwrap();
}

fn container(mounts: Value) -> Container {
    serde_json::from_value(json!({"name": "c", "volumeMounts": mounts})).unwrap()
}

#[test]
fn mount_paths_are_rewritten_by_whole_components_longest_first() {
    let volumes = Volumes {
        dirs: [
            ("config", "/pod/volumes/config"),
            ("keys", "/pod/volumes/keys"),
            ("data", "/pod/volumes/data"),
        ]
        .map(|(n, d)| (n.to_string(), PathBuf::from(d)))
        .into(),
    };
    let mut mounts = Mounts::for_container(
        &container(json!([
            {"name": "config", "mountPath": "/etc/ragops"},
            {"name": "keys", "mountPath": "/etc/ragops/keys/", "readOnly": true},
            {"name": "data", "mountPath": "/data"},
            {"name": "data", "mountPath": "/cache/model", "subPath": "model"},
        ])),
        &volumes,
    )
    .unwrap();
    mounts.add("/dev/termination-log", PathBuf::from("/pod/termination/c"));
    let cases = [
        ("/etc/ragops/config.yaml", "/pod/volumes/config/config.yaml"),
        ("/etc/ragops/keys/keys", "/pod/volumes/keys/keys"),
        ("/etc/ragops", "/pod/volumes/config"),
        ("/data", "/pod/volumes/data"),
        ("/data/index", "/pod/volumes/data/index"),
        ("/database", "/database"),
        ("/cache/model/w.bin", "/pod/volumes/data/model/w.bin"),
        ("--data-dir=/data", "--data-dir=/pod/volumes/data"),
        ("/dev/termination-log", "/pod/termination/c"),
        ("relative/data", "relative/data"),
        ("serve", "serve"),
    ];
    for (from, to) in cases {
        assert_eq!(mounts.rewrite(from), to, "{from}");
    }
    assert_eq!(mounts.host("/data"), Some(Path::new("/pod/volumes/data")));
    assert_eq!(mounts.host("/data/index"), None);
}

#[test]
fn mounting_a_volume_the_pod_lacks_fails() {
    let err = Mounts::for_container(
        &container(json!([{"name": "ghost", "mountPath": "/g"}])),
        &Volumes::default(),
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("unknown volume ghost"),
        "{err:#}"
    );
}
