//! PM's kernel calls held by the VMM while PM's recovery window is open
//! (docs/recovery.md, "Held effects"): a fault of PM after a kill, a start or a
//! spawn's introductions to VFS, MM and DS is rolled back inside its window, and what the
//! VMM held is dropped (the kill never happens, the child never runs and is
//! destroyed); without faults, spawns and kills finish inside PM's window.

use ankh_domains::Policy;
use ankh_recovery::{Action, RecoveryEvent, WindowState};
use ankh_tests::{on_both_substrates, run_os_with, Ran, Substrate};
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::DomainEnd;
use ankh_vmm::{DomainExit, DomainFault};
use virtio_seep::opcode;

on_both_substrates!(
    a_fault_after_a_held_kill_drops_the_kill,
    a_fault_after_a_spawn_introduced_its_child_destroys_the_child,
    a_fault_after_a_held_start_destroys_the_child_before_it_runs,
    spawns_and_kills_finish_inside_pm_s_window,
    a_fault_in_pm_s_exit_handling_after_a_repeatable_update_is_replayed,
    a_fault_after_pm_answered_a_parked_request_is_rolled_back_inside_its_window,
);

fn events_of<'a>(ran: &'a Ran, server: &str) -> Vec<&'a RecoveryEvent> {
    ran.report
        .recoveries
        .iter()
        .filter(|e| e.domain_name == server)
        .collect()
}

/// The suite's result lines (`N passed, M failed`): one per suite that ran to its end.
fn suite_results(ran: &Ran) -> Vec<&str> {
    ran.lines_of("suite")
        .into_iter()
        .filter(|line| line.ends_with(" failed"))
        .collect()
}

/// Runs the suite under `enhanced` with a fault of `kind` in PM right after it first
/// sends a message with `code`; checks that PM was recovered once, inside its window,
/// and that the suite (its calls answered `ERESTART` are made again) passed in full.
/// Returns the run and PM's recovery.
fn fault_pm_after(code: u16, kind: Kind) -> (Ran, RecoveryEvent) {
    let kill = PlannedKill::new("pm", 1, When::AfterSend(code), kind);
    let ran = run_os_with(&["suite"], Some(Policy::Enhanced), vec![kill]);
    let events = events_of(&ran, "pm");
    let what = format!("{kind}: {:?}", ran.report.recoveries);
    assert_eq!(events.len(), 1, "{what}");
    assert!(
        matches!(events[0].window, WindowState::Open { .. }),
        "the window stayed open: {what}"
    );
    assert_eq!(ran.report.stop, None, "{what}");
    assert_eq!(suite_results(&ran), ["252 passed, 0 failed"], "{what}");
    let event = events[0].clone();
    (ran, event)
}

/// [`fault_pm_after`] with a crash in a request: it is rolled back and answered
/// `ERESTART`.
fn crash_pm_after(code: u16) -> Ran {
    let (ran, event) = fault_pm_after(code, Kind::Crash);
    assert_eq!(
        event.action,
        Action::Rollback { error_reply: true },
        "{event:?}"
    );
    ran
}

/// How many domains named `suite` ended killed by PM: the suite kills only children
/// it spawned (other programs), so a suite domain killed by PM was destroyed by PM's
/// rollback.
fn suites_destroyed(ran: &Ran) -> usize {
    let pm = ran.report.domain("pm").expect("pm").id;
    let killed = DomainEnd::Stopped(DomainExit::Faulted(DomainFault::Killed { by: pm }));
    ran.report
        .domains
        .iter()
        .filter(|d| d.name == "suite" && d.end == killed)
        .count()
}

/// PM crashes right after `SYS_KILL_DOMAIN` (the suite's kill of a sleeping child):
/// the kill was held, so the rollback drops it. The suite's retry of `PM_KILL` is
/// answered OK, which it would not be had the first kill been carried out (the child
/// would have ended, and PM, told so, answers `ESRCH`); and nothing else was undone.
/// Before the VMM held kills, the kill closed PM's window and this fault shut the
/// system down.
fn a_fault_after_a_held_kill_drops_the_kill(_: Substrate) {
    let ran = crash_pm_after(opcode::SYS_KILL_DOMAIN);
    assert_eq!(suites_destroyed(&ran), 0, "{:?}", ran.report.domains);
}

/// PM crashes right after its spawn of the suite told VFS, MM and DS about the child
/// (`VFS_PROC_SPAWN`, `MM_PROC_SPAWN`, `DS_PROC_SPAWN`, the last): those notices
/// concern a domain created in the request and not started, so the window was still
/// open. The rollback destroys the child (it never ran), PM hears of its end and has
/// VFS, MM and DS forget it, init's spawn is answered `ERESTART` and made again, and
/// the suite that then runs passes in full.
fn a_fault_after_a_spawn_introduced_its_child_destroys_the_child(_: Substrate) {
    let ran = crash_pm_after(opcode::DS_PROC_SPAWN);
    assert_eq!(suites_destroyed(&ran), 1, "{:?}", ran.report.domains);
}

/// PM crashes right after `SYS_START_DOMAIN` of the suite: the start was held, so
/// the child never ran (one suite printed its result, the retry's) and the rollback
/// destroyed it.
fn a_fault_after_a_held_start_destroys_the_child_before_it_runs(_: Substrate) {
    let ran = crash_pm_after(opcode::SYS_START_DOMAIN);
    assert_eq!(suites_destroyed(&ran), 1, "{:?}", ran.report.domains);
    let first_lines = ran.lines_of("suite").len();
    let clean = run_os_with(&["suite"], Some(Policy::Enhanced), Vec::new());
    assert_eq!(
        first_lines,
        clean.lines_of("suite").len(),
        "the destroyed child printed nothing"
    );
}

/// Without faults, PM's spawns and kills finish inside its window: every request of
/// the suite but those whose window a state-exposing call still closes. The goal of
/// issue 13 is 80% for every server; before the VMM held PM's kernel calls, PM stood
/// at 61 of 93 (65.6%).
fn spawns_and_kills_finish_inside_pm_s_window(_: Substrate) {
    let ran = run_os_with(&["suite"], Some(Policy::Enhanced), Vec::new());
    assert_eq!(suite_results(&ran), ["252 passed, 0 failed"]);
    let pm = ran.report.domain("pm").expect("pm").id;
    let coverage = ran.report.coverage.get(pm);
    let share = coverage.open as f64 / (coverage.open + coverage.closed) as f64;
    eprintln!(
        "pm: {} of {} requests finished inside the window",
        coverage.open,
        coverage.open + coverage.closed
    );
    assert!(share >= 0.8, "pm: {coverage:?}");
}

/// PM crashes while it handles a process's end (a one-way message), right after it
/// told MM (`MM_PROC_EXIT`, after `VFS_PROC_EXIT`): both are repeatable, so the window
/// stayed open, and the rollback replays the message, which tells VFS and MM again
/// to no further effect and finishes the exit. Before, the first notice closed PM's
/// window and this fault shut the system down.
fn a_fault_in_pm_s_exit_handling_after_a_repeatable_update_is_replayed(_: Substrate) {
    for kind in [Kind::Crash, Kind::Hang, Kind::Corrupt] {
        let (_, event) = fault_pm_after(opcode::MM_PROC_EXIT, kind);
        assert_eq!(
            event.action,
            Action::Rollback { error_reply: false },
            "{kind}: {event:?}"
        );
        let note = event.note.as_deref().unwrap_or_default();
        assert!(note.contains("is replayed"), "{kind}: {event:?}");
    }
}

/// PM faults right after it answers a request other than the one in hand (a parked
/// `wait`, answered when PM handles a child's end): the VMM held the answer, so the
/// window is still open, the rollback drops it, and the replay (or the retry) answers
/// the wait again. Before the VMM held such replies, the answer exposed PM's state,
/// and this fault shut the system down (`fault after a one-way message exposed state
/// (external message)`, the most frequent end of kill storms and of PM's campaigns).
fn a_fault_after_pm_answered_a_parked_request_is_rolled_back_inside_its_window(_: Substrate) {
    for kind in [Kind::Crash, Kind::Hang, Kind::Corrupt] {
        let (_, event) = fault_pm_after(opcode::REPLY, kind);
        assert!(
            matches!(event.action, Action::Rollback { .. }),
            "{kind}: {event:?}"
        );
    }
}
