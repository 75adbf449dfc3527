//! Escalation: when the evidence says recovery does not help, stop repeating it.
//!
//! A rollback is the consistent answer to a fault inside the window, and it works as
//! long as the domain then makes progress. Escalation therefore follows evidence, not
//! the clock:
//!
//! - **No progress.** The domain faulted while serving a message, was recovered, and
//!   faulted again while serving a message before it completed a single request since;
//!   after `faults` such faults in a row ([`EscalationConfig`], default 3: two
//!   recoveries that did not help) recovery is declared ineffective.
//! - **Poison request.** The same request (same caller, opcode and payload, told apart
//!   by a fingerprint the caller computes) made the domain fault `faults` times in a
//!   row: the clients keep re-sending it, and each rollback answers it with an error
//!   again.
//!
//! Faults that say nothing about the domain's state are not evidence: a fault while
//! the domain was idle (no message in hand), and a hot-kill (an injected crash, and
//! the watchdog timeout or CPU exception that a hang or broken stack the operator
//! asked for leads to: not the domain's doing; a planned one stands for the domain's
//! own fault and counts). They are still recovered; they neither count nor
//! reset a count. (A kill storm with hangs queued faster than the watchdog catches
//! them used to end in "no progress" shutdowns.)
//!
//! What an ineffective recovery turns into ([`Escalate::apply`]): a controlled
//! shutdown, because a restart of a stateful server loses its state; a restart only
//! where losing state is allowed (a stateless domain, or `--fallback restart`), and a
//! shutdown when even restarts make no progress.

use crate::decide::{Action, ShutdownReason};

/// How much evidence escalation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EscalationConfig {
    faults: u32,
}

/// Why an [`EscalationConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EscalationConfigError {
    /// At least two faults are needed: one to recover from, one to show it did not
    /// help.
    #[error("escalation needs at least 2 faults in a row")]
    TooFewFaults,
}

impl EscalationConfig {
    /// The default: 3 faults in a row.
    pub const DEFAULT_FAULTS: u32 = 3;

    /// Escalate after `faults` faults in a row without progress (at least 2).
    pub const fn new(faults: u32) -> Result<Self, EscalationConfigError> {
        if faults < 2 {
            Err(EscalationConfigError::TooFewFaults)
        } else {
            Ok(EscalationConfig { faults })
        }
    }

    /// The number of faults in a row that escalates.
    pub const fn faults(&self) -> u32 {
        self.faults
    }
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            faults: Self::DEFAULT_FAULTS,
        }
    }
}

/// What one fault tells about recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escalate {
    /// Nothing: carry out the decision table's action.
    None,
    /// Recovery does not help (see the module docs).
    Ineffective(Evidence),
}

/// Why recovery was declared ineffective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// This many faults while serving, with no request completed in between.
    NoProgress {
        /// Faults in a row.
        faults: u32,
    },
    /// The same request made the domain fault this many times in a row.
    PoisonRequest {
        /// Faults in a row on it.
        faults: u32,
    },
}

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Evidence::NoProgress { faults } => {
                write!(f, "{faults} faults in a row with no request completed")
            }
            Evidence::PoisonRequest { faults } => {
                write!(f, "the same request faulted it {faults} times in a row")
            }
        }
    }
}

impl Escalate {
    /// The action to carry out when [`crate::decide()`] said `action`, the domain may
    /// lose its state only when `may_lose_state` (policy stateless, or `--fallback
    /// restart`), and escalation said `self`:
    ///
    /// - `None` keeps `action`;
    /// - `Ineffective` turns a rollback into a restart when state may be lost, else
    ///   into a shutdown; a restart that was already the answer (a restart made no
    ///   progress either) into a shutdown; a halt or a shutdown stays.
    pub const fn apply(self, action: Action, may_lose_state: bool) -> Action {
        let Escalate::Ineffective(evidence) = self else {
            return action;
        };
        let shutdown = Action::Shutdown {
            reason: ShutdownReason::RecoveryIneffective(evidence),
        };
        match action {
            Action::Rollback { .. } if may_lose_state => Action::Restart,
            Action::Rollback { .. } | Action::Restart => shutdown,
            Action::Halt | Action::Shutdown { .. } => action,
        }
    }
}

/// The evidence gathered about one domain.
#[derive(Clone, Debug, Default)]
pub struct Escalation {
    config: EscalationConfig,
    /// Faults while serving since the domain last completed a request.
    without_progress: u32,
    /// The fingerprint of the request of the last counted fault, and how many faults
    /// in a row it caused.
    last_request: Option<(u64, u32)>,
}

impl Escalation {
    /// No evidence yet.
    pub fn new(config: EscalationConfig) -> Self {
        Escalation {
            config,
            without_progress: 0,
            last_request: None,
        }
    }

    /// The configuration.
    pub const fn config(&self) -> &EscalationConfig {
        &self.config
    }

    /// The domain completed a request (it replied to the request in hand): recovery
    /// works.
    pub fn record_progress(&mut self) {
        self.without_progress = 0;
    }

    /// The domain faulted while serving a message; `request` is the fingerprint of the
    /// request in hand (`None` for a one-way message). Call only for faults that are
    /// evidence (see the module docs).
    pub fn record_fault(&mut self, request: Option<u64>) -> Escalate {
        let limit = self.config.faults;
        self.without_progress += 1;
        let repeats = match (request, self.last_request) {
            (Some(now), Some((last, count))) if now == last => count + 1,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        self.last_request = request.map(|fingerprint| (fingerprint, repeats));
        if self.without_progress >= limit {
            let faults = self.without_progress;
            self.without_progress = 0;
            return Escalate::Ineffective(Evidence::NoProgress { faults });
        }
        if repeats >= limit {
            self.last_request = None;
            return Escalate::Ineffective(Evidence::PoisonRequest { faults: repeats });
        }
        Escalate::None
    }
}
