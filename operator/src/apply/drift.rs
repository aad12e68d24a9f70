//! Drift: does the API server's copy of a child differ from what the operator wants?
//!
//! Two ways it can: a field the operator sets is missing or holds another value (someone edited
//! it), or a field the operator's field manager still owns is no longer set at all (an upgrade
//! stopped setting it). The second is read from `managedFields`: server-side apply removes a field
//! its manager owned once an apply stops sending it, but only if an apply is sent. Both checks are
//! pure functions of JSON values.

use serde_json::Value;

/// The first field `desired` sets that `observed` lacks or holds differently, as a path such as
/// `.spec.template.spec.containers[0].image` (`""` for the root); none when nothing differs.
/// Fields only the API server sets (defaults, status, server metadata) are ignored, and so is the
/// API server's rewriting of a quantity into its canonical form (`1024Mi` is stored as `1Gi`).
pub fn first_difference(desired: &Value, observed: &Value) -> Option<String> {
    difference(desired, observed, false)
}

/// [`first_difference`]; `quantities` says the values compared are Kubernetes quantities.
fn difference(desired: &Value, observed: &Value, quantities: bool) -> Option<String> {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => d.iter().find_map(|(k, dv)| match o.get(k) {
            None => Some(format!(".{k}")),
            Some(ov) => difference(dv, ov, quantities || holds_quantities(k))
                .map(|rest| format!(".{k}{rest}")),
        }),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => {
            let mut pairs = d.iter().zip(o).enumerate();
            pairs.find_map(|(i, (dv, ov))| {
                difference(dv, ov, false).map(|rest| format!("[{i}]{rest}"))
            })
        }
        _ if desired == observed => None,
        (Value::String(d), Value::String(o)) if quantities && same_quantity(d, o) => None,
        _ => Some(String::new()),
    }
}

/// Fields whose values (or the values of whose map) are quantities: resource requests and
/// limits, and an emptyDir's size limit.
fn holds_quantities(key: &str) -> bool {
    matches!(key, "requests" | "limits" | "sizeLimit")
}

/// Whether two quantities are the same amount (`0.5` and `500m`, `1024Mi` and `1Gi`).
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity(a), quantity(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()) * 4.0,
        _ => false,
    }
}

/// The amount a Kubernetes quantity stands for: a decimal number, then a binary (`Ki`…`Ei`) or
/// decimal (`n`, `u`, `m`, `k`, `M`…`E`) suffix or a decimal exponent (`e3`).
fn quantity(s: &str) -> Option<f64> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let number: f64 = number.parse().ok()?;
    let scale = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => 10f64.powi(exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(number * scale)
}

/// The first field in `owned` (a `fieldsV1` set: the fields one manager owns) that `desired` no
/// longer sets, as a path; none when the manager owns nothing beyond what `desired` sets.
///
/// `fieldsV1` keys: `f:<name>` a field, `k:<json>` the list item with those key fields,
/// `v:<json>` a set member, `i:<n>` a list index, `.` the node itself.
pub fn first_unset(owned: &Value, desired: &Value) -> Option<String> {
    let Value::Object(fields) = owned else {
        return None;
    };
    fields.iter().find_map(|(key, sub)| {
        let (path, child) = if let Some(name) = key.strip_prefix("f:") {
            (format!(".{name}"), desired.get(name))
        } else if let Some(keys) = key.strip_prefix("k:") {
            (format!("[{keys}]"), list_item(desired, keys))
        } else if let Some(value) = key.strip_prefix("v:") {
            let member = serde_json::from_str::<Value>(value).ok();
            let present =
                member.is_some_and(|m| desired.as_array().is_some_and(|a| a.contains(&m)));
            return (!present).then(|| format!("[{value}]"));
        } else if let Some(index) = key.strip_prefix("i:") {
            let item = index.parse::<usize>().ok().and_then(|i| desired.get(i));
            (format!("[{index}]"), item)
        } else {
            return None;
        };
        match child {
            None => Some(path),
            Some(child) => first_unset(sub, child).map(|rest| format!("{path}{rest}")),
        }
    })
}

/// The item of the list `desired` whose fields match every key in `keys` (a JSON object).
fn list_item<'a>(desired: &'a Value, keys: &str) -> Option<&'a Value> {
    let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(keys) else {
        return None;
    };
    desired
        .as_array()?
        .iter()
        .find(|item| keys.iter().all(|(k, v)| item.get(k) == Some(v)))
}

/// The first key that `observed` holds in a map the manager owns whole (an atomic map, such as
/// a Service's `selector`: `fieldsV1` records it as one leaf) and `desired` does not: an apply
/// replaces such a map, so a key it no longer sends is not "unset" (no `fieldsV1` entry names
/// it) but part of a different value. [`first_difference`] covers the keys `desired` sets.
pub fn first_atomic_extra(owned: &Value, desired: &Value, observed: &Value) -> Option<String> {
    let Value::Object(fields) = owned else {
        return None;
    };
    fields.iter().find_map(|(key, sub)| {
        let name = key.strip_prefix("f:")?;
        let (d, o) = (desired.get(name)?, observed.get(name)?);
        match (sub.as_object().is_some_and(|m| m.is_empty()), d, o) {
            (true, Value::Object(d), Value::Object(o)) => o
                .keys()
                .find(|k| !d.contains_key(*k))
                .map(|k| format!(".{name}.{k}")),
            (true, _, _) => None,
            (false, _, _) => first_atomic_extra(sub, d, o).map(|rest| format!(".{name}{rest}")),
        }
    })
}

/// Why `observed` must be re-applied to become `desired`, as the path of the first differing
/// field; none when it already is. `owned` is the `fieldsV1` of the operator's apply entry.
pub fn drift(desired: &Value, observed: &Value, owned: Option<&Value>) -> Option<String> {
    first_difference(desired, observed)
        .or_else(|| owned.and_then(|o| first_atomic_extra(o, desired, observed)))
        .or_else(|| {
            owned
                .and_then(|o| first_unset(o, desired))
                .map(|p| format!("{p} (no longer set)"))
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_only_when_something_we_set_differs() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}, "metadata": {"labels": {"a": "1"}}});
        let cases = [
            // Server-side defaults and extra labels do not count.
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "clusterIP": "10.0.0.1"},
                    "metadata": {"labels": {"a": "1", "b": "2"}, "uid": "x"}}),
                None,
            ),
            (
                json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.replicas"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": []}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.ports"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 81}]}, "metadata": {"labels": {"a": "1"}}}),
                Some(".spec.ports[0].port"),
            ),
            (
                json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}, "metadata": {}}),
                Some(".metadata.labels"),
            ),
        ];
        for (observed, expected) in cases {
            assert_eq!(
                first_difference(&desired, &observed),
                expected.map(String::from),
                "{observed}"
            );
        }
    }

    #[test]
    fn a_field_owned_whole_differs_by_an_entry_it_no_longer_has() {
        // A Service selector is atomic: its owner holds it as one leaf.
        let owned =
            json!({"f:spec": {"f:selector": {}, "f:ports": {"k:{\"port\":80}": {".": {}}}}});
        let desired = json!({"spec": {"selector": {"app": "docs"}, "ports": [{"port": 80}]}});
        let wider = json!({"spec": {"selector": {"app": "docs", "color": "blue"}, "ports": [{"port": 80}]}});
        assert_eq!(
            first_difference(&desired, &wider),
            None,
            "a subset, key by key"
        );
        assert_eq!(
            drift(&desired, &wider, Some(&owned)).as_deref(),
            Some(".spec.selector.color")
        );
        assert_eq!(drift(&desired, &desired, Some(&owned)), None);
        // A granular map owned key by key is left to first_unset.
        let granular = json!({"f:spec": {"f:selector": {"f:app": {}, "f:color": {}}}});
        assert_eq!(
            drift(&desired, &wider, Some(&granular)).as_deref(),
            Some(".spec.selector.color (no longer set)")
        );
    }

    #[test]
    fn quantities_the_api_server_rewrote_are_not_drift() {
        let desired = json!({"resources": {"requests": {"cpu": "0.5", "memory": "1024Mi"}, "limits": {"memory": "1e3"}},
            "emptyDir": {"sizeLimit": "2048Ki"}, "env": [{"name": "A", "value": "0.5"}]});
        let canonical = json!({"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1k"}},
            "emptyDir": {"sizeLimit": "2Mi"}, "env": [{"name": "A", "value": "0.5"}]});
        assert_eq!(first_difference(&desired, &canonical), None);
        let more = json!({"resources": {"requests": {"cpu": "600m", "memory": "1Gi"}, "limits": {"memory": "1k"}},
            "emptyDir": {"sizeLimit": "2Mi"}, "env": [{"name": "A", "value": "0.5"}]});
        assert_eq!(
            first_difference(&desired, &more).as_deref(),
            Some(".resources.requests.cpu")
        );
        // Only quantity fields compare as amounts: an env value "500m" is not "0.5".
        let env = json!({"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1k"}},
            "emptyDir": {"sizeLimit": "2Mi"}, "env": [{"name": "A", "value": "500m"}]});
        assert_eq!(
            first_difference(&desired, &env).as_deref(),
            Some(".env[0].value")
        );
    }

    #[test]
    fn quantities_parse_with_every_suffix() {
        let cases = [
            ("1", 1.0),
            ("250m", 0.25),
            ("1.5Gi", 1.5 * 1024f64.powi(3)),
            ("2k", 2000.0),
            ("3e2", 300.0),
            ("100n", 1e-7),
        ];
        for (text, amount) in cases {
            let parsed = quantity(text).unwrap();
            assert!(
                (parsed - amount).abs() <= amount * 1e-12,
                "{text}: {parsed}"
            );
        }
        assert_eq!(quantity("lots"), None);
        assert_eq!(quantity("1Xi"), None);
    }

    /// What a Deployment's apply entry looks like: a field, a keyed list item, a set, an index.
    fn owned() -> Value {
        json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:old-label": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {
                    "f:containers": {"k:{\"name\":\"runtime\"}": {
                        ".": {}, "f:image": {}, "f:args": {}, "f:env": {"k:{\"name\":\"A\"}": {".": {}, "f:value": {}}}
                    }},
                    "f:finalizers": {"v:\"x\"": {}},
                    "f:volumes": {"i:0": {"f:name": {}}}
                }}
            }
        })
    }

    fn deployment(edit: impl FnOnce(&mut Value)) -> Value {
        let mut d = json!({
            "metadata": {"labels": {"app": "a", "old-label": "1"}},
            "spec": {"replicas": 2, "template": {"spec": {
                "containers": [{"name": "runtime", "image": "i", "args": ["serve"], "env": [{"name": "A", "value": "1"}]}],
                "finalizers": ["x"],
                "volumes": [{"name": "v"}]
            }}}
        });
        edit(&mut d);
        d
    }

    #[test]
    fn fields_we_own_but_no_longer_set_are_drift() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit, Option<&str>); 7] = [
            ("unchanged", |_| {}, None),
            (
                "label dropped",
                |d| {
                    drop(
                        d["metadata"]["labels"]
                            .as_object_mut()
                            .unwrap()
                            .remove("old-label"),
                    )
                },
                Some(".metadata.labels.old-label"),
            ),
            (
                "env var dropped",
                |d| d["spec"]["template"]["spec"]["containers"][0]["env"] = json!([]),
                Some(r#".spec.template.spec.containers[{"name":"runtime"}].env[{"name":"A"}]"#),
            ),
            (
                "container renamed",
                |d| d["spec"]["template"]["spec"]["containers"][0]["name"] = json!("other"),
                Some(r#".spec.template.spec.containers[{"name":"runtime"}]"#),
            ),
            (
                "set member dropped",
                |d| d["spec"]["template"]["spec"]["finalizers"] = json!([]),
                Some(r#".spec.template.spec.finalizers["x"]"#),
            ),
            (
                "index gone",
                |d| d["spec"]["template"]["spec"]["volumes"] = json!([]),
                Some(".spec.template.spec.volumes[0]"),
            ),
            (
                "replicas no longer set",
                |d| drop(d["spec"].as_object_mut().unwrap().remove("replicas")),
                Some(".spec.replicas"),
            ),
        ];
        for (what, edit, expected) in cases {
            let desired = deployment(edit);
            assert_eq!(
                first_unset(&owned(), &desired).as_deref(),
                expected,
                "{what}"
            );
        }
    }

    #[test]
    fn drift_reports_a_difference_before_an_unset_field() {
        let desired = deployment(|d| {
            d["spec"]["replicas"] = json!(3);
            drop(
                d["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("old-label"),
            );
        });
        let observed = deployment(|_| {});
        assert_eq!(
            drift(&desired, &observed, Some(&owned())).as_deref(),
            Some(".spec.replicas")
        );
        let desired = deployment(|d| {
            drop(
                d["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("old-label"),
            )
        });
        assert_eq!(
            drift(&desired, &observed, Some(&owned())).as_deref(),
            Some(".metadata.labels.old-label (no longer set)")
        );
        assert_eq!(drift(&desired, &observed, None), None);
    }
}
