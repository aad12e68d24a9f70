//! What every reconciliation gets: the client, the event recorder, metrics, the health checker and
//! per-object failure counts for backoff. Built once, in one place.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use crate::pipeline::health::HealthChecker;

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub health: Arc<dyn HealthChecker>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>, health: Arc<dyn HealthChecker>) -> Self {
        let reporter = Reporter {
            controller: "ragops".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            health,
            failures: Mutex::default(),
        }
    }

    /// Exponential backoff per object: 1s, 2s, 4s … capped at 5 minutes.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("never poisoned");
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        backoff_delay(*n)
    }

    pub fn reset_backoff(&self, key: &str) {
        self.failures.lock().expect("never poisoned").remove(key);
    }
}

pub fn backoff_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let secs: Vec<u64> = [1, 2, 3, 9, 10, 40]
            .map(|n| backoff_delay(n).as_secs())
            .to_vec();
        assert_eq!(secs, [1, 2, 4, 256, 300, 300]);
    }
}
