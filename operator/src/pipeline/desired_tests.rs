use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::*;
use crate::pipeline::build::fixtures::validated;
use crate::pipeline::rollout::{CutoverStep, RolloutState};

fn decision(
    active: Option<Color>,
    preview: Option<Color>,
    blue: DeploymentPlan,
    green: DeploymentPlan,
) -> Decision {
    Decision {
        step: CutoverStep::Steady,
        state: RolloutState::default(),
        blue,
        green,
        active_service: active,
        canary: None,
        due: Default::default(),
        preview_service: preview,
        events: vec![],
        requeue_after: None,
        consumed: Default::default(),
    }
}

fn built(d: &Decision, observed: &Snapshot) -> Desired {
    let v = validated();
    Desired::build(&v, &Rendered::new(&v), d, observed, vec![], false)
}

#[test]
fn children_follow_the_decision() {
    let apply = DeploymentPlan::Apply { replicas: 2 };
    let cases = [
        // First deploy: no active Service, HPA or PDB yet; they are orphans if they exist.
        (
            decision(None, Some(Color::Blue), apply, DeploymentPlan::Keep),
            vec!["docs-preview"],
            false,
        ),
        (
            decision(
                Some(Color::Blue),
                Some(Color::Green),
                DeploymentPlan::Keep,
                apply,
            ),
            vec!["docs", "docs-preview"],
            true,
        ),
    ];
    for (d, services, pdb) in cases {
        let desired = built(&d, &Snapshot::default());
        let names = desired.names("docs");
        assert_eq!(names.services, services);
        assert_eq!(names.pdbs.len(), usize::from(pdb));
        // Without autoscaling there is no HPA; an old one is an orphan.
        assert!(names.hpas.is_empty());
        // The idle colour is scaled to zero, never deleted.
        assert_eq!(names.deployments, ["docs-blue", "docs-green"]);
        assert_eq!(names.config_maps, ["docs-config"]);
    }
}

#[test]
fn workloads_carry_the_plan() {
    let d = decision(
        Some(Color::Blue),
        Some(Color::Green),
        DeploymentPlan::Scale { replicas: 0 },
        DeploymentPlan::Apply { replicas: 3 },
    );
    let desired = built(&d, &Snapshot::default());
    assert_eq!(desired.blue, Workload::Scale(0));
    let Workload::Apply(green) = &desired.green else {
        panic!("green is applied")
    };
    assert_eq!(green.spec.as_ref().unwrap().replicas, Some(3));
    assert_eq!(green.metadata.name.as_deref(), Some("docs-green"));
}

#[test]
fn config_versions_still_mounted_are_kept() {
    let v = validated();
    let rendered = Rendered::new(&v);
    let d = decision(
        Some(Color::Blue),
        Some(Color::Blue),
        DeploymentPlan::Apply { replicas: 2 },
        DeploymentPlan::Keep,
    );
    // Green still runs an older config version; a third, unmounted one is dropped.
    let mut old = rendered.template.clone();
    old.spec.as_mut().unwrap().volumes.as_mut().unwrap()[0]
        .config_map
        .as_mut()
        .unwrap()
        .items
        .as_mut()
        .unwrap()[0]
        .key = "config-old.yaml".into();
    let observed = Snapshot {
        green: Some(build::deployment(&v, Color::Green, 0, &old, "r0")),
        config_map: Some(ConfigMap {
            data: Some(BTreeMap::from([
                ("config-old.yaml".into(), "old".into()),
                ("config-gone.yaml".into(), "gone".into()),
            ])),
            ..ConfigMap::default()
        }),
        ..Snapshot::default()
    };
    let desired = Desired::build(&v, &rendered, &d, &observed, vec![], false);
    let keys: Vec<_> = desired.config_map.data.unwrap().into_keys().collect();
    let mut expected = vec!["config-old.yaml".to_string(), rendered.config_key.clone()];
    expected.sort();
    assert_eq!(keys, expected);
}

/// A ready pod of `color` on `revision`.
fn ready_pod(color: Color, revision: &str) -> k8s_openapi::api::core::v1::Pod {
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
    let mut pod = Pod::default();
    pod.metadata.labels = Some(BTreeMap::from([
        (build::COLOR_LABEL.to_string(), color.to_string()),
        (build::REVISION_LABEL.to_string(), revision.to_string()),
    ]));
    pod.status = Some(PodStatus {
        pod_ip: Some("10.0.0.7".into()),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..PodCondition::default()
        }]),
        ..PodStatus::default()
    });
    pod
}

#[test]
fn the_live_service_never_moves_to_a_colour_without_a_ready_pod() {
    let v = validated();
    let rendered = Rendered::new(&v);
    let green = build::deployment(&v, Color::Green, 2, &rendered.template, "r2");
    let on_blue = Snapshot {
        active_service: Some(build::active_service(&v, Live::Only(Color::Blue))),
        green: Some(green),
        ..Snapshot::default()
    };
    let with_ready_green = Snapshot {
        pods: vec![ready_pod(Color::Green, "r2")],
        ..on_blue.clone()
    };
    let cases = [
        // Nothing serves yet: the first promotion already checked its pods.
        (Some(Color::Green), Snapshot::default(), Some(Color::Green)),
        // Status ahead of the Service, the new colour without a ready pod: traffic stays.
        (Some(Color::Green), on_blue.clone(), Some(Color::Blue)),
        (Some(Color::Green), with_ready_green, Some(Color::Green)),
        // Already there: nothing moves either way.
        (Some(Color::Blue), on_blue.clone(), Some(Color::Blue)),
        (None, on_blue, None),
    ];
    for (decided, observed, live) in cases {
        let (decided, live) = (decided.map(Live::Only), live.map(Live::Only));
        assert_eq!(live_color(decided, &observed), live, "decided {decided:?}");
    }
}
