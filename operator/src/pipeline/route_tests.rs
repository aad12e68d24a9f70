//! Weights on an HTTPRoute: which backendRefs are ours, the patch that sets only their weights,
//! and when it goes before the Deployments change.

use serde_json::{Value, json};

use super::*;
use crate::api::Color::{Blue, Green};

fn route(rules: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": { "name": "docs", "namespace": "team-a" },
        "spec": { "parentRefs": [{ "name": "gw" }], "rules": rules }
    })
}

fn two_colours() -> Value {
    route(json!([{
        "matches": [{ "path": { "type": "PathPrefix", "value": "/" } }],
        "backendRefs": [
            { "name": "docs-blue", "port": 80, "weight": 100 },
            { "name": "docs-green", "port": 80 },
            { "name": "other", "port": 80, "weight": 5 }
        ]
    }]))
}

/// The route after `patch`.
fn patched(mut route: Value, patch: &JsonPatch) -> Value {
    json_patch::patch(&mut route, patch).unwrap();
    route
}

#[test]
fn only_our_weights_change_and_an_entry_moved_since_the_read_fails_the_patch() {
    let r = two_colours();
    let patch = weight_patch(&r, "docs", "docs", weights(Blue, 25))
        .unwrap()
        .unwrap();
    let after = patched(r.clone(), &patch);
    let refs = &after["spec"]["rules"][0]["backendRefs"];
    assert_eq!(
        (
            refs[0]["weight"].clone(),
            refs[1]["weight"].clone(),
            refs[2].clone()
        ),
        (
            json!(75),
            json!(25),
            r["spec"]["rules"][0]["backendRefs"][2].clone()
        )
    );
    assert_eq!(after["spec"]["parentRefs"], r["spec"]["parentRefs"]);
    assert_eq!(
        (
            weight_of(&after, "docs", Blue),
            weight_of(&after, "docs", Green)
        ),
        (Some(75), Some(25))
    );

    // Someone reordered the refs after the read: the test operations refuse the patch.
    let mut moved = r.clone();
    moved["spec"]["rules"][0]["backendRefs"]
        .as_array_mut()
        .unwrap()
        .swap(0, 2);
    assert!(json_patch::patch(&mut moved, &patch).is_err());
}

#[test]
fn a_route_already_at_the_weights_needs_no_write() {
    let r = patched(
        two_colours(),
        &weight_patch(&two_colours(), "docs", "docs", weights(Green, 0))
            .unwrap()
            .unwrap(),
    );
    assert!(
        weight_patch(&r, "docs", "docs", weights(Green, 0))
            .unwrap()
            .is_none()
    );
    assert_eq!(weight_of(&r, "docs", Green), Some(100));
}

#[test]
fn a_route_that_does_not_send_to_both_colours_is_a_user_error_naming_the_field() {
    let cases = [
        route(json!([{ "backendRefs": [{ "name": "docs-blue" }] }])),
        // Not our Service: another kind, another namespace, another group.
        route(json!([{ "backendRefs": [
            { "name": "docs-blue" },
            { "name": "docs-green", "kind": "ServiceImport", "group": "multicluster.x-k8s.io" }
        ] }])),
        route(
            json!([{ "backendRefs": [{ "name": "docs-blue" }, { "name": "docs-green", "namespace": "b" }] }]),
        ),
        route(json!([])),
    ];
    for r in cases {
        let err = weight_patch(&r, "docs", "docs", weights(Blue, 10)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(
                "spec.rollout.canary.trafficRouting.httpRoute.name: HTTPRoute \"docs\" has no \
                 backendRef to Service \"docs-"
            ),
            "{message}"
        );
        assert_eq!(err.reason(), "HTTPRouteInvalid");
    }
}

#[test]
fn every_rule_that_sends_to_a_colour_gets_its_weight() {
    let r = route(json!([
        { "backendRefs": [{ "name": "docs-blue" }, { "name": "docs-green" }] },
        { "backendRefs": [{ "name": "docs-green", "weight": 3 }, { "name": "docs-blue", "weight": 7 }] }
    ]));
    let after = patched(
        r.clone(),
        &weight_patch(&r, "docs", "docs", weights(Blue, 50))
            .unwrap()
            .unwrap(),
    );
    for (i, j, w) in [(0, 0, 50), (0, 1, 50), (1, 0, 50), (1, 1, 50)] {
        assert_eq!(
            after["spec"]["rules"][i]["backendRefs"][j]["weight"],
            json!(w)
        );
    }
}

#[test]
fn weights_that_take_traffic_from_the_canary_go_before_its_pods_change() {
    let at_50 = patched(
        two_colours(),
        &weight_patch(&two_colours(), "docs", "docs", weights(Blue, 50))
            .unwrap()
            .unwrap(),
    );
    let cases = [
        // An abort: the canary's weight falls to 0.
        (weights(Blue, 0), true),
        // A step up.
        (weights(Blue, 75), false),
        // The promotion: green stable, blue (the old colour) at 0.
        (weights(Green, 0), true),
    ];
    for (want, first) in cases {
        let write = plan(&at_50, "docs", "docs", want).unwrap().unwrap();
        assert_eq!(write.first, first, "{want:?}");
    }
}
