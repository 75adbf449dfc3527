//! Each OS server hot-killed mid-request (inside its recovery window) under each
//! policy, while the suite runs: the action of DESIGN.md's table, and the system's
//! outcome (it halts under `none`, every server keeps serving otherwise).

use ankh_domains::Policy;
use ankh_recovery::Action;
use ankh_tests::run_os_with;
use ankh_vmm::system::{DomainEnd, SystemStop};

/// The request at which each server is killed: during the suite (each server serves
/// more than this many requests in a run).
const KILL_AT: u64 = 30;

fn expected(policy: Policy) -> Action {
    match policy {
        Policy::None => Action::Halt,
        Policy::Stateless => Action::Restart,
        Policy::Naive | Policy::Pessimistic | Policy::Enhanced => {
            Action::Rollback { error_reply: true }
        }
    }
}

#[test]
fn every_server_under_every_policy() {
    for server in ["ds", "vfs", "mm", "pm"] {
        for policy in Policy::ALL {
            let ran = run_os_with(&["suite"], Some(policy), vec![(server.into(), KILL_AT)]);
            let events: Vec<_> = ran
                .report
                .recoveries
                .iter()
                .filter(|e| e.domain_name == server)
                .collect();
            assert_eq!(
                events.len(),
                1,
                "{server} {policy}: {:?}",
                ran.report.recoveries
            );
            let event = events[0];
            assert_eq!(event.action, expected(policy), "{server} {policy}");
            assert_eq!(event.fault, "injected");
            match policy {
                Policy::None => assert!(
                    matches!(ran.report.stop, Some(SystemStop::Halted { .. })),
                    "{server} {policy}: the system halts"
                ),
                _ => {
                    assert_eq!(
                        ran.report.stop, None,
                        "{server} {policy}: the system survives"
                    );
                    assert!(
                        matches!(ran.end(server), DomainEnd::Waiting(_)),
                        "{server} {policy}: still serving: {:?}",
                        ran.end(server)
                    );
                    // The programs may not all finish: a call answered ERESTART is
                    // not retried (e.g. a failed kill leaves a parent waiting for
                    // its child), which is error virtualization's contract.
                }
            }
        }
    }
}
