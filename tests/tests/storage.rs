//! The OS on its disk: files persist across restarts, `fsync`ed data survives crashes
//! of the file server and the disk driver, driver crashes are invisible to programs,
//! and `e2fsck` finds every image consistent.

use ankh_recovery::Action;
use ankh_tests::{acked, e2fsck, os_disk, run_os_on_disk, Ran};
use ankh_vmm::system::injection::{Kind, PlannedKill, When};
use ankh_vmm::system::DomainEnd;

/// The paths `disk-check` found exactly as written.
fn intact(ran: &Ran) -> Vec<String> {
    ran.lines_of("disk-check")
        .into_iter()
        .filter_map(|l| l.strip_prefix("ok "))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

/// Request numbers spread over a run, from a fixed seed (a small LCG, so a failure can
/// be replayed).
fn points(seed: u64, count: usize, below: u64) -> Vec<u64> {
    let mut state = seed;
    let mut points: Vec<u64> = (0..count)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + (state >> 33) % below
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    points
}

#[test]
fn synced_files_survive_crashes_of_blk_and_vfs_and_a_restart() {
    for seed in [1, 2] {
        let disk = os_disk(&[]);
        let mut kills: Vec<PlannedKill> = points(seed, 8, 400)
            .into_iter()
            .map(|n| PlannedKill::crash("blk", n))
            .collect();
        kills.extend(
            points(seed + 100, 4, 300)
                .into_iter()
                .map(|n| PlannedKill::crash("vfs", n)),
        );
        let wrote = run_os_on_disk(&disk, &["disk-writer"], kills);
        let acked = acked(&wrote);
        let recoveries = &wrote.report.recoveries;
        assert!(
            recoveries.iter().any(|e| e.domain_name == "blk"),
            "seed {seed}: blk was never killed: {recoveries:?}"
        );
        assert!(
            recoveries.iter().any(|e| e.domain_name == "vfs"),
            "seed {seed}: vfs was never killed: {recoveries:?}"
        );
        for event in recoveries.iter().filter(|e| e.domain_name == "blk") {
            assert_eq!(event.action, Action::Restart, "seed {seed}: {event}");
        }
        assert!(!acked.is_empty(), "seed {seed}: nothing acknowledged");

        // A restart on the same image: every acknowledged file reads back intact.
        let checked = run_os_on_disk(&disk, &["disk-check"], Vec::new());
        let intact = intact(&checked);
        for path in &acked {
            assert!(
                intact.contains(path),
                "seed {seed}: {path} was acknowledged but did not survive: {:?}",
                checked.lines_of("disk-check")
            );
        }
        let (status, report) = e2fsck(disk.path());
        assert_eq!(status, 0, "seed {seed}: e2fsck: {report}");
    }
}

#[test]
fn blk_crashes_mid_read_and_mid_write_are_invisible_to_the_suite() {
    let disk = os_disk(&[]);
    // Early requests are the reads of the programs being loaded; later ones include
    // the suite's writes and syncs.
    let kills = [2, 5, 11, 17]
        .into_iter()
        .map(|n| PlannedKill::crash("blk", n))
        .chain([PlannedKill::new("blk", 8, When::MidRequest, Kind::Corrupt)])
        .collect();
    let ran = run_os_on_disk(&disk, &["suite"], kills);
    let restarts = ran
        .report
        .recoveries
        .iter()
        .filter(|e| e.domain_name == "blk" && e.action == Action::Restart)
        .count();
    assert_eq!(restarts, 5, "{:?}", ran.report.recoveries);
    let result = ran
        .lines_of("suite")
        .into_iter()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or("the suite did not finish")
        .to_owned();
    assert!(result.ends_with(" 0 failed"), "{result}");
    assert!(matches!(ran.end("blk"), DomainEnd::Waiting(_)));
    let (status, report) = e2fsck(disk.path());
    assert_eq!(status, 0, "e2fsck after the suite: {report}");
}

#[test]
fn files_persist_across_a_clean_restart() {
    let disk = os_disk(&[]);
    let wrote = run_os_on_disk(&disk, &["disk-writer"], Vec::new());
    assert_eq!(
        acked(&wrote).len(),
        24,
        "{:?}",
        wrote.lines_of("disk-writer")
    );
    let (status, report) = e2fsck(disk.path());
    assert_eq!(status, 0, "e2fsck after a clean shutdown: {report}");
    let checked = run_os_on_disk(&disk, &["disk-check"], Vec::new());
    assert_eq!(
        intact(&checked).len(),
        24,
        "{:?}",
        checked.lines_of("disk-check")
    );
}
