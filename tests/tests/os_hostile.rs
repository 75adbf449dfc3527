//! Hostile but unprivileged programs beside the conformance suite (issue 12, server
//! side): each attack on a server's resources is refused or bounded, the suite passes
//! in full, and every server keeps serving.

use ankh_proto::ds::{entry_cost, KEY_MAX, OWNER_BYTES_MAX, SESSION_BYTES_MAX, VALUE_MAX};
use ankh_tests::{assert_serving, run_os, suite_result, Ran};
use ankh_tests::{on_both_substrates, Substrate};
use ankh_vmm::system::DomainEnd;
use ankh_vmm::DomainExit;

on_both_substrates!(
    a_data_store_hog_gets_enospc_at_its_quota_and_its_children_s_keys_go_with_them,
    a_process_cannot_kill_what_it_did_not_spawn,
    orphans_do_not_fill_the_process_table_and_pipes_hold_a_bounded_buffer,
    a_fork_bomb_that_keeps_its_children_stops_at_its_share_of_the_process_table,
    helpers_that_hold_open_files_stop_at_their_session_s_share_of_the_file_table,
    helpers_that_hold_memory_stop_at_their_session_s_share_of_the_budget,
    helpers_that_hold_ds_keys_stop_at_their_session_s_share_of_the_store,
    a_program_that_fills_the_disk_stops_at_its_session_s_share_of_it,
    a_program_that_makes_empty_files_stops_at_its_session_s_share_of_the_inodes,
);

/// Bytes of the built-in root disk every run gets a copy of (`images/build.rs`).
const ROOT_DISK_BYTES: u64 = 64 << 20;

/// Runs `attacks` (each `hostile <attack>`) beside the suite; checks that each attack
/// reports `ok`, the suite has no failure and every server still serves.
fn beside_the_suite(attacks: &[&str]) -> Ran {
    let mut jobs: Vec<String> = attacks.iter().map(|a| format!("hostile {a}")).collect();
    jobs.push("suite".to_string());
    let jobs: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let ran = run_os(&jobs);
    let hostile = ran.lines_of("hostile");
    for attack in attacks {
        let prefix = format!("hostile: {attack} ");
        let line = hostile
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no report of {attack}: {hostile:?}"));
        let failures: Vec<&&str> = hostile.iter().filter(|l| l.contains(" failed ")).collect();
        assert!(
            line.starts_with(&format!("{prefix}ok ")),
            "{attack} was not contained: {line} (every failure: {failures:?})"
        );
    }
    let (passed, failed) = suite_result(&ran.lines_of("suite"));
    assert_eq!(failed, 0, "{:?}", ran.lines_of("suite"));
    assert!(passed >= 60);
    assert_serving(&ran, &["pm", "vfs", "ds", "mm"]);
    assert!(
        matches!(
            ran.end("init"),
            DomainEnd::Stopped(DomainExit::Exited { code: 0 })
        ),
        "init: {:?}",
        ran.end("init")
    );
    ran
}

fn a_data_store_hog_gets_enospc_at_its_quota_and_its_children_s_keys_go_with_them(_: Substrate) {
    beside_the_suite(&["ds"]);
}

fn a_process_cannot_kill_what_it_did_not_spawn(_: Substrate) {
    beside_the_suite(&["kill"]);
}

fn orphans_do_not_fill_the_process_table_and_pipes_hold_a_bounded_buffer(_: Substrate) {
    beside_the_suite(&["orphans", "pipe"]);
}

fn a_fork_bomb_that_keeps_its_children_stops_at_its_share_of_the_process_table(_: Substrate) {
    beside_the_suite(&["hoard"]);
}

fn helpers_that_hold_open_files_stop_at_their_session_s_share_of_the_file_table(_: Substrate) {
    beside_the_suite(&["files"]);
}

fn helpers_that_hold_memory_stop_at_their_session_s_share_of_the_budget(_: Substrate) {
    beside_the_suite(&["memory"]);
}

/// `ds-session`'s helpers each publish up to their DS quota and stay alive: DS
/// refuses the session at its share, half the store, where without it they would
/// fill the store; `ds-witness`, another program, still publishes up to its own
/// quota while they hold it, and the suite passes in full beside them.
fn helpers_that_hold_ds_keys_stop_at_their_session_s_share_of_the_store(_: Substrate) {
    let ran = beside_the_suite(&["ds-session", "ds-witness"]);
    assert_eq!(suite_result(&ran.lines_of("suite")), (252, 0));
    let report = ran.lines_of("hostile");
    // Within the share, and refused with less than one key's room left in it.
    let held = figure(&report, "ds-session");
    assert!(held <= SESSION_BYTES_MAX, "{held}");
    let largest = entry_cost(KEY_MAX, VALUE_MAX);
    assert!(held + largest > SESSION_BYTES_MAX, "{held}");
    // The other program was refused at its own quota, not by a full store.
    let witnessed = figure(&report, "ds-witness");
    assert!(witnessed + largest > OWNER_BYTES_MAX, "{witnessed}");
}

/// The figure of `hostile: <attack> ok <figure>` in `report`.
fn figure(report: &[&str], attack: &str) -> usize {
    let prefix = format!("hostile: {attack} ok ");
    report
        .iter()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|figure| figure.parse().ok())
        .unwrap_or_else(|| panic!("no figure of {attack}: {report:?}"))
}

fn a_program_that_fills_the_disk_stops_at_its_session_s_share_of_it(_: Substrate) {
    let ran = beside_the_suite(&["disk"]);
    let written = figure(&ran.lines_of("hostile"), "disk") as u64;
    // Refused at half the disk (less the blocks that map the file's data), not when
    // the disk was full (the root file system takes only a few MiB of it).
    let share = ROOT_DISK_BYTES / ankh_proto::vfs::SESSION_SPACE_DIVISOR;
    assert!(
        (share - (256 << 10)..=share).contains(&written),
        "wrote {written} bytes, the session's share is {share}"
    );
}

fn a_program_that_makes_empty_files_stops_at_its_session_s_share_of_the_inodes(_: Substrate) {
    let ran = beside_the_suite(&["inodes"]);
    let made = figure(&ran.lines_of("hostile"), "inodes") as u64;
    // The root disk's inodes, as its mkfs made them.
    let blocks = ROOT_DISK_BYTES / ankh_ext2::BLOCK_SIZE as u64;
    let mut image = ankh_ext2::Image::new(blocks).expect("an image of the root disk's size");
    let inodes = image.parts().0.total_inodes() as u64;
    assert_eq!(made, inodes / ankh_proto::vfs::SESSION_SPACE_DIVISOR);
}
