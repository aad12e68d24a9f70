//! Writers behind the gate: a reconciliation's write past the renew deadline fails with a typed
//! error before it reaches the client; its reads still go out.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use tokio::time::Instant;

use super::Gate;
use crate::client::Call;
use crate::context::Shared;
use crate::error::Error;

#[tokio::test(start_paused = true)]
async fn a_reconciliation_write_after_the_deadline_is_refused_as_not_leading() {
    let (wire, sent) = crate::client::counting_wire();
    let client = kube::Client::new(wire, "default");
    let gate = Gate::closed();
    gate.open_until(Instant::now() + Duration::from_secs(10));
    let shared = Shared::new(
        client.clone(),
        Arc::default(),
        Duration::from_secs(30),
        gate,
    );
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let call = |verb| Call {
        verb,
        kind: "ConfigMap",
        name: "a",
    };
    let params = DeleteParams::default();
    let delete = || api.delete("a", &params);
    let sweep = |source| Error::Sweep {
        kind: "ConfigMap",
        name: "a".into(),
        source,
    };
    shared.call(call("delete"), delete(), sweep).await.unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 1);

    tokio::time::advance(Duration::from_secs(10)).await;
    let refused = shared.call(call("delete"), delete(), sweep).await;
    let error = refused.expect_err("past the renew deadline");
    assert!(matches!(error, Error::NotLeading { .. }), "{error:?}");
    assert_eq!(
        (error.category(), error.reason()),
        ("leadership", "NotLeading")
    );
    assert_eq!(
        error.to_string(),
        "delete ConfigMap a: not sent, this replica no longer leads"
    );
    assert!(shared.ensure_leading().is_err());
    assert_eq!(sent.load(Ordering::SeqCst), 1, "nothing went out");

    let read = |source| Error::Read {
        what: "ConfigMap a".into(),
        source,
    };
    shared.call(call("get"), api.get("a"), read).await.unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 2, "reads still go out");
}
