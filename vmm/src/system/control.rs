//! The control socket of a running system (`ankh up --control PATH`, `ankh ctl`).
//!
//! Protocol: a Unix stream socket; the client writes one JSON object per line, the
//! system answers one JSON object per line.
//!
//! - `{"cmd":"kill","domain":"vfs"}` plans a hot-kill: the server crashes right after
//!   its next request is delivered (mid-request) and is recovered by its policy.
//!   Answer: `{"ok":true}`, or `{"ok":false,"error":"..."}`.
//! - `{"cmd":"status"}` answers `{"ok":true,"domains":[...]}` with, per server domain:
//!   `name`, `requests` (delivered), `checkpoints`, `checkpoint_pages` (copied in
//!   all), `recoveries` (count per action), `finished_in_window` and `finished` (so
//!   the share of requests that finished inside their window is the ratio).
//!
//! Anything else is answered `{"ok":false,"error":"..."}`; the connection stays open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// What one server domain has done, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DomainStats {
    /// The domain's name.
    pub name: String,
    /// Requests delivered to it.
    pub requests: u64,
    /// Checkpoints taken.
    pub checkpoints: u64,
    /// Pages copied by those checkpoints.
    pub checkpoint_pages: u64,
    /// Recoveries, by action (`rollback+error`, `restart`, ...).
    pub recoveries: BTreeMap<String, u64>,
    /// Requests that finished with the window still open.
    pub finished_in_window: u64,
    /// Requests that finished.
    pub finished: u64,
}

/// Shared between the control socket and the vCPU threads.
#[derive(Debug, Default)]
pub struct ControlHub {
    kills: Mutex<Vec<String>>,
    stats: Mutex<BTreeMap<String, DomainStats>>,
}

impl ControlHub {
    /// Plans a hot-kill of `domain` at its next request.
    pub fn plan_kill(&self, domain: &str) {
        self.kills.lock().expect("hub lock").push(domain.to_owned());
    }

    /// Takes a planned hot-kill of `domain`, if any.
    pub fn take_kill(&self, domain: &str) -> bool {
        let mut kills = self.kills.lock().expect("hub lock");
        match kills.iter().position(|d| d == domain) {
            Some(at) => {
                kills.remove(at);
                true
            }
            None => false,
        }
    }

    /// Updates the statistics of `domain`.
    pub fn update(&self, domain: &str, update: impl FnOnce(&mut DomainStats)) {
        let mut stats = self.stats.lock().expect("hub lock");
        let entry = stats
            .entry(domain.to_owned())
            .or_insert_with(|| DomainStats {
                name: domain.to_owned(),
                ..DomainStats::default()
            });
        update(entry);
    }

    /// Answers one request line.
    pub fn answer(&self, line: &str) -> String {
        let request: serde_json::Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(e) => return error(&format!("not JSON: {e}")),
        };
        match request["cmd"].as_str() {
            Some("kill") => match request["domain"].as_str() {
                Some(domain) if self.stats.lock().expect("hub lock").contains_key(domain) => {
                    self.plan_kill(domain);
                    r#"{"ok":true}"#.to_owned()
                }
                Some(domain) => error(&format!("no server domain called {domain:?}")),
                None => error("kill needs a \"domain\""),
            },
            Some("status") => {
                let stats = self.stats.lock().expect("hub lock");
                let domains: Vec<&DomainStats> = stats.values().collect();
                serde_json::json!({ "ok": true, "domains": domains }).to_string()
            }
            Some(other) => error(&format!("unknown cmd {other:?} (kill, status)")),
            None => error("a request needs a \"cmd\""),
        }
    }

    /// Serves the socket at `path` on a thread of its own (the file is replaced).
    pub fn serve(self: &Arc<Self>, path: &Path) -> std::io::Result<()> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let hub = Arc::clone(self);
        std::thread::Builder::new()
            .name("ankh-control".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let hub = Arc::clone(&hub);
                    std::thread::spawn(move || hub.converse(stream));
                }
            })?;
        Ok(())
    }

    fn converse(&self, stream: UnixStream) {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let answer = self.answer(&line);
            if writeln!(writer, "{answer}").is_err() {
                return;
            }
        }
    }
}

fn error(message: &str) -> String {
    serde_json::json!({ "ok": false, "error": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_are_planned_once_for_known_servers() {
        let hub = ControlHub::default();
        hub.update("vfs", |s| s.requests += 1);
        assert_eq!(
            hub.answer(r#"{"cmd":"kill","domain":"vfs"}"#),
            r#"{"ok":true}"#
        );
        assert!(hub.take_kill("vfs"));
        assert!(!hub.take_kill("vfs"));
        assert!(hub
            .answer(r#"{"cmd":"kill","domain":"nope"}"#)
            .contains("no server domain"));
    }

    #[test]
    fn status_reports_every_counter() {
        let hub = ControlHub::default();
        hub.update("ds", |s| {
            s.requests = 3;
            s.finished = 2;
            s.finished_in_window = 2;
            *s.recoveries.entry("rollback+error".into()).or_default() += 1;
        });
        let status: serde_json::Value =
            serde_json::from_str(&hub.answer(r#"{"cmd":"status"}"#)).unwrap();
        assert_eq!(status["ok"], true);
        assert_eq!(status["domains"][0]["name"], "ds");
        assert_eq!(status["domains"][0]["requests"], 3);
        assert_eq!(status["domains"][0]["recoveries"]["rollback+error"], 1);
    }

    #[test]
    fn bad_requests_get_an_error_line() {
        let hub = ControlHub::default();
        for bad in [
            "",
            "{",
            r#"{"cmd":"reboot"}"#,
            r#"{"x":1}"#,
            r#"{"cmd":"kill"}"#,
        ] {
            let answer: serde_json::Value = serde_json::from_str(&hub.answer(bad)).unwrap();
            assert_eq!(answer["ok"], false, "{bad}");
        }
    }
}
