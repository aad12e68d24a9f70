//! Service `<name>` (the active colour: the cutover is a patch of its selector) and
//! `<name>-preview` (the colour being rolled out, or the active one between rollouts).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use std::collections::BTreeMap;

use super::{PIPELINE_LABEL, Validated, preview_service_name};
use crate::api::Color;
use crate::pipeline::rollout::Live;

/// Port both Services expose.
pub const SERVICE_PORT: i32 = 80;

fn service(v: &Validated, name: String, selector: BTreeMap<String, String>) -> Service {
    Service {
        metadata: v.meta(name),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String("http".into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// Service `<name>`: one colour, or both while a canary splits the traffic by pods.
pub fn active_service(v: &Validated, live: Live) -> Service {
    let selector = match live {
        Live::Only(color) => v.selector(color),
        Live::Both => BTreeMap::from([(PIPELINE_LABEL.into(), v.name())]),
    };
    service(v, v.name(), selector)
}

pub fn preview_service(v: &Validated, color: Color) -> Service {
    service(v, preview_service_name(&v.name()), v.selector(color))
}

#[cfg(test)]
mod tests {
    use super::super::COLOR_LABEL;
    use super::super::fixtures::validated;
    use super::*;

    #[test]
    fn services_select_one_colour() {
        let v = validated();
        let active = active_service(&v, Live::Only(Color::Blue));
        let preview = preview_service(&v, Color::Green);
        assert_eq!(active.metadata.name.as_deref(), Some("docs"));
        assert_eq!(preview.metadata.name.as_deref(), Some("docs-preview"));
        let color =
            |s: &Service| s.spec.as_ref().unwrap().selector.as_ref().unwrap()[COLOR_LABEL].clone();
        assert_eq!(
            (color(&active).as_str(), color(&preview).as_str()),
            ("blue", "green")
        );
    }

    #[test]
    fn a_split_selects_every_pod_of_the_pipeline() {
        let v = validated();
        let both = active_service(&v, Live::Both);
        let selector = both.spec.unwrap().selector.unwrap();
        assert_eq!(
            selector,
            BTreeMap::from([(PIPELINE_LABEL.into(), "docs".into())])
        );
    }
}
