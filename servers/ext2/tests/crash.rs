//! Crash property test: a sync interrupted at any device write, with any subset of
//! the unflushed writes reaching the disk, leaves a file system that mounts, holds
//! either the state of the previous sync or the new one (the new one if the sync
//! returned), and passes e2fsck. A crash during the recovery itself is survived too.

mod common;

use std::collections::BTreeMap;

use ankh_ext2::{mkfs, BlockDevice, Ext2Fs, MemDisk};
use ankh_proto::vfs::{KIND_DIR, O_CREAT, O_RDWR};
use common::{e2fsck, CrashDisk};
use proptest::prelude::*;

const BLOCKS: u64 = 4096;

/// A change to make before a sync.
#[derive(Clone, Debug)]
enum Change {
    Mkdir(u8),
    Write(u8, u64, usize, u8),
    Truncate(u8, u64),
    Unlink(u8),
    Rmdir(u8),
    Rename(u8, u8),
    /// Unlinks a file while it stays open (an orphan at the crash).
    UnlinkOpen(u8),
}

fn name(n: u8) -> String {
    let dir = if n < 8 { "" } else { "/d" };
    format!("{dir}/n{}", n % 8)
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        1 => Just(Change::Mkdir(0)),
        2 => (0u8..24).prop_map(Change::Mkdir),
        6 => (0u8..24, 0u64..300_000, 1usize..40_000, any::<u8>())
            .prop_map(|(f, o, n, s)| Change::Write(f, o, n, s)),
        2 => (0u8..24, 0u64..100_000).prop_map(|(f, l)| Change::Truncate(f, l)),
        2 => (0u8..24).prop_map(Change::Unlink),
        1 => (0u8..24).prop_map(Change::Rmdir),
        2 => (0u8..24, 0u8..24).prop_map(|(a, b)| Change::Rename(a, b)),
        1 => (0u8..24).prop_map(Change::UnlinkOpen),
    ]
}

/// Applies changes (errors are part of the game); returns inodes left open.
fn apply(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice, changes: &[Change]) -> Vec<u64> {
    let mut open = Vec::new();
    let _ = fs.mkdir(disk, "/d");
    for c in changes {
        match c {
            Change::Mkdir(n) => {
                let _ = fs.mkdir(disk, &name(*n));
            }
            Change::Write(n, o, len, seed) => {
                if let Ok(ino) = fs.open(disk, &name(*n), O_CREAT | O_RDWR) {
                    let data: Vec<u8> = (0..*len)
                        .map(|i| seed.wrapping_add(u8::try_from(i % 251).unwrap()))
                        .collect();
                    fs.write(disk, ino, *o, &data).unwrap();
                    fs.close(disk, ino).unwrap();
                }
            }
            Change::Truncate(n, l) => {
                if let Ok(ino) = fs.open(disk, &name(*n), O_RDWR) {
                    fs.truncate(disk, ino, *l).unwrap();
                    fs.close(disk, ino).unwrap();
                }
            }
            Change::Unlink(n) => {
                let _ = fs.unlink(disk, &name(*n));
            }
            Change::Rmdir(n) => {
                let _ = fs.rmdir(disk, &name(*n));
            }
            Change::Rename(a, b) => {
                let _ = fs.rename(disk, &name(*a), &name(*b));
            }
            Change::UnlinkOpen(n) => {
                if let Ok(ino) = fs.open(disk, &name(*n), O_RDWR) {
                    if fs.unlink(disk, &name(*n)).is_ok() {
                        open.push(ino);
                    } else {
                        fs.close(disk, ino).unwrap();
                    }
                }
            }
        }
    }
    open
}

/// A change that spans several forced syncs.
#[derive(Clone, Debug)]
enum BigChange {
    Write(u8, u64, usize, u8),
    Truncate(u8, u64),
    Unlink(u8),
    Files(u8, u8),
}

fn big_change() -> impl Strategy<Value = BigChange> {
    prop_oneof![
        4 => (0u8..4, 0u64..1_000_000, 1usize..3_000_000, any::<u8>())
            .prop_map(|(f, o, n, s)| BigChange::Write(f, o, n, s)),
        2 => (0u8..4, 0u64..2_000_000).prop_map(|(f, l)| BigChange::Truncate(f, l)),
        1 => (0u8..4).prop_map(BigChange::Unlink),
        1 => (0u8..4, 1u8..60).prop_map(|(d, n)| BigChange::Files(d, n)),
    ]
}

/// Applies big changes, ignoring every error (the device dies part way).
fn apply_big(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice, changes: &[BigChange]) {
    for c in changes {
        match c {
            BigChange::Write(f, o, len, seed) => {
                if let Ok(ino) = fs.open(disk, &format!("/big{f}"), O_CREAT | O_RDWR) {
                    let data = vec![*seed; *len];
                    let _ = fs.write(disk, ino, *o, &data);
                    let _ = fs.close(disk, ino);
                }
            }
            BigChange::Truncate(f, l) => {
                if let Ok(ino) = fs.open(disk, &format!("/big{f}"), O_RDWR) {
                    let _ = fs.truncate(disk, ino, *l);
                    let _ = fs.close(disk, ino);
                }
            }
            BigChange::Unlink(f) => {
                let _ = fs.unlink(disk, &format!("/big{f}"));
            }
            BigChange::Files(d, n) => {
                let _ = fs.mkdir(disk, &format!("/dir{d}"));
                for i in 0..*n {
                    let _ = fs
                        .open(disk, &format!("/dir{d}/file{i}"), O_CREAT | O_RDWR)
                        .map(|ino| fs.close(disk, ino));
                }
            }
        }
    }
}

/// Everything visible, by path: directory entries or file contents.
type State = BTreeMap<String, Vec<u8>>;

fn state(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice) -> State {
    let mut out = State::new();
    let mut dirs = vec![String::from("/")];
    while let Some(dir) = dirs.pop() {
        let ino = fs.resolve(disk, &dir).unwrap();
        let list = fs.readdir(disk, ino).unwrap();
        out.insert(dir.clone(), list.clone());
        for name in ankh_proto::wire::split(&list).unwrap() {
            if name == ".journal" {
                continue;
            }
            let path = format!("{dir}{name}");
            let ino = fs.resolve(disk, &path).unwrap();
            let stat = fs.stat(disk, ino).unwrap();
            if stat.kind == KIND_DIR {
                dirs.push(format!("{path}/"));
            } else {
                let len = usize::try_from(stat.size).unwrap();
                out.insert(path, fs.read(disk, ino, 0, len).unwrap());
            }
        }
    }
    out
}

/// Mounts a crashed disk and checks it holds `old` or `new` (exactly `new` when
/// `must_be_new`), then runs e2fsck on it.
fn check_recovered(disk: &mut MemDisk, old: &State, new: &State, must_be_new: bool) {
    let mut fs = Ext2Fs::mount(disk).expect("the crashed file system mounts");
    let got = state(&mut fs, disk);
    if must_be_new {
        assert!(got == *new, "a sync that returned was lost");
    } else {
        assert!(
            got == *old || got == *new,
            "neither the old state nor the new one"
        );
    }
    e2fsck(disk.image(), "a file system recovered from a crash");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_crash_during_sync_leaves_the_old_or_the_new_state(
        before in prop::collection::vec(change(), 0..25),
        after in prop::collection::vec(change(), 1..25),
        writes_until_crash in 0u64..14,
        keep in prop::collection::vec(any::<bool>(), 64),
        recovery_crash in proptest::option::of(0u64..6),
    ) {
        let mut base = MemDisk::new(BLOCKS);
        mkfs(&mut base, BLOCKS, None).unwrap();
        let mut disk = CrashDisk::new(base);
        let mut fs = Ext2Fs::mount_with_cache(&mut disk, 2000).unwrap();
        let open = apply(&mut fs, &mut disk, &before);
        for ino in open {
            fs.close(&mut disk, ino).unwrap();
        }
        fs.sync(&mut disk).unwrap();
        let old = state(&mut fs, &mut disk);
        let writes_before = disk.writes;
        let _open = apply(&mut fs, &mut disk, &after);
        // The changes fit one transaction: nothing was written before the sync.
        prop_assert_eq!(disk.writes, writes_before);
        let new = state(&mut fs, &mut disk);

        disk.writes_left = Some(writes_until_crash);
        let synced = fs.sync(&mut disk).is_ok();
        let mut crashed = disk.after_crash(|i| keep[i % keep.len()]);
        match recovery_crash {
            None => check_recovered(&mut crashed, &old, &new, synced),
            Some(n) => {
                // The machine crashes again while mount replays the journal.
                let mut again = CrashDisk::new(crashed);
                again.writes_left = Some(n);
                let _ = Ext2Fs::mount(&mut again);
                let mut twice = again.after_crash(|i| keep[(i + 7) % keep.len()]);
                check_recovered(&mut twice, &old, &new, synced);
            }
        }
    }

    #[test]
    fn a_crash_anywhere_in_long_operations_leaves_a_clean_file_system(
        changes in prop::collection::vec(big_change(), 1..8),
        writes_until_crash in 0u64..60,
        keep in prop::collection::vec(any::<bool>(), 64),
    ) {
        let mut base = MemDisk::new(BLOCKS);
        mkfs(&mut base, BLOCKS, None).unwrap();
        let mut disk = CrashDisk::new(base);
        // The smallest cache: long operations sync many times on their own.
        let mut fs = Ext2Fs::mount_with_cache(&mut disk, 0).unwrap();
        disk.writes_left = Some(writes_until_crash);
        apply_big(&mut fs, &mut disk, &changes);
        let _ = fs.sync(&mut disk);
        let mut crashed = disk.after_crash(|i| keep[i % keep.len()]);
        let mut fs = Ext2Fs::mount(&mut crashed).expect("the crashed file system mounts");
        state(&mut fs, &mut crashed);
        e2fsck(crashed.image(), "a file system crashed during long operations");
    }
}
