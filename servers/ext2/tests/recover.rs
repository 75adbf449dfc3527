//! [`Ext2Fs::recover`], what the host runs on a disk after the system using it stopped:
//! a system stopped between a sync's commit and the end of its in-place writes, or
//! with a file unlinked while open, leaves an image e2fsck rejects; after `recover` it
//! is clean, holds the synced state, and needs no replay at the next mount.

mod common;

use ankh_ext2::{mkfs, BlockDevice, Ext2Fs, MemDisk, MountRepairs};
use ankh_proto::vfs::{O_CREAT, O_RDWR};
use common::CrashDisk;

const BLOCKS: u64 = 4096;

/// Whether e2fsck -fn accepts the image.
fn e2fsck_clean(image: &[u8]) -> bool {
    let path = common::temp_path("recover");
    std::fs::write(&path, image).unwrap();
    let out = std::process::Command::new("/usr/sbin/e2fsck")
        .arg("-fn")
        .arg(&path)
        .output()
        .expect("e2fsck runs (install e2fsprogs)");
    std::fs::remove_file(&path).ok();
    out.status.success()
}

/// A synced file system with some files, then changes touching many groups' metadata.
fn write_files(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice, tag: u8, count: u8) {
    let _ = fs.mkdir(disk, "/d");
    for i in 0..count {
        let ino = fs
            .open(disk, &format!("/d/f{i}"), O_CREAT | O_RDWR)
            .unwrap();
        let data = vec![tag.wrapping_add(i); 20_000 + usize::from(i) * 3_000];
        fs.write(disk, ino, 0, &data).unwrap();
        fs.close(disk, ino).unwrap();
    }
}

#[test]
fn a_stop_in_a_syncs_in_place_writes_is_repaired_by_recover() {
    let mut fresh = MemDisk::new(BLOCKS);
    mkfs(&mut fresh, BLOCKS, None).unwrap();
    let mut stops_that_broke_the_image = 0;
    for writes_until_stop in 0..40 {
        let mut disk = CrashDisk::new(fresh.clone());
        let mut fs = Ext2Fs::mount(&mut disk).unwrap();
        write_files(&mut fs, &mut disk, 1, 6);
        fs.sync(&mut disk).unwrap();
        // Overwrites, removals and new files: a transaction of bitmaps, inode tables,
        // directories and data.
        write_files(&mut fs, &mut disk, 7, 12);
        fs.unlink(&mut disk, "/d/f2").unwrap();
        disk.writes_left = Some(writes_until_stop);
        let synced = fs.sync(&mut disk).is_ok();
        // The system stopped: every write it made is in the image file (the host's
        // page cache holds what was not flushed), nothing after.
        let mut stopped = disk.current();
        let clean_before = e2fsck_clean(stopped.image());
        let repairs = Ext2Fs::recover(&mut stopped).expect("the stopped image recovers");
        assert!(
            e2fsck_clean(stopped.image()),
            "stop after {writes_until_stop} writes: e2fsck after recover: {repairs:?}"
        );
        if !clean_before {
            stops_that_broke_the_image += 1;
            let replayed = repairs
                .replayed
                .expect("an unclean image had a transaction");
            assert!(replayed.rewritten > 0, "{repairs:?}");
        }
        // Nothing left to replay, and the synced state is there.
        let mut fs = Ext2Fs::mount(&mut stopped).unwrap();
        assert_eq!(fs.mount_repairs(), MountRepairs::default());
        // The old state or the new one, never a mix: /d/f11 was made and /d/f2
        // removed by the same sync; the new one when the sync returned.
        let f11 = fs.resolve(&mut stopped, "/d/f11");
        let f2 = fs.resolve(&mut stopped, "/d/f2");
        assert_ne!(f11.is_ok(), f2.is_ok(), "stop after {writes_until_stop}");
        if synced {
            let ino = f11.expect("a sync that returned is kept");
            assert_eq!(fs.read(&mut stopped, ino, 0, 4).unwrap(), [18; 4]);
        }
    }
    assert!(
        stops_that_broke_the_image > 0,
        "no stop point left the image unclean for e2fsck: the test proves nothing"
    );
}

#[test]
fn an_orphan_left_by_a_stop_is_freed_by_recover() {
    let mut disk = MemDisk::new(BLOCKS);
    mkfs(&mut disk, BLOCKS, None).unwrap();
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    write_files(&mut fs, &mut disk, 3, 2);
    let open = fs.open(&mut disk, "/d/f0", O_RDWR).unwrap();
    fs.unlink(&mut disk, "/d/f0").unwrap();
    fs.sync(&mut disk).unwrap();
    // The system stops with /d/f0 still open: an inode without links.
    let _ = open;
    assert!(
        !e2fsck_clean(disk.image()),
        "an orphan is what e2fsck flags"
    );
    let repairs = Ext2Fs::recover(&mut disk).unwrap();
    assert_eq!(repairs.orphans_freed, 1, "{repairs:?}");
    assert!(e2fsck_clean(disk.image()));
    // A second recover finds nothing to do.
    assert_eq!(Ext2Fs::recover(&mut disk).unwrap(), MountRepairs::default());
}
