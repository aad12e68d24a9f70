//! Request ids: what makes a one-shot `ragops.io/<verb>` annotation a request handled once.
//!
//! The annotation's value is the request's id. The ids acted on are recorded in
//! `status.handledRequests` in the same status write as the request's effect, so a request seen
//! again (its annotation not removed yet, a click repeated, a decision retried after a crash) is
//! recognised and ignored; removing the annotation afterwards is only tidying.
//!
//! An empty value is an id too, the empty id. Nothing on the object tells two empty requests
//! apart (annotations do not bump `generation`, and `resourceVersion` changes with the very
//! status write that records the request), so the empty id is forgotten once its annotation is
//! seen gone: the next `kubectl annotate ragp/x ragops.io/rollback=` is a new request. Non-empty
//! ids are kept until replaced, so a tool that sets the same id twice (the Argo CD action derives
//! it from the state the user acted on) never acts twice.

use std::collections::BTreeMap;

use super::{Requests, annotation};
use crate::api::HandledRequests;

/// Each verb: its annotation, whether it is set in `Requests`, and its slot in the record.
type Slot = (
    &'static str,
    fn(&mut Requests) -> &mut bool,
    fn(&mut HandledRequests) -> &mut Option<String>,
);

const SLOTS: [Slot; 5] = [
    (annotation::PROMOTE, |r| &mut r.promote, |h| &mut h.promote),
    (annotation::ABORT, |r| &mut r.abort, |h| &mut h.abort),
    (
        annotation::ROLLBACK,
        |r| &mut r.rollback,
        |h| &mut h.rollback,
    ),
    (annotation::RETRY, |r| &mut r.retry, |h| &mut h.retry),
    (
        annotation::FORCE_PROMOTE,
        |r| &mut r.force_promote,
        |h| &mut h.force_promote,
    ),
];

/// The requests set by annotation whose id is not recorded as handled.
pub fn pending(annotations: &BTreeMap<String, String>, handled: &HandledRequests) -> Requests {
    let mut requests = Requests::default();
    let mut handled = handled.clone();
    for (key, set, slot) in SLOTS {
        let id = annotations.get(key);
        *set(&mut requests) = id.is_some_and(|id| slot(&mut handled).as_ref() != Some(id));
    }
    requests
}

/// The record after a decision that acted on `consumed`: their ids are recorded; an empty id
/// whose annotation is gone is forgotten.
pub fn handled_after(
    annotations: &BTreeMap<String, String>,
    handled: &HandledRequests,
    consumed: Requests,
) -> HandledRequests {
    let mut after = handled.clone();
    let mut consumed = consumed;
    for (key, set, slot) in SLOTS {
        match annotations.get(key) {
            Some(id) if *set(&mut consumed) => *slot(&mut after) = Some(id.clone()),
            None if slot(&mut after).as_deref() == Some("") => *slot(&mut after) = None,
            _ => {}
        }
    }
    after
}

/// Annotations whose request is recorded as handled: removed as tidying (failing to is harmless).
pub fn tidy(
    annotations: &BTreeMap<String, String>,
    handled: &HandledRequests,
) -> Vec<&'static str> {
    let mut handled = handled.clone();
    SLOTS
        .into_iter()
        .filter(|(key, _, slot)| {
            annotations
                .get(*key)
                .is_some_and(|id| slot(&mut handled).as_ref() == Some(id))
        })
        .map(|(key, _, _)| key)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_new_id_is_pending_and_recorded_once_acted_on() {
        let a = annotations(&[(annotation::ROLLBACK, "id-1")]);
        let none = HandledRequests::default();
        let asked = pending(&a, &none);
        assert!(asked.rollback && !asked.promote && !asked.abort && !asked.retry);
        let after = handled_after(&a, &none, asked);
        assert_eq!(after.rollback.as_deref(), Some("id-1"));
        assert_eq!(tidy(&a, &after), [annotation::ROLLBACK]);
    }

    #[test]
    fn a_recorded_id_is_a_repeat_and_ignored() {
        let a = annotations(&[(annotation::ROLLBACK, "id-1"), (annotation::ABORT, "x")]);
        let handled = HandledRequests {
            rollback: Some("id-1".into()),
            ..HandledRequests::default()
        };
        let asked = pending(&a, &handled);
        assert!(!asked.rollback, "the same id again does nothing");
        assert!(asked.abort);
        // A different id is a new request.
        let b = annotations(&[(annotation::ROLLBACK, "id-2")]);
        assert!(pending(&b, &handled).rollback);
    }

    #[test]
    fn a_request_not_acted_on_stays_pending_and_unrecorded() {
        // A promote set before the rollout is verified waits.
        let a = annotations(&[(annotation::PROMOTE, "p")]);
        let none = HandledRequests::default();
        let after = handled_after(&a, &none, Requests::default());
        assert_eq!(after, none);
        assert!(tidy(&a, &after).is_empty(), "its annotation stays");
        assert!(pending(&a, &after).promote);
    }

    #[test]
    fn the_empty_id_is_forgotten_once_its_annotation_is_gone() {
        let a = annotations(&[(annotation::RETRY, "")]);
        let none = HandledRequests::default();
        let after = handled_after(&a, &none, pending(&a, &none));
        assert_eq!(after.retry.as_deref(), Some(""));
        assert!(!pending(&a, &after).retry, "still there: a repeat");
        let gone = handled_after(&BTreeMap::new(), &after, Requests::default());
        assert_eq!(gone.retry, None);
        assert!(pending(&a, &gone).retry, "set again later: a new request");
    }

    #[test]
    fn non_empty_ids_are_kept_after_their_annotation_is_gone() {
        let handled = HandledRequests {
            abort: Some("a1".into()),
            ..HandledRequests::default()
        };
        let after = handled_after(&BTreeMap::new(), &handled, Requests::default());
        assert_eq!(after, handled);
    }
}
