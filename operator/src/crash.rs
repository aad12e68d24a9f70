//! Kill points, for tests only: `RAGOPS_TEST_CRASH_AT=<point>[:<nth>]` makes the operator exit
//! abruptly (code [`EXIT_CODE`], no cleanup) the `nth` time (default the first) it passes
//! `<point>`. Compiled in always and inert unless the variable is set, so the e2e suite proves
//! the binary that ships: a crash between any two writes of a promotion, abort or rollback
//! converges once the operator is started again.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use tracing::error;

/// The variable naming the kill point.
pub const ENV: &str = "RAGOPS_TEST_CRASH_AT";
/// The exit code of a crash at a kill point (as distinct from any real failure).
pub const EXIT_CODE: i32 = 86;

/// Points a pipeline reconciliation passes, between its writes.
pub mod at {
    /// A status that moved the active colour (a promotion or rollback) was written; no child
    /// changed yet, the live Service still selects the old colour.
    pub const CUTOVER_RECORDED: &str = "cutover-recorded";
    /// A status that recorded a new failure (an abort, a failed rollout) was written; the new
    /// colour is not scaled to zero yet.
    pub const FAILURE_RECORDED: &str = "failure-recorded";
    /// The Deployments were applied or scaled; the Services not yet.
    pub const DEPLOYMENTS_APPLIED: &str = "deployments-applied";
    /// The live Service selects the decided colour; HPA, PDB and the rest not yet.
    pub const TRAFFIC_MOVED: &str = "traffic-moved";
    /// Every child applied; the annotations of the handled requests not removed yet.
    pub const CHILDREN_APPLIED: &str = "children-applied";
}

static PLAN: OnceLock<Option<(String, u32)>> = OnceLock::new();
static PASSED: AtomicU32 = AtomicU32::new(0);

/// `<point>[:<nth>]`; a malformed count is the first pass.
fn parse(value: &str) -> (String, u32) {
    match value.split_once(':') {
        Some((point, nth)) => (point.to_string(), nth.parse().unwrap_or(1).max(1)),
        None => (value.to_string(), 1),
    }
}

/// Whether passing `point` now is the planned crash (counting passes of the planned point).
fn due(plan: Option<&(String, u32)>, point: &str, passed: &AtomicU32) -> bool {
    match plan {
        Some((planned, nth)) if planned == point => {
            passed.fetch_add(1, Ordering::SeqCst) + 1 == *nth
        }
        _ => false,
    }
}

/// Exits here if this is the planned kill point (see the module docs).
pub fn point(point: &str) {
    let plan = PLAN.get_or_init(|| std::env::var(ENV).ok().map(|v| parse(&v)));
    if due(plan.as_ref(), point, &PASSED) {
        error!(point, "{ENV}: crashing at a kill point");
        std::process::exit(EXIT_CODE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_names_a_point_and_which_pass() {
        assert_eq!(parse("cutover-recorded"), ("cutover-recorded".into(), 1));
        assert_eq!(parse("traffic-moved:3"), ("traffic-moved".into(), 3));
        assert_eq!(parse("traffic-moved:x"), ("traffic-moved".into(), 1));
    }

    #[test]
    fn only_the_nth_pass_of_the_planned_point_is_due() {
        let passed = AtomicU32::new(0);
        let plan = ("traffic-moved".to_string(), 2);
        assert!(!due(Some(&plan), "cutover-recorded", &passed));
        assert!(!due(Some(&plan), "traffic-moved", &passed));
        assert!(due(Some(&plan), "traffic-moved", &passed));
        assert!(!due(Some(&plan), "traffic-moved", &passed));
        assert!(!due(None, "traffic-moved", &passed));
    }
}
