//! The disk after any end of the OS: a stop between a sync's commit and the end of its
//! in-place writes leaves an image e2fsck rejects until the journal is replayed, and
//! the host's recovery at exit (what `ankh up` runs, `DiskImage::recover`) leaves it
//! clean, with every acknowledged file intact; a short soak over the ways a run ends.

use ankh_domains::Policy;
use ankh_tests::{acked, e2fsck, os_disk, run_os_on_disk, run_os_on_disk_with};
use ankh_tests::{on_both_substrates, Substrate};
use ankh_vmm::disk_image::{DiskImage, Recovered};
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::SystemStop;

on_both_substrates!(
    a_halt_mid_sync_leaves_a_journal_the_host_replays_at_exit,
    every_way_a_run_ends_leaves_a_disk_e2fsck_accepts,
);

/// `blk` requests at which `disk-writer`'s syncs are between their commit (the
/// journal flushed) and the end of their in-place writes, found by a sweep of every
/// request: a halt there leaves part of the transaction in place. Several, so that a
/// small shift in the request order still hits one.
const MID_SYNC_BLK_REQUESTS: [u64; 4] = [32, 41, 48, 55];

/// The host's recovery at exit, then e2fsck, which must find the image clean; returns
/// whether e2fsck found it clean *before* the recovery, and what the recovery did.
fn recover_and_check(disk: &DiskImage, what: &str) -> (bool, Recovered) {
    let (before, _) = e2fsck(disk.path());
    let recovered = disk
        .recover()
        .unwrap_or_else(|e| panic!("{what}: the host's recovery failed: {e}"));
    let (after, report) = e2fsck(disk.path());
    assert_eq!(
        after, 0,
        "{what}: e2fsck after the host's recovery ({recovered:?}): {report}"
    );
    (before == 0, recovered)
}

fn a_halt_mid_sync_leaves_a_journal_the_host_replays_at_exit(_: Substrate) {
    let mut unclean_before = 0;
    for request in MID_SYNC_BLK_REQUESTS {
        let disk = os_disk(&[]);
        // Policy none: a fault of blk stops the system on the spot (a halt).
        let ran = run_os_on_disk_with(
            &disk,
            &["disk-writer"],
            Some(Policy::None),
            vec![PlannedKill::crash("blk", request)],
            false,
        );
        assert!(
            matches!(ran.report.stop, Some(SystemStop::Halted { .. })),
            "blk request {request}: {:?}",
            ran.report.stop
        );
        let what = format!("halt at blk request {request}");
        let (clean_before, recovered) = recover_and_check(&disk, &what);
        if !clean_before {
            unclean_before += 1;
            let replayed = recovered.repairs.replayed.expect("a journal to replay");
            assert!(replayed.rewritten > 0, "{what}: {recovered:?}");
        }
        // Nothing acknowledged was lost: the next boot reads every file back.
        let checked = run_os_on_disk(&disk, &["disk-check"], Vec::new());
        let intact: Vec<&str> = checked
            .lines_of("disk-check")
            .into_iter()
            .filter_map(|l| l.strip_prefix("ok "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for path in acked(&ran) {
            assert!(
                intact.contains(&path.as_str()),
                "{what}: {path} was acknowledged but is not intact"
            );
        }
    }
    assert!(
        unclean_before > 0,
        "no halt left the image unclean before the host's recovery: the kill points \
         {MID_SYNC_BLK_REQUESTS:?} no longer fall mid-sync (sweep blk requests again)"
    );
}

/// One way a run ends.
struct Exit {
    what: &'static str,
    jobs: &'static [&'static str],
    policy: Option<Policy>,
    kills: Vec<PlannedKill>,
    /// Whether the run must stop early (a halt or a controlled shutdown).
    stops: fn(&Option<SystemStop>) -> bool,
}

fn every_way_a_run_ends_leaves_a_disk_e2fsck_accepts(_: Substrate) {
    let halted = |stop: &Option<SystemStop>| matches!(stop, Some(SystemStop::Halted { .. }));
    let exits = [
        Exit {
            what: "a clean end",
            jobs: &["disk-writer"],
            policy: None,
            kills: Vec::new(),
            stops: |stop| stop.is_none(),
        },
        Exit {
            what: "a halt: blk crashes mid-sync",
            jobs: &["disk-writer"],
            policy: Some(Policy::None),
            kills: vec![PlannedKill::crash("blk", 33)],
            stops: halted,
        },
        Exit {
            what: "a halt: blk hangs mid-sync (the watchdog stops it)",
            jobs: &["disk-writer"],
            policy: Some(Policy::None),
            kills: vec![PlannedKill::new("blk", 49, When::MidRequest, Kind::Hang)],
            stops: halted,
        },
        Exit {
            what: "a halt: vfs crashes",
            jobs: &["disk-writer"],
            policy: Some(Policy::None),
            kills: vec![PlannedKill::crash("vfs", 40)],
            stops: halted,
        },
        Exit {
            what: "a controlled shutdown: vfs faults during a sync's writes",
            jobs: &["disk-writer"],
            policy: None,
            kills: vec![PlannedKill::new("vfs", 40, When::WindowClosed, Kind::Crash)],
            stops: |stop| matches!(stop, Some(SystemStop::Shutdown { .. })),
        },
        Exit {
            // PM under pessimistic: under enhanced nothing the servers send during
            // the suite exposes their state before they answer any more (VFS's pipe
            // wake-ups and PM's answers to waits are held, docs/recovery.md "Held
            // effects"), so no window closes for a fault to follow.
            what: "a controlled shutdown during the suite",
            jobs: &["suite"],
            policy: Some(Policy::Pessimistic),
            kills: vec![PlannedKill::new("pm", 1, When::WindowClosed, Kind::Crash)],
            stops: |stop| matches!(stop, Some(SystemStop::Shutdown { .. })),
        },
        Exit {
            what: "a controlled shutdown: blk keeps faulting mid-sync (escalation)",
            jobs: &["disk-writer"],
            policy: Some(Policy::Enhanced),
            // Corrupted stacks (CPU faults): evidence that rollbacks do not help, as a
            // hot-kill's crash is not (docs/recovery.md, escalation).
            kills: (33..=38)
                .map(|n| PlannedKill::new("blk", n, When::MidRequest, Kind::Corrupt))
                .collect(),
            stops: |stop| matches!(stop, Some(SystemStop::Shutdown { .. })),
        },
    ];
    let mut unclean_before = Vec::new();
    for exit in exits {
        let disk = os_disk(&[]);
        let ran = run_os_on_disk_with(&disk, exit.jobs, exit.policy, exit.kills, false);
        assert!(
            (exit.stops)(&ran.report.stop),
            "{}: the run ended otherwise: {:?}",
            exit.what,
            ran.report.stop
        );
        let (clean_before, _) = recover_and_check(&disk, exit.what);
        if !clean_before {
            unclean_before.push(exit.what);
        }
    }
    // The stops mid-sync (the blk faults) are the ones the host's recovery repairs.
    assert!(
        !unclean_before.is_empty(),
        "no exit left an image e2fsck rejected before the host's recovery: the soak \
         no longer reaches a stop mid-sync"
    );
}
