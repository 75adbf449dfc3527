//! Escalation follows evidence: faults while serving with no request completed in
//! between, or the same request faulting the domain again and again.

use ankh_recovery::{
    Action, Escalate, Escalation, EscalationConfig, EscalationConfigError, Evidence, ShutdownReason,
};

const ROLLBACK: Action = Action::Rollback { error_reply: true };

#[test]
fn faults_with_progress_in_between_never_escalate() {
    let mut escalation = Escalation::default();
    for request in 0..100 {
        assert_eq!(escalation.record_fault(Some(request)), Escalate::None);
        escalation.record_progress();
    }
}

#[test]
fn faults_in_a_row_without_progress_escalate() {
    let mut escalation = Escalation::default();
    assert_eq!(escalation.record_fault(Some(1)), Escalate::None);
    assert_eq!(escalation.record_fault(Some(2)), Escalate::None);
    assert_eq!(
        escalation.record_fault(None),
        Escalate::Ineffective(Evidence::NoProgress { faults: 3 })
    );
    // The count starts again.
    assert_eq!(escalation.record_fault(Some(3)), Escalate::None);
}

#[test]
fn progress_resets_the_count() {
    let mut escalation = Escalation::new(EscalationConfig::new(2).unwrap());
    assert_eq!(escalation.record_fault(Some(1)), Escalate::None);
    escalation.record_progress();
    assert_eq!(escalation.record_fault(Some(2)), Escalate::None);
    assert_eq!(
        escalation.record_fault(Some(3)),
        Escalate::Ineffective(Evidence::NoProgress { faults: 2 })
    );
}

#[test]
fn the_same_request_faulting_again_and_again_escalates_despite_progress() {
    let mut escalation = Escalation::default();
    for _ in 0..2 {
        assert_eq!(escalation.record_fault(Some(42)), Escalate::None);
        escalation.record_progress();
    }
    assert_eq!(
        escalation.record_fault(Some(42)),
        Escalate::Ineffective(Evidence::PoisonRequest { faults: 3 })
    );
}

#[test]
fn another_request_in_between_breaks_the_poison_run() {
    let mut escalation = Escalation::default();
    for request in [42, 42, 7, 42, 42, 7] {
        assert_eq!(escalation.record_fault(Some(request)), Escalate::None);
        escalation.record_progress();
    }
}

#[test]
fn ineffective_recovery_shuts_a_stateful_server_down() {
    let evidence = Evidence::NoProgress { faults: 3 };
    let shutdown = Action::Shutdown {
        reason: ShutdownReason::RecoveryIneffective(evidence),
    };
    let ineffective = Escalate::Ineffective(evidence);
    assert_eq!(ineffective.apply(ROLLBACK, false), shutdown);
    // A restart only where state may be lost (stateless, --fallback restart) ...
    assert_eq!(ineffective.apply(ROLLBACK, true), Action::Restart);
    // ... and a restart that made no progress either ends in a shutdown.
    assert_eq!(ineffective.apply(Action::Restart, true), shutdown);
    // A halt stays a halt; nothing changes without evidence.
    assert_eq!(ineffective.apply(Action::Halt, false), Action::Halt);
    assert_eq!(Escalate::None.apply(ROLLBACK, false), ROLLBACK);
}

#[test]
fn a_single_fault_is_not_enough_evidence() {
    assert_eq!(
        EscalationConfig::new(1),
        Err(EscalationConfigError::TooFewFaults)
    );
    assert_eq!(EscalationConfig::new(2).unwrap().faults(), 2);
}
