//! The docs cannot drift from the API: every YAML example in README.md and every file in
//! `config/samples/` is applied to the real API server (schema, defaults and CEL rules) and must
//! be accepted as written.

mod common;

use anyhow::{Context, Result, ensure};
use e2e::{Cluster, TestNamespace};

/// The ```yaml blocks of a Markdown file, in order.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = vec![];
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

/// Applies `yaml` server-side into `ns`; returns what kubectl printed.
fn apply(cluster: &Cluster, ns: &TestNamespace, yaml: &str, what: &str) -> Result<String> {
    let file = cluster
        .logs_dir()
        .join(format!("{}-example.yaml", ns.name()));
    std::fs::write(&file, yaml)?;
    let path = file.to_str().context("a UTF-8 path")?;
    let out = cluster
        .kubectl_output(&[
            "apply",
            "--server-side",
            "--field-manager",
            "docs",
            "-n",
            ns.name(),
            "-f",
            path,
        ])
        .with_context(|| format!("applying {what}:\n{yaml}"));
    std::fs::remove_file(&file)?;
    out
}

#[tokio::test]
async fn every_yaml_example_in_the_readme_is_accepted() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let ns = TestNamespace::new(&cluster, "readme").await?;
    let readme = std::fs::read_to_string(e2e::workspace_root().join("README.md"))?;
    let blocks = yaml_blocks(&readme);
    ensure!(!blocks.is_empty(), "README.md has no yaml examples");
    for (i, block) in blocks.iter().enumerate() {
        let out = apply(
            &cluster,
            &ns,
            block,
            &format!("README.md yaml block {}", i + 1),
        )?;
        ensure!(out.contains("serverside-applied"), "block {}: {out}", i + 1);
    }
    Ok(())
}

#[tokio::test]
async fn every_sample_is_accepted() -> Result<()> {
    e2e::install_crypto_provider();
    let cluster = Cluster::from_env()?;
    common::install_crds(&cluster).await?;
    let ns = TestNamespace::new(&cluster, "samples").await?;
    // The Qdrant pair sits in its own directory: `kubectl apply -f config/samples/` leaves it out.
    let mut files = Vec::new();
    for dir in [common::samples(), common::samples().join("qdrant")] {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    ensure!(
        files.len() >= 5,
        "expected the sample files, found {files:?}"
    );
    for file in files {
        let yaml = std::fs::read_to_string(&file)?;
        let out = apply(&cluster, &ns, &yaml, &file.display().to_string())?;
        ensure!(
            out.contains("serverside-applied"),
            "{}: {out}",
            file.display()
        );
    }
    Ok(())
}

#[test]
fn yaml_blocks_are_found_between_fences() {
    let md = "text\n```yaml\na: 1\n```\n```sh\nls\n```\n  ```yaml\nb: 2\n  ```\n";
    assert_eq!(yaml_blocks(md), ["a: 1\n", "b: 2\n"]);
}
