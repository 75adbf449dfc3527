//! Recovery events: the log line, the JSON shape, and coverage counts.

use std::time::Duration;

use ankh_recovery::{
    Action, Coverage, CoverageStats, RecoveryEvent, SeepClass, ShutdownReason, WindowState,
};
use serde_json::{json, Value};

fn rollback_event() -> RecoveryEvent {
    RecoveryEvent {
        domain_id: 2,
        domain_name: "vfs".into(),
        request_id: Some(42),
        fault: "cpu-exception".into(),
        detail: None,
        action: Action::Rollback { error_reply: true },
        decided: Action::Rollback { error_reply: true },
        note: None,
        latency: Duration::from_nanos(35_400),
        window: WindowState::Open { request: 42 },
    }
}

#[test]
fn display_is_one_line() {
    assert_eq!(
        rollback_event().to_string(),
        "recovery: vfs request 42 cpu-exception -> rollback+error in 35 us"
    );
    let idle = RecoveryEvent {
        request_id: None,
        action: Action::Rollback { error_reply: false },
        window: WindowState::Idle,
        fault: "hot-kill".into(),
        ..rollback_event()
    };
    assert_eq!(
        idle.to_string(),
        "recovery: vfs no request hot-kill -> rollback in 35 us"
    );
    let panic = RecoveryEvent {
        fault: "guest-panic".into(),
        detail: Some("guest panic at src/x.rs:12: boom".into()),
        ..rollback_event()
    };
    assert_eq!(
        panic.to_string(),
        "recovery: vfs request 42 guest-panic (guest panic at src/x.rs:12: boom) -> \
         rollback+error in 35 us"
    );
}

#[test]
fn json_shape_of_a_rollback() {
    let value: Value = serde_json::from_str(&rollback_event().to_json()).unwrap();
    assert_eq!(
        value,
        json!({
            "domain_id": 2,
            "domain_name": "vfs",
            "request_id": 42,
            "fault": "cpu-exception",
            "fault_detail": null,
            "action": "rollback+error",
            "decided": "rollback+error",
            "note": null,
            "shutdown_reason": null,
            "latency_ns": 35_400,
            "window": "open",
            "window_closed_by": null,
        })
    );
}

#[test]
fn json_shape_of_a_shutdown() {
    let event = RecoveryEvent {
        action: Action::Shutdown {
            reason: ShutdownReason::WindowClosed {
                request: 42,
                by: SeepClass::External,
            },
        },
        window: WindowState::Closed {
            request: 42,
            by: SeepClass::External,
        },
        ..rollback_event()
    };
    let line = event.to_json();
    assert!(!line.contains('\n'));
    let value: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(value["action"], "shutdown");
    assert_eq!(
        value["shutdown_reason"],
        "fault after request 42 exposed state (external message)"
    );
    assert_eq!(value["window"], "closed");
    assert_eq!(value["window_closed_by"], "external");
    assert_eq!(value.as_object().unwrap().len(), 12);
    assert!(event.to_string().ends_with(
        "-> shutdown (fault after request 42 exposed state (external message)) in 35 us"
    ));
}

#[test]
fn an_outcome_that_differs_from_the_decision_says_why() {
    let event = RecoveryEvent {
        action: Action::Restart,
        note: Some("rollback refused: checkpoint poisoned".into()),
        ..rollback_event()
    };
    assert_eq!(
        event.to_string(),
        "recovery: vfs request 42 cpu-exception -> restart in 35 us: \
         rollback refused: checkpoint poisoned"
    );
    let value: Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(value["action"], "restart");
    assert_eq!(value["decided"], "rollback+error");
    assert_eq!(value["note"], "rollback refused: checkpoint poisoned");
}

#[test]
fn json_of_an_idle_halt() {
    let event = RecoveryEvent {
        request_id: None,
        action: Action::Halt,
        window: WindowState::Idle,
        latency: Duration::MAX,
        ..rollback_event()
    };
    let value: Value = serde_json::from_str(&event.to_json()).unwrap();
    assert_eq!(value["request_id"], Value::Null);
    assert_eq!(value["action"], "halt");
    assert_eq!(value["window"], "idle");
    assert_eq!(value["latency_ns"], u64::MAX);
}

#[test]
fn coverage_counts_finished_requests() {
    let mut stats = CoverageStats::new();
    let closed = WindowState::Closed {
        request: 1,
        by: SeepClass::Update,
    };
    stats.record(2, WindowState::Open { request: 1 });
    stats.record(2, WindowState::Open { request: 2 });
    stats.record(2, closed);
    stats.record(3, closed);
    stats.record(4, WindowState::Idle);
    assert_eq!(
        stats.get(2),
        Coverage {
            open: 2,
            closed: 1,
            ..Coverage::default()
        }
    );
    assert_eq!(
        stats.get(3),
        Coverage {
            open: 0,
            closed: 1,
            ..Coverage::default()
        }
    );
    assert_eq!(stats.get(4), Coverage::default());
    assert_eq!(stats.iter().map(|(id, _)| id).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(
        stats.total(),
        Coverage {
            open: 2,
            closed: 2,
            ..Coverage::default()
        }
    );
    assert_eq!(stats.total().share_open(), Some(0.5));
    assert_eq!(Coverage::default().share_open(), None);
    assert_eq!(stats.get(2).total(), 3);
}

#[test]
fn coverage_counts_run_time_inside_and_outside_the_window() {
    let mut stats = CoverageStats::new();
    assert_eq!(stats.get(2).run_share_open(), None);
    stats.record_run(2, true, 300);
    stats.record_run(2, false, 100);
    stats.record_run(3, false, 50);
    assert_eq!(stats.get(2).run_share_open(), Some(0.75));
    assert_eq!(stats.get(3).run_share_open(), Some(0.0));
    assert_eq!(stats.total().run_open_ns, 300);
    assert_eq!(stats.total().run_closed_ns, 150);
    // Run time is not a finished request.
    assert_eq!(stats.get(2).total(), 0);
}

#[test]
fn a_fault_in_a_one_way_message_is_named_as_such() {
    let window = WindowState::Closed {
        request: ankh_recovery::ONE_WAY,
        by: SeepClass::Update,
    };
    let event = RecoveryEvent {
        request_id: None,
        action: ankh_recovery::decide(ankh_recovery::Policy::Enhanced, window, false),
        window,
        ..rollback_event()
    };
    assert_eq!(
        event.to_string(),
        "recovery: vfs one-way message cpu-exception -> shutdown (fault after a one-way \
         message exposed state (update message)) in 35 us"
    );
}
