use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::pipeline::build::{self, fixtures::validated};

fn pod(color: &str, revision: &str, ip: Option<&str>, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            labels: Some(BTreeMap::from([
                (COLOR_LABEL.to_string(), color.to_string()),
                (REVISION_LABEL.to_string(), revision.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        spec: None,
        status: Some(PodStatus {
            pod_ip: ip.map(str::to_string),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    }
}

fn deployment(
    generation: i64,
    observed: i64,
    replicas: i32,
    updated: i32,
    available: i32,
    total: i32,
) -> Deployment {
    let v = validated();
    let mut d = build::deployment(
        &v,
        Color::Green,
        replicas,
        &build::pod_template(&v, "config-a.yaml"),
        "r2",
    );
    d.metadata.generation = Some(generation);
    d.status = Some(DeploymentStatus {
        observed_generation: Some(observed),
        replicas: Some(total),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        ..DeploymentStatus::default()
    });
    d
}

#[test]
fn serving_pods_are_ready_have_an_ip_and_are_not_terminating() {
    let mut terminating = pod("green", "r2", Some("127.0.1.9"), true);
    terminating.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let pods = [
        pod("green", "r2", Some("127.0.1.2"), true),
        pod("green", "r2", Some("127.0.1.3"), false),
        pod("green", "r2", None, true),
        pod("green", "r1", Some("127.0.1.4"), true),
        pod("blue", "r2", Some("127.0.1.5"), true),
        terminating,
    ];
    let addrs = serving_addrs(&pods, Color::Green, "r2");
    assert_eq!(addrs, vec!["127.0.1.2:8080".parse::<SocketAddr>().unwrap()]);
}

#[test]
fn rolled_out_needs_the_new_generation_and_every_replica_updated_and_available() {
    let cases = [
        (deployment(2, 2, 3, 3, 3, 3), true),
        (deployment(2, 1, 3, 3, 3, 3), false), // controller has not seen the new spec
        (deployment(2, 2, 3, 2, 3, 3), false), // an old pod is still there
        (deployment(2, 2, 3, 3, 2, 3), false), // not all available
        (deployment(2, 2, 3, 3, 3, 4), false), // surge pod still terminating
    ];
    for (i, (d, expected)) in cases.into_iter().enumerate() {
        let o = color_observation(&d, &[], Color::Green);
        assert_eq!(o.rolled_out, expected, "case {i}");
        assert_eq!((o.revision.as_deref(), o.replicas), (Some("r2"), 3));
    }
}

#[test]
fn serving_pods_of_the_revision_roll_a_colour_out_before_the_deployment_status_does() {
    let ready = |ip: &str| pod("green", "r2", Some(ip), true);
    let mut terminating = ready("127.0.1.9");
    terminating.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let three = || vec![ready("127.0.1.2"), ready("127.0.1.3"), ready("127.0.1.4")];
    // The Deployment's status lags: the controller has not seen the new generation yet.
    let lagging = deployment(2, 1, 3, 0, 0, 0);
    let cases: [(&str, Vec<Pod>, bool); 7] = [
        ("three serving pods of r2", three(), true),
        ("only two", three()[..2].to_vec(), false),
        (
            "old-revision pods do not count",
            vec![
                ready("127.0.1.2"),
                ready("127.0.1.3"),
                pod("green", "r1", Some("127.0.1.4"), true),
            ],
            false,
        ),
        (
            "terminating pods do not count",
            vec![ready("127.0.1.2"), ready("127.0.1.3"), terminating],
            false,
        ),
        (
            "unready pods do not count",
            vec![
                ready("127.0.1.2"),
                ready("127.0.1.3"),
                pod("green", "r2", Some("127.0.1.4"), false),
            ],
            false,
        ),
        (
            "pods without an IP do not count",
            vec![
                ready("127.0.1.2"),
                ready("127.0.1.3"),
                pod("green", "r2", None, true),
            ],
            false,
        ),
        (
            "the other colour's pods do not count",
            vec![
                ready("127.0.1.2"),
                ready("127.0.1.3"),
                pod("blue", "r2", Some("127.0.1.4"), true),
            ],
            false,
        ),
    ];
    for (case, pods, expected) in cases {
        let o = color_observation(&lagging, &pods, Color::Green);
        assert_eq!(o.rolled_out, expected, "{case}");
    }
    // Either path is enough: the Deployment's status with no pods in the cache yet.
    let o = color_observation(&deployment(2, 2, 3, 3, 3, 3), &[], Color::Green);
    assert!(o.rolled_out && o.ready_endpoints == 0);
}

#[test]
fn config_keys_in_use_come_from_the_deployments() {
    let d = deployment(1, 1, 1, 1, 1, 1);
    let snapshot = Snapshot {
        green: Some(d),
        blue: Some(Deployment {
            spec: Some(DeploymentSpec::default()),
            ..Deployment::default()
        }),
        ..Snapshot::default()
    };
    assert_eq!(
        snapshot.config_keys_in_use(),
        vec!["config-a.yaml".to_string()]
    );
}
