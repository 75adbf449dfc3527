//! Recovery decisions of Ankh, after the OSIRIS model (Bhat et al., DSN 2016).
//!
//! This crate decides; the VMM acts. It never touches KVM, guest memory, threads or
//! clocks (time is passed in), and has no `unsafe`, so it is tested exhaustively on the
//! host. Modules:
//!
//! - [`window`]: the recovery window of one server domain ([`RecoveryWindow`],
//!   [`WindowState`]) and the classification of outgoing messages under each policy
//!   ([`closes`]), as in docs/recovery.md, "The window".
//! - [`decide`](mod@decide): the decision table of docs/recovery.md, "When a server faults"
//!   ([`decide()`], [`Action`]).
//! - [`escalation`]: when the evidence says recovery does not help, a controlled
//!   shutdown (or a restart where losing state is allowed) ([`Escalation`]).
//! - [`event`]: the record of one recovery, as a log line and as JSON
//!   ([`RecoveryEvent`]).
//! - [`coverage`]: how many requests finished with the window still open
//!   ([`CoverageStats`]).
//!
//! # How the VMM drives it, per server domain
//!
//! 1. On delivering a request (after taking the boundary checkpoint):
//!    [`RecoveryWindow::on_request_delivered`].
//! 2. On every outgoing message but a reply: [`RecoveryWindow::on_outgoing`] with the
//!    opcode's SEEP class from `virtio_seep::opcode` (never a guest-written flag).
//! 3. On a reply: [`RecoveryWindow::on_reply_sent`] if it answers the request in hand,
//!    [`RecoveryWindow::on_reply_to_other`] if it answers a parked request (a deferred
//!    reply, class External). The VMM, which routes replies by id, knows which.
//! 4. When the domain goes back to receive without answering (it parked the request,
//!    or handled a one-way message): [`RecoveryWindow::end_request`]. Feed the state
//!    returned by 3 and 4 to [`CoverageStats::record`].
//! 5. On a fault: [`decide()`] with the window's state, then
//!    [`Escalation::record_fault`] and [`Escalate::apply`]; carry out the action, call
//!    [`RecoveryWindow::end_request`], and log a [`RecoveryEvent`] of what was done.
//! 6. On every reply to the request in hand: [`Escalation::record_progress`].
#![forbid(unsafe_code)]

pub mod coverage;
pub mod decide;
pub mod escalation;
pub mod event;
pub mod window;

pub use coverage::{Coverage, CoverageStats};
pub use decide::{decide, Action, ShutdownReason};
pub use escalation::{Escalate, Escalation, EscalationConfig, EscalationConfigError, Evidence};
pub use event::RecoveryEvent;
pub use window::{class_name, closes, has_window, RecoveryWindow, RequestId, WindowState, ONE_WAY};

/// The recovery policy of a domain (re-exported from `ankh-domains`).
pub use ankh_domains::Policy;
/// The SEEP class of a message (re-exported from `virtio-seep`).
pub use virtio_seep::opcode::SeepClass;
