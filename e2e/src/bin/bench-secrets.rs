//! `make bench-secrets`: the operator's memory in a cluster full of Secrets and ConfigMaps it does
//! not use (see `e2e::bench::secrets`). Prints a Markdown table to stdout, progress to stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use e2e::bench::secrets::{self, Options};

#[derive(Parser, Debug)]
#[command(about = "the operator's RSS with many unrelated Secrets and ConfigMaps in the cluster")]
struct Args {
    /// Opaque Secrets no pipeline or index references.
    #[arg(long, default_value_t = 5000)]
    secrets: usize,
    /// Helm release Secrets (type helm.sh/release.v1).
    #[arg(long, default_value_t = 0)]
    helm_secrets: usize,
    /// ConfigMaps no index reads.
    #[arg(long, default_value_t = 0)]
    config_maps: usize,
    /// KiB of payload per object.
    #[arg(long, default_value_t = 10)]
    kib: usize,
    /// Namespaces the objects are spread over.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Seconds to keep reading the operator's memory after it is ready.
    #[arg(long, default_value_t = 15)]
    hold: u64,
    /// Objects created at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Directory of the cluster state (logs).
    #[arg(long, default_value = "/tmp/ragops-bench-secrets")]
    state: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    e2e::install_crypto_provider();
    let options = Options {
        secrets: a.secrets,
        helm_secrets: a.helm_secrets,
        config_maps: a.config_maps,
        kib: a.kib,
        namespaces: a.namespaces,
        hold: Duration::from_secs(a.hold),
        concurrency: a.concurrency,
        state: a.state,
    };
    print!("{}", secrets::run(&options).await?);
    Ok(())
}
