//! Harness for the end-to-end suite: a real control plane on loopback (see `e2e/README.md`).
//!
//! What flows through it: the cluster's coordinates ([`Cluster`], read from the state dir that
//! `e2e/hack/cluster.sh up` writes, overridable by environment), a kube [`kube::Client`] per test,
//! one [`TestNamespace`] per test, deadline-bounded waits ([`wait_for`], [`wait_for_object`]),
//! child processes killed on drop ([`ChildProcess`], [`start_operator`]), servers standing in for
//! pods on their pod IPs ([`PodServers`]: a fake, a command, or the pod's own spec run by
//! [`SpecRunner`]), write counts from the API server's audit log ([`AuditLog`]) and a loopback TCP
//! proxy that can freeze a client's connection to the API server ([`FreezingProxy`]).
#![forbid(unsafe_code)]

mod audit;
pub mod bench;
mod cluster;
pub mod monitoring;
mod namespace;
mod pod_runner;
mod pod_servers;
mod process;
mod proxy;
mod wait;

pub use audit::{AuditEvent, AuditLog};
pub use cluster::{Cluster, OPERATOR_B_USER, OPERATOR_USER, client, install_crypto_provider};
pub use namespace::TestNamespace;
pub use pod_runner::{SpecRunner, Termination, spec_runtime};
pub use pod_servers::{PodBackend, PodServers, PodServersOptions, ServedPod};
pub use process::{
    ChildProcess, operator_binary, runtime_binary, start_operator, start_operator_as,
    workspace_root,
};
pub use proxy::FreezingProxy;
pub use wait::{DEFAULT_TIMEOUT, crd_established, deployment_available, wait_for, wait_for_object};
