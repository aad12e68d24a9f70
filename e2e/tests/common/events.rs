//! The Events a world's objects receive, read from the API server: all of them, one by reason
//! or note, and a timeline.

use std::time::Duration;

use anyhow::Result;
use e2e::wait_for;
use k8s_openapi::api::events::v1::Event;
use kube::api::Api;

use super::{ROLLOUT_TIMEOUT, World};

impl World {
    /// `(reason, note)` of every Event about the pipeline, oldest first.
    pub async fn events(&self, name: &str) -> Result<Vec<(String, String)>> {
        let events: Api<Event> = self.ns.api();
        let mut list: Vec<Event> = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        list.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        Ok(list
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect())
    }

    /// Waits for an Event with `reason` whose note contains `note`; returns all the Events.
    pub async fn wait_event_note(
        &self,
        name: &str,
        reason: &str,
        note: &str,
    ) -> Result<Vec<(String, String)>> {
        self.wait_event_note_within(name, reason, note, ROLLOUT_TIMEOUT)
            .await
    }

    /// Every Event about the pipeline as `(last seen, reason, note)`, ordered by when it was last
    /// seen. The operator's recorder folds a repeat of an Event (same reason and action) into
    /// the first one's series, so an Event's time is its series' last observation if it has one.
    pub async fn timeline(&self, name: &str) -> Result<Vec<(jiff::Timestamp, String, String)>> {
        let events: Api<Event> = self.ns.api();
        let mut list: Vec<_> = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                let seen = e
                    .series
                    .as_ref()
                    .map(|s| s.last_observed_time.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
                    .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                    .unwrap_or_default();
                (
                    seen,
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect();
        list.sort_by_key(|(t, _, _)| *t);
        Ok(list)
    }

    /// Waits (up to `timeout`) for an Event with `reason` whose note contains `note`.
    pub async fn wait_event_note_within(
        &self,
        name: &str,
        reason: &str,
        note: &str,
        timeout: Duration,
    ) -> Result<Vec<(String, String)>> {
        let result = wait_for(
            &format!("an Event {reason} ({note}) for {name}"),
            timeout,
            || async {
                let events = self.events(name).await?;
                Ok(events
                    .iter()
                    .any(|(r, n)| r == reason && n.contains(note))
                    .then_some(events))
            },
        )
        .await;
        match result {
            Ok(events) => Ok(events),
            Err(e) => {
                let seen = self.events(name).await.unwrap_or_default();
                Err(e.context(format!("Events about {name}: {seen:#?}")))
            }
        }
    }

    pub async fn wait_event(&self, name: &str, reason: &str) -> Result<Vec<(String, String)>> {
        wait_for(
            &format!("an Event {reason} for {name}"),
            ROLLOUT_TIMEOUT,
            || async {
                let events = self.events(name).await?;
                Ok(events.iter().any(|(r, _)| r == reason).then_some(events))
            },
        )
        .await
    }
}
