//! One container as a process on this machine: the binary its image stands for, its arguments and
//! environment with container paths rewritten into the pod's directory, `--listen 0.0.0.0:P`
//! bound to the pod IP, and nothing from the harness's own environment but `PATH` and `RUST_LOG`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Container, Pod};

use super::SpecRunner;
use super::env;
use super::inputs::PodInputs;
use super::volumes::{Mounts, Volumes};

/// Where the kubelet puts a container's termination message unless the spec says otherwise.
const DEFAULT_TERMINATION_PATH: &str = "/dev/termination-log";
/// The kubelet keeps at most this much of a termination message.
const MAX_MESSAGE: usize = 4096;
/// `FallbackToLogsOnError`: the end of the log, at most 80 lines and 2048 bytes.
const LOG_FALLBACK_LINES: usize = 80;
const LOG_FALLBACK_BYTES: usize = 2048;

/// A pod as the containers see it.
pub(crate) struct PodContext<'a> {
    pub pod: &'a Pod,
    pub inputs: &'a PodInputs,
    pub volumes: &'a Volumes,
    /// The pod's directory (working directory of its processes, termination messages).
    pub dir: &'a Path,
    pub ip: IpAddr,
}

/// What to run for one container.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub container: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The whole environment of the process.
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub termination_log: PathBuf,
    fallback_to_logs: bool,
}

/// Plans `container` of the pod: the image's binary (`command[0]` must name it when `command` is
/// set), `$(VAR)` expanded in the arguments, every mount path rewritten in arguments and values.
pub(crate) fn plan(runner: &SpecRunner, c: &Container, pod: &PodContext) -> Result<Launch> {
    let image = c.image.as_deref().unwrap_or_default();
    let program = runner.binary_for(image)?;
    let mut mounts = Mounts::for_container(c, pod.volumes)?;
    let termination_log = pod.dir.join("termination").join(&c.name);
    let termination_path = c.termination_message_path.as_deref();
    mounts.add(
        termination_path.unwrap_or(DEFAULT_TERMINATION_PATH),
        termination_log.clone(),
    );
    let spec_env = env::resolve(c, pod.pod, pod.inputs)?;
    let command = c.command.as_deref().unwrap_or_default();
    if let Some(first) = command.first() {
        let named = Path::new(first).file_name() == program.file_name();
        if !named {
            bail!(
                "container {}: command {first:?}: image {image} only provides {}",
                c.name,
                program.display()
            );
        }
    }
    let mut args: Vec<String> = command
        .iter()
        .skip(1)
        .chain(c.args.iter().flatten())
        .map(|a| mounts.rewrite(&env::expand(a, &spec_env)))
        .collect();
    bind_listen(&mut args, pod.ip);
    let mut env = harness_env();
    env.insert(
        "HOSTNAME".into(),
        pod.pod.metadata.name.clone().unwrap_or_default(),
    );
    // The container's /tmp is a volume: so is the process's temporary directory.
    if let Some(tmp) = mounts.host("/tmp") {
        env.insert("TMPDIR".into(), tmp.display().to_string());
    }
    env.extend(spec_env.into_iter().map(|(k, v)| (k, mounts.rewrite(&v))));
    Ok(Launch {
        container: c.name.clone(),
        program,
        args,
        env,
        cwd: pod.dir.to_path_buf(),
        termination_log,
        fallback_to_logs: c.termination_message_policy.as_deref() == Some("FallbackToLogsOnError"),
    })
}

/// What every process gets from the harness: `PATH`, and `RUST_LOG` when it is set.
fn harness_env() -> BTreeMap<String, String> {
    ["PATH", "RUST_LOG"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect()
}

impl Launch {
    /// The process, with exactly `env` as its environment.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd);
        cmd
    }

    /// Creates the (empty) termination message file, as the kubelet does before the start.
    pub fn prepare(&self) -> Result<()> {
        if let Some(dir) = self.termination_log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&self.termination_log, "")
            .with_context(|| format!("creating {}", self.termination_log.display()))
    }

    /// The termination message: the file's content, or with `FallbackToLogsOnError` after a
    /// failure and an empty file, the end of the log (`log_tail(lines)`).
    pub fn termination_message(
        &self,
        exit_code: i32,
        log_tail: impl Fn(usize) -> String,
    ) -> String {
        let message = std::fs::read_to_string(&self.termination_log).unwrap_or_default();
        if message.is_empty() && self.fallback_to_logs && exit_code != 0 {
            let tail = log_tail(LOG_FALLBACK_LINES);
            let start = floor_char(&tail, tail.len().saturating_sub(LOG_FALLBACK_BYTES));
            return tail[start..].to_string();
        }
        message[..floor_char(&message, MAX_MESSAGE)].to_string()
    }
}

/// The largest char boundary at or below `i`.
fn floor_char(s: &str, i: usize) -> usize {
    (0..=i.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// `--listen 0.0.0.0:P` (or `[::]:P`, `:P`, `--listen=...`) becomes `--listen <pod IP>:P`: in a
/// pod, "every interface" is the pod's own.
pub(crate) fn bind_listen(args: &mut [String], ip: IpAddr) {
    for i in 0..args.len() {
        if args[i] == "--listen" {
            if let Some(addr) = args.get(i + 1).and_then(|a| on_pod_ip(a, ip)) {
                args[i + 1] = addr;
            }
        } else if let Some(addr) = args[i]
            .strip_prefix("--listen=")
            .and_then(|a| on_pod_ip(a, ip))
        {
            args[i] = format!("--listen={addr}");
        }
    }
}

fn on_pod_ip(addr: &str, ip: IpAddr) -> Option<String> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    matches!(host, "0.0.0.0" | "[::]" | "::" | "").then(|| SocketAddr::new(ip, port).to_string())
}

/// The port the container serves on: its first TCP `containerPort`.
pub(crate) fn serving_port(c: &Container) -> Option<u16> {
    c.ports
        .iter()
        .flatten()
        .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
        .and_then(|p| u16::try_from(p.container_port).ok())
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
