//! Service `<name>` (the active colour: the cutover is a patch of its selector) and
//! `<name>-preview` (the colour being rolled out, or the active one between rollouts).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Validated, preview_service_name};
use crate::api::Color;

/// Port both Services expose.
pub const SERVICE_PORT: i32 = 80;

fn service(v: &Validated, name: String, color: Color) -> Service {
    Service {
        metadata: v.meta(name),
        spec: Some(ServiceSpec {
            selector: Some(v.selector(color)),
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

pub fn active_service(v: &Validated, color: Color) -> Service {
    service(v, v.name(), color)
}

pub fn preview_service(v: &Validated, color: Color) -> Service {
    service(v, preview_service_name(&v.name()), color)
}

#[cfg(test)]
mod tests {
    use super::super::COLOR_LABEL;
    use super::super::fixtures::validated;
    use super::*;

    #[test]
    fn services_select_one_colour() {
        let v = validated();
        let active = active_service(&v, Color::Blue);
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
}
