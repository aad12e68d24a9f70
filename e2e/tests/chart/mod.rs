//! What the chart tests share: helm and kubectl as built with the control plane, the README's
//! install commands, renderings of the chart and their RBAC rules.
#![allow(dead_code)] // each test file uses a different part

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use e2e::Cluster;
use serde_json::{Value, json};

pub const CHART: &str = "charts/rag-operator";

/// The directory of the binaries built with the control plane (kubectl's, and helm's beside it).
pub fn bin_dir(cluster: &Cluster) -> Result<PathBuf> {
    let kubectl = cluster
        .kubectl
        .clone()
        .context("RAGOPS_E2E_KUBECTL unknown")?;
    Ok(kubectl.parent().context("kubectl has no directory")?.into())
}

/// `program` (helm or kubectl) from [`bin_dir`] first on PATH, against the admin kubeconfig, run
/// from the workspace root, with helm's own state kept in the cluster's state dir.
pub fn tool_command(cluster: &Cluster, program: &str) -> Result<Command> {
    let bin = bin_dir(cluster)?;
    ensure!(
        bin.join("helm").is_file(),
        "helm not found in {}; build it with `make e2e-bins` (e2e/hack/build-helm.sh)",
        bin.display()
    );
    let path = std::env::var("PATH").unwrap_or_default();
    let helm_home = cluster.state_dir.join("helm");
    let mut cmd = Command::new(program);
    cmd.current_dir(e2e::workspace_root())
        .env("PATH", format!("{}:{path}", bin.display()))
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("HELM_CACHE_HOME", helm_home.join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.join("config"))
        .env("HELM_DATA_HOME", helm_home.join("data"));
    Ok(cmd)
}

/// Runs `program args` with `stdin`; returns stdout, or fails with stderr.
pub fn run(cluster: &Cluster, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = tool_command(cluster, program)?;
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    let mut pipe = child.stdin.take().context("stdin")?;
    pipe.write_all(stdin.unwrap_or_default().as_bytes())?;
    drop(pipe);
    let out = child.wait_with_output()?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}):\n{stderr}{stdout}",
            args.join(" "),
            out.status
        );
    }
    Ok(stdout.into_owned())
}

/// The lines of the README's ```sh block between the `install:begin` and `install:end` markers.
pub fn readme_install_commands() -> Result<Vec<String>> {
    let readme = std::fs::read_to_string(e2e::workspace_root().join("README.md"))?;
    let section = readme
        .split_once("<!-- install:begin")
        .and_then(|(_, rest)| rest.split_once("<!-- install:end"))
        .map(|(inside, _)| inside)
        .context("README.md has no install:begin/install:end markers")?;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .context("no ```sh block between the README's install markers")?;
    Ok(block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// The value after `flag` (or `--long`) in a command line.
pub fn flag_value<'a>(words: &[&'a str], flags: &[&str]) -> Option<&'a str> {
    let at = words.iter().position(|w| flags.contains(w))?;
    words.get(at + 1).copied()
}

/// `helm template` of the chart with `sets` (`--set` values), as YAML documents.
pub fn template(cluster: &Cluster, ns: &str, sets: &[&str]) -> Result<String> {
    let mut args = vec!["template", "t", CHART, "-n", ns, "--include-crds"];
    for set in sets {
        args.extend(["--set", set]);
    }
    run(cluster, "helm", &args, None)
}

/// The kinds and the RBAC rules of a rendering.
pub fn kinds_and_rules(rendered: &str) -> Result<(Vec<String>, Vec<Value>)> {
    let (mut kinds, mut rules) = (vec![], vec![]);
    for doc in serde_yaml::Deserializer::from_str(rendered) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if v.is_null() {
            continue;
        }
        kinds.push(v["kind"].as_str().unwrap_or_default().to_string());
        rules.extend(v["rules"].as_array().cloned().unwrap_or_default());
    }
    Ok((kinds, rules))
}

/// A kubeconfig for the admin's cluster entry that authenticates with `token`.
pub fn token_kubeconfig(cluster: &Cluster, token: &str, file: &str) -> Result<PathBuf> {
    let admin: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&cluster.kubeconfig)?)?;
    let server = admin["clusters"][0].clone();
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [server],
        "users": [{ "name": "sa", "user": { "token": token } }],
        "contexts": [{ "name": "sa", "context": { "cluster": server["name"], "user": "sa" } }],
        "current-context": "sa",
    });
    let path = cluster.logs_dir().join(file);
    std::fs::create_dir_all(cluster.logs_dir())?;
    std::fs::write(&path, serde_yaml::to_string(&config)?)?;
    Ok(path)
}

/// Who the operator runs as under the chart's RBAC: a kubeconfig with a token of the chart's
/// ServiceAccount, and that account's user name as the audit log records it.
pub struct ChartAccount {
    pub kubeconfig: PathBuf,
    pub user: String,
}

/// Installs the chart as release `ragops` in namespace `rel` with `set` (one `--set` value) and
/// returns its ServiceAccount's credentials.
pub fn install_with_account(cluster: &Cluster, rel: &str, set: &str) -> Result<ChartAccount> {
    let args = [
        "install", "ragops", CHART, "-n", rel, "--set", set, "-o", "json",
    ];
    let release: Value = serde_json::from_str(&run(cluster, "helm", &args, None)?)?;
    ensure!(release["info"]["status"] == "deployed", "{release}");
    // The chart's ServiceAccount, by the chart's own naming.
    let sa = "ragops-rag-operator";
    let token = run(
        cluster,
        "kubectl",
        &["create", "token", sa, "-n", rel, "--duration=2h"],
        None,
    )?;
    let kubeconfig = token_kubeconfig(cluster, token.trim(), &format!("{rel}-sa.kubeconfig"))?;
    Ok(ChartAccount {
        kubeconfig,
        user: format!("system:serviceaccount:{rel}:{sa}"),
    })
}

/// Whether the operator binary has leader election (`--leader-elect`).
pub fn operator_elects_a_leader() -> Result<bool> {
    let help = Command::new(e2e::operator_binary()?)
        .arg("--help")
        .output()?;
    Ok(String::from_utf8_lossy(&help.stdout).contains("--leader-elect"))
}
