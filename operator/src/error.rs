//! Errors of a reconciliation, named by the step that failed. Each has a short category, used as
//! the `category` label of `ragops_reconcile_errors_total`, and an Event reason. Problems the user
//! must fix are not errors: they become conditions and Events (see `pipeline::validate`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading what the cache cannot hold (a Secret value, a source's content).
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("applying {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("scaling {kind} {name}: {source}")]
    Scale {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting orphaned {kind} {name}: {source}")]
    Sweep {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing status: {0}")]
    Status(#[source] kube::Error),
    #[error("removing handled annotations: {0}")]
    Annotations(#[source] kube::Error),
    #[error("updating finalizers: {0}")]
    Finalizer(#[source] kube::Error),
    /// A request got no answer within `--api-timeout-seconds` (see `client::deadline`).
    #[error("{verb} {kind} {name}: no answer from the API server within {}s", after.as_secs())]
    Timeout {
        verb: &'static str,
        kind: &'static str,
        name: String,
        after: std::time::Duration,
    },
    /// A write refused because this replica's Lease was not renewed within the renew deadline
    /// (see `leader`): another replica may lead by now.
    #[error("{verb} {kind} {name}: not sent, this replica no longer leads")]
    NotLeading {
        verb: &'static str,
        kind: &'static str,
        name: String,
    },
}

impl Error {
    /// Short category, used as metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Read { .. } => "read",
            Error::Apply { .. } => "apply",
            Error::Scale { .. } => "scale",
            Error::Sweep { .. } => "sweep",
            Error::Status(_) => "status",
            Error::Annotations(_) => "annotations",
            Error::Finalizer(_) => "finalizer",
            Error::Timeout { .. } => "timeout",
            Error::NotLeading { .. } => "leadership",
        }
    }

    /// Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Read { .. } => "ReadFailed",
            Error::Apply { .. } => "ApplyFailed",
            Error::Scale { .. } => "ScaleFailed",
            Error::Sweep { .. } => "CleanupFailed",
            Error::Status(_) => "StatusUpdateFailed",
            Error::Annotations(_) => "AnnotationUpdateFailed",
            Error::Finalizer(_) => "FinalizerUpdateFailed",
            Error::Timeout { .. } => "APITimeout",
            Error::NotLeading { .. } => "NotLeading",
        }
    }

    /// A conflict or a missing object is resolved by the next look at fresh state.
    pub fn is_conflict(&self) -> bool {
        let source = match self {
            Error::Read { source, .. }
            | Error::Apply { source, .. }
            | Error::Scale { source, .. }
            | Error::Sweep { source, .. } => source,
            Error::Status(e) | Error::Annotations(e) | Error::Finalizer(e) => e,
            Error::Timeout { .. } | Error::NotLeading { .. } => return false,
        };
        matches!(source, kube::Error::Api(s) if s.code == 409)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_own_category_and_reason() {
        let api = || {
            kube::Error::Api(
                kube::core::Status::failure("boom", "Conflict")
                    .with_code(409)
                    .boxed(),
            )
        };
        let errors = [
            Error::Read {
                what: "Secret a".into(),
                source: api(),
            },
            Error::Apply {
                kind: "Service",
                name: "a".into(),
                source: api(),
            },
            Error::Scale {
                kind: "Deployment",
                name: "a".into(),
                source: api(),
            },
            Error::Sweep {
                kind: "Service",
                name: "a".into(),
                source: api(),
            },
            Error::Status(api()),
            Error::Annotations(api()),
            Error::Finalizer(api()),
        ];
        let timeout = Error::Timeout {
            verb: "apply",
            kind: "Service",
            name: "a".into(),
            after: std::time::Duration::from_secs(30),
        };
        assert!(!timeout.is_conflict());
        let not_leading = Error::NotLeading {
            verb: "apply",
            kind: "Service",
            name: "a".into(),
        };
        assert!(!not_leading.is_conflict());
        let errors: Vec<Error> = errors.into_iter().chain([timeout, not_leading]).collect();
        let categories: std::collections::BTreeSet<_> =
            errors.iter().map(Error::category).collect();
        let reasons: std::collections::BTreeSet<_> = errors.iter().map(Error::reason).collect();
        assert_eq!(
            (categories.len(), reasons.len()),
            (errors.len(), errors.len())
        );
        assert!(errors[..errors.len() - 2].iter().all(Error::is_conflict));
        let message = errors[1].to_string();
        assert!(
            message.starts_with("applying Service a: ApiError: boom"),
            "{message}"
        );
    }
}
