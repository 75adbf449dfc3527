//! Escalation boundaries: K faults within T restart, K more shut down.

use std::time::Duration;

use ankh_recovery::{
    Action, Escalate, Escalation, EscalationConfig, EscalationConfigError, ShutdownReason,
};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config(k: u32, t: u64) -> EscalationConfig {
    EscalationConfig::new(k, secs(t)).unwrap()
}

#[test]
fn defaults_are_three_in_ten_seconds() {
    let config = EscalationConfig::default();
    assert_eq!(config.faults(), 3);
    assert_eq!(config.within(), secs(10));
    assert_eq!(Escalation::default().config(), &config);
}

#[test]
fn config_refuses_zero() {
    assert_eq!(
        EscalationConfig::new(0, secs(1)),
        Err(EscalationConfigError::ZeroFaults)
    );
    assert_eq!(
        EscalationConfig::new(1, Duration::ZERO),
        Err(EscalationConfigError::ZeroPeriod)
    );
    assert_eq!(
        EscalationConfigError::ZeroFaults.to_string(),
        "escalation fault count must be at least 1"
    );
}

#[test]
fn k_minus_one_faults_do_not_escalate() {
    let mut e = Escalation::default();
    assert_eq!(e.record_fault(secs(0)), Escalate::None);
    assert_eq!(e.record_fault(secs(1)), Escalate::None);
    assert!(!e.restarted());
}

#[test]
fn k_faults_exactly_t_apart_escalate() {
    let mut e = Escalation::default();
    assert_eq!(e.record_fault(secs(0)), Escalate::None);
    assert_eq!(e.record_fault(secs(5)), Escalate::None);
    assert_eq!(e.record_fault(secs(10)), Escalate::Restart);
    assert!(e.restarted());
}

#[test]
fn k_faults_just_over_t_apart_do_not() {
    let mut e = Escalation::default();
    let t = secs(10) + Duration::from_nanos(1);
    assert_eq!(e.record_fault(Duration::ZERO), Escalate::None);
    assert_eq!(e.record_fault(secs(5)), Escalate::None);
    assert_eq!(e.record_fault(t), Escalate::None);
    // The window slid: 5 s and 10 s + 1 ns are still counted.
    assert_eq!(e.record_fault(secs(15)), Escalate::Restart);
}

#[test]
fn k_more_faults_after_the_restart_shut_down_for_good() {
    let mut e = Escalation::default();
    for s in [0, 1] {
        assert_eq!(e.record_fault(secs(s)), Escalate::None);
    }
    assert_eq!(e.record_fault(secs(2)), Escalate::Restart);
    // The count starts again after the restart: two faults are not enough.
    assert_eq!(e.record_fault(secs(3)), Escalate::None);
    assert_eq!(e.record_fault(secs(4)), Escalate::None);
    assert_eq!(e.record_fault(secs(5)), Escalate::Shutdown);
    assert!(!e.restarted());
    assert_eq!(e.record_fault(secs(1000)), Escalate::Shutdown);
}

#[test]
fn slow_faults_after_the_restart_keep_the_restarted_stage() {
    let mut e = Escalation::default();
    for s in [0, 1, 2] {
        e.record_fault(secs(s));
    }
    assert!(e.restarted());
    // Faults every 8 s: never three within 10 s, never more than 10 s of quiet.
    for s in [10, 18, 26, 34] {
        assert_eq!(e.record_fault(secs(s)), Escalate::None, "{s}");
        assert!(e.restarted());
    }
    // Then a burst: within T of the last fault, so it is the same episode.
    assert_eq!(e.record_fault(secs(35)), Escalate::Shutdown);
}

#[test]
fn quiet_for_exactly_t_after_the_restart_is_not_forgiven() {
    let mut e = Escalation::default();
    for s in [0, 1, 2] {
        e.record_fault(secs(s));
    }
    for s in [12, 13] {
        assert_eq!(e.record_fault(secs(s)), Escalate::None);
    }
    assert_eq!(e.record_fault(secs(14)), Escalate::Shutdown);
}

#[test]
fn quiet_for_longer_than_t_after_the_restart_is_forgiven() {
    let mut e = Escalation::default();
    for s in [0, 1, 2] {
        e.record_fault(secs(s));
    }
    let later = secs(12) + Duration::from_nanos(1);
    assert_eq!(e.record_fault(later), Escalate::None);
    assert!(!e.restarted());
    assert_eq!(e.record_fault(later + secs(1)), Escalate::None);
    assert_eq!(e.record_fault(later + secs(2)), Escalate::Restart);
}

#[test]
fn k_of_one_restarts_then_shuts_down() {
    let mut e = Escalation::new(config(1, 10));
    assert_eq!(e.record_fault(secs(0)), Escalate::Restart);
    assert_eq!(e.record_fault(secs(10)), Escalate::Shutdown);
    let mut e = Escalation::new(config(1, 10));
    assert_eq!(e.record_fault(secs(0)), Escalate::Restart);
    assert_eq!(e.record_fault(secs(11)), Escalate::Restart);
}

#[test]
fn time_going_backwards_counts_as_no_gap() {
    let mut e = Escalation::default();
    assert_eq!(e.record_fault(secs(100)), Escalate::None);
    assert_eq!(e.record_fault(secs(50)), Escalate::None);
    assert_eq!(e.record_fault(secs(60)), Escalate::Restart);
}

#[test]
fn apply_combines_with_the_decision() {
    let config = EscalationConfig::default();
    let repeated = Action::Shutdown {
        reason: ShutdownReason::RepeatedFaults {
            faults: 3,
            within: secs(10),
        },
    };
    let closed = Action::Shutdown {
        reason: ShutdownReason::WindowClosed {
            request: 1,
            by: ankh_recovery::SeepClass::Update,
        },
    };
    let rollbacks = [
        Action::Rollback { error_reply: true },
        Action::Rollback { error_reply: false },
    ];
    for action in [
        Action::Halt,
        Action::Restart,
        closed,
        rollbacks[0],
        rollbacks[1],
    ] {
        assert_eq!(Escalate::None.apply(action, &config), action);
    }
    for rollback in rollbacks {
        assert_eq!(Escalate::Restart.apply(rollback, &config), Action::Restart);
        assert_eq!(Escalate::Shutdown.apply(rollback, &config), repeated);
    }
    assert_eq!(Escalate::Restart.apply(Action::Halt, &config), Action::Halt);
    assert_eq!(
        Escalate::Restart.apply(Action::Restart, &config),
        Action::Restart
    );
    assert_eq!(Escalate::Restart.apply(closed, &config), closed);
    assert_eq!(
        Escalate::Shutdown.apply(Action::Halt, &config),
        Action::Halt
    );
    assert_eq!(Escalate::Shutdown.apply(Action::Restart, &config), repeated);
    assert_eq!(Escalate::Shutdown.apply(closed, &config), closed);
    assert_eq!(
        repeated.to_string(),
        "shutdown (3 faults within 10s after a restart)"
    );
}
