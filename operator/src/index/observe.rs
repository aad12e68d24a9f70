//! The state of an ingest Job, from the Job in the cache and, once it has finished, the
//! termination message of its last pod (read then, once: the operator does not watch pods of
//! Jobs).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use super::decide::{JobState, Report};
use crate::error::Error;

/// How a Job ended, by its conditions; `None` while it runs.
pub fn finished(job: &Job) -> Option<(bool, Timestamp, String)> {
    let status = job.status.as_ref()?;
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?;
    let when = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .or(status.completion_time.as_ref().map(|t| t.0))
        .unwrap_or_default();
    let message = [condition.reason.as_deref(), condition.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Some((condition.type_ == "Complete", when, message))
}

/// The termination message of the pod that ended last.
pub fn last_message(pods: &[Pod]) -> Option<String> {
    pods.iter()
        .filter_map(|p| {
            let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
            let terminated = statuses
                .iter()
                .find_map(|c| c.state.as_ref()?.terminated.as_ref())?;
            let at = terminated
                .finished_at
                .as_ref()
                .map(|t| t.0)
                .unwrap_or_default();
            Some((at, terminated.message.clone().unwrap_or_default()))
        })
        .filter(|(_, m)| !m.trim().is_empty())
        .max_by_key(|(at, _)| *at)
        .map(|(_, m)| m)
}

/// The Job's state, reading its pods only when it has finished.
pub async fn job_state(api: &Api<Pod>, job: &Job) -> Result<JobState, Error> {
    let Some((succeeded, finished_at, condition)) = finished(job) else {
        return Ok(JobState::Running);
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let pods = api
        .list(&ListParams::default().labels(&pod_selector(job)))
        .await
        .map_err(|e| Error::Read {
            what: format!("the pods of Job {name}"),
            source: e,
        })?;
    let message = last_message(&pods.items);
    let report = message.as_deref().and_then(Report::parse);
    Ok(match (succeeded, report) {
        (true, Some(report)) => JobState::Succeeded {
            report,
            finished: finished_at,
        },
        (true, None) => JobState::Succeeded {
            report: Report::default(),
            finished: finished_at,
        },
        (false, report) => JobState::Failed {
            message: report
                .and_then(|r| r.error)
                .or(message)
                .unwrap_or(condition),
            finished: finished_at,
        },
    })
}

/// The Job's own pod selector (the Job controller sets `controller-uid` in it on every
/// Kubernetes version), as a label selector string.
pub fn pod_selector(job: &Job) -> String {
    job.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        // Not set yet (the Job controller fills it on create): match no pod rather than all.
        .unwrap_or_else(|| "controller-uid=unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(conditions: &str) -> Job {
        serde_json::from_str(&format!(
            r#"{{"metadata":{{"name":"h-ingest-r1"}},"status":{{"conditions":{conditions}}}}}"#
        ))
        .unwrap()
    }

    fn pod(finished: &str, message: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "status": { "containerStatuses": [{
                "name": "ingest", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": { "terminated": { "exitCode": 1, "finishedAt": finished, "message": message } }
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn a_job_ends_by_its_complete_or_failed_condition() {
        assert_eq!(finished(&job("[]")), None);
        let t = "2026-11-26T10:00:00Z";
        let done = job(&format!(
            r#"[{{"type":"Complete","status":"True","lastTransitionTime":"{t}"}}]"#
        ));
        assert_eq!(
            finished(&done),
            Some((true, t.parse().unwrap(), String::new()))
        );
        let failed = job(&format!(
            r#"[{{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit","lastTransitionTime":"{t}"}}]"#
        ));
        let (ok, _, message) = finished(&failed).unwrap();
        assert!(!ok);
        assert_eq!(
            message,
            "BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
    }

    #[test]
    fn pods_are_found_by_the_jobs_own_selector() {
        let j: Job = serde_json::from_value(serde_json::json!({
            "spec": { "template": {}, "selector": { "matchLabels": {
                "batch.kubernetes.io/controller-uid": "u1", "controller-uid": "u1" } } }
        }))
        .unwrap();
        assert_eq!(
            pod_selector(&j),
            "batch.kubernetes.io/controller-uid=u1,controller-uid=u1"
        );
        assert_eq!(pod_selector(&job("[]")), "controller-uid=unknown");
    }

    #[test]
    fn the_last_pod_to_end_tells_the_result() {
        let pods = [
            pod("2026-11-26T10:00:00Z", "first try"),
            pod("2026-11-26T10:02:00Z", "second try"),
            pod("2026-11-26T10:03:00Z", " "),
        ];
        assert_eq!(last_message(&pods).as_deref(), Some("second try"));
        assert_eq!(last_message(&[]), None);
    }
}
