//! Types shared by both kinds.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A key of a Secret in the same namespace.
#[derive(Serialize, Deserialize, KubeSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key inside the Secret.
    #[serde(default = "default_secret_key")]
    #[schemars(length(min = 1))]
    pub key: String,
}

fn default_secret_key() -> String {
    "apiKey".into()
}
