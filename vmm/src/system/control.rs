//! The control socket of a running system (`ankh up --control PATH`, `ankh ctl`).
//!
//! Protocol: a Unix stream socket; the client writes one JSON object per line, the
//! system answers one JSON object per line.
//!
//! - `{"cmd":"kill","domain":"vfs","when":"mid-request","kind":"crash"}` injects a
//!   fault into a server, which is then recovered by its policy. `when` is `now`, `idle`,
//!   `mid-request` (the default) or `window-closed`; `kind` is `crash` (the default),
//!   `hang` or `corrupt` (see [`super::injection`]). Answer: `{"ok":true}`, or
//!   `{"ok":false,"error":"..."}`.
//! - `{"cmd":"status"}` answers `{"ok":true,"domains":[...]}` with, per server domain:
//!   `name`, `state` (`up`, `stopped`), `requests` (delivered), `checkpoints`,
//!   `checkpoint_pages` (copied in all) and `pages_per_checkpoint`, `recoveries`
//!   (count per action), `finished_in_window` and `finished`, and `window_share`
//!   (the share of finished requests that finished inside their window).
//!
//! Anything else is answered `{"ok":false,"error":"..."}`; the connection stays open.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::injection::{Injection, Kind, When};

/// What one server domain has done, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DomainStats {
    /// The domain's name.
    pub name: String,
    /// `up` while it serves, `stopped` once it stopped for good.
    pub state: &'static str,
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
    kills: Mutex<Vec<(String, Injection)>>,
    stats: Mutex<BTreeMap<String, DomainStats>>,
}

impl ControlHub {
    /// Plans `injection` into `domain`.
    pub fn plan_kill(&self, domain: &str, injection: Injection) {
        let mut kills = self.kills.lock().expect("hub lock");
        kills.push((domain.to_owned(), injection));
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

    /// Updates the statistics of `domain`.
    pub fn update(&self, domain: &str, update: impl FnOnce(&mut DomainStats)) {
        let mut stats = self.stats.lock().expect("hub lock");
        let entry = stats
            .entry(domain.to_owned())
            .or_insert_with(|| DomainStats {
                name: domain.to_owned(),
                state: "up",
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
            Some("kill") => match self.kill(&request) {
                Ok(()) => r#"{"ok":true}"#.to_owned(),
                Err(message) => error(&message),
            },
            Some("status") => {
                let stats = self.stats.lock().expect("hub lock");
                let domains: Vec<serde_json::Value> = stats.values().map(status_of).collect();
                serde_json::json!({ "ok": true, "domains": domains }).to_string()
            }
            Some(other) => error(&format!("unknown cmd {other:?} (kill, status)")),
            None => error("a request needs a \"cmd\""),
        }
    }

    /// A `kill` request: plans the injection it names.
    fn kill(&self, request: &serde_json::Value) -> Result<(), String> {
        let domain = request["domain"]
            .as_str()
            .ok_or("kill needs a \"domain\"")?;
        if !self.stats.lock().expect("hub lock").contains_key(domain) {
            return Err(format!("no server domain called {domain:?}"));
        }
        let word = |key: &str, default: &'static str| match &request[key] {
            serde_json::Value::Null => Ok(default),
            value => value.as_str().ok_or(format!("\"{key}\" must be a string")),
        };
        let when: When = word("when", "mid-request")?
            .parse()
            .map_err(|e| format!("{e}"))?;
        let kind: Kind = word("kind", "crash")?.parse().map_err(|e| format!("{e}"))?;
        self.plan_kill(domain, Injection { when, kind });
        Ok(())
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

/// One domain's `status` entry: its counters and the ratios derived from them.
fn status_of(stats: &DomainStats) -> serde_json::Value {
    let mut value = serde_json::to_value(stats).expect("plain data");
    let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
    value["pages_per_checkpoint"] = ratio(stats.checkpoint_pages, stats.checkpoints).into();
    value["window_share"] = ratio(stats.finished_in_window, stats.finished).into();
    value
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
        let mid = [When::MidRequest, When::WindowClosed];
        assert_eq!(hub.take_kill("vfs", &mid), Some(Injection::default()));
        assert_eq!(hub.take_kill("vfs", &mid), None);
        assert_eq!(
            hub.answer(r#"{"cmd":"kill","domain":"vfs","when":"now","kind":"hang"}"#),
            r#"{"ok":true}"#
        );
        assert_eq!(hub.take_kill("vfs", &mid), None);
        let now = Injection {
            when: When::Now,
            kind: Kind::Hang,
        };
        assert_eq!(hub.take_kill("vfs", &[When::Now]), Some(now));
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
        assert_eq!(status["domains"][0]["state"], "up");
        assert_eq!(status["domains"][0]["window_share"], 1.0);
        assert_eq!(
            status["domains"][0]["pages_per_checkpoint"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn bad_requests_get_an_error_line() {
        let hub = ControlHub::default();
        hub.update("ds", |_| {});
        for bad in [
            "",
            "{",
            r#"{"cmd":"reboot"}"#,
            r#"{"x":1}"#,
            r#"{"cmd":"kill"}"#,
            r#"{"cmd":"kill","domain":"ds","when":"later"}"#,
            r#"{"cmd":"kill","domain":"ds","kind":"melt"}"#,
            r#"{"cmd":"kill","domain":"ds","kind":3}"#,
        ] {
            let answer: serde_json::Value = serde_json::from_str(&hub.answer(bad)).unwrap();
            assert_eq!(answer["ok"], false, "{bad}");
        }
    }
}
