//! The built-in backends: the fake health server and one command per pod.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use super::{ServedPod, Shared};
use crate::process::ChildProcess;
use crate::wait::wait_for;

pub(super) async fn serve_fake(s: Arc<Shared>, pod: ServedPod, listening: Arc<AtomicBool>) {
    // The IP may have belonged to a pod whose server is still shutting down: retry briefly.
    let listener = match wait_for(
        &format!("binding {}", pod.addr),
        Duration::from_secs(10),
        || async { Ok(tokio::net::TcpListener::bind(pod.addr).await.ok()) },
    )
    .await
    {
        Ok(l) => l,
        Err(e) => {
            s.errors
                .lock()
                .unwrap()
                .push(format!("{}: {e:#}", pod.name));
            return;
        }
    };
    let app = axum::Router::new()
        .route("/healthz", get(health))
        .route("/readyz", get(health))
        .route("/readyz/store", get(health))
        .with_state((s.clone(), pod.name.clone()));
    listening.store(true, Ordering::SeqCst);
    if let Err(e) = axum::serve(listener, app).await {
        s.errors
            .lock()
            .unwrap()
            .push(format!("{}: serve: {e}", pod.name));
    }
}

async fn health(State((s, pod)): State<(Arc<Shared>, String)>) -> (StatusCode, &'static str) {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let code = s
        .per_pod
        .lock()
        .unwrap()
        .get(&pod)
        .copied()
        .unwrap_or_else(|| s.status.load(Ordering::SeqCst));
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        if code.is_success() {
            "ok\n"
        } else {
            "unhealthy\n"
        },
    )
}

pub(super) async fn serve_command(
    s: Arc<Shared>,
    pod: ServedPod,
    cmd: Command,
    logs_dir: PathBuf,
    listening: Arc<AtomicBool>,
) {
    let started = ChildProcess::spawn(&format!("pod-{}", pod.name), cmd, &logs_dir)
        .with_context(|| format!("pod {}", pod.name));
    let mut child = match started {
        Ok(c) => c,
        Err(e) => {
            s.errors.lock().unwrap().push(format!("{e:#}"));
            return;
        }
    };
    let what = format!("{} listening on {}", pod.name, pod.addr);
    let up = wait_for(&what, Duration::from_secs(60), || {
        let alive = child.ensure_running();
        async move {
            alive?;
            Ok(tokio::net::TcpStream::connect(pod.addr)
                .await
                .ok()
                .map(|_| ()))
        }
    })
    .await;
    match up {
        Ok(()) => listening.store(true, Ordering::SeqCst),
        Err(e) => s.errors.lock().unwrap().push(format!("{e:#}")),
    }
    // Hold the child until this task is aborted (pod gone); dropping it kills the process.
    std::future::pending::<()>().await;
    drop(child);
}
