//! Fault injection into server domains: when a hot-kill strikes and what it does.
//!
//! - [`When::MidRequest`]: right after the server's next request is delivered;
//! - [`When::WindowClosed`]: mid-request, right after the server's first message
//!   that closes its recovery window (it exposed state: the case where a rollback
//!   would be inconsistent);
//! - [`When::Now`]: as soon as the server is not running: idle between requests, or
//!   blocked in a call of its own (then it is mid-request). An idle server is first
//!   checkpointed where it stands, so its recovery loses nothing;
//! - [`When::Idle`]: the next time the server is idle (no request in hand, blocked
//!   in receive);
//! - [`When::AfterSend`]: mid-request, right after the server sends its first
//!   message with the given opcode (planned kills only, not on the control socket:
//!   tests place a fault at an exact point of a handler this way).
//!
//! Kinds: [`Kind::Crash`] stops it with an injected fault; [`Kind::Hang`] makes it
//! spin where it stands until the watchdog stops it; [`Kind::Corrupt`] breaks its
//! stack pointer so that the guest faults by itself.

use std::fmt;
use std::str::FromStr;

/// When an injected fault strikes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum When {
    /// As soon as the server is not running.
    Now,
    /// Right after its next request is delivered.
    #[default]
    MidRequest,
    /// Right after its window closes, mid-request.
    WindowClosed,
    /// The next time it is idle.
    Idle,
    /// Right after it sends a message with this opcode, mid-request.
    AfterSend(u16),
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// An injected fault stops the domain.
    #[default]
    Crash,
    /// The domain spins without exits until the watchdog stops it.
    Hang,
    /// The domain's stack pointer is broken; its next stack access faults.
    Corrupt,
}

/// One injection: when and what.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injection {
    /// When it strikes.
    pub when: When,
    /// What it does.
    pub kind: Kind,
    /// The operator asked for it (`ankh ctl kill`): the fault it leads to is never
    /// evidence that recovery does not help. A planned hang or broken stack (tests,
    /// `ankh demo`) stands for a fault of the server's own and counts.
    pub operator: bool,
}

/// A hot-kill planned before the system starts (`ankh demo`, tests): `injection`
/// strikes server `domain` once its `request`-th request (1-based) has been delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedKill {
    /// The server domain's name.
    pub domain: String,
    /// The request it waits for.
    pub request: u64,
    /// When and what.
    pub injection: Injection,
}

impl PlannedKill {
    /// A crash of `domain` right after its `request`-th request is delivered.
    pub fn crash(domain: &str, request: u64) -> PlannedKill {
        PlannedKill::new(domain, request, When::MidRequest, Kind::Crash)
    }

    /// `kind` striking `domain` at `when`, counted from its `request`-th request.
    pub fn new(domain: &str, request: u64, when: When, kind: Kind) -> PlannedKill {
        PlannedKill {
            domain: domain.to_owned(),
            request,
            injection: Injection {
                when,
                kind,
                operator: false,
            },
        }
    }
}

/// A word that names no [`When`] or [`Kind`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {word:?} (expected {expected})")]
pub struct UnknownWord {
    what: &'static str,
    word: String,
    expected: &'static str,
}

impl FromStr for When {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<When, UnknownWord> {
        match word {
            "now" => Ok(When::Now),
            "mid-request" => Ok(When::MidRequest),
            "window-closed" => Ok(When::WindowClosed),
            "idle" => Ok(When::Idle),
            // `AfterSend` is for planned kills only: the control socket's kills are
            // taken at the times above.
            _ => Err(UnknownWord {
                what: "time",
                word: word.to_owned(),
                expected: "now, idle, mid-request or window-closed",
            }),
        }
    }
}

impl FromStr for Kind {
    type Err = UnknownWord;

    fn from_str(word: &str) -> Result<Kind, UnknownWord> {
        match word {
            "crash" => Ok(Kind::Crash),
            "hang" => Ok(Kind::Hang),
            "corrupt" => Ok(Kind::Corrupt),
            _ => Err(UnknownWord {
                what: "kind",
                word: word.to_owned(),
                expected: "crash, hang or corrupt",
            }),
        }
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            When::Now => "now",
            When::MidRequest => "mid-request",
            When::WindowClosed => "window-closed",
            When::Idle => "idle",
            When::AfterSend(code) => {
                let name = virtio_seep::opcode::lookup(*code).map_or("?", |info| info.name);
                return write!(f, "after:{name}");
            }
        })
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Crash => "crash",
            Kind::Hang => "hang",
            Kind::Corrupt => "corrupt",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_bad_words_say_what_is_expected() {
        let after_kill = When::AfterSend(virtio_seep::opcode::SYS_KILL_DOMAIN);
        assert_eq!(after_kill.to_string(), "after:sys-kill-domain");
        assert!(
            after_kill.to_string().parse::<When>().is_err(),
            "planned only"
        );
        for when in [When::Now, When::Idle, When::MidRequest, When::WindowClosed] {
            assert_eq!(when.to_string().parse::<When>(), Ok(when));
        }
        for kind in [Kind::Crash, Kind::Hang, Kind::Corrupt] {
            assert_eq!(kind.to_string().parse::<Kind>(), Ok(kind));
        }
        let bad = "later".parse::<When>().unwrap_err().to_string();
        assert!(
            bad.contains("now, idle, mid-request or window-closed"),
            "{bad}"
        );
        assert!("melt".parse::<Kind>().is_err());
    }
}
