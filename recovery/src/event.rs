//! The record of one recovery: a one-line log message and a JSON object.
//!
//! The JSON object has exactly these keys (`null` where there is nothing):
//!
//! | key | JSON type | value |
//! |---|---|---|
//! | `domain_id` | number | the domain's id |
//! | `domain_name` | string | its name |
//! | `request_id` | number or null | the request in hand at the fault |
//! | `fault` | string | the fault kind, as the VMM names it (`cpu-exception`, ...) |
//! | `fault_detail` | string or null | what the fault says beyond its kind: a guest panic's place and message |
//! | `action` | string | what was done, [`Action::as_str`]: `halt`, `restart`, `rollback+error`, `rollback`, `shutdown` |
//! | `decided` | string | what the policy (and escalation) asked for; differs from `action` when that failed |
//! | `note` | string or null | why `action` differs from `decided`, or what became of a one-way message in hand |
//! | `shutdown_reason` | string or null | the [`ShutdownReason`](crate::ShutdownReason) of a shutdown |
//! | `latency_ns` | number | from the fault to the domain serving again (or the decision to stop) |
//! | `window` | string | [`WindowState::as_str`]: `idle`, `open`, `closed` |
//! | `window_closed_by` | string or null | the class that closed the window: `query`, `update`, `external` |

use std::fmt;
use std::time::Duration;

use ankh_domains::DomainId;
use serde::Serialize;

use crate::decide::Action;
use crate::window::{class_name, RequestId, WindowState};

/// One recovery, as the VMM carried it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryEvent {
    /// The faulting domain.
    pub domain_id: DomainId,
    /// Its name in the system description.
    pub domain_name: String,
    /// The request in hand at the fault, if any.
    pub request_id: Option<RequestId>,
    /// What went wrong, as the VMM names the fault (e.g. `cpu-exception`).
    pub fault: String,
    /// What the fault says beyond its kind, when that tells a person more (a guest
    /// panic's place and message).
    pub detail: Option<String>,
    /// What was done (the outcome, not the intent: a rollback that could not be done
    /// and became a restart is a restart).
    pub action: Action,
    /// What the policy and escalation asked for.
    pub decided: Action,
    /// Why `action` differs from `decided`, or what became of the one-way message in
    /// hand (replayed, dropped).
    pub note: Option<String>,
    /// How long the recovery took, from the fault to the domain serving again (or to
    /// the decision to stop).
    pub latency: Duration,
    /// The window state at the fault.
    pub window: WindowState,
}

/// The JSON shape of an event (see the module docs).
#[derive(Serialize)]
struct EventJson<'a> {
    domain_id: DomainId,
    domain_name: &'a str,
    request_id: Option<RequestId>,
    fault: &'a str,
    fault_detail: Option<&'a str>,
    action: &'static str,
    decided: &'static str,
    note: Option<&'a str>,
    shutdown_reason: Option<String>,
    latency_ns: u64,
    window: &'static str,
    window_closed_by: Option<&'static str>,
}

impl RecoveryEvent {
    /// The event as one JSON object, on one line (keys in the module docs).
    pub fn to_json(&self) -> String {
        let shutdown_reason = match &self.action {
            Action::Shutdown { reason } => Some(reason.to_string()),
            _ => None,
        };
        let json = EventJson {
            domain_id: self.domain_id,
            domain_name: &self.domain_name,
            request_id: self.request_id,
            fault: &self.fault,
            fault_detail: self.detail.as_deref(),
            action: self.action.as_str(),
            decided: self.decided.as_str(),
            note: self.note.as_deref(),
            shutdown_reason,
            latency_ns: u64::try_from(self.latency.as_nanos()).unwrap_or(u64::MAX),
            window: self.window.as_str(),
            window_closed_by: self.window.closed_by().map(class_name),
        };
        serde_json::to_string(&json).expect("an event of strings and integers serializes")
    }
}

/// `recovery: vfs request 42 cpu-exception -> rollback+error in 35 us`; `one-way
/// message` instead of `request N` when one was in hand, `no request` when nothing was;
/// the fault's detail, if any, follows its kind in parentheses; a shutdown adds its
/// reason in parentheses; a note follows after `: ` (e.g. why a rollback became a
/// restart).
impl fmt::Display for RecoveryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "recovery: {} ", self.domain_name)?;
        match (self.request_id, self.window.request()) {
            (Some(request), _) => write!(f, "request {request}")?,
            (None, Some(crate::window::ONE_WAY)) => f.write_str("one-way message")?,
            (None, _) => f.write_str("no request")?,
        }
        write!(f, " {}", self.fault)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        write!(f, " -> {} in {} us", self.action, self.latency.as_micros())?;
        match &self.note {
            Some(note) => write!(f, ": {note}"),
            None => Ok(()),
        }
    }
}
