//! What the simulator checks after every write: the live Service moves only as the guarded
//! decision says, every colour it selects has a ready pod, and a canary's share of the ready pods
//! never passes what its recorded weight plans.

use super::*;

impl Run {
    /// The live Service follows the guarded decision; whether it moved.
    pub(super) fn move_traffic(&mut self, d: &Decision, step: usize) -> bool {
        let live = live_color(d.live(), self.cluster.service, &self.cluster.observed());
        if live == self.cluster.service {
            return false;
        }
        self.cluster.service = live;
        self.switches.extend(live);
        self.check_traffic(step);
        true
    }

    /// Every colour the Service selects has a ready pod, and a canary's share of the ready pods
    /// never exceeds the share its recorded weight plans.
    pub(super) fn check_traffic(&mut self, step: usize) {
        let observed = self.cluster.observed();
        let Some(live) = self.cluster.service else {
            return;
        };
        assert!(
            live.serves(&observed),
            "step {step}: the Service selects {live:?}, without a ready pod in each colour"
        );
        let (Live::Both, Some((target, _))) = (live, &self.stored.state.target) else {
            return;
        };
        let weight = self
            .stored
            .state
            .progress
            .as_ref()
            .and_then(|p| p.canary.as_ref());
        let weight = weight.map_or(0, |c| c.weight);
        let plan =
            super::super::canary::split(weight, self.total, Scaling::Fixed(self.total), false);
        let (new, all) = (
            self.cluster.ready(*target),
            self.cluster.ready(target.other()),
        );
        let all = all + new;
        let planned = plan
            .old
            .map_or(1.0, |old| f64::from(plan.new) / f64::from(plan.new + old));
        assert!(
            f64::from(new) / f64::from(all) <= planned,
            "step {step}: {target} has {new} of {all} ready pods at weight {weight}"
        );
    }
}
