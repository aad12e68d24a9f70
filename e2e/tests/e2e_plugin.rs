//! The kubectl plugin (`kubectl-ragops`, built with the workspace) against real pipelines: the
//! tree after a rollout, `status --watch` exit codes, and every operation by annotation. Once
//! through kubectl itself, to prove the plugin convention.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use common::{ROLLOUT_TIMEOUT, World, fast_rollout, merge, new_revision};
use rag_operator::api::{Color, Phase, RagPipeline};
use serde_json::{Value, json};

/// An operation is acted on within seconds (its own watch event starts the reconciliation).
const PROMPT: Duration = Duration::from_secs(15);

/// `RAGOPS_PLUGIN_BIN`, else `<target dir>/debug/kubectl-ragops`, as `cargo build --workspace
/// --bins` leaves it.
fn plugin_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("RAGOPS_PLUGIN_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| e2e::workspace_root().join("target"))
            .join("debug/kubectl-ragops"),
    };
    if !path.is_file() {
        bail!(
            "plugin binary {} not found; build it with `cargo build --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// What a run of the plugin printed, and how it exited.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails with everything it printed unless it exited with `code`.
    fn expect(self, code: i32) -> Result<Self> {
        if self.code != Some(code) {
            bail!(
                "expected exit code {code}, got {:?}\nstdout:\n{}\nstderr:\n{}",
                self.code,
                self.stdout,
                self.stderr
            );
        }
        Ok(self)
    }
}

/// Runs `kubectl-ragops -n <the test namespace> args...` as the cluster's admin (KUBECONFIG),
/// bounded by a deadline of its own.
async fn plugin(world: &World, args: &[&str]) -> Result<Run> {
    let mut cmd = tokio::process::Command::new(plugin_binary()?);
    cmd.args(["-n", world.ns.name()])
        .args(args)
        .env("KUBECONFIG", &world.cluster.kubeconfig)
        .kill_on_drop(true);
    run(cmd, &format!("kubectl-ragops {args:?}")).await
}

async fn run(mut cmd: tokio::process::Command, what: &str) -> Result<Run> {
    let out = tokio::time::timeout(ROLLOUT_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{what} still running after {ROLLOUT_TIMEOUT:?}"))??;
    Ok(Run::from(out))
}

/// `kubectl ragops args... -n <the test namespace>` with PATH holding only the plugin's directory
/// and that of the cluster's kubectl.
async fn kubectl_ragops(world: &World, args: &[&str]) -> Result<Run> {
    let kubectl =
        world.cluster.kubectl.clone().context(
            "RAGOPS_E2E_KUBECTL is not set: start the cluster with e2e/hack/cluster.sh up",
        )?;
    let dirs = [plugin_binary()?, kubectl.clone()].map(|p| p.parent().unwrap().to_path_buf());
    let path: OsString = std::env::join_paths(dirs)?;
    let mut cmd = tokio::process::Command::new(&kubectl);
    cmd.arg("ragops")
        .args(args)
        .args(["-n", world.ns.name()])
        .env("PATH", path)
        .env("KUBECONFIG", &world.cluster.kubeconfig)
        .kill_on_drop(true);
    run(cmd, &format!("kubectl ragops {args:?}")).await
}

fn spec(patch: Value) -> Value {
    let mut spec = fast_rollout();
    merge(&mut spec, patch);
    spec
}

fn active_revision(p: &RagPipeline) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.active_revision.clone())
        .unwrap_or_default()
}

/// The tree line of `color` and the lines of its pods.
fn color_lines<'a>(tree: &'a str, color: &str) -> (&'a str, Vec<&'a str>) {
    let head = tree
        .lines()
        .find(|l| l.contains(&format!("─ {color}: Deployment docs-{color}")))
        .unwrap_or_else(|| panic!("no {color} line in:\n{tree}"));
    let pods = tree
        .lines()
        .filter(|l| l.contains(&format!("─ pod docs-{color}-")))
        .collect();
    (head, pods)
}

/// `get` (named, unnamed, and through kubectl) after a cutover from blue (`rev1`) to green
/// (`rev2`) with blue still running.
async fn get_shows_both_colours(world: &World, rev1: &str, rev2: &str) -> Result<()> {
    let tree = plugin(world, &["get", "docs"]).await?.expect(0)?.stdout;
    eprintln!("kubectl ragops get docs:\n{tree}");
    let ns = world.ns.name();
    let first = tree.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!("ragpipeline {ns}/docs: Healthy, active green ({rev2})"),
        "{tree}"
    );
    let (blue, blue_pods) = color_lines(&tree, "blue");
    assert!(
        blue.contains(&format!("2/2 ready, revision {rev1}")),
        "{tree}"
    );
    assert!(!blue.contains("active (Service docs)"), "{tree}");
    let (green, green_pods) = color_lines(&tree, "green");
    assert!(
        green.contains(&format!("2/2 ready, revision {rev2}")),
        "{tree}"
    );
    assert!(green.contains("serves active (Service docs)"), "{tree}");
    for pod in blue_pods.iter().chain(&green_pods) {
        assert!(pod.contains(": ready, 127."), "{pod}\n{tree}");
    }
    assert_eq!((blue_pods.len(), green_pods.len()), (2, 2), "{tree}");
    assert!(tree.contains("─ index handbook:"), "{tree}");
    assert!(tree.contains("ago Promoted: "), "{tree}");
    // Without a name: every pipeline of the namespace, here the same one.
    let all = plugin(world, &["get"]).await?.expect(0)?.stdout;
    assert!(all.starts_with(first), "{all}");
    // Through kubectl, which runs any `kubectl-<name>` on PATH as `kubectl <name>`.
    let via_kubectl = kubectl_ragops(world, &["get", "docs"])
        .await?
        .expect(0)?
        .stdout;
    assert_eq!(via_kubectl.lines().next(), Some(first), "{via_kubectl}");
    assert_eq!(color_lines(&via_kubectl, "green").0, green, "{via_kubectl}");
    Ok(())
}

#[tokio::test]
async fn get_shows_the_tree_and_rollback_moves_traffic_back() -> Result<()> {
    let world = World::new("plugin-get").await?;
    // Blue keeps running after the cutover, so both colours have pods.
    let spec = spec(json!({ "rollout": { "scaleDownDelaySeconds": 300 } }));
    world.create_pipeline("docs", spec).await?;
    let rev1 = active_revision(&world.wait_healthy_on("docs", Color::Blue).await?);
    world.patch_spec("docs", new_revision("2")).await?;
    // What CI does after a change: wait for the verdict on the new generation.
    let watched = plugin(&world, &["status", "docs", "--watch", "--timeout", "90s"])
        .await?
        .expect(0)?;
    assert!(
        watched.stdout.contains("docs is Healthy"),
        "{}",
        watched.stdout
    );
    let p = world.wait_healthy_on("docs", Color::Green).await?;
    let rev2 = active_revision(&p);

    get_shows_both_colours(&world, &rev1, &rev2).await?;

    // Nothing is paused: promote refuses and sets nothing.
    let refused = plugin(&world, &["promote", "docs"]).await?.expect(1)?;
    assert!(
        refused.stderr.contains("it is Healthy, not Paused"),
        "{}",
        refused.stderr
    );
    let p = world.pipelines().get("docs").await?;
    assert!(
        !p.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("ragops.io/promote")
    );

    // Rollback while blue still runs: traffic moves back at once.
    let done = plugin(&world, &["rollback", "docs"]).await?.expect(0)?;
    assert!(
        done.stdout
            .contains(&format!("back to revision {rev1} on blue")),
        "{}",
        done.stdout
    );
    e2e::wait_for("Service docs back on blue", PROMPT, || async {
        let color = world.service_color("docs").await?;
        Ok((color.as_deref() == Some("blue")).then_some(()))
    })
    .await?;
    // A rolled-back pipeline is Degraded (RolledBack): a watch reports it with exit code 2.
    world
        .wait_pipeline_within("docs", "Degraded", PROMPT, |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Degraded)
        })
        .await?;
    let watched = plugin(&world, &["status", "docs", "--watch"])
        .await?
        .expect(2)?;
    assert!(
        watched.stderr.contains("Degraded (RolledBack)"),
        "{}",
        watched.stderr
    );
    // The request carried a fresh id, recorded as handled.
    let p = world.pipelines().get("docs").await?;
    let handled = p.status.and_then(|s| s.handled_requests);
    let id = handled.and_then(|h| h.rollback).unwrap_or_default();
    assert!(id.starts_with("kubectl-"), "handled rollback id {id:?}");
    // A second rollback would bring the bad revision back: refused, nothing set.
    let refused = plugin(&world, &["rollback", "docs"]).await?.expect(1)?;
    assert!(
        refused.stderr.contains("is already in force"),
        "{}",
        refused.stderr
    );
    world.wait_service_color("docs", "blue").await?;
    Ok(())
}

#[tokio::test]
async fn promote_switches_a_paused_rollout_and_a_watch_times_out_meanwhile() -> Result<()> {
    let world = World::new("plugin-promote").await?;
    world
        .create_pipeline("docs", spec(json!({ "rollout": { "autoPromote": false } })))
        .await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    // A healthy pipeline has nothing to abort.
    let refused = plugin(&world, &["abort", "docs"]).await?.expect(1)?;
    assert!(
        refused.stderr.contains("no rollout in flight"),
        "{}",
        refused.stderr
    );

    world.patch_spec("docs", new_revision("2")).await?;
    world
        .wait_pipeline("docs", "Paused", |p| {
            p.status.as_ref().and_then(|s| s.phase) == Some(Phase::Paused)
        })
        .await?;
    // Paused is neither Healthy nor Degraded: the watch runs into its deadline (exit 3).
    let waited = plugin(&world, &["status", "docs", "--watch", "--timeout", "2s"])
        .await?
        .expect(3)?;
    assert!(
        waited.stderr.contains("timed out after 2s"),
        "{}",
        waited.stderr
    );
    assert!(
        waited.stdout.contains(": Paused, active blue"),
        "{}",
        waited.stdout
    );
    world.wait_service_color("docs", "blue").await?;

    let done = plugin(&world, &["promote", "docs"]).await?.expect(0)?;
    assert!(
        done.stdout.contains("traffic switches from blue to green"),
        "{}",
        done.stdout
    );
    world.wait_healthy_on("docs", Color::Green).await?;
    world.wait_service_color("docs", "green").await?;
    Ok(())
}

#[tokio::test]
async fn a_failed_rollout_and_an_abort_each_end_a_watch_with_2() -> Result<()> {
    let world = World::new("plugin-abort").await?;
    world.create_pipeline("docs", fast_rollout()).await?;
    world.wait_healthy_on("docs", Color::Blue).await?;
    let blue = world.pods.wait_serving(2, ROLLOUT_TIMEOUT).await?;
    for pod in &blue {
        world.pods.set_pod_status(&pod.name, 200);
    }
    // Every new pod fails its probes: after failureThreshold (2) the rollout fails.
    world.pods.set_status(503);
    world.patch_spec("docs", new_revision("2")).await?;
    let watched = plugin(&world, &["status", "docs", "--watch", "--timeout", "90s"])
        .await?
        .expect(2)?;
    assert!(
        watched.stderr.contains("docs is Degraded (RolloutFailed)"),
        "{}",
        watched.stderr
    );
    assert!(
        watched.stdout.contains("Degraded     True"),
        "{}",
        watched.stdout
    );
    world.wait_service_color("docs", "blue").await?;

    // Held instead of failed (many failures allowed), then aborted by the plugin.
    let hold = common::hold_on_failing_probes();
    let mut patch = new_revision("3");
    merge(&mut patch, hold);
    world.patch_spec("docs", patch).await?;
    world
        .wait_pipeline("docs", "green up and failing its probes", |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.target_color) == Some(Color::Green)
                && s.and_then(|s| s.rollout.as_ref())
                    .is_some_and(|r| r.health_failures > 0)
        })
        .await?;
    let done = plugin(&world, &["abort", "docs"]).await?.expect(0)?;
    assert!(
        done.stdout
            .contains("green goes to zero, blue keeps all traffic"),
        "{}",
        done.stdout
    );
    let p = world
        .wait_pipeline_within("docs", "Degraded: Aborted", PROMPT, |p| {
            let s = p.status.as_ref();
            s.and_then(|s| s.phase) == Some(Phase::Degraded)
                && s.and_then(|s| s.failure.as_ref())
                    .map(|f| f.reason.as_str())
                    == Some("Aborted")
        })
        .await?;
    assert_eq!(p.status.and_then(|s| s.active_color), Some(Color::Blue));
    let watched = plugin(&world, &["status", "docs", "--watch"])
        .await?
        .expect(2)?;
    assert!(
        watched.stderr.contains("docs is Degraded (Aborted)"),
        "{}",
        watched.stderr
    );
    world.wait_service_color("docs", "blue").await?;

    // Retry is accepted now; it names the revision it brings back.
    let retried = plugin(&world, &["retry", "docs"]).await?.expect(0)?;
    assert!(
        retried.stdout.contains("it ended Aborted"),
        "{}",
        retried.stdout
    );
    Ok(())
}
