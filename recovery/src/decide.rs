//! The decision table of docs/recovery.md, "When a server faults": what happens to a domain that faults.
//!
//! | fault | none | stateless | naive | pessimistic / enhanced |
//! |---|---|---|---|---|
//! | no request in hand (idle) | halt | restart | rollback | rollback |
//! | inside the window | halt | restart | rollback + error reply | rollback + error reply |
//! | window closed | halt | restart | rollback + error reply (may be inconsistent) | shutdown (`--fallback restart`: restart) |
//!
//! The idle row extends OSIRIS's table: a domain with no request in hand sits at a
//! request boundary, so rolling back to that boundary is consistent and there is no request to
//! answer. The checkpoint to restore is the one of the boundary the domain is at: if
//! the VMM checkpoints lazily (when the next request is delivered), it must take it
//! before restoring, or it would undo the last finished request.

use std::fmt;

use ankh_domains::Policy;
use virtio_seep::opcode::SeepClass;

use crate::window::{class_name, RequestId, WindowState};

/// What the VMM does about a faulting domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Policy none: the system halts, as after a crash (the crash exit status).
    Halt,
    /// A fresh VM from the domain's pristine image; its pending requests get errors.
    Restart,
    /// Restore the domain's checkpoint (memory and vCPU) and let it serve the next
    /// request.
    Rollback {
        /// True when the interrupted request gets an error reply (ERESTART-like);
        /// false when no request was in hand.
        error_reply: bool,
    },
    /// Stop every domain cleanly, log the reason, and exit with a status distinct from
    /// a crash.
    Shutdown {
        /// Why.
        reason: ShutdownReason,
    },
}

impl Action {
    /// A short name: `"halt"`, `"restart"`, `"rollback+error"`, `"rollback"` or
    /// `"shutdown"` (logs and JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Halt => "halt",
            Action::Restart => "restart",
            Action::Rollback { error_reply: true } => "rollback+error",
            Action::Rollback { error_reply: false } => "rollback",
            Action::Shutdown { .. } => "shutdown",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Shutdown { reason } => write!(f, "shutdown ({reason})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Why the system is shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownReason {
    /// Pessimistic or enhanced policy, and the domain faulted after it exposed state
    /// while handling `request`.
    WindowClosed {
        /// The request in hand at the fault.
        request: RequestId,
        /// The class of the message that closed the window.
        by: SeepClass,
    },
    /// Recovery did not help, as the evidence says ([`crate::Escalation`]).
    RecoveryIneffective(crate::escalation::Evidence),
    /// The domain's last checkpoint failed (it is poisoned): it cannot be rolled back
    /// consistently, and its policy does not allow losing its state.
    CheckpointFailed,
    /// Restarting the domain failed (the host could not create it again).
    RestartFailed,
    /// The domain could not be rolled back exactly (e.g. it used the FPU, whose state
    /// is saved lazily), and its policy does not allow losing its state.
    RollbackRefused,
    /// A one-way message whose handling had sent repeatable updates (kept in the
    /// window only because its replay sends them again) faulted the domain again when
    /// replayed: dropping it would leave them half done.
    ReplayFailed,
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ShutdownReason::WindowClosed {
                request: crate::window::ONE_WAY,
                by,
            } => write!(
                f,
                "fault after a one-way message exposed state ({} message)",
                class_name(by)
            ),
            ShutdownReason::WindowClosed { request, by } => write!(
                f,
                "fault after request {request} exposed state ({} message)",
                class_name(by)
            ),
            ShutdownReason::RecoveryIneffective(evidence) => {
                write!(f, "recovery does not help: {evidence}")
            }
            ShutdownReason::CheckpointFailed => {
                f.write_str("its last checkpoint failed, and its state may not be lost")
            }
            ShutdownReason::RestartFailed => f.write_str("it could not be restarted"),
            ShutdownReason::RollbackRefused => {
                f.write_str("it could not be rolled back exactly, and its state may not be lost")
            }
            ShutdownReason::ReplayFailed => f.write_str(
                "a one-way message that had sent repeatable updates faulted it again when \
                 replayed",
            ),
        }
    }
}

/// The action for a domain under `policy` that faulted in `window`; `fallback_restart`
/// is `--fallback restart` (restart instead of a controlled shutdown when the window is
/// closed under pessimistic or enhanced). See the module docs for the table.
pub const fn decide(policy: Policy, window: WindowState, fallback_restart: bool) -> Action {
    match (policy, window) {
        (Policy::None, _) => Action::Halt,
        (Policy::Stateless, _) => Action::Restart,
        (_, WindowState::Idle) => Action::Rollback { error_reply: false },
        (Policy::Naive, _) | (_, WindowState::Open { .. }) => {
            Action::Rollback { error_reply: true }
        }
        (Policy::Pessimistic | Policy::Enhanced, WindowState::Closed { request, by }) => {
            if fallback_restart {
                Action::Restart
            } else {
                Action::Shutdown {
                    reason: ShutdownReason::WindowClosed { request, by },
                }
            }
        }
    }
}
