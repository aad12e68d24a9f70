//! PodDisruptionBudget `<name>`: voluntary evictions take at most one active pod at a time.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Validated;
use crate::api::Color;

pub fn pdb(v: &Validated, active: Color) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: v.meta(v.name()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(v.selector(active)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::COLOR_LABEL;
    use super::super::fixtures::validated;
    use super::*;

    #[test]
    fn protects_the_active_colour() {
        let spec = pdb(&validated(), Color::Green).spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(
            spec.selector.unwrap().match_labels.unwrap()[COLOR_LABEL],
            "green"
        );
    }
}
