//! Errors of a reconciliation that are worth retrying. Problems the user must fix are not errors:
//! they become conditions and Events (see `pipeline::validate::UserError`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("recording an event: {0}")]
    Event(kube::Error),
}

impl Error {
    /// Short category used as metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kube(kube::Error::Api(s)) if s.code == 409 => "conflict",
            Error::Kube(kube::Error::Api(_)) => "api",
            Error::Kube(_) => "client",
            Error::Event(_) => "event",
        }
    }
}
