//! The control plane of a running system (`ankh up --control PATH`, `ankh ctl`): the
//! [`ControlHub`] the vCPU threads share with it, and the socket that serves it.
//!
//! Protocol: a Unix stream socket; the client writes one JSON object per line (at most
//! [`MAX_LINE`] bytes), the system answers one JSON object per line, in order.
//!
//! - `{"cmd":"kill","domain":"vfs","when":"mid-request","kind":"crash"}` injects a
//!   fault into a server, which is then recovered by its policy. `when` is `now`, `idle`,
//!   `mid-request` (the default) or `window-closed`; `kind` is `crash` (the default),
//!   `hang` or `corrupt` (see [`super::injection`]). Answer: `{"ok":true}`, or
//!   `{"ok":false,"error":"..."}`. A kill for a server of the system that has not
//!   booted or served yet is accepted: it waits for its moment like any other.
//! - `{"cmd":"status"}` answers `{"ok":true,"domains":[...]}` with, per server domain:
//!   `name`, `state` (`booting`, `up`, `stopped`), `requests` (delivered),
//!   `checkpoints`, `checkpoint_pages` (copied in all) and `pages_per_checkpoint`,
//!   `recoveries` (count per action), `finished_in_window` and `finished`, and
//!   `run_window_share` (the share of its run time, with a request in hand, inside
//!   an open window: OSIRIS's coverage, with time for instructions),
//!   `window_share` (the share of finished requests that finished inside their
//!   window).
//!
//! A line that is not such a request (bad JSON, an unknown command or field, a bad
//! word) is answered `{"ok":false,"error":"..."}` and the connection stays open. A line
//! longer than [`MAX_LINE`] is answered with an error and the connection is closed.
//! At most [`MAX_CONNECTIONS`] clients are served at once; more are told so and
//! closed, and so is a client idle for [`IDLE_LIMIT`].

mod connection;
mod protocol;
mod signals;
mod socket;

pub use protocol::{BadRequest, DomainStats, DomainStatus, Reply, Request};
pub use socket::{ControlServer, ControlSocketError, ExitSignals};

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::injection::{Injection, When};

/// The longest request line served, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

/// Clients served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// A client that neither sends nor takes a byte for this long is closed, so that idle
/// clients cannot hold the [`MAX_CONNECTIONS`] places for good.
pub const IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Kills accepted and not struck yet, over all servers. Programs and servers make a
/// call answered `ERESTART` more times than this (`ankh_proto::server::
/// RESTART_RETRIES`), so that queued kills alone cannot make them give up.
pub const MAX_PENDING_KILLS: usize = 64;
const _: () = assert!(ankh_proto::server::RESTART_RETRIES as usize >= MAX_PENDING_KILLS);

/// [`DomainStats::state`] of a server the system has not booted yet.
pub const BOOTING: &str = "booting";
/// [`DomainStats::state`] of a server that is serving.
pub const UP: &str = "up";
/// [`DomainStats::state`] of a server that stopped for good.
pub const STOPPED: &str = "stopped";

/// What the control plane calls to wake the threads that strike kills.
type Waker = Box<dyn Fn() + Send + Sync>;

/// Shared between the control socket and the vCPU threads: kills waiting to strike,
/// every server's counters, and how to wake the scheduler.
#[derive(Default)]
pub struct ControlHub {
    kills: Mutex<Vec<(String, Injection)>>,
    stats: Mutex<BTreeMap<String, DomainStats>>,
    waker: Mutex<Option<Waker>>,
}

impl std::fmt::Debug for ControlHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlHub")
            .field("kills", &self.kills)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl ControlHub {
    /// A hub for a system whose server domains are `servers`: they are in `status`
    /// (as [`BOOTING`]) and accept kills from the start, before the system booted them.
    pub fn new<S: Into<String>>(servers: impl IntoIterator<Item = S>) -> ControlHub {
        let stats = servers
            .into_iter()
            .map(|name| {
                let name = name.into();
                let stats = DomainStats {
                    name: name.clone(),
                    state: BOOTING,
                    ..DomainStats::default()
                };
                (name, stats)
            })
            .collect();
        ControlHub {
            stats: Mutex::new(stats),
            ..ControlHub::default()
        }
    }

    /// Sets what to call after a kill is planned, so that the threads that strike it
    /// look at once instead of polling; replaces the previous waker.
    ///
    /// The waker is called on the control thread with no lock of the hub held except
    /// the waker's own, so it may take the scheduler's lock (the scheduler may call
    /// [`ControlHub::take_kill`] under its lock). To wake a thread blocked on a
    /// condition variable without losing the wake-up, take the condition variable's
    /// mutex before notifying.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        *self.waker.lock().expect("hub lock") = Some(Box::new(waker));
    }

    /// Removes the waker. A call of it in progress finishes before this returns, so
    /// whatever the waker refers to may be dropped afterwards.
    pub fn clear_waker(&self) {
        *self.waker.lock().expect("hub lock") = None;
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().expect("hub lock").as_ref() {
            waker();
        }
    }

    /// Plans `injection` into `domain` and wakes the scheduler.
    pub fn plan_kill(&self, domain: &str, injection: Injection) {
        self.kills
            .lock()
            .expect("hub lock")
            .push((domain.to_owned(), injection));
        self.wake();
    }

    /// Takes the oldest planned injection into `domain` that strikes at one of
    /// `when`, if any.
    pub fn take_kill(&self, domain: &str, when: &[When]) -> Option<Injection> {
        let mut kills = self.kills.lock().expect("hub lock");
        let at = kills
            .iter()
            .position(|(d, i)| d == domain && when.contains(&i.when))?;
        Some(kills.remove(at).1)
    }

    /// Updates the statistics of `domain`. The system reports on a domain once it
    /// booted it: a [`BOOTING`] domain is [`UP`] from its first update on.
    pub fn update(&self, domain: &str, update: impl FnOnce(&mut DomainStats)) {
        let mut stats = self.stats.lock().expect("hub lock");
        let entry = stats
            .entry(domain.to_owned())
            .or_insert_with(|| DomainStats {
                name: domain.to_owned(),
                state: UP,
                ..DomainStats::default()
            });
        if entry.state == BOOTING {
            entry.state = UP;
        }
        update(entry);
    }

    /// Answers one request line (without its newline) with one reply line.
    pub fn answer(&self, line: impl AsRef<[u8]>) -> String {
        match Request::parse(line.as_ref()) {
            Ok(request) => self.handle(request),
            Err(bad) => Reply::Refused(bad.to_string()),
        }
        .to_line()
    }

    /// Carries out one request.
    pub fn handle(&self, request: Request) -> Reply {
        match request {
            Request::Kill { domain, when, kind } => match self.accept_kill(&domain) {
                Ok(()) => {
                    self.plan_kill(
                        &domain,
                        Injection {
                            when,
                            kind,
                            operator: true,
                        },
                    );
                    Reply::Done
                }
                Err(why) => Reply::Refused(why),
            },
            Request::Status {} => {
                let stats = self.stats.lock().expect("hub lock");
                Reply::Status(stats.values().map(DomainStatus::from).collect())
            }
        }
    }

    /// Whether a kill of `domain` can be accepted now, and if not, why.
    fn accept_kill(&self, domain: &str) -> Result<(), String> {
        let stats = self.stats.lock().expect("hub lock");
        match stats.get(domain) {
            None => {
                let servers: Vec<&str> = stats.keys().map(String::as_str).collect();
                Err(if servers.is_empty() {
                    format!("no server domain called {domain:?}")
                } else {
                    format!(
                        "no server domain called {domain:?} (servers: {})",
                        servers.join(", ")
                    )
                })
            }
            Some(stats) if stats.state == STOPPED => Err(format!(
                "server {domain:?} has stopped for good: there is nothing left to kill"
            )),
            Some(_) if self.kills.lock().expect("hub lock").len() >= MAX_PENDING_KILLS => {
                Err(format!(
                    "{MAX_PENDING_KILLS} kills already wait to strike; \
                     send this one once some have struck"
                ))
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
