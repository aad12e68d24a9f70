//! A fresh control plane per measured run (`cluster.sh up` in a private state dir, torn down on
//! drop), sized for the run, and a sampler of a process's memory and CPU time from `/proc`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cluster::Cluster;
use crate::process::workspace_root;

/// Pods a fake node takes (`cluster.sh`'s allocatable).
const PODS_PER_NODE: usize = 110;
/// The Service range of the bench's clusters: 65k addresses, 2 Services per object.
pub const SERVICE_CIDR: &str = "10.0.0.0/16";

/// Client QPS/burst of kube-controller-manager and kube-scheduler in the bench.
#[derive(Clone, Copy, Debug)]
pub struct ControlPlane {
    pub qps: u32,
    pub burst: u32,
}

pub struct Bed {
    pub cluster: Cluster,
    state: PathBuf,
}

impl Bed {
    /// Starts a control plane with room for `pods` pods at once.
    pub fn up(state: &Path, pods: usize, cp: ControlPlane) -> Result<Self> {
        let nodes = pods.div_ceil(PODS_PER_NODE - 10) + 1;
        let _ = std::fs::remove_dir_all(state);
        let out = script()
            .arg("up")
            .env("RAGOPS_E2E_STATE", state)
            .env("RAGOPS_E2E_NODES", nodes.to_string())
            .env("RAGOPS_E2E_SERVICE_CIDR", SERVICE_CIDR)
            .env("RAGOPS_E2E_CP_QPS", cp.qps.to_string())
            .env("RAGOPS_E2E_CP_BURST", cp.burst.to_string())
            .env("RAGOPS_E2E_QDRANT", "0")
            .env("RAGOPS_E2E_POD_NET", "loopback")
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running cluster.sh up")?;
        if !out.status.success() {
            bail!("cluster.sh up failed ({})", out.status);
        }
        let bed = Self {
            cluster: Cluster::at(state)?,
            state: state.to_path_buf(),
        };
        Ok(bed)
    }

    /// The pid of a control-plane component (`kube-apiserver`, ...).
    pub fn pid(&self, component: &str) -> Result<u32> {
        let path = self.state.join(format!("pids/{component}.pid"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(text.trim().parse()?)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let keep = std::env::var("RAGOPS_E2E_KEEP_LOGS").unwrap_or_default();
        let _ = script()
            .arg("down")
            .env("RAGOPS_E2E_STATE", &self.state)
            .env("RAGOPS_E2E_KEEP_LOGS", keep)
            .stderr(std::process::Stdio::inherit())
            .status();
    }
}

fn script() -> Command {
    Command::new(workspace_root().join("e2e/hack/cluster.sh"))
}

/// One reading of a process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    pub rss_bytes: u64,
    /// User + system CPU time so far.
    pub cpu: Duration,
}

/// Reads a process every 250 ms until dropped.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    pid: u32,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let samples = Arc::new(Mutex::new(vec![]));
        let s = samples.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if let Some(sample) = read(pid) {
                    s.lock().unwrap().push(sample);
                }
            }
        });
        Self { samples, pid, task }
    }

    /// A reading now (also recorded).
    pub fn now(&self) -> Option<Sample> {
        let sample = read(self.pid)?;
        self.samples.lock().unwrap().push(sample);
        Some(sample)
    }

    /// The highest RSS read between `from` and `to`.
    pub fn peak_rss(&self, from: Instant, to: Instant) -> u64 {
        let samples = self.samples.lock().unwrap();
        samples
            .iter()
            .filter(|s| s.at >= from && s.at <= to)
            .map(|s| s.rss_bytes)
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// RSS from `/proc/<pid>/status`, CPU time from `/proc/<pid>/stat` (all threads; USER_HZ 100).
fn read(pid: u32) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(Sample {
        at: Instant::now(),
        rss_bytes: parse_rss(&status)?,
        cpu: parse_cpu(&stat)?,
    })
}

fn parse_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn parse_cpu(stat: &str) -> Option<Duration> {
    // Fields after the command (which may hold spaces) start at field 3, the state.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // utime and stime are fields 14 and 15, i.e. 11 and 12 counted from the state.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        assert_eq!(
            parse_rss("Name:\tx\nVmRSS:\t  2048 kB\n"),
            Some(2 * 1024 * 1024)
        );
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
        assert_eq!(parse_cpu(stat), Some(Duration::from_secs(3)));
        // This process: it has used some CPU and holds some memory.
        let me = read(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
    }
}
