//! Recovery of a server that crashes mid-request, under each policy: OSIRIS's table on
//! real VMs. `crasher` asks `echo` to store "a", sends a poison request (echo corrupts
//! its state, then crashes), stores "b" (echo answers what it had), sends the poison
//! again, then pings.

use ankh_domains::{DomainSpec, Policy, Role};
use ankh_recovery::Action;
use ankh_tests::run_system;
use ankh_vmm::system::{DomainEnd, SystemStop};
use virtio_seep::errno::{EDEADSRCDST, ERESTART};

fn run(policy: Policy) -> ankh_tests::Ran {
    run_system(
        1,
        None,
        vec![
            DomainSpec::new("echo", "echo").policy(policy),
            DomainSpec::new("crasher", "crasher")
                .calls(["echo"])
                .role(Role::Process),
        ],
    )
}

fn crash_line(errno: i32) -> String {
    format!("crasher: crash errno {errno}")
}

#[test]
fn naive_and_enhanced_roll_back_and_answer_erestart() {
    for policy in [Policy::Naive, Policy::Pessimistic, Policy::Enhanced] {
        let ran = run(policy);
        ran.assert_exited_cleanly("crasher");
        let lines = ran.lines_of("crasher");
        assert_eq!(
            lines,
            [
                crash_line(ERESTART).as_str(),
                "crasher: previous a",
                crash_line(ERESTART).as_str(),
                "crasher: ping ok"
            ],
            "{policy:?}: the poison costs one error each time, and the corruption is undone"
        );
        assert_eq!(ran.report.recoveries.len(), 2, "{policy:?}");
        for event in &ran.report.recoveries {
            assert_eq!(
                event.action,
                Action::Rollback { error_reply: true },
                "{policy:?}"
            );
            assert_eq!(event.fault, "cpu-exception");
            assert!(event.window.is_open(), "a query-only request: window open");
        }
        assert!(
            matches!(ran.end("echo"), DomainEnd::Waiting(_)),
            "echo serves on"
        );
        assert_eq!(ran.report.stop, None);
    }
}

#[test]
fn stateless_restarts_and_forgets() {
    let ran = run(Policy::Stateless);
    ran.assert_exited_cleanly("crasher");
    assert_eq!(
        ran.lines_of("crasher"),
        [
            crash_line(ERESTART).as_str(),
            "crasher: previous ",
            crash_line(ERESTART).as_str(),
            "crasher: ping ok"
        ],
        "a restarted server starts from its image: nothing stored"
    );
    assert!(ran
        .report
        .recoveries
        .iter()
        .all(|e| e.action == Action::Restart));
}

#[test]
fn without_recovery_the_system_halts() {
    let ran = run(Policy::None);
    assert!(
        matches!(ran.report.stop, Some(SystemStop::Halted { .. })),
        "{:?}",
        ran.report.stop
    );
    assert_eq!(ran.report.recoveries.len(), 1);
    assert_eq!(ran.report.recoveries[0].action, Action::Halt);
    let _ = EDEADSRCDST;
}
