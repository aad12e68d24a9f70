//! The operator replaced by one that crashes at a test-only kill point (`RAGOPS_TEST_CRASH_AT`),
//! and the wait for that crash.

use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};
use e2e::ChildProcess;
use rag_operator::crash;

use super::World;

/// Replaces the world's operator with one that crashes the first time it passes `point`.
pub fn start_crashing_at(world: &mut World, point: &str) -> Result<()> {
    if let Some(mut old) = world.operator.take() {
        old.terminate(Duration::from_secs(10))?;
    }
    let mut cmd = Command::new(e2e::operator_binary()?);
    cmd.env("KUBECONFIG", world.cluster.operator_kubeconfig()?)
        .env("RUST_LOG", "info")
        .env(crash::ENV, point)
        .arg("--namespace")
        .arg(world.ns.name())
        .args(&world.operator_args);
    let child = ChildProcess::spawn("rag-operator-crashing", cmd, &world.cluster.logs_dir())?;
    world.operator = Some(child);
    Ok(())
}

/// Waits for the operator to crash at its kill point (and not exit for any other reason).
pub async fn wait_crashed(world: &mut World, point: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + super::ROLLOUT_TIMEOUT;
    loop {
        let Some(child) = world.operator.as_mut() else {
            bail!("no operator running");
        };
        if let Some(status) = child.try_wait()? {
            if status.code() == Some(crash::EXIT_CODE) {
                return Ok(());
            }
            bail!(
                "the operator exited with {status}, not at {point}:\n{}",
                child.log_tail(30)
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the operator never reached kill point {point}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
