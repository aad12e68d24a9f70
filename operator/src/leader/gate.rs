//! The leadership gate every write passes: "this replica leads until T", T on the monotonic
//! clock. The elector moves T forward after each successful renewal (to when that renewal began
//! plus the renew deadline) and closes it when the Lease is lost; readers only compare T with
//! now. Because the gate is a time and not a flag, writes stop at the renew deadline even when the
//! elector itself is stalled (a frozen connection, a starved task, a stopped process that resumes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// A write refused because this replica no longer holds the Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("this replica no longer leads (its Lease was not renewed within the renew deadline)")]
pub struct NotLeading;

/// Cheap to clone and to read; shared by every writer of the process.
#[derive(Clone, Debug)]
pub struct Gate(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    origin: Instant,
    /// Nanoseconds after `origin` until which this replica leads; `u64::MAX`: always.
    until: AtomicU64,
}

impl Gate {
    /// Without leader election: always open.
    pub fn always() -> Self {
        Self::with(u64::MAX)
    }

    /// Closed until the elector opens it.
    pub fn closed() -> Self {
        Self::with(0)
    }

    fn with(until: u64) -> Self {
        Self(Arc::new(Inner {
            origin: Instant::now(),
            until: AtomicU64::new(until),
        }))
    }

    pub fn leading(&self) -> bool {
        self.leading_at(Instant::now())
    }

    pub fn leading_at(&self, now: Instant) -> bool {
        let until = self.0.until.load(Ordering::Acquire);
        until == u64::MAX || self.nanos(now) < until
    }

    pub fn ensure(&self) -> Result<(), NotLeading> {
        if self.leading() {
            Ok(())
        } else {
            Err(NotLeading)
        }
    }

    /// Until when this replica leads; `None` when always.
    pub fn until(&self) -> Option<Instant> {
        match self.0.until.load(Ordering::Acquire) {
            u64::MAX => None,
            n => Some(self.0.origin + std::time::Duration::from_nanos(n)),
        }
    }

    /// Leads until `until` (after a successful renewal).
    pub fn open_until(&self, until: Instant) {
        let n = self.nanos(until).min(u64::MAX - 1);
        self.0.until.store(n, Ordering::Release);
    }

    /// Stops every write at once.
    pub fn close(&self) {
        self.0.until.store(0, Ordering::Release);
    }

    fn nanos(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.0.origin);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_gate_is_open_until_its_instant_and_not_a_moment_after() {
        let gate = Gate::closed();
        assert_eq!(gate.ensure(), Err(NotLeading));
        let t0 = Instant::now();
        gate.open_until(t0 + Duration::from_secs(10));
        assert!(gate.clone().leading(), "clones share the gate");
        assert_eq!(gate.until(), Some(t0 + Duration::from_secs(10)));
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(gate.ensure(), Ok(()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            gate.ensure(),
            Err(NotLeading),
            "closed at the deadline by the clock alone"
        );
        gate.open_until(Instant::now() + Duration::from_secs(10));
        gate.close();
        assert!(!gate.leading());
    }

    #[tokio::test(start_paused = true)]
    async fn without_election_the_gate_never_closes_by_time() {
        let gate = Gate::always();
        tokio::time::advance(Duration::from_secs(1 << 30)).await;
        assert!(gate.leading());
        assert_eq!(gate.until(), None);
    }
}
