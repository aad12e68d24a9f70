//! A canary's weight on a Gateway API HTTPRoute (`rollout.canary.trafficRouting.httpRoute`).
//!
//! The route is the user's: the operator reads it, finds the `backendRefs` that send to Services
//! `<name>-blue` and `<name>-green`, and sets only their `weight`, with a JSON Patch whose `test`
//! operations pin each changed entry to the name it had when read, so a route edited in between
//! fails the write (it is read again next time) instead of getting a weight on the wrong entry.
//! Both weights change in one request: all traffic back on the stable colour is one write.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch as JsonPatch, PatchOperation, TestOperation};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

use super::build::{self, Validated};
use super::rollout::{Decision, Observed};
use super::validate::UserError;
use crate::api::Color;
use crate::client::Call;
use crate::context::Shared;
use crate::error::Error;

/// The field that names the route, for messages.
pub const FIELD: &str = "spec.rollout.canary.trafficRouting.httpRoute.name";

/// `gateway.networking.k8s.io/v1` HTTPRoute.
pub fn resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "HTTPRoute",
    ))
}

/// The weight each colour's Service should get: the stable colour the rest of the canary's.
pub type Weights = [(Color, i32); 2];

pub fn weights(stable: Color, canary: i32) -> Weights {
    let canary = canary.clamp(0, 100);
    [(stable, 100 - canary), (stable.other(), canary)]
}

/// The weights `d` wants on the route: none before anything serves. The canary gets its recorded
/// weight only while it takes a share and has a ready pod (like the live Service's guard).
pub fn wanted(d: &Decision, observed: &Observed) -> Option<Weights> {
    let stable = d.active_service?;
    let ready = |c: Color| observed.get(c).is_some_and(|o| o.ready_endpoints > 0);
    let weight = match d.canary {
        Some(c) if c != stable && ready(c) => d
            .state
            .progress
            .as_ref()
            .and_then(|p| p.canary.as_ref())
            .map_or(0, |c| c.weight),
        _ => 0,
    };
    Some(weights(stable, weight))
}

/// A write of the weights, and whether it goes before the Deployments change: when the new
/// colour's weight falls, traffic leaves it before its pods can.
#[derive(Clone, Debug)]
pub struct RouteWrite {
    pub name: String,
    pub patch: JsonPatch,
    pub first: bool,
}

/// The write that brings `route` to `want`, if any.
pub fn plan(
    route: &Value,
    route_name: &str,
    pipeline: &str,
    want: Weights,
) -> Result<Option<RouteWrite>, UserError> {
    let Some(patch) = weight_patch(route, route_name, pipeline, want)? else {
        return Ok(None);
    };
    let [_, (canary, weight)] = want;
    let first = weight_of(route, pipeline, canary).is_some_and(|now| now > weight);
    Ok(Some(RouteWrite {
        name: route_name.to_string(),
        patch,
        first,
    }))
}

/// Whether `backend_ref` sends to Service `service` in the route's namespace.
fn names_service(backend_ref: &Value, service: &str) -> bool {
    let text = |k: &str| backend_ref.get(k).and_then(Value::as_str);
    text("name") == Some(service)
        && text("group").is_none_or(str::is_empty)
        && text("kind").is_none_or(|k| k == "Service")
        && backend_ref.get("namespace").is_none()
}

/// Every `(rule, backendRef)` index of the route that sends to `service`.
fn refs_to<'a>(
    route: &'a Value,
    service: &'a str,
) -> impl Iterator<Item = (usize, usize, &'a Value)> + 'a {
    let rules = route.pointer("/spec/rules").and_then(Value::as_array);
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(move |(i, rule)| {
            let refs = rule.get("backendRefs").and_then(Value::as_array);
            refs.into_iter()
                .flatten()
                .enumerate()
                .filter(move |(_, r)| names_service(r, service))
                .map(move |(j, r)| (i, j, r))
        })
}

/// The weight the route gives `color`'s Service (a backendRef without one weighs 1); none when
/// no rule sends to it.
pub fn weight_of(route: &Value, pipeline: &str, color: Color) -> Option<i32> {
    let service = build::color_service_name(pipeline, color);
    refs_to(route, &service)
        .map(|(_, _, r)| {
            let w = r.get("weight").and_then(Value::as_i64).unwrap_or(1);
            i32::try_from(w).unwrap_or(i32::MAX)
        })
        .max()
}

/// The JSON Patch that gives each colour its weight; none when the route already does. A route
/// with no backendRef to one of the two Services is a user error naming the field.
pub fn weight_patch(
    route: &Value,
    route_name: &str,
    pipeline: &str,
    want: Weights,
) -> Result<Option<JsonPatch>, UserError> {
    let mut ops = vec![];
    for (color, weight) in want {
        let service = build::color_service_name(pipeline, color);
        let mut found = false;
        for (i, j, r) in refs_to(route, &service) {
            found = true;
            if r.get("weight").and_then(Value::as_i64) == Some(i64::from(weight)) {
                continue;
            }
            let at = |leaf: &str| {
                PointerBuf::from_tokens([
                    "spec",
                    "rules",
                    &i.to_string(),
                    "backendRefs",
                    &j.to_string(),
                    leaf,
                ])
            };
            ops.push(PatchOperation::Test(TestOperation {
                path: at("name"),
                value: json!(service),
            }));
            ops.push(PatchOperation::Add(AddOperation {
                path: at("weight"),
                value: json!(weight),
            }));
        }
        if !found {
            return Err(UserError::HttpRoute {
                message: format!(
                    "HTTPRoute {route_name:?} has no backendRef to Service {service:?}; its rules \
                     must send to both {pipeline}-blue and {pipeline}-green"
                ),
            });
        }
    }
    Ok((!ops.is_empty()).then_some(JsonPatch(ops)))
}

/// Reads the route as JSON; none when it does not exist.
pub async fn read(api: &Api<DynamicObject>, name: &str) -> Result<Option<Value>, kube::Error> {
    let route = api.get_opt(name).await?;
    Ok(route.and_then(|r| serde_json::to_value(r).ok()))
}

/// The write the route needs under `d`: none without a route, before anything serves, or when it
/// already carries the weights; a user error when it is missing or sends to neither Service.
pub async fn for_decision(
    shared: &Shared,
    v: &Validated,
    d: &Decision,
    observed: &Observed,
) -> Result<Result<Option<RouteWrite>, UserError>, Error> {
    let (Some(name), Some(want)) = (v.http_route(), wanted(d, observed)) else {
        return Ok(Ok(None));
    };
    let api = Api::namespaced_with(shared.client.clone(), &v.namespace(), &resource());
    let call = Call {
        verb: "get",
        kind: "HTTPRoute",
        name,
    };
    let failed = |source| Error::Read {
        what: format!("HTTPRoute {name}"),
        source,
    };
    let route = shared.call(call, read(&api, name), failed).await?;
    let Some(route) = route else {
        let message = format!("HTTPRoute {name:?} not found in this namespace");
        return Ok(Err(UserError::HttpRoute { message }));
    };
    Ok(plan(&route, name, &v.name(), want))
}

/// Sends `patch` to the route.
pub async fn write(
    api: &Api<DynamicObject>,
    name: &str,
    patch: JsonPatch,
) -> Result<(), kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
        .await?;
    Ok(())
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
