//! `rag-runtime serve` as a process: a keys source that is configured but holds no key stops it
//! before it listens, instead of serving with authentication off.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// Runs `serve` with `env` set; its exit status and stderr. A server that starts is killed at
/// the deadline, which fails the caller's assertions on the status.
async fn serve(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let data = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rag-runtime"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .env_remove("RAG_API_KEYS")
        .env_remove("RAG_API_KEYS_FILE")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("serve with an empty keys source exits instead of serving")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[tokio::test]
async fn an_empty_keys_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "\n  \n").unwrap();
    let keys = keys.display().to_string();
    let (code, stderr) = serve(&[("RAG_API_KEYS_FILE", &keys)]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("RAG_API_KEYS_FILE: {keys} holds no key")),
        "{stderr}"
    );
    assert!(!stderr.contains("serving"), "{stderr}");
}

#[tokio::test]
async fn an_empty_keys_variable_refuses_to_start() {
    let (code, stderr) = serve(&[("RAG_API_KEYS", " ")]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("RAG_API_KEYS: is set but holds no key"),
        "{stderr}"
    );
}
