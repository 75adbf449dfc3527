//! Escalation: a domain that keeps faulting is restarted instead of rolled back, and if
//! it keeps faulting after the restart, the system is shut down cleanly.
//!
//! Rules, with K faults and a period T ([`EscalationConfig`], default 3 in 10 s):
//!
//! - K faults whose first and last are at most T apart (inclusive) escalate: the K-th
//!   returns [`Escalate::Restart`], and the count starts again from zero.
//! - After that restart, K more faults at most T apart return [`Escalate::Shutdown`];
//!   so does every fault after it.
//! - A domain that goes more than T after the restart, or after its last fault since
//!   the restart, without faulting is forgiven: the next burst restarts it again
//!   rather than shutting the system down.
//!
//! Time is a `Duration` since any fixed start, given by the caller; it should not go
//! backwards (if it does, the gap counts as zero).

use std::collections::VecDeque;
use std::time::Duration;

use thiserror::Error;

use crate::decide::{Action, ShutdownReason};

/// Why an [`EscalationConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EscalationConfigError {
    /// K must be at least 1.
    #[error("escalation fault count must be at least 1")]
    ZeroFaults,
    /// T must be longer than zero.
    #[error("escalation period must be longer than zero")]
    ZeroPeriod,
}

/// K faults within T: when escalation starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscalationConfig {
    faults: u32,
    within: Duration,
}

impl EscalationConfig {
    /// The default K: 3 faults.
    pub const DEFAULT_FAULTS: u32 = 3;
    /// The default T: 10 s.
    pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);

    /// K = `faults` within T = `within`; both must be non-zero.
    pub const fn new(faults: u32, within: Duration) -> Result<Self, EscalationConfigError> {
        if faults == 0 {
            Err(EscalationConfigError::ZeroFaults)
        } else if within.is_zero() {
            Err(EscalationConfigError::ZeroPeriod)
        } else {
            Ok(EscalationConfig { faults, within })
        }
    }

    /// K.
    pub const fn faults(&self) -> u32 {
        self.faults
    }

    /// T.
    pub const fn within(&self) -> Duration {
        self.within
    }
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            faults: Self::DEFAULT_FAULTS,
            within: Self::DEFAULT_WITHIN,
        }
    }
}

/// What escalation adds to the decision for one fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalate {
    /// Nothing: carry out the decision table's action.
    None,
    /// Restart the domain instead of rolling it back.
    Restart,
    /// Shut the system down cleanly.
    Shutdown,
}

impl Escalate {
    /// The action to carry out when [`crate::decide()`] said `action` and escalation
    /// said `self`:
    ///
    /// - `None` keeps `action`.
    /// - `Restart` turns a rollback into a restart and keeps anything else.
    /// - `Shutdown` turns a rollback or a restart into a shutdown for
    ///   [`ShutdownReason::RepeatedFaults`]; a halt stays a halt (policy none crashes
    ///   anyway) and a shutdown keeps its own reason.
    pub const fn apply(self, action: Action, config: &EscalationConfig) -> Action {
        match (self, action) {
            (Escalate::Restart, Action::Rollback { .. }) => Action::Restart,
            (Escalate::Shutdown, Action::Rollback { .. } | Action::Restart) => Action::Shutdown {
                reason: ShutdownReason::RepeatedFaults {
                    faults: config.faults,
                    within: config.within,
                },
            },
            _ => action,
        }
    }
}

/// Where a domain is in the escalation ladder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Never escalated, or forgiven.
    Normal,
    /// Restarted by escalation at this time.
    Restarted { at: Duration },
    /// Told to shut down: final.
    ShutDown,
}

/// The fault history of one domain.
#[derive(Clone, Debug)]
pub struct Escalation {
    config: EscalationConfig,
    stage: Stage,
    /// The faults of the current count, oldest first; at most K - 1 between calls.
    recent: VecDeque<Duration>,
}

impl Escalation {
    /// No faults yet.
    pub fn new(config: EscalationConfig) -> Self {
        Escalation {
            config,
            stage: Stage::Normal,
            recent: VecDeque::new(),
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &EscalationConfig {
        &self.config
    }

    /// True after an escalation restart, until the domain is forgiven.
    pub const fn restarted(&self) -> bool {
        matches!(self.stage, Stage::Restarted { .. })
    }

    /// The domain faulted at `now`: what escalation adds (see the module docs).
    pub fn record_fault(&mut self, now: Duration) -> Escalate {
        let within = self.config.within;
        if let Stage::Restarted { at } = self.stage {
            let last = self.recent.back().copied().unwrap_or(at);
            if now.saturating_sub(last) > within {
                self.stage = Stage::Normal;
                self.recent.clear();
            }
        }
        match self.stage {
            Stage::ShutDown => return Escalate::Shutdown,
            Stage::Normal | Stage::Restarted { .. } => {}
        }
        while self
            .recent
            .front()
            .is_some_and(|&first| now.saturating_sub(first) > within)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        if self.recent.len() < self.config.faults as usize {
            return Escalate::None;
        }
        self.recent.clear();
        match self.stage {
            Stage::Normal => {
                self.stage = Stage::Restarted { at: now };
                Escalate::Restart
            }
            Stage::Restarted { .. } | Stage::ShutDown => {
                self.stage = Stage::ShutDown;
                Escalate::Shutdown
            }
        }
    }
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation::new(EscalationConfig::default())
    }
}
