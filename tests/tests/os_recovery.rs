//! Each OS server hot-killed while the suite runs: mid-request inside its recovery
//! window under each policy, after its window closed, while idle, and with each kind
//! of fault. Each test checks the action of the decision table (docs/recovery.md, "When
//! a server faults") and the system's outcome.

use ankh_domains::Policy;
use ankh_recovery::{Action, WindowState};
use ankh_tests::{on_both_substrates, Substrate};
use ankh_tests::{run_os_configured, run_os_controlled, run_os_with};
use ankh_vmm::system::control::{ControlHub, Reply, Request};
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::{DomainEnd, SystemStop};

on_both_substrates!(
    every_server_under_every_policy,
    a_fault_after_the_window_closed_follows_the_policy,
    an_idle_server_that_crashes_is_recovered_without_a_trace,
    hangs_and_corruptions_mid_request_are_detected_and_rolled_back,
    injected_hangs_and_corruptions_in_a_row_are_not_evidence_against_recovery,
    a_hang_injected_into_an_idle_server_is_not_kept_by_its_next_checkpoint,
    every_request_to_a_recoverable_server_is_checkpointed_and_counted,
    a_control_kill_before_a_server_booted_strikes_at_its_first_request,
    a_fault_while_pm_reads_a_program_is_rolled_back_inside_its_window,
    a_hang_or_broken_stack_aimed_at_a_server_blocked_in_a_call_waits_for_its_reply,
);

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

fn every_server_under_every_policy(_: Substrate) {
    for server in ["ds", "vfs", "mm", "pm"] {
        for policy in Policy::ALL {
            let ran = run_os_with(
                &["suite"],
                Some(policy),
                vec![PlannedKill::crash(server, KILL_AT)],
            );
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

/// The recovery events of `server`.
fn events_of<'a>(ran: &'a ankh_tests::Ran, server: &str) -> Vec<&'a ankh_recovery::RecoveryEvent> {
    ran.report
        .recoveries
        .iter()
        .filter(|e| e.domain_name == server)
        .collect()
}

/// The suite's last line (`N passed, M failed`).
fn suite_result(ran: &ankh_tests::Ran) -> String {
    ran.lines_of("suite")
        .into_iter()
        .rev()
        .find(|line| line.ends_with(" failed"))
        .map_or_else(|| "the suite did not finish".into(), str::to_owned)
}

/// A fault right after the server's window closed (it sent a state-exposing message
/// mid-request). Under enhanced nothing the servers send during the suite exposes their
/// state before they answer any more: PM's kernel calls and every reply to a request
/// other than the one in hand (PM answering a parked `wait`, VFS waking a pipe reader,
/// DS answering a parked subscriber) are held until the server's state is exposed
/// anyway (docs/recovery.md, "Held effects"), so the kill that waits for a closed
/// window never strikes. Under pessimistic PM's window closes at its program read (a
/// query), and a fault after its next state-exposing message follows the policy: a
/// controlled shutdown, or a restart with `--fallback restart`. Under naive the window
/// never closes: PM's handling of a process's end (a one-way message) is replayed.
fn a_fault_after_the_window_closed_follows_the_policy(_: Substrate) {
    for server in ["vfs", "pm", "ds"] {
        let kill = PlannedKill::new(server, 1, When::WindowClosed, Kind::Crash);
        let ran = run_os_configured(&["suite"], Some(Policy::Enhanced), vec![kill], false);
        assert!(
            events_of(&ran, server).is_empty(),
            "{server}: {:?}",
            ran.report.recoveries
        );
        assert_eq!(ran.report.stop, None, "{server}");
        assert_eq!(suite_result(&ran), "252 passed, 0 failed", "{server}");
    }
    let server = "pm";
    {
        for (policy, fallback) in [
            (Policy::Naive, false),
            (Policy::Pessimistic, false),
            (Policy::Pessimistic, true),
        ] {
            let kill = PlannedKill::new(server, 1, When::WindowClosed, Kind::Crash);
            let ran = run_os_configured(&["suite"], Some(policy), vec![kill], fallback);
            let events = events_of(&ran, server);
            let what = format!(
                "{server} {policy} fallback={fallback}: {:?}",
                ran.report.recoveries
            );
            // Under naive the rollback after exposed state can be inconsistent: DS
            // answered a subscriber, forgets it did, and answers it again later (a
            // reply without a caller, which faults DS once more).
            if policy == Policy::Naive {
                assert!(!events.is_empty(), "{what}");
            } else {
                assert_eq!(events.len(), 1, "{what}");
            }
            let one_way = events[0].window.request() == Some(ankh_recovery::ONE_WAY);
            // (Under pessimistic PM's window closes at its program read, a query,
            // before any call the VMM could hold: a spawn exposes its state.)
            assert_eq!(one_way, policy == Policy::Naive, "{what}");
            let closed = matches!(events[0].window, WindowState::Closed { .. });
            assert_eq!(closed, policy != Policy::Naive, "{what}");
            match (policy, fallback) {
                (Policy::Naive, _) => {
                    assert_eq!(
                        events[0].action,
                        Action::Rollback {
                            error_reply: !one_way
                        },
                        "{what}"
                    );
                    // The inconsistency may leave the server faulting on every
                    // request (VFS answers a parked request twice): then escalation,
                    // on that evidence, shuts the system down cleanly; never a halt.
                    match &ran.report.stop {
                        None => {}
                        Some(SystemStop::Shutdown { reason, .. }) => {
                            assert!(reason.starts_with("recovery does not help"), "{what}");
                            let last = events.last().expect("events");
                            assert!(matches!(last.action, Action::Shutdown { .. }), "{what}");
                        }
                        Some(other) => panic!("{what}: {other:?}"),
                    }
                }
                (_, false) => {
                    assert!(
                        matches!(events[0].action, Action::Shutdown { .. }),
                        "{what}"
                    );
                    assert!(
                        matches!(ran.report.stop, Some(SystemStop::Shutdown { .. })),
                        "{what}: a controlled shutdown"
                    );
                }
                (_, true) => {
                    assert_eq!(events[0].action, Action::Restart, "{what}");
                    assert_eq!(ran.report.stop, None, "{what}");
                    assert!(matches!(ran.end(server), DomainEnd::Waiting(_)), "{what}");
                }
            }
        }
    }
}

/// An idle server crashes: it is rolled back to where it stood, nobody gets an
/// error, and the suite passes in full.
fn an_idle_server_that_crashes_is_recovered_without_a_trace(_: Substrate) {
    for server in ["ds", "vfs", "mm", "pm"] {
        let kill = PlannedKill::new(server, KILL_AT, When::Idle, Kind::Crash);
        let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
        let events = events_of(&ran, server);
        assert_eq!(
            events.len(),
            1,
            "{server}: {:?} {:?}",
            ran.report.recoveries,
            ran.lines_of(server)
        );
        assert_eq!(
            events[0].action,
            Action::Rollback { error_reply: false },
            "{server}"
        );
        assert_eq!(events[0].request_id, None, "{server}: no request in hand");
        assert_eq!(ran.report.stop, None, "{server}");
        let result = suite_result(&ran);
        let failures: Vec<&str> = ran
            .lines_of("suite")
            .into_iter()
            .filter(|l| l.contains("FAIL"))
            .collect();
        assert!(
            result.ends_with(" 0 failed"),
            "{server}: {result}: {failures:?}"
        );
    }
}

/// A hang (the server spins without exits) and a corrupted stack pointer
/// mid-request are detected (by the watchdog, by the CPU) and rolled back.
fn hangs_and_corruptions_mid_request_are_detected_and_rolled_back(_: Substrate) {
    for (kind, fault) in [
        (Kind::Hang, "watchdog-timeout"),
        (Kind::Corrupt, "cpu-exception"),
    ] {
        for server in ["vfs", "ds"] {
            let kill = PlannedKill::new(server, KILL_AT, When::MidRequest, kind);
            let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
            let events = events_of(&ran, server);
            let what = format!("{server} {kind}: {:?}", ran.report.recoveries);
            assert_eq!(events.len(), 1, "{what}");
            assert_eq!(events[0].fault, fault, "{what}");
            assert_eq!(
                events[0].action,
                Action::Rollback { error_reply: true },
                "{what}"
            );
            assert_eq!(ran.report.stop, None, "{what}");
            assert!(matches!(ran.end(server), DomainEnd::Waiting(_)), "{what}");
        }
    }
}

/// Hangs and broken stacks the operator injects (`ankh ctl kill`) into consecutive
/// requests, faster than the server can complete one: each fault is the operator's,
/// not a sign that rollback does not help, so every one is rolled back and no
/// escalation shuts the system down (a kill storm's hangs used to end in "3 faults in
/// a row" shutdowns). The same faults planned (standing for the server's own) are
/// evidence, and escalate.
fn injected_hangs_and_corruptions_in_a_row_are_not_evidence_against_recovery(_: Substrate) {
    let kinds = ["corrupt", "hang", "corrupt", "corrupt"];
    let hub = std::sync::Arc::new(ControlHub::new(["ds", "vfs", "mm", "pm"]));
    for kind in kinds {
        let kill =
            format!(r#"{{"cmd":"kill","domain":"ds","when":"mid-request","kind":"{kind}"}}"#);
        assert_eq!(hub.answer(&kill), "{\"ok\":true}\n");
    }
    let ran = run_os_controlled(&["suite"], hub);
    let events = events_of(&ran, "ds");
    let what = format!("{:?}", ran.report.recoveries);
    assert_eq!(events.len(), kinds.len(), "{what}");
    for event in &events {
        assert_eq!(
            event.action,
            Action::Rollback { error_reply: true },
            "{what}"
        );
    }
    assert_eq!(ran.report.stop, None, "{what}");
    let result = suite_result(&ran);
    assert!(result.ends_with(" 0 failed"), "{result}");

    let planned = [Kind::Corrupt, Kind::Hang, Kind::Corrupt, Kind::Corrupt];
    let kills = (KILL_AT..)
        .zip(planned)
        .map(|(request, kind)| PlannedKill::new("ds", request, When::MidRequest, kind))
        .collect();
    let ran = run_os_with(&["suite"], Some(Policy::Enhanced), kills);
    match &ran.report.stop {
        Some(SystemStop::Shutdown { reason, .. }) => {
            assert!(reason.starts_with("recovery does not help"), "{reason}");
        }
        other => panic!("planned faults in a row did not escalate: {other:?}"),
    }
}

/// A hang injected into a server blocked in receive strikes only when its next
/// message arrives; the checkpoint taken at that delivery must not keep it, or every
/// rollback would restore the hang and the server would hang at every message until
/// escalation shut the system down.
fn a_hang_injected_into_an_idle_server_is_not_kept_by_its_next_checkpoint(_: Substrate) {
    for server in ["ds", "mm"] {
        let kill = PlannedKill::new(server, KILL_AT, When::Idle, Kind::Hang);
        let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
        let events = events_of(&ran, server);
        let what = format!("{server}: {:?}", ran.report.recoveries);
        assert_eq!(events.len(), 1, "{what}");
        assert_eq!(events[0].fault, "watchdog-timeout", "{what}");
        assert_eq!(ran.report.stop, None, "{what}");
        let result = suite_result(&ran);
        assert!(result.ends_with(" 0 failed"), "{server}: {result}");
    }
}

/// The report counts each server's checkpoints: one per request under a policy with
/// a window, none without recovery.
fn every_request_to_a_recoverable_server_is_checkpointed_and_counted(_: Substrate) {
    // 5000 DS lookups (ubench's budget), each a request to DS.
    let ran = run_os_with(&["ubench ds-lookup"], Some(Policy::Enhanced), Vec::new());
    let ds = ran.report.domain("ds").expect("ds").checkpoints;
    assert!(ds.checkpoints >= 5000, "{ds:?}");
    assert!(
        ds.pages >= ds.checkpoints,
        "each copies a page at least: {ds:?}"
    );
    // A lookup writes the hot page (stack top, IPC rings, the loop's message, the
    // reply's payload in a small block) and the buffer its key was delivered into:
    // no page of the heap (3 pages per lookup when the loop lived there).
    assert!(ds.pages_per_checkpoint() < 2.5, "{ds:?}");
    // Pages go back to being protected once they cool, and trap when written again;
    // the ones DS writes at every lookup stay writable: few traps per request.
    assert!(
        ds.trapped_writes > 0 && ds.trapped_writes < ds.checkpoints / 10,
        "{ds:?}"
    );
    let ubench = ran.report.domain("ubench").expect("ubench").checkpoints;
    assert_eq!(ubench.checkpoints, 0, "processes are not recovered");
    // DS's lookups expose nothing: it ran inside its window, and its run time counts.
    let id = ran.report.domain("ds").expect("ds").id;
    let coverage = ran.report.coverage.get(id);
    assert!(coverage.run_open_ns > 0, "{coverage:?}");
    assert!(coverage.run_share_open() > Some(0.9), "{coverage:?}");

    let ran = run_os_with(&["ubench ds-lookup"], Some(Policy::None), Vec::new());
    for domain in &ran.report.domains {
        assert_eq!(domain.checkpoints.checkpoints, 0, "{}", domain.name);
    }
}

/// A kill that comes on the control socket before a server has booted, so before its
/// first request, is accepted and waits: it strikes mid-request at that first request,
/// and the server is recovered.
fn a_control_kill_before_a_server_booted_strikes_at_its_first_request(_: Substrate) {
    let hub = std::sync::Arc::new(ControlHub::new(["ds", "vfs", "mm", "pm"]));
    assert_eq!(
        hub.answer(r#"{"cmd":"kill","domain":"pm"}"#),
        "{\"ok\":true}\n"
    );
    let ran = run_os_controlled(&["suite"], std::sync::Arc::clone(&hub));
    let events = events_of(&ran, "pm");
    assert_eq!(events.len(), 1, "{:?}", ran.report.recoveries);
    assert!(
        matches!(events[0].action, Action::Rollback { .. }),
        "{:?}",
        events[0]
    );
    // The same request as a kill planned at pm's first request (one thread: the runs
    // are alike).
    let planned = run_os_with(&["suite"], None, vec![PlannedKill::crash("pm", 1)]);
    assert_eq!(
        events[0].request_id,
        events_of(&planned, "pm")[0].request_id,
        "{:?}",
        events_of(&planned, "pm")
    );
    let Reply::Status(status) = hub.handle(Request::Status {}) else {
        panic!("status is answered");
    };
    let pm = status.iter().find(|d| d.stats.name == "pm").expect("pm");
    assert_eq!(pm.stats.state, "up", "{pm:?}");
    assert_eq!(pm.stats.recoveries.values().sum::<u64>(), 1, "{pm:?}");
    let all = [When::Now, When::Idle, When::MidRequest, When::WindowClosed];
    assert_eq!(hub.take_kill("pm", &all), None, "the kill struck once");
}

/// PM reads a program with a query (`VFS_PREAD_PATH`), so a fault while it waits for
/// the program is inside its window under `enhanced`: rolled back, the spawn answered
/// `ERESTART` (init spawns again), nothing left behind in VFS (the suite passes in
/// full). PM's first request is init's spawn of the suite, and a kill `now` strikes
/// it blocked in its first call. When PM opened the program (`VFS_OPEN`, an Update)
/// this fault came after its window closed, and the system shut down.
fn a_fault_while_pm_reads_a_program_is_rolled_back_inside_its_window(_: Substrate) {
    let kill = PlannedKill::new("pm", 1, When::Now, Kind::Crash);
    let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
    let events = events_of(&ran, "pm");
    assert_eq!(events.len(), 1, "{:?}", ran.report.recoveries);
    assert!(
        matches!(events[0].window, WindowState::Open { .. }),
        "{:?}",
        events[0]
    );
    assert_eq!(events[0].action, Action::Rollback { error_reply: true });
    assert_eq!(ran.report.stop, None);
    assert_eq!(suite_result(&ran), "252 passed, 0 failed");
}

/// A hang or a broken stack struck `now` at a server blocked in a call for a request
/// (PM's first request, init's spawn of the suite, blocked in its first call) waits
/// for the call's reply: the server runs into it when the reply has been delivered.
/// Resuming it at once, without its reply, made PM's runtime panic ("the VMM resumed a
/// wait without delivering a message"), seen in random-timing kill storms.
fn a_hang_or_broken_stack_aimed_at_a_server_blocked_in_a_call_waits_for_its_reply(_: Substrate) {
    for (kind, fault) in [
        (Kind::Hang, "watchdog-timeout"),
        (Kind::Corrupt, "cpu-exception"),
    ] {
        let kill = PlannedKill::new("pm", 1, When::Now, kind);
        let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
        let events = events_of(&ran, "pm");
        assert_eq!(events.len(), 1, "{kind:?}: {:?}", ran.report.recoveries);
        assert_eq!(events[0].fault, fault, "{kind:?}: {:?}", events[0]);
        assert_eq!(events[0].action, Action::Rollback { error_reply: true });
        assert_eq!(ran.report.stop, None);
        assert_eq!(suite_result(&ran), "252 passed, 0 failed");
    }
}
