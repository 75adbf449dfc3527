//! The audit of process domains' turns: now and then, between two pieces of work, a
//! worker reads the CPU clock of each of its process domains and faults those that
//! took CPU time outside their turns (`domain::process::turns` says how and why).
//! Between audits such a domain takes at most its share of the CPU for
//! [`AUDIT_PERIOD`] plus the limit; a VM cannot run outside its turns at all.

use std::time::Duration;

use super::Worker;
use crate::domain::{DomainState, Substrate};
use crate::tsc;

/// How often a busy worker audits its domains. An idle one does not: it holds no
/// turn to lose, and a system whose every domain waits ends as quiet.
pub const AUDIT_PERIOD: Duration = Duration::from_millis(20);

/// When the next audit is due, in ticks of the time-stamp counter (one read per
/// piece of work, about 20 ns).
pub(super) struct Due {
    at: u64,
    period: u64,
}

impl Due {
    /// Audits every [`AUDIT_PERIOD`] for a system of process domains; never for one
    /// of VMs, which cannot run outside their turns.
    pub(super) fn new(substrate: Substrate) -> Due {
        if substrate != Substrate::Process {
            return Due {
                at: u64::MAX,
                period: u64::MAX,
            };
        }
        // A counter that does not advance (rate 0) never makes an audit due; the
        // turn accounts then say nothing anyway.
        let rate = tsc::ns_per_tick();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a positive period of a few million ticks; `as` saturates"
        )]
        let period = match rate > 0.0 {
            true => (AUDIT_PERIOD.as_nanos() as f64 / rate) as u64,
            false => u64::MAX,
        };
        Due {
            at: tsc::now().saturating_add(period),
            period,
        }
    }

    /// Whether an audit is due now (no counter read for a system of VMs).
    #[inline]
    pub(super) fn now(&self) -> bool {
        self.at != u64::MAX && tsc::now() >= self.at
    }

    fn done(&mut self) {
        self.at = tsc::now().saturating_add(self.period);
    }
}

impl Worker<'_> {
    /// Faults every process domain of this thread that took more CPU time outside its
    /// turns than allowed (its process is ended first: a rollback cannot stop it).
    pub(super) fn audit_turns(&mut self) {
        self.audit.done();
        let outside: Vec<_> = self
            .slots
            .iter_mut()
            .filter(|(_, slot)| !matches!(slot.domain.state(), DomainState::Stopped(_)))
            .filter_map(|(&id, slot)| slot.domain.end_if_outside_turns().map(|f| (id, f)))
            .collect();
        for (id, fault) in outside {
            self.fail(id, fault);
        }
    }
}
