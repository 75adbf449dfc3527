//! Containment: an unprivileged hostile program (`/bin/hog`) runs beside the
//! conformance suite. The suite passes in full, every server keeps serving, no server
//! is recovered or stopped, and the attacker is throttled (it gets its turns, nothing
//! more) or faulted itself; nothing else is.

use ankh_tests::{assert_serving, run_os, Ran};
use ankh_tests::{on_both_substrates, Substrate};
use ankh_vmm::system::DomainEnd;
use ankh_vmm::{DomainExit, DomainFault};

on_both_substrates!(
    a_program_that_exits_to_the_vmm_in_a_loop_only_gets_its_turns,
    a_program_that_computes_without_exits_is_preempted,
    a_call_loop_to_pm_does_not_starve_pms_other_clients,
    a_program_that_never_takes_its_replies_is_stopped_not_the_vmm,
    flooding_a_servers_inbox_faults_the_flooder_and_no_innocent_sender,
    a_spawn_and_kill_loop_does_not_keep_the_thread_from_the_others,
);

const SERVERS: [&str; 5] = ["pm", "vfs", "ds", "mm", "blk"];

/// Runs the suite with `hog KIND` beside it and checks what must hold whatever
/// the attack: the suite's 252 checks pass, the servers serve on, nothing recovers.
fn suite_beside(kind: &str) -> Ran {
    let attacker = format!("hog {kind}");
    let ran = run_os(&["suite", &attacker]);
    let suite = ran.lines_of("suite");
    assert_eq!(
        suite.last(),
        Some(&"252 passed, 0 failed"),
        "beside `{attacker}`: {suite:?}"
    );
    assert_serving(&ran, &SERVERS);
    assert_eq!(ran.report.recoveries, [], "beside `{attacker}`");
    assert_eq!(ran.report.stop, None, "beside `{attacker}`");
    ran
}

/// The attacker ran until the suite ended and then stopped by itself.
fn assert_throttled(ran: &Ran, kind: &str) {
    assert_eq!(ran.lines_of("hog"), [format!("hog: {kind} done").as_str()]);
    assert_eq!(
        ran.end("hog"),
        &DomainEnd::Stopped(DomainExit::Exited { code: 0 })
    );
}

fn a_program_that_exits_to_the_vmm_in_a_loop_only_gets_its_turns(_: Substrate) {
    let ran = suite_beside("exits");
    assert_throttled(&ran, "exits");
}

fn a_program_that_computes_without_exits_is_preempted(_: Substrate) {
    let ran = suite_beside("spin");
    assert_throttled(&ran, "spin");
}

fn a_call_loop_to_pm_does_not_starve_pms_other_clients(_: Substrate) {
    let ran = suite_beside("calls");
    assert_throttled(&ran, "calls");
}

/// Each round of the loop wakes two domains in one step: neither may start a fresh
/// turn from that, or the loop and PM keep the thread, and the suite waits until the
/// loop gives up (it then fails).
fn a_spawn_and_kill_loop_does_not_keep_the_thread_from_the_others(_: Substrate) {
    let ran = suite_beside("spawn-kill");
    assert_throttled(&ran, "spawn-kill");
}

fn a_program_that_never_takes_its_replies_is_stopped_not_the_vmm(_: Substrate) {
    let ran = suite_beside("replies");
    let fault = ran.fault("hog");
    assert_eq!(fault.kind(), "message-storm", "{fault}");
    assert!(fault.to_string().contains("in flight"), "{fault}");
}

fn flooding_a_servers_inbox_faults_the_flooder_and_no_innocent_sender(_: Substrate) {
    let ran = suite_beside("inbox");
    let fault = ran.fault("hog");
    assert!(
        matches!(fault, DomainFault::Ipc(_)) && fault.to_string().contains("in flight"),
        "{fault}"
    );
}

/// Only a process domain has a turn to cheat: it hands the VMM its turn with a wait for
/// a message nobody sends, then computes on, on the CPU of the VMM thread that runs
/// the suite. The VMM sees its CPU time outside its turns, ends it and faults it; the
/// suite, run four times in a row so that the attacker has time to be seen, passes.
#[test]
fn a_process_that_computes_outside_its_turns_is_stopped() {
    ankh_tests::on_substrate(Substrate::Process, || {
        let ran = run_os(&["suite --runs 4", "hog off-turn"]);
        let suite = ran.lines_of("suite");
        let runs = suite.iter().filter(|line| **line == "252 passed, 0 failed");
        assert_eq!(runs.count(), 4, "{suite:?}");
        assert_serving(&ran, &SERVERS);
        assert_eq!(ran.report.recoveries, []);
        assert_eq!(ran.report.stop, None);
        let fault = ran.fault("hog");
        assert_eq!(fault.kind(), "outside-turns", "{fault}");
    });
}
