//! The recovery window of one server domain, and how each policy classifies outgoing
//! messages (docs/recovery.md, "The window").
//!
//! A window opens when a request is delivered (the VMM has just taken the boundary
//! checkpoint) and closes at the first outgoing message that may expose the domain's
//! state, as the policy counts it:
//!
//! | class | none / stateless | naive | pessimistic | enhanced |
//! |---|---|---|---|---|
//! | Reply (to the request in hand) | ends | ends | ends | ends |
//! | Query | closes (tracked only) | stays open | closes | stays open |
//! | Update | closes (tracked only) | stays open | closes | closes |
//! | External (incl. a reply to a parked request) | closes (tracked only) | stays open | closes | closes |
//!
//! `none` and `stateless` have no recovery window ([`has_window`] is false): they
//! never roll back, so [`decide`](crate::decide()) never reads the window for them. The
//! state machine still runs for them, classifying pessimistically (any message that
//! is not the reply closes), so that events and coverage figures say whether the
//! domain had exposed state when it faulted.

use std::fmt;

use ankh_domains::Policy;
use virtio_seep::opcode::SeepClass;

/// The id the router gives a request (`request_id` of the message header).
pub type RequestId = u64;

/// The id under which a one-way message in hand is tracked: it has a window like a
/// request (the VMM checkpoints before every message a server takes), but no reply.
/// The router numbers requests from 1, so it is never a request's id.
pub const ONE_WAY: RequestId = 0;

/// Where a domain is in its current request, as far as recovery is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WindowState {
    /// No request in hand: the domain is at a request boundary (blocked in receive,
    /// or booting before its first request).
    #[default]
    Idle,
    /// A request is in hand and nothing the domain sent since it was delivered exposed
    /// state (as the policy counts it): a rollback is consistent.
    Open {
        /// The request in hand.
        request: RequestId,
    },
    /// A request is in hand and the domain sent a message that exposed state: a
    /// rollback could be inconsistent.
    Closed {
        /// The request in hand.
        request: RequestId,
        /// The class of the first message that closed the window.
        by: SeepClass,
    },
}

impl WindowState {
    /// The request in hand, if any ([`ONE_WAY`] for a one-way message).
    pub const fn request(self) -> Option<RequestId> {
        match self {
            WindowState::Idle => None,
            WindowState::Open { request } | WindowState::Closed { request, .. } => Some(request),
        }
    }

    /// The request in hand, if it is a request (not idle, not a one-way message).
    pub const fn answerable(self) -> Option<RequestId> {
        match self.request() {
            Some(ONE_WAY) | None => None,
            request => request,
        }
    }

    /// True when a request is in hand and its window is open.
    pub const fn is_open(self) -> bool {
        matches!(self, WindowState::Open { .. })
    }

    /// The class of the message that closed the window, if it is closed.
    pub const fn closed_by(self) -> Option<SeepClass> {
        match self {
            WindowState::Closed { by, .. } => Some(by),
            _ => None,
        }
    }

    /// `"idle"`, `"open"` or `"closed"` (logs and JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            WindowState::Idle => "idle",
            WindowState::Open { .. } => "open",
            WindowState::Closed { .. } => "closed",
        }
    }
}

impl fmt::Display for WindowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WindowState::Idle => f.write_str("idle"),
            WindowState::Open { request } => write!(f, "open (request {request})"),
            WindowState::Closed { request, by } => {
                write!(f, "closed by {} (request {request})", class_name(by))
            }
        }
    }
}

/// The lowercase name of a SEEP class: `"reply"`, `"query"`, `"update"` or
/// `"external"` (logs and JSON).
pub const fn class_name(class: SeepClass) -> &'static str {
    match class {
        SeepClass::Reply => "reply",
        SeepClass::Query => "query",
        SeepClass::Update => "update",
        SeepClass::External => "external",
    }
}

/// True when `policy` has a recovery window that decides between rollback and
/// something else: naive (whose window never closes), pessimistic and enhanced. False
/// for none and stateless, which never roll back.
pub const fn has_window(policy: Policy) -> bool {
    matches!(
        policy,
        Policy::Naive | Policy::Pessimistic | Policy::Enhanced
    )
}

/// True when an outgoing message of `class` closes an open window under `policy`.
///
/// A Reply never closes (the reply to the request in hand ends the request; a reply to
/// a parked request is classified External by the caller). Naive never closes.
/// Enhanced keeps the window open across Query. Pessimistic, and the window-less none
/// and stateless (tracked only, see the module docs), close on Query, Update and
/// External.
pub const fn closes(policy: Policy, class: SeepClass) -> bool {
    match class {
        SeepClass::Reply => false,
        SeepClass::Query => !matches!(policy, Policy::Naive | Policy::Enhanced),
        SeepClass::Update | SeepClass::External => !matches!(policy, Policy::Naive),
    }
}

/// The recovery window of one server domain: which request it has in hand and whether
/// it has exposed state since that request was delivered.
///
/// The policy is passed to [`RecoveryWindow::on_outgoing`] with each message rather
/// than stored, so the same type serves every domain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryWindow {
    state: WindowState,
}

impl RecoveryWindow {
    /// A window with no request in hand.
    pub const fn new() -> Self {
        RecoveryWindow {
            state: WindowState::Idle,
        }
    }

    /// The current state.
    pub const fn state(&self) -> WindowState {
        self.state
    }

    /// True when a request is in hand and its window is open.
    pub const fn is_open(&self) -> bool {
        self.state.is_open()
    }

    /// The request in hand, if any.
    pub const fn request(&self) -> Option<RequestId> {
        self.state.request()
    }

    /// `request` was delivered to the domain (at its request boundary): the window
    /// opens.
    ///
    /// Returns the state a request still in hand ended in (the caller should have
    /// called [`RecoveryWindow::end_request`] first; this ends it the same way), or
    /// [`WindowState::Idle`] if there was none.
    pub fn on_request_delivered(&mut self, request: RequestId) -> WindowState {
        std::mem::replace(&mut self.state, WindowState::Open { request })
    }

    /// The domain sent a message of `class` other than a reply; `policy` is its
    /// recovery policy.
    ///
    /// Returns true when this message closed the window (the open-to-closed transition
    /// happened now); false when the window stays open, was already closed (the first
    /// closing class is kept), or no request is in hand (a domain runs without a
    /// request only while booting, before its first boundary; nothing is tracked then).
    ///
    /// Replies are not classified here, because only the caller knows which request a
    /// reply answers: `SeepClass::Reply` changes nothing and returns false. Use
    /// [`RecoveryWindow::on_reply_sent`] or [`RecoveryWindow::on_reply_to_other`].
    pub fn on_outgoing(&mut self, class: SeepClass, policy: Policy) -> bool {
        match self.state {
            WindowState::Open { request } if closes(policy, class) => {
                self.state = WindowState::Closed { request, by: class };
                true
            }
            _ => false,
        }
    }

    /// The domain sent a deferred reply: a reply to a parked request, not the one in
    /// hand. It exposes the domain's state to another client, so it is classified
    /// External: the same as `on_outgoing(SeepClass::External, policy)`.
    pub fn on_reply_to_other(&mut self, policy: Policy) -> bool {
        self.on_outgoing(SeepClass::External, policy)
    }

    /// The domain replied to the request in hand: the request ends and the window goes
    /// back to [`WindowState::Idle`].
    ///
    /// Returns the state the request finished in (for [`crate::CoverageStats`]), or
    /// [`WindowState::Idle`] if none was in hand.
    pub fn on_reply_sent(&mut self) -> WindowState {
        std::mem::take(&mut self.state)
    }

    /// The request in hand ends without a reply from the domain: it was parked for a
    /// deferred reply, it was a one-way message, or the domain was rolled back or
    /// restarted. The window goes back to [`WindowState::Idle`].
    ///
    /// Returns the state the request ended in, or [`WindowState::Idle`] if none was in
    /// hand.
    pub fn end_request(&mut self) -> WindowState {
        std::mem::take(&mut self.state)
    }
}
