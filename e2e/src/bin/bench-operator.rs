//! `make bench-operator`: ragops and Argo Rollouts side by side on fresh local control planes
//! (see `e2e::bench`). Prints the tables to stdout (and `--out`), progress to stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use e2e::bench::{self, ControlPlane, Subject};

#[derive(Parser, Debug)]
#[command(about = "ragops vs Argo Rollouts at N objects each, on the local control plane")]
struct Args {
    /// Sizes to run, each for both controllers.
    #[arg(long, value_delimiter = ',', default_value = "100,500,1000")]
    sizes: Vec<usize>,
    /// Only this controller (ragops or argo); default both.
    #[arg(long)]
    only: Option<String>,
    /// Seconds after which a phase gives up and reports where it stood.
    #[arg(long, default_value_t = 900)]
    phase_limit: u64,
    /// Seconds of the steady-state window.
    #[arg(long, default_value_t = 60)]
    steady: u64,
    /// kube-controller-manager's and kube-scheduler's client QPS (burst: twice that).
    #[arg(long, default_value_t = 200)]
    control_plane_qps: u32,
    /// Requests in flight while the bench creates or changes objects.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Directory of the runs' cluster state (logs, audit logs).
    #[arg(long, default_value = "/tmp/ragops-bench-operator")]
    state: PathBuf,
    /// Also write the report here.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    e2e::install_crypto_provider();
    let subjects = match args.only.as_deref() {
        None => vec![Subject::Ragops, Subject::Argo],
        Some("ragops") => vec![Subject::Ragops],
        Some("argo") => vec![Subject::Argo],
        Some(other) => anyhow::bail!("--only {other}: expected ragops or argo"),
    };
    let options = bench::Options {
        sizes: args.sizes,
        subjects,
        limit: Duration::from_secs(args.phase_limit),
        steady: Duration::from_secs(args.steady),
        control_plane: ControlPlane {
            qps: args.control_plane_qps,
            burst: args.control_plane_qps * 2,
        },
        state_root: args.state,
        concurrency: args.concurrency,
    };
    let report = bench::run(&options).await?;
    println!("{report}");
    if let Some(out) = args.out {
        std::fs::write(out, &report)?;
    }
    Ok(())
}
