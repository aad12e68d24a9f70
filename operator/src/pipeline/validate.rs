//! Dereference and validate: fetch what a RagPipeline refers to and check what only the operator
//! can see (the schema and CEL rules have already checked the rest). Problems the user must fix
//! become a [`UserError`] naming the field; API failures stay errors and are retried.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use std::sync::Arc;

use super::build::{Inputs, Source, Validated};
use super::cache::Stores;
use crate::analysis::{CompiledAnalysis, SpecError};
use crate::api::{RagIndex, RagPipeline, SecretKeyRef};
use crate::watch::trim;

/// Something in the spec the operator cannot serve until the user changes it (or creates what it
/// names).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("spec.indexRef.name: RagIndex {0:?} not found in this namespace")]
    IndexNotFound(String),
    #[error("{field}: Secret {name:?} not found in this namespace")]
    SecretNotFound { field: &'static str, name: String },
    #[error("RagIndex spec.sources: ConfigMap {0:?} not found in this namespace")]
    SourceNotFound(String),
    #[error(
        "spec.indexRef.name: RagIndex {0:?} has no collection yet; waiting for its first ingest"
    )]
    IndexNotReady(String),
    #[error("{field}: Secret {name:?} has no key {key:?}")]
    SecretKeyMissing {
        field: &'static str,
        name: String,
        key: String,
    },
    #[error(
        "{field}: Secret {name:?} key {key:?} is empty; the runtime refuses to serve without a \
         token, so nothing new rolls out until it holds one"
    )]
    SecretKeyEmpty {
        field: &'static str,
        name: String,
        key: String,
    },
    /// `spec.rollout.analysis` the operator cannot run.
    #[error("{field}: {message}")]
    InvalidAnalysis { field: String, message: String },
    /// `spec.rollout.canary.trafficRouting.httpRoute` the operator cannot set weights on.
    #[error("spec.rollout.canary.trafficRouting.httpRoute.name: {message}")]
    HttpRoute { message: String },
    /// `spec.rollout.goldenSet` names a ConfigMap that is missing or does not parse.
    #[error("{field}: {message}")]
    InvalidGoldenSet { field: String, message: String },
}

impl UserError {
    /// Condition and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            UserError::IndexNotFound(_) => "IndexNotFound",
            UserError::SecretNotFound { .. } => "SecretNotFound",
            UserError::SecretKeyMissing { .. } => "SecretKeyMissing",
            UserError::SecretKeyEmpty { .. } => "SecretKeyEmpty",
            UserError::SourceNotFound(_) => "SourceNotFound",
            UserError::IndexNotReady(_) => "IndexNotReady",
            UserError::InvalidAnalysis { .. } => "InvalidAnalysis",
            UserError::HttpRoute { .. } => "HTTPRouteInvalid",
            UserError::InvalidGoldenSet { .. } => "InvalidGoldenSet",
        }
    }

    /// Whether the pipeline only has to wait (nothing is wrong), rather than the user fix it.
    pub fn is_waiting(&self) -> bool {
        matches!(self, UserError::IndexNotReady(_))
    }
}

/// The field naming the runtime's bearer tokens: its key must hold at least one.
const API_KEYS_FIELD: &str = "spec.server.apiKeysSecretRef";

/// Every Secret key the pods will read, with the field that names it.
pub fn secret_refs<'a>(
    pipeline: &'a RagPipeline,
    index: &'a RagIndex,
) -> Vec<(&'static str, &'a SecretKeyRef)> {
    let refs = [
        (
            "spec.llm.apiKeySecretRef",
            pipeline.spec.llm.api_key_secret_ref.as_ref(),
        ),
        (
            API_KEYS_FIELD,
            pipeline
                .spec
                .server
                .as_ref()
                .and_then(|s| s.api_keys_secret_ref.as_ref()),
        ),
        (
            "RagIndex spec.embedding.apiKeySecretRef",
            crate::index::config::serving_embedding(index)
                .api_key_secret_ref
                .as_ref(),
        ),
        (
            "RagIndex spec.vectorStore.qdrant.apiKeySecretRef",
            index
                .spec
                .vector_store
                .qdrant
                .as_ref()
                .and_then(|q| q.api_key_secret_ref.as_ref()),
        ),
    ];
    refs.into_iter()
        .filter_map(|(field, r)| r.map(|r| (field, r)))
        .collect()
}

/// Checks one reference against the Secret found (or not) under its name.
pub fn check_secret(
    field: &'static str,
    r: &SecretKeyRef,
    found: Option<&Secret>,
) -> Result<(), UserError> {
    let secret = found.ok_or_else(|| UserError::SecretNotFound {
        field,
        name: r.name.clone(),
    })?;
    let has_key = secret.data.as_ref().is_some_and(|d| d.contains_key(&r.key))
        || secret
            .string_data
            .as_ref()
            .is_some_and(|d| d.contains_key(&r.key));
    let (name, key) = (r.name.clone(), r.key.clone());
    if !has_key {
        return Err(UserError::SecretKeyMissing { field, name, key });
    }
    // The runtime refuses to start on a keys file without a key (it fails closed); saying so
    // here keeps a new colour from being rolled out only to crash.
    if field == API_KEYS_FIELD && trim::secret_value_is_blank(secret, &r.key) {
        return Err(UserError::SecretKeyEmpty { field, name, key });
    }
    Ok(())
}

/// Every Secret key the pods of `pipeline` read; none known while its index is missing.
pub fn referenced_secrets<'a>(
    pipeline: &'a RagPipeline,
    index: Option<&'a RagIndex>,
) -> impl Iterator<Item = (&'static str, &'a SecretKeyRef)> {
    index
        .map(|index| secret_refs(pipeline, index))
        .unwrap_or_default()
        .into_iter()
}

/// The pipeline's analysis from its compiled form (`compiled`, none when the spec has none): a
/// spec the compiler refused, or one with no Prometheus to ask (neither
/// `prometheus.address` nor the operator's `--prometheus-url`), is a user error naming the field.
pub fn analysis(
    compiled: Option<Result<Arc<CompiledAnalysis>, SpecError>>,
    default_address: Option<&str>,
) -> Result<Option<Arc<CompiledAnalysis>>, UserError> {
    let Some(compiled) = compiled else {
        return Ok(None);
    };
    let compiled = compiled.map_err(|e| UserError::InvalidAnalysis {
        field: e.field,
        message: e.message,
    })?;
    if compiled.address(default_address).is_none() {
        return Err(UserError::InvalidAnalysis {
            field: "spec.rollout.analysis.prometheus.address".into(),
            message: "no Prometheus to ask: set it, or start the operator with --prometheus-url"
                .into(),
        });
    }
    Ok(Some(compiled))
}

/// Looks up what `pipeline` refers to in the caches and checks it; the versions of the sources
/// and Secret keys the pods read come along, for the revision.
pub fn dereference(stores: &Stores, pipeline: &RagPipeline) -> Result<Validated, UserError> {
    let ns = pipeline.namespace().unwrap_or_default();
    let index_name = &pipeline.spec.index_ref.name;
    let index = crate::watch::get(&stores.indexes, &ns, index_name)
        .ok_or_else(|| UserError::IndexNotFound(index_name.clone()))?;
    let collection = crate::index::config::serving_collection(&index)
        .ok_or_else(|| UserError::IndexNotReady(index_name.clone()))?;
    let mut inputs = Inputs::default();
    for (field, r) in secret_refs(pipeline, &index) {
        let secret = crate::watch::get(&stores.secrets, &ns, &r.name);
        check_secret(field, r, secret.as_deref())?;
        let digest = secret
            .as_deref()
            .and_then(|s| trim::secret_value_digest(s, &r.key));
        inputs.secrets.push((
            format!("{}/{}", r.name, r.key),
            digest.unwrap_or_default().into(),
        ));
    }
    if index.spec.vector_store.embedded.is_some() {
        for source in index
            .spec
            .sources
            .iter()
            .filter_map(|s| s.config_map.as_ref())
        {
            let found = crate::watch::get(&stores.config_maps, &ns, &source.name)
                .ok_or_else(|| UserError::SourceNotFound(source.name.clone()))?;
            inputs.sources.push(Source {
                name: source.name.clone(),
                digest: trim::content_digest(&found).unwrap_or_default().into(),
            });
        }
    }
    Ok(Validated {
        pipeline: pipeline.clone(),
        index: (*index).clone(),
        inputs,
        collection,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;

    use super::super::build::fixtures::validated;
    use super::*;

    #[test]
    fn finds_every_secret_the_pods_read() {
        let v = validated();
        let fields: Vec<_> = secret_refs(&v.pipeline, &v.index)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.llm.apiKeySecretRef",
                "RagIndex spec.vectorStore.qdrant.apiKeySecretRef"
            ]
        );
    }

    #[test]
    fn secret_errors_name_the_field_and_key() {
        let r = SecretKeyRef {
            name: "llm".into(),
            key: "token".into(),
        };
        let field = "spec.llm.apiKeySecretRef";
        let missing = check_secret(field, &r, None).unwrap_err();
        assert_eq!(missing.reason(), "SecretNotFound");
        assert!(missing.to_string().starts_with(field));
        let wrong_key = Secret {
            data: Some(BTreeMap::from([("other".into(), ByteString(vec![1]))])),
            ..Secret::default()
        };
        let err = check_secret(field, &r, Some(&wrong_key)).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"spec.llm.apiKeySecretRef: Secret "llm" has no key "token""#
        );
        let good = Secret {
            data: Some(BTreeMap::from([("token".into(), ByteString(vec![1]))])),
            ..Secret::default()
        };
        assert_eq!(check_secret(field, &r, Some(&good)), Ok(()));
    }

    #[test]
    fn an_empty_api_keys_secret_is_refused_as_secret_key_empty() {
        let r = SecretKeyRef {
            name: "keys".into(),
            key: "keys".into(),
        };
        let cached = |value: &[u8]| {
            let mut s = Secret {
                data: Some(BTreeMap::from([(
                    "keys".into(),
                    ByteString(value.to_vec()),
                )])),
                ..Secret::default()
            };
            trim::secret(&mut s);
            s
        };
        let (empty, filled) = (cached(b" \n"), cached(b"token\n"));
        let err = check_secret(API_KEYS_FIELD, &r, Some(&empty)).unwrap_err();
        assert_eq!(err.reason(), "SecretKeyEmpty");
        assert!(!err.is_waiting());
        assert!(
            err.to_string()
                .starts_with(r#"spec.server.apiKeysSecretRef: Secret "keys" key "keys" is empty"#),
            "{err}"
        );
        assert_eq!(check_secret(API_KEYS_FIELD, &r, Some(&filled)), Ok(()));
        // Other keys may be empty on purpose (a self-hosted model without a key).
        assert_eq!(
            check_secret("spec.llm.apiKeySecretRef", &r, Some(&empty)),
            Ok(())
        );
    }

    #[test]
    fn analysis_problems_are_user_errors_naming_the_field() {
        let bad = SpecError {
            field: "spec.rollout.analysis.metrics[0].successCondition".into(),
            message: "syntax error".into(),
        };
        let err = analysis(Some(Err(bad)), None).unwrap_err();
        assert_eq!(err.reason(), "InvalidAnalysis");
        assert_eq!(
            err.to_string(),
            "spec.rollout.analysis.metrics[0].successCondition: syntax error"
        );
        assert_eq!(analysis(None, None), Ok(None));
    }

    #[test]
    fn analysis_without_a_prometheus_anywhere_is_a_user_error() {
        let spec: crate::api::AnalysisSpec = serde_yaml::from_str(
            "metrics: [{name: errors, builtin: errorRatio, threshold: 0.05}]\n\
             prePromotion: {metrics: [errors]}",
        )
        .unwrap();
        let compiled = || Some(crate::analysis::compile(&spec).map(Arc::new));
        let err = analysis(compiled(), None).unwrap_err();
        assert_eq!(err.reason(), "InvalidAnalysis");
        assert!(
            err.to_string()
                .starts_with("spec.rollout.analysis.prometheus.address: "),
            "{err}"
        );
        assert!(err.to_string().contains("--prometheus-url"), "{err}");
        assert!(
            analysis(compiled(), Some("http://prom:9090"))
                .unwrap()
                .is_some()
        );
    }
}
