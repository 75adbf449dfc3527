//! How many requests finished with the recovery window still open: the share of
//! requests a fault at their last instruction could have rolled back consistently;
//! and how much of a server's execution ran with its window open, OSIRIS's measure of
//! recovery coverage (the share of a server's execution during which a fault is
//! recoverable). OSIRIS counted instructions; these hosts expose no instruction counter
//! to guests or processes (no PMU), so the VMM counts the guest's run time always:
//! each run slice, from entry to the next exit, falls entirely in one window state,
//! because the state only changes at exits. Instructions are counted too when a
//! server is single-stepped (a campaign's profile run: `ankh campaign profile`), which
//! gives OSIRIS's own measure.
//!
//! Only requests that finished count (replied to, parked, or one-way messages
//! handled), each once, in the state returned by
//! [`RecoveryWindow::on_reply_sent`](crate::RecoveryWindow::on_reply_sent) or
//! [`RecoveryWindow::end_request`](crate::RecoveryWindow::end_request). Under none
//! and stateless the window is tracked pessimistically (see [`crate::window`]), so
//! their counts say how many requests exposed state.

use std::collections::BTreeMap;

use ankh_domains::DomainId;
use serde::Serialize;

use crate::window::WindowState;

/// The requests one domain (or all of them) finished, by window state at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Finished with the window open.
    pub open: u64,
    /// Finished with the window closed.
    pub closed: u64,
    /// Nanoseconds the domain ran, with a request in hand, with its window open.
    pub run_open_ns: u64,
    /// Nanoseconds the domain ran, with a request in hand, with its window closed.
    pub run_closed_ns: u64,
    /// Instructions single-stepped with a request in hand and the window open (only
    /// when the domain is profiled).
    pub instructions_open: u64,
    /// Instructions single-stepped with a request in hand and the window closed.
    pub instructions_closed: u64,
}

impl Coverage {
    /// Counts one request that finished in `finished`; [`WindowState::Idle`] (no
    /// request was in hand) counts nothing.
    pub fn record(&mut self, finished: WindowState) {
        match finished {
            WindowState::Idle => {}
            WindowState::Open { .. } => self.open += 1,
            WindowState::Closed { .. } => self.closed += 1,
        }
    }

    /// Adds every count of `other` to this one.
    pub fn add(&mut self, other: Coverage) {
        self.open += other.open;
        self.closed += other.closed;
        self.run_open_ns += other.run_open_ns;
        self.run_closed_ns += other.run_closed_ns;
        self.instructions_open += other.instructions_open;
        self.instructions_closed += other.instructions_closed;
    }

    /// The share of the domain's run time (with a request in hand) that ran inside
    /// an open window, 0.0 to 1.0; `None` before it ran.
    pub fn run_share_open(self) -> Option<f64> {
        let total = self.run_open_ns + self.run_closed_ns;
        (total > 0).then(|| self.run_open_ns as f64 / total as f64)
    }

    /// The share of the instructions it executed with a request in hand that ran
    /// inside an open window (OSIRIS's coverage), 0.0 to 1.0; `None` unless it was
    /// single-stepped.
    pub fn instruction_share_open(self) -> Option<f64> {
        let total = self.instructions_open + self.instructions_closed;
        (total > 0).then(|| self.instructions_open as f64 / total as f64)
    }

    /// Every finished request.
    pub const fn total(self) -> u64 {
        self.open + self.closed
    }

    /// The share of finished requests that finished inside the window, 0.0 to 1.0;
    /// `None` before any request finished.
    pub fn share_open(self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.open as f64 / total as f64)
    }
}

/// [`Coverage`] of every domain that finished a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoverageStats {
    per_domain: BTreeMap<DomainId, Coverage>,
}

impl CoverageStats {
    /// No requests yet.
    pub fn new() -> Self {
        CoverageStats::default()
    }

    /// `domain` finished a request in `finished` (see [`Coverage::record`]).
    pub fn record(&mut self, domain: DomainId, finished: WindowState) {
        if finished != WindowState::Idle {
            self.per_domain.entry(domain).or_default().record(finished);
        }
    }

    /// `domain` finished a request in `finished` (see [`Coverage::record`]) after
    /// running with it in hand for what `ran` counts (its run time and instructions;
    /// its request counts are added too): one lookup of the domain for all of it, as
    /// this runs at the end of every request.
    pub fn record_request(&mut self, domain: DomainId, finished: WindowState, ran: Coverage) {
        let coverage = self.per_domain.entry(domain).or_default();
        coverage.record(finished);
        coverage.add(ran);
    }

    /// `domain` ran for `nanos` with a request in hand, its window `open` or not.
    pub fn record_run(&mut self, domain: DomainId, open: bool, nanos: u64) {
        let coverage = self.per_domain.entry(domain).or_default();
        match open {
            true => coverage.run_open_ns += nanos,
            false => coverage.run_closed_ns += nanos,
        }
    }

    /// `domain` executed `count` instructions (single-stepped) with a request in
    /// hand, its window `open` or not.
    pub fn record_instructions(&mut self, domain: DomainId, open: bool, count: u64) {
        let coverage = self.per_domain.entry(domain).or_default();
        match open {
            true => coverage.instructions_open += count,
            false => coverage.instructions_closed += count,
        }
    }

    /// The coverage of `domain` (zero if it finished no request).
    pub fn get(&self, domain: DomainId) -> Coverage {
        self.per_domain.get(&domain).copied().unwrap_or_default()
    }

    /// Every domain that finished a request, by increasing id.
    pub fn iter(&self) -> impl Iterator<Item = (DomainId, Coverage)> + '_ {
        self.per_domain
            .iter()
            .map(|(&id, &coverage)| (id, coverage))
    }

    /// The sum over every domain.
    pub fn total(&self) -> Coverage {
        self.per_domain
            .values()
            .fold(Coverage::default(), |mut sum, &c| {
                sum.add(c);
                sum
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_recorded_at_once_counts_as_its_parts_one_by_one() {
        let (a, request) = (3, 7);
        let ran = Coverage {
            run_open_ns: 40,
            run_closed_ns: 10,
            instructions_open: 4,
            instructions_closed: 1,
            ..Coverage::default()
        };
        let mut at_once = CoverageStats::new();
        at_once.record_request(a, WindowState::Open { request }, ran);
        let mut by_parts = CoverageStats::new();
        by_parts.record(a, WindowState::Open { request });
        by_parts.record_run(a, true, 40);
        by_parts.record_run(a, false, 10);
        by_parts.record_instructions(a, true, 4);
        by_parts.record_instructions(a, false, 1);
        assert_eq!(at_once, by_parts);
        assert_eq!(at_once.get(a).open, 1);
    }

    #[test]
    fn instructions_count_apart_from_run_time_and_add_up() {
        let (a, b): (DomainId, DomainId) = (3, 4);
        let mut stats = CoverageStats::new();
        assert_eq!(stats.get(a).instruction_share_open(), None);
        stats.record_run(a, true, 500);
        assert_eq!(
            stats.get(a).instruction_share_open(),
            None,
            "time is not a count"
        );
        stats.record_instructions(a, true, 30);
        stats.record_instructions(a, false, 10);
        stats.record_instructions(b, false, 5);
        assert_eq!(stats.get(a).instruction_share_open(), Some(0.75));
        assert_eq!(stats.get(b).instruction_share_open(), Some(0.0));
        let total = stats.total();
        assert_eq!(
            (total.instructions_open, total.instructions_closed),
            (30, 15)
        );
        assert_eq!(total.run_open_ns, 500);
    }
}
