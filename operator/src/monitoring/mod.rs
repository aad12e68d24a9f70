//! Monitoring with the Prometheus Operator: the typed kinds the operator writes, the rules it
//! renders, and whether the cluster serves those kinds at all.

pub mod crd;
pub mod dashboards;
pub mod discovery;
pub mod docs;
pub mod rules;
