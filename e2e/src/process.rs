//! Child processes owned by a test: output to a log file, killed when dropped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running child process. Its stdout and stderr go to `log_path()`. Dropping it kills it
/// (SIGKILL) and reaps it; when the test is failing, the last lines of its log are printed.
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ChildProcess {
    /// Spawns `cmd` with stdin closed and output to `<logs_dir>/<name>-<n>.log`.
    pub fn spawn(name: &str, mut cmd: Command, logs_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(logs_dir)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log_path = logs_dir.join(format!("{name}-{}-{n}.log", std::process::id()));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}: {cmd:?}"))?;
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log_path,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Still running (not exited)?
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// The exit status once the process has exited (reaped), None while it runs.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("{} was already stopped", self.name),
        }
    }

    /// Fails with the log tail if the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        if !self.is_running() {
            bail!("{} exited; log tail:\n{}", self.name, self.log_tail(40));
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for it to exit, then SIGKILLs it.
    /// Returns whether it exited on its own after SIGTERM.
    pub fn terminate(&mut self, timeout: Duration) -> Result<bool> {
        let Some(child) = self.child.as_mut() else {
            return Ok(true);
        };
        // No libc (unsafe is forbidden): `kill` from procps/coreutils sends the signal.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        Ok(false)
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let Ok(f) = File::open(&self.log_path) else {
            return String::new();
        };
        let all: Vec<String> = BufReader::new(f).lines().map_while(Result::ok).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- {} log ({}), last lines ---\n{}\n---",
                self.name,
                self.log_path.display(),
                self.log_tail(40)
            );
        }
    }
}

/// The Cargo workspace root (parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `RAGOPS_OPERATOR_BIN`, else `<target dir>/debug/rag-operator` (`CARGO_TARGET_DIR` respected).
/// Fails with a hint when it has not been built.
pub fn operator_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("RAGOPS_OPERATOR_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("debug/rag-operator"),
    };
    if !path.is_file() {
        bail!(
            "operator binary {} not found; build it with `cargo build --workspace --bins`",
            path.display()
        );
    }
    Ok(path)
}

/// `RAGOPS_RUNTIME_BIN`, else `<target dir>/debug/rag-runtime` (`CARGO_TARGET_DIR` respected).
pub fn runtime_binary() -> PathBuf {
    match std::env::var_os("RAGOPS_RUNTIME_BIN") {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join("debug/rag-runtime"),
    }
}

/// Starts the operator watching `namespace`, authenticated as [`crate::OPERATOR_USER`]
/// (so its API writes can be told apart in the audit log).
pub fn start_operator(
    cluster: &Cluster,
    namespace: &str,
    extra_args: &[&str],
) -> Result<ChildProcess> {
    start_operator_as(
        cluster,
        &cluster.operator_kubeconfig()?,
        namespace,
        extra_args,
    )
}

/// [`start_operator`] authenticated by `kubeconfig` instead: e.g. a ServiceAccount token, to run
/// the operator under the RBAC the chart grants.
pub fn start_operator_as(
    cluster: &Cluster,
    kubeconfig: &Path,
    namespace: &str,
    extra_args: &[&str],
) -> Result<ChildProcess> {
    let mut cmd = Command::new(operator_binary()?);
    cmd.env("KUBECONFIG", kubeconfig)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .arg("--namespace")
        .arg(namespace)
        .args(extra_args);
    ChildProcess::spawn("rag-operator", cmd, &cluster.logs_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_child_is_killed_and_reaped() {
        let dir = std::env::temp_dir().join(format!("ragops-e2e-process-{}", std::process::id()));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo started; exec sleep 60"]);
        let mut child = ChildProcess::spawn("sleeper", cmd, &dir).unwrap();
        let pid = child.id();
        assert!(child.is_running());
        assert!(child.log_path().is_file());
        drop(child);
        let _ = std::fs::remove_dir_all(&dir);
        // Killed and reaped: not even a zombie remains.
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists after drop"
        );
    }
}
