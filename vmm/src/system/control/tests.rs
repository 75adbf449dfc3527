//! The hub's answers: kills planned and taken once, refused with a reason, the
//! scheduler woken; status counters.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::system::injection::Kind;

fn answer_of(hub: &ControlHub, line: &str) -> serde_json::Value {
    serde_json::from_str(&hub.answer(line)).expect("a JSON reply")
}

#[test]
fn kills_are_planned_once_for_known_servers() {
    let hub = ControlHub::default();
    hub.update("vfs", |s| s.requests += 1);
    assert_eq!(
        hub.answer(r#"{"cmd":"kill","domain":"vfs"}"#),
        "{\"ok\":true}\n"
    );
    let mid = [When::MidRequest, When::WindowClosed];
    assert_eq!(hub.take_kill("vfs", &mid), Some(operators_crash()));
    assert_eq!(hub.take_kill("vfs", &mid), None);
    assert_eq!(
        hub.answer(r#"{"cmd":"kill","domain":"vfs","when":"now","kind":"hang"}"#),
        "{\"ok\":true}\n"
    );
    assert_eq!(hub.take_kill("vfs", &mid), None);
    let now = Injection {
        when: When::Now,
        kind: Kind::Hang,
        operator: true,
    };
    assert_eq!(hub.take_kill("vfs", &[When::Now]), Some(now));
    let refused = answer_of(&hub, r#"{"cmd":"kill","domain":"nope"}"#);
    assert_eq!(refused["ok"], false);
    assert_eq!(
        refused["error"],
        "no server domain called \"nope\" (servers: vfs)"
    );
}

#[test]
fn a_server_that_has_not_booted_or_served_yet_accepts_a_kill() {
    let hub = ControlHub::new(["pm", "vfs"]);
    let status = answer_of(&hub, r#"{"cmd":"status"}"#);
    assert_eq!(status["domains"][0]["name"], "pm");
    assert_eq!(status["domains"][0]["state"], BOOTING);
    assert_eq!(
        hub.answer(r#"{"cmd":"kill","domain":"pm"}"#),
        "{\"ok\":true}\n"
    );
    // It waits until pm's first request is delivered, after its boot.
    hub.update("pm", |_| {});
    let status = answer_of(&hub, r#"{"cmd":"status"}"#);
    assert_eq!(status["domains"][0]["state"], UP);
    assert_eq!(status["domains"][0]["requests"], 0);
    let mid = [When::MidRequest, When::WindowClosed];
    assert_eq!(hub.take_kill("pm", &mid), Some(operators_crash()));
    let refused = answer_of(&hub, r#"{"cmd":"kill","domain":"init"}"#);
    assert_eq!(
        refused["error"],
        "no server domain called \"init\" (servers: pm, vfs)"
    );
}

#[test]
fn kills_are_refused_with_a_reason_for_stopped_servers_and_past_the_bound() {
    let hub = ControlHub::new(["ds", "mm"]);
    hub.update("mm", |s| s.state = STOPPED);
    let refused = answer_of(&hub, r#"{"cmd":"kill","domain":"mm"}"#);
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("stopped for good"),
        "{refused}"
    );
    let kill = r#"{"cmd":"kill","domain":"ds","when":"idle"}"#;
    for _ in 0..MAX_PENDING_KILLS {
        assert_eq!(answer_of(&hub, kill)["ok"], true);
    }
    let refused = answer_of(&hub, kill);
    assert_eq!(refused["ok"], false);
    assert!(
        refused["error"].as_str().unwrap().contains("already wait"),
        "{refused}"
    );
    assert!(hub.take_kill("ds", &[When::Idle]).is_some());
    assert_eq!(answer_of(&hub, kill)["ok"], true);
}

#[test]
fn a_planned_kill_wakes_the_scheduler_and_a_refused_one_does_not() {
    let hub = ControlHub::new(["ds"]);
    let wakes = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&wakes);
    hub.set_waker(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    hub.answer(r#"{"cmd":"kill","domain":"ds","when":"now"}"#);
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    hub.answer(r#"{"cmd":"kill","domain":"nope"}"#);
    hub.answer(r#"{"cmd":"status"}"#);
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    hub.clear_waker();
    hub.answer(r#"{"cmd":"kill","domain":"ds","when":"now"}"#);
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    assert_eq!(
        Arc::strong_count(&wakes),
        1,
        "the cleared waker was dropped"
    );
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
    let status = answer_of(&hub, r#"{"cmd":"status"}"#);
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
        let line = hub.answer(bad);
        assert_eq!(line.matches('\n').count(), 1, "{bad}: {line}");
        let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["ok"], false, "{bad}");
        assert!(answer["error"]
            .as_str()
            .unwrap()
            .starts_with("bad request: "));
    }
    assert_eq!(hub.take_kill("ds", &[When::MidRequest]), None);
}

/// What `{"cmd":"kill"}` plans: a crash mid-request, asked by the operator.
fn operators_crash() -> Injection {
    Injection {
        operator: true,
        ..Injection::default()
    }
}
