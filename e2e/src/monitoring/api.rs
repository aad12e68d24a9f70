//! Prometheus's HTTP API (`/api/v1/...`) for tests: queries, targets, rules, alerts, and
//! deadline-bounded waits on them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MonitoringBed;
use crate::wait_for;

/// An active scrape target (`/api/v1/targets`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Labels after relabelling (`job`, `instance`, `namespace`, `pod`, ...).
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    /// `up`, `down` or `unknown` (not scraped yet).
    pub health: String,
    #[serde(default)]
    pub last_error: String,
}

impl Target {
    /// The address scraped, from `scrapeUrl`.
    pub fn ip(&self) -> Option<IpAddr> {
        let rest = self.scrape_url.split_once("://")?.1;
        let host_port = rest.split('/').next()?;
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        host.trim_matches(['[', ']']).parse().ok()
    }

    pub fn is_up(&self) -> bool {
        self.health == "up"
    }
}

/// A rule group (`/api/v1/rules`).
#[derive(Debug, Clone, Deserialize)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<Rule>,
}

/// A recording or alerting rule as Prometheus evaluates it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// `recording` or `alerting`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub query: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Alerting rules: `inactive`, `pending` or `firing`.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// An active alert (`/api/v1/alerts`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    pub value: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

#[derive(Deserialize)]
struct TargetsData {
    #[serde(rename = "activeTargets")]
    active: Vec<Target>,
}

#[derive(Deserialize)]
struct GroupsData {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

impl MonitoringBed {
    /// GET `/api/v1/<path>`; the `data` of a `success` answer, else an error with Prometheus's.
    async fn api<T: DeserializeOwned>(&self, path: &str, params: &[(&str, &str)]) -> Result<T> {
        let resp = self
            .http
            .get(format!("{}/api/v1/{path}", self.url))
            .query(params)
            .send()
            .await
            .with_context(|| format!("GET /api/v1/{path}"))?;
        let body: Value = resp.json().await?;
        if body["status"] != "success" {
            bail!(
                "/api/v1/{path} {params:?}: {} {}",
                body["errorType"],
                body["error"]
            );
        }
        Ok(serde_json::from_value(body["data"].clone())?)
    }

    /// An instant query; returns `data.result` (for a vector, an array of `{metric, value}`).
    pub async fn query(&self, promql: &str) -> Result<Value> {
        let data: Value = self.api("query", &[("query", promql)]).await?;
        Ok(data["result"].clone())
    }

    /// The active targets.
    pub async fn targets(&self) -> Result<Vec<Target>> {
        Ok(self
            .api::<TargetsData>("targets", &[("state", "active")])
            .await?
            .active)
    }

    /// The loaded rule groups.
    pub async fn rules(&self) -> Result<Vec<RuleGroup>> {
        Ok(self.api::<GroupsData>("rules", &[]).await?.groups)
    }

    /// The pending and firing alerts.
    pub async fn alerts(&self) -> Result<Vec<Alert>> {
        Ok(self.api::<AlertsData>("alerts", &[]).await?.alerts)
    }

    /// Waits until `done` holds for the active targets; returns them.
    pub async fn wait_targets(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Target]) -> bool,
    ) -> Result<Vec<Target>> {
        let result = wait_for(what, timeout, || async {
            let targets = self.targets().await?;
            Ok(done(&targets).then_some(targets))
        })
        .await;
        self.explain(result, || async {
            format!("targets: {:#?}", self.targets().await)
        })
        .await
    }

    /// Waits until `promql` returns a non-empty result; returns it.
    pub async fn wait_query(&self, promql: &str, timeout: Duration) -> Result<Value> {
        let result = wait_for(&format!("a result for `{promql}`"), timeout, || async {
            let result = self.query(promql).await?;
            let empty = result.as_array().is_some_and(Vec::is_empty) || result.is_null();
            Ok((!empty).then_some(result))
        })
        .await;
        self.explain(result, || async { String::new() }).await
    }

    /// Waits until a rule called `name` is loaded and evaluated without error; returns it.
    pub async fn wait_rule(&self, name: &str, timeout: Duration) -> Result<Rule> {
        let result = wait_for(&format!("rule {name} evaluated"), timeout, || async {
            let rules = self.rules().await?;
            let rule = rules
                .into_iter()
                .flat_map(|g| g.rules)
                .find(|r| r.name == name);
            match rule {
                Some(r) if r.health == "err" => bail!("rule {name}: {:?}", r.last_error),
                Some(r) if r.health == "ok" => Ok(Some(r)),
                _ => Ok(None),
            }
        })
        .await;
        self.explain(result, || async {
            format!("rules: {:#?}", self.rules().await)
        })
        .await
    }

    /// Waits until the alert `name` is firing; returns it.
    pub async fn wait_alert_firing(&self, name: &str, timeout: Duration) -> Result<Alert> {
        let result = wait_for(&format!("alert {name} firing"), timeout, || async {
            let alerts = self.alerts().await?;
            Ok(alerts
                .into_iter()
                .find(|a| a.name() == name && a.state == "firing"))
        })
        .await;
        self.explain(result, || async {
            format!("alerts: {:#?}", self.alerts().await)
        })
        .await
    }

    /// Adds what the bed saw to a failed wait: `seen`, the configuration error, the log tails.
    async fn explain<T, F, Fut>(&self, result: Result<T>, seen: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = String>,
    {
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(e.context(format!(
                "{}\nconfiguration error: {:?}\n--- prometheus log ---\n{}\n--- prometheus-operator log ---\n{}",
                seen().await,
                self.config_error(),
                self.prometheus_log_tail(20),
                self.operator_log_tail(20)
            ))),
        }
    }
}
