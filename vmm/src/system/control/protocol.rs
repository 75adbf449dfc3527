//! The control protocol's messages, typed: a [`Request`] is one JSON line in, a
//! [`Reply`] one JSON line out (the wire format is in the docs of [`super`]).

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::system::injection::{Kind, When};

/// A request, as a client writes it: `{"cmd":"kill",...}` or `{"cmd":"status"}`.
/// Unknown commands and unknown fields are refused, so that a misspelt field is an
/// error rather than a silent default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Inject a fault into a server; its recovery policy then acts.
    Kill {
        /// The server domain.
        domain: String,
        /// When it strikes (default `mid-request`).
        #[serde(default, with = "word")]
        when: When,
        /// What it does (default `crash`).
        #[serde(default, with = "word")]
        kind: Kind,
    },
    /// Every server's counters. (Braces: a unit variant would accept unknown fields.)
    Status {},
}

/// A request line that is not a [`Request`]: the parser's own words (which field,
/// which value, where in the line).
///
/// The parser's error is in the message only (not a `source` too), so that it is said
/// once wherever the error is printed.
#[derive(Debug, thiserror::Error)]
#[error("bad request: {0}")]
pub struct BadRequest(serde_json::Error);

impl From<serde_json::Error> for BadRequest {
    fn from(error: serde_json::Error) -> BadRequest {
        BadRequest(error)
    }
}

impl Request {
    /// Parses one request line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Request, BadRequest> {
        Ok(serde_json::from_slice(line)?)
    }

    /// The request as one line, without the newline (what `ankh ctl` sends).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a request is plain data")
    }
}

/// What one server domain has done, for `status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DomainStats {
    /// The domain's name.
    pub name: String,
    /// [`super::BOOTING`] until the system booted it, [`super::UP`] while it
    /// serves, [`super::STOPPED`] once it stopped for good.
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
    /// Nanoseconds it ran, with a request in hand, inside an open window.
    pub run_in_window_ns: u64,
    /// Nanoseconds it ran with a request in hand.
    pub run_ns: u64,
}

/// One domain's `status` entry: its counters and the ratios derived from them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DomainStatus {
    /// The counters.
    #[serde(flatten)]
    pub stats: DomainStats,
    /// Pages copied per checkpoint; `null` before the first checkpoint.
    pub pages_per_checkpoint: Option<f64>,
    /// The share of finished requests that finished inside their window; `null`
    /// before the first finished request.
    pub window_share: Option<f64>,
    /// The share of its run time (with a request in hand) inside an open window:
    /// OSIRIS's coverage, with time for instructions; `null` before it ran.
    pub run_window_share: Option<f64>,
}

impl From<&DomainStats> for DomainStatus {
    fn from(stats: &DomainStats) -> DomainStatus {
        let ratio = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        DomainStatus {
            stats: stats.clone(),
            pages_per_checkpoint: ratio(stats.checkpoint_pages, stats.checkpoints),
            window_share: ratio(stats.finished_in_window, stats.finished),
            run_window_share: ratio(stats.run_in_window_ns, stats.run_ns),
        }
    }
}

/// The answer to one request line.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The request was accepted: `{"ok":true}`.
    Done,
    /// `status`: `{"ok":true,"domains":[...]}`.
    Status(Vec<DomainStatus>),
    /// The request was refused, and why: `{"ok":false,"error":"..."}`.
    Refused(String),
}

impl Reply {
    /// The reply as one line, with its newline.
    pub fn to_line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("a reply is plain data");
        line.push('\n');
        line
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match self {
            Reply::Done => map.serialize_entry("ok", &true)?,
            Reply::Status(domains) => {
                map.serialize_entry("ok", &true)?;
                map.serialize_entry("domains", domains)?;
            }
            Reply::Refused(error) => {
                map.serialize_entry("ok", &false)?;
                map.serialize_entry("error", error)?;
            }
        }
        map.end()
    }
}

/// [`When`] and [`Kind`] on the wire: the words their `Display` and `FromStr` use
/// (the same as `ankh ctl`'s flags), so a bad word is answered with the list of good
/// ones.
mod word {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(value)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        word.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_defaults_and_round_trip() {
        let kill = Request::parse(br#"{"cmd":"kill","domain":"vfs"}"#).unwrap();
        assert_eq!(
            kill,
            Request::Kill {
                domain: "vfs".into(),
                when: When::MidRequest,
                kind: Kind::Crash
            }
        );
        let hang = Request::Kill {
            domain: "ds".into(),
            when: When::Idle,
            kind: Kind::Hang,
        };
        assert_eq!(
            hang.to_line(),
            r#"{"cmd":"kill","domain":"ds","when":"idle","kind":"hang"}"#
        );
        assert_eq!(Request::parse(hang.to_line().as_bytes()).unwrap(), hang);
        assert_eq!(
            Request::parse(br#" {"cmd":"status"} "#).unwrap(),
            Request::Status {}
        );
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (line, says) in [
            ("", "EOF"),
            ("{", "EOF"),
            ("[1]", "invalid type"),
            (r#"{"x":1}"#, "missing field `cmd`"),
            (r#"{"cmd":"reboot"}"#, "unknown variant `reboot`"),
            (r#"{"cmd":"kill"}"#, "missing field `domain`"),
            (r#"{"cmd":"kill","domain":7}"#, "invalid type: integer"),
            (
                r#"{"cmd":"kill","domain":"ds","when":"later"}"#,
                "now, idle, mid-request or window-closed",
            ),
            (
                r#"{"cmd":"kill","domain":"ds","kind":"melt"}"#,
                "crash, hang or corrupt",
            ),
            (r#"{"cmd":"kill","domain":"ds","kind":3}"#, "invalid type"),
            (r#"{"cmd":"kill","domain":"ds","kinds":"hang"}"#, "kinds"),
            (r#"{"cmd":"status","verbose":true}"#, "verbose"),
        ] {
            let error = Request::parse(line.as_bytes()).unwrap_err().to_string();
            assert!(error.starts_with("bad request: "), "{line}: {error}");
            assert!(error.contains(says), "{line}: {error}");
        }
        assert!(Request::parse(b"{\"cmd\":\"st\xffatus\"}").is_err());
    }

    #[test]
    fn replies_are_one_json_line() {
        assert_eq!(Reply::Done.to_line(), "{\"ok\":true}\n");
        assert_eq!(
            Reply::Refused("no \"x\"".into()).to_line(),
            "{\"ok\":false,\"error\":\"no \\\"x\\\"\"}\n"
        );
        let stats = DomainStats {
            name: "ds".into(),
            state: "up",
            checkpoints: 2,
            checkpoint_pages: 6,
            ..DomainStats::default()
        };
        let line = Reply::Status(vec![DomainStatus::from(&stats)]).to_line();
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["ok"], true);
        assert_eq!(value["domains"][0]["name"], "ds");
        assert_eq!(value["domains"][0]["pages_per_checkpoint"], 3.0);
        assert_eq!(value["domains"][0]["window_share"], serde_json::Value::Null);
    }
}
