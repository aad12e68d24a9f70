//! `kubectl ragops`: the tree of a RagPipeline, its rollout operations by annotation, and a status
//! wait for scripts. kubectl runs any `kubectl-<name>` on PATH as `kubectl <name>`.
#![forbid(unsafe_code)]

mod analysis;
mod cmd;
mod ops;
mod status;
mod tree;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::cmd::Scope;
use crate::ops::Verb;

/// Inspect and operate ragops RagPipelines.
#[derive(Parser, Debug)]
#[command(name = "kubectl ragops", version)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// The kubeconfig options kubectl has, resolved the same way (KUBECONFIG, ~/.kube/config).
#[derive(Args, Debug)]
struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// Namespace (default: the context's namespace).
    #[arg(short, long, global = true)]
    namespace: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tree of a pipeline (or of every pipeline): colours, Services, pods, index, latest Events.
    Get {
        name: Option<String>,
        /// Every namespace.
        #[arg(short = 'A', long, conflicts_with = "name")]
        all_namespaces: bool,
    },
    /// Switch traffic to the verified colour of a Paused rollout, or end a canary's pause
    /// (ragops.io/promote).
    Promote {
        name: String,
        /// Also end a running analysis unjudged and promote (ragops.io/force-promote); a rollout
        /// in flight needs not be Paused.
        #[arg(long)]
        force: bool,
    },
    /// Stop the rollout in flight; the active colour keeps all traffic (ragops.io/abort).
    Abort { name: String },
    /// Roll out a failed, aborted or rolled-back revision again (ragops.io/retry).
    Retry { name: String },
    /// Back to the revision that served before the last cutover (ragops.io/rollback).
    Rollback { name: String },
    /// Phase and conditions; with --watch, wait: exit 0 Healthy, 2 Degraded, 3 timed out.
    Status {
        name: String,
        /// Follow the pipeline until it is Healthy or Degraded at its current generation.
        #[arg(short, long)]
        watch: bool,
        /// How long --watch waits, e.g. 90s, 5m, 1h.
        #[arg(long, default_value = "5m", value_parser = parse_timeout)]
        timeout: Duration,
    },
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from(d).map_err(|_| format!("{s}: a timeout cannot be negative"))
}

#[tokio::main]
async fn main() -> ExitCode {
    // Two TLS stacks are linked in (through rag-operator); kube's client needs the process-wide
    // provider chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let (client, namespace) = connect(&cli.global).await?;
    let pipelines: Api<rag_operator::api::RagPipeline> =
        Api::namespaced(client.clone(), &namespace);
    match cli.command {
        Command::Get {
            name,
            all_namespaces,
        } => {
            let scope = if all_namespaces {
                Scope::All
            } else {
                Scope::Namespace(namespace)
            };
            cmd::get(&client, scope, name.as_deref()).await
        }
        Command::Promote { name, force } => {
            let verb = if force {
                Verb::ForcePromote
            } else {
                Verb::Promote
            };
            cmd::operate(&pipelines, &name, verb).await
        }
        Command::Abort { name } => cmd::operate(&pipelines, &name, Verb::Abort).await,
        Command::Retry { name } => cmd::operate(&pipelines, &name, Verb::Retry).await,
        Command::Rollback { name } => cmd::operate(&pipelines, &name, Verb::Rollback).await,
        Command::Status {
            name,
            watch,
            timeout,
        } => cmd::status(&pipelines, &name, watch.then_some(timeout)).await,
    }
}

/// A client from the kubeconfig (or, with no flags and no kubeconfig, the in-cluster service
/// account), and the namespace: `-n`, else the context's.
async fn connect(g: &Global) -> Result<(Client, String)> {
    let options = KubeConfigOptions {
        context: g.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&g.kubeconfig, &g.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &options).await?
        }
        (None, Some(_)) => Config::from_kubeconfig(&options).await?,
        (None, None) => Config::infer()
            .await
            .context("no kubeconfig ($KUBECONFIG, ~/.kube/config) and not in a cluster")?,
    };
    let namespace = g
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    Ok((Client::try_from(config)?, namespace))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_read_like_kubectl_wait() {
        assert_eq!(parse_timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_timeout("soon").is_err());
        assert!(parse_timeout("-5m").is_err());
    }

    #[test]
    fn flags_work_before_and_after_the_verb() {
        let cli =
            Cli::try_parse_from(["kubectl-ragops", "-n", "a", "get", "--context", "c"]).unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("a"));
        assert_eq!(cli.global.context.as_deref(), Some("c"));
        let cli = Cli::try_parse_from([
            "kubectl-ragops",
            "status",
            "docs",
            "--watch",
            "--timeout",
            "2m",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Status { watch: true, timeout, .. } if timeout == Duration::from_secs(120))
        );
        assert!(Cli::try_parse_from(["kubectl-ragops", "get", "docs", "-A"]).is_err());
    }
}
