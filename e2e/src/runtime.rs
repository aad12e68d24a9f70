//! The real `rag-runtime` standing in for a pipeline's pods: one process per KWOK pod, bound to
//! the pod's IP, over a directory of documents ingested into a data directory of its own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;

use crate::pod_servers::{PodBackend, PodServersOptions, ServedPod};
use crate::process::workspace_root;

/// `RAGOPS_RUNTIME_BIN`, else `<target dir>/debug/rag-runtime`.
pub fn runtime_binary() -> PathBuf {
    match std::env::var_os("RAGOPS_RUNTIME_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("debug/rag-runtime"),
    }
}

/// Pod servers that run `rag-runtime ingest DOCS` then `rag-runtime serve` on each pod's IP, as
/// the runtime container (after its ingest init container) does in a real cluster.
pub fn real_runtime(
    docs: &Path,
    data_root: &Path,
    label_selector: Option<String>,
) -> PodServersOptions {
    let (bin, docs, data_root) = (
        runtime_binary(),
        docs.to_path_buf(),
        data_root.to_path_buf(),
    );
    PodServersOptions {
        label_selector,
        backend: PodBackend::Command(Arc::new(move |pod: &ServedPod| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(r#"set -e; "$BIN" ingest --data-dir "$DATA" "$DOCS" >/dev/null; exec "$BIN" serve --listen "$ADDR" --data-dir "$DATA""#)
                .env("BIN", &bin)
                .env("DATA", data_root.join(&pod.name))
                .env("DOCS", &docs)
                .env("ADDR", pod.addr.to_string());
            cmd
        })),
        ..PodServersOptions::default()
    }
}

/// Writes each key of a ConfigMap of documents into `dir`, as its volume mount would show them.
pub fn write_documents(docs: &ConfigMap, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in docs.data.iter().flatten() {
        std::fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}
