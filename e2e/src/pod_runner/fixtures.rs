//! Objects and pods for the runner's unit tests.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use serde_json::{Value, json};

use super::inputs::PodInputs;

/// ConfigMaps `docs` (two documents and a binary key) and `settings`; Secrets `api-keys`
/// (`keys`: two tokens) and `llm` (`token`, and `raw`: bytes that are not UTF-8).
pub fn inputs() -> PodInputs {
    let config_map = |v: Value| serde_json::from_value::<ConfigMap>(v).unwrap();
    let secret = |v: Value| serde_json::from_value::<Secret>(v).unwrap();
    PodInputs::new(
        [
            config_map(json!({
                "metadata": {"name": "docs"},
                "data": {"a.md": "# A\n", "b.md": "# B\n"},
                "binaryData": {"logo.bin": "AAEC"},
            })),
            config_map(json!({
                "metadata": {"name": "settings"},
                "data": {"LEVEL": "debug", "MODE": "fast", "not=valid": "x"},
            })),
        ],
        [
            // Secret data is base64 on the wire; the objects hold the decoded bytes.
            secret(json!({
                "metadata": {"name": "api-keys"},
                "data": {"keys": "dG9rZW4tb25lCnRva2VuLXR3bwo="},
            })),
            secret(json!({
                "metadata": {"name": "llm"},
                "data": {"token": "c2stbGxt", "raw": "/w=="},
            })),
        ],
    )
}

/// A Running pod `handbook-blue-x` in `ns` with IP 127.1.0.5 and `spec`.
pub fn pod(spec: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "handbook-blue-x",
            "namespace": "ns",
            "uid": "0123456789abcdef",
            "labels": {"ragops.io/color": "blue"},
        },
        "spec": spec,
        "status": {"phase": "Running", "podIP": "127.1.0.5", "hostIP": "127.0.0.1"},
    }))
    .unwrap()
}

/// A fresh directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ragops-e2e-runner-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
