//! Specific behaviours: the journal file is protected, removed files live until their
//! last close, orphans are freed at mount, a full disk gives short writes, device
//! failures poison the file system, I/O is coalesced, and images round-trip through
//! the sparse form.

mod common;

use ankh_ext2::{
    mkfs, sparse, sparse_len, unsparse_into, BlockDevice, Ext2Fs, Image, MemDisk, ROOT,
};
use ankh_proto::errno;
use ankh_proto::vfs::{KIND_DIR, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
use common::{e2fsck, CountingDisk, CrashDisk};

fn fresh(blocks: u64) -> (Ext2Fs, MemDisk) {
    let mut disk = MemDisk::new(blocks);
    mkfs(&mut disk, blocks, None).unwrap();
    let fs = Ext2Fs::mount(&mut disk).unwrap();
    (fs, disk)
}

#[test]
fn the_root_holds_lost_found_and_the_journal() {
    let (mut fs, mut disk) = fresh(4096);
    let stat = fs.stat(&mut disk, ROOT).unwrap();
    assert_eq!((stat.kind, stat.size, stat.nlink), (KIND_DIR, 2, 3));
    assert_eq!(
        fs.readdir(&mut disk, ROOT).unwrap(),
        b".journal\0lost+found\0"
    );
    assert_eq!(fs.resolve(&mut disk, "/lost+found/..").unwrap(), ROOT);
    assert_eq!(fs.inode_count(), 12);
}

#[test]
fn the_journal_cannot_be_changed_through_the_api() {
    let (mut fs, mut disk) = fresh(4096);
    let d = &mut disk;
    assert_eq!(fs.open(d, "/.journal", O_RDWR), Err(errno::EPERM));
    assert_eq!(
        fs.open(d, "/.journal", O_WRONLY | O_TRUNC),
        Err(errno::EPERM)
    );
    assert_eq!(
        fs.open(d, "/.journal", O_CREAT | O_WRONLY),
        Err(errno::EPERM)
    );
    assert_eq!(fs.unlink(d, "/.journal"), Err(errno::EPERM));
    assert_eq!(fs.rename(d, "/.journal", "/j"), Err(errno::EPERM));
    fs.open(d, "/f", O_CREAT | O_WRONLY).unwrap();
    assert_eq!(fs.rename(d, "/f", "/.journal"), Err(errno::EPERM));
    assert_eq!(fs.rmdir(d, "/.journal"), Err(errno::ENOTDIR));
    assert_eq!(fs.mkdir(d, "/.journal"), Err(errno::EEXIST));
    let ino = fs.open(d, "/.journal", O_RDONLY).unwrap();
    assert_eq!(fs.write(d, ino, 0, b"x"), Err(errno::EPERM));
    assert_eq!(fs.truncate(d, ino, 0), Err(errno::EPERM));
    assert_eq!(fs.read(d, ino, 0, 4).unwrap().len(), 4);
    fs.close(d, ino).unwrap();
}

#[test]
fn a_removed_file_lives_until_its_last_close() {
    let (mut fs, mut disk) = fresh(4096);
    let d = &mut disk;
    let free = fs.free_blocks();
    let ino = fs.open(d, "/f", O_CREAT | O_RDWR).unwrap();
    let again = fs.open(d, "/f", O_RDONLY).unwrap();
    assert_eq!(ino, again);
    fs.write(d, ino, 0, &vec![5; 100_000]).unwrap();
    fs.unlink(d, "/f").unwrap();
    assert_eq!(fs.resolve(d, "/f"), Err(errno::ENOENT));
    assert_eq!(fs.stat(d, ino).unwrap().nlink, 0);
    assert_eq!(fs.read(d, ino, 99_990, 100).unwrap(), vec![5; 10]);
    fs.close(d, ino).unwrap();
    assert_eq!(fs.len(d, ino).unwrap(), 100_000);
    fs.close(d, again).unwrap();
    assert_eq!(fs.stat(d, ino), Err(errno::ENOENT));
    assert_eq!(fs.free_blocks(), free);
    assert_eq!(fs.inode_count(), 12);
    fs.sync(d).unwrap();
    e2fsck(disk.image(), "after the last close of a removed file");
}

#[test]
fn orphans_left_by_a_crash_are_freed_at_mount() {
    let (mut fs, mut disk) = fresh(4096);
    let free = fs.free_blocks();
    let ino = fs.open(&mut disk, "/f", O_CREAT | O_RDWR).unwrap();
    fs.write(&mut disk, ino, 0, &vec![1; 300_000]).unwrap();
    fs.mkdir(&mut disk, "/dir").unwrap();
    let dir = fs.open(&mut disk, "/dir", O_RDONLY).unwrap();
    fs.unlink(&mut disk, "/f").unwrap();
    fs.rmdir(&mut disk, "/dir").unwrap();
    assert_eq!(fs.readdir(&mut disk, dir).unwrap(), b"");
    fs.sync(&mut disk).unwrap();
    drop(fs); // the machine stops with both still open
    let fs = Ext2Fs::mount(&mut disk).unwrap();
    assert_eq!(fs.free_blocks(), free);
    assert_eq!(fs.inode_count(), 12);
    e2fsck(disk.image(), "after orphans were freed at mount");
}

#[test]
fn a_full_disk_gives_a_short_write_then_enospc() {
    let (mut fs, mut disk) = fresh(2048);
    let d = &mut disk;
    let ino = fs.open(d, "/big", O_CREAT | O_RDWR).unwrap();
    let data = vec![9; 16 << 20];
    let n = fs.write(d, ino, 0, &data).unwrap();
    assert!(n > 0 && n < data.len(), "{n}");
    assert_eq!(fs.len(d, ino).unwrap(), u64::try_from(n).unwrap());
    assert_eq!(
        fs.write(d, ino, u64::try_from(n).unwrap(), b"more"),
        Err(errno::ENOSPC)
    );
    assert_eq!(fs.mkdir(d, "/no-room"), Err(errno::ENOSPC));
    // Writing over what exists needs no space; a hole needs none either.
    assert_eq!(fs.write(d, ino, 0, b"over").unwrap(), 4);
    fs.truncate(d, ino, 1 << 30).unwrap();
    assert_eq!(fs.read(d, ino, (1 << 30) - 2, 10).unwrap(), b"\0\0");
    fs.sync(d).unwrap();
    e2fsck(disk.image(), "a full file system");
    let d = &mut disk;
    fs.close(d, ino).unwrap();
    fs.unlink(d, "/big").unwrap();
    fs.mkdir(d, "/room").unwrap();
    fs.sync(d).unwrap();
    e2fsck(disk.image(), "a file system emptied again");
}

#[test]
fn the_largest_file_and_files_across_groups() {
    let (mut fs, mut disk) = fresh(40000);
    let d = &mut disk;
    let ino = fs.open(d, "/huge", O_CREAT | O_RDWR).unwrap();
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 241) as u8).collect();
    for i in 0..140u64 {
        assert_eq!(fs.write(d, ino, i << 20, &chunk).unwrap(), chunk.len());
    }
    assert_eq!(
        fs.read(d, ino, (139 << 20) + 1000, 16).unwrap(),
        &chunk[1000..1016]
    );
    let max = ankh_ext2::layout::MAX_FILE_SIZE;
    assert_eq!(fs.write(d, ino, max, b"x"), Err(errno::ENOSPC));
    assert_eq!(fs.write(d, ino, max - 2, b"xyz").unwrap(), 2);
    assert_eq!(fs.truncate(d, ino, max + 1), Err(errno::ENOSPC));
    fs.sync(d).unwrap();
    e2fsck(disk.image(), "a file spanning groups and the whole map");
    let d = &mut disk;
    fs.truncate(d, ino, 5 << 20).unwrap();
    fs.sync(d).unwrap();
    e2fsck(disk.image(), "the large file truncated");
}

#[test]
fn a_failing_device_poisons_until_remount() {
    let (mut fs, disk) = fresh(4096);
    let mut crash = CrashDisk::new(disk);
    fs.mkdir(&mut crash, "/kept").unwrap();
    fs.sync(&mut crash).unwrap();
    fs.mkdir(&mut crash, "/lost").unwrap();
    crash.writes_left = Some(0);
    assert_eq!(fs.sync(&mut crash), Err(errno::EIO));
    assert!(fs.is_poisoned());
    assert_eq!(fs.mkdir(&mut crash, "/x"), Err(errno::EIO));
    // Reads still work.
    assert!(fs.resolve(&mut crash, "/lost").is_ok());
    let mut disk = crash.after_crash(|_| false);
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    assert!(fs.resolve(&mut disk, "/kept").is_ok());
    assert_eq!(fs.resolve(&mut disk, "/lost"), Err(errno::ENOENT));
}

#[test]
fn a_returned_sync_survives_losing_every_unflushed_write() {
    let (mut fs, disk) = fresh(4096);
    let mut crash = CrashDisk::new(disk);
    let ino = fs.open(&mut crash, "/f", O_CREAT | O_RDWR).unwrap();
    fs.write(&mut crash, ino, 0, b"durable").unwrap();
    fs.sync(&mut crash).unwrap();
    assert!(
        crash.pending() > 0,
        "the in-place writes wait for the next sync's flush"
    );
    let mut disk = crash.after_crash(|_| false);
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    let ino = fs.resolve(&mut disk, "/f").unwrap();
    assert_eq!(fs.read(&mut disk, ino, 0, 100).unwrap(), b"durable");
    e2fsck(disk.image(), "after a replay");
    // The replayed transaction is retired: nothing is replayed twice.
    assert!(journal_header_is_clear(&fs, &mut disk));
}

fn journal_header_is_clear(fs: &Ext2Fs, disk: &mut MemDisk) -> bool {
    let mut header = vec![0; ankh_ext2::BLOCK_SIZE];
    disk.read_blocks(fs.journal_blocks()[0], &mut header)
        .unwrap();
    header.iter().all(|&b| b == 0)
}

#[test]
fn unmount_leaves_nothing_to_replay() {
    let (mut fs, mut disk) = fresh(4096);
    fs.mkdir(&mut disk, "/d").unwrap();
    fs.sync(&mut disk).unwrap();
    assert!(!journal_header_is_clear(&fs, &mut disk));
    let probe = Ext2Fs::mount(&mut disk.clone()).unwrap();
    fs.unmount(&mut disk).unwrap();
    assert!(journal_header_is_clear(&probe, &mut disk));
    e2fsck(disk.image(), "after unmount");
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    assert!(fs.resolve(&mut disk, "/d").is_ok());
}

#[test]
fn io_is_coalesced_and_sequential_reads_read_ahead() {
    let (mut fs, disk) = fresh(16384);
    let mut disk = CountingDisk::new(disk);
    let ino = fs.open(&mut disk, "/f", O_CREAT | O_RDWR).unwrap();
    let chunk = vec![0xA5; 1 << 20];
    for i in 0..8u64 {
        fs.write(&mut disk, ino, i << 20, &chunk).unwrap();
    }
    fs.close(&mut disk, ino).unwrap();
    fs.sync(&mut disk).unwrap();
    // 2048 data blocks, written once (new blocks go in place, not through the
    // journal), in few calls of at most 1 MiB.
    assert!(
        disk.blocks_written < 2048 + 200,
        "{} blocks written",
        disk.blocks_written
    );
    assert!(disk.writes < 40, "{} write calls", disk.writes);
    assert!(disk.largest <= 256);

    let mut disk = CountingDisk::new(disk.disk);
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    let ino = fs.open(&mut disk, "/f", O_RDONLY).unwrap();
    let reads_before = disk.reads;
    let mut at = 0;
    while at < 8 << 20 {
        let got = fs.read(&mut disk, ino, at, 4096).unwrap();
        assert_eq!(got, &chunk[..4096]);
        at += 4096;
    }
    let reads = disk.reads - reads_before;
    assert!(
        reads < 2048 / 16,
        "{reads} read calls for 2048 sequential 4 KiB reads"
    );
    let big = fs.read(&mut disk, ino, 0, 8 << 20).unwrap();
    assert!(big.iter().all(|&b| b == 0xA5));
    assert!(disk.largest <= 256);
}

#[test]
fn small_files_are_read_from_the_device_once_and_large_ones_stream() {
    let (mut fs, disk) = fresh(16384);
    let mut disk = CountingDisk::new(disk);
    let small = fs.open(&mut disk, "/prog", O_CREAT | O_RDWR).unwrap();
    let program: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    fs.write(&mut disk, small, 0, &program).unwrap();
    let large = fs.open(&mut disk, "/big", O_CREAT | O_RDWR).unwrap();
    let chunk = vec![0x5A; 2 << 20];
    fs.write(&mut disk, large, 0, &chunk).unwrap();
    fs.sync(&mut disk).unwrap();

    // A fresh mount: nothing cached.
    let mut disk = CountingDisk::new(disk.disk);
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    let small = fs.resolve(&mut disk, "/prog").unwrap();
    let large = fs.resolve(&mut disk, "/big").unwrap();
    for time in 0..3 {
        let before = disk.reads;
        assert_eq!(fs.read(&mut disk, small, 0, 1 << 20).unwrap(), program);
        let calls = disk.reads - before;
        if time == 0 {
            assert!(calls > 0, "the first read comes from the device");
        } else {
            assert_eq!(calls, 0, "read {time} of a small file went to the device");
        }
    }
    for _ in 0..2 {
        let before = disk.reads;
        assert_eq!(fs.read(&mut disk, large, 0, 2 << 20).unwrap(), chunk);
        assert!(disk.reads > before, "a large file streams past the cache");
    }
}

#[test]
fn the_sparse_form_round_trips_an_image() {
    let mut image = Image::new(16384).unwrap();
    image.add_dir("/etc").unwrap();
    image.add_file("/etc/hello", b"hello").unwrap();
    let bytes = image.finish().unwrap();
    let form = sparse(&bytes);
    assert!(form.len() < bytes.len() / 20, "{} bytes", form.len());
    assert_eq!(
        sparse_len(&form).unwrap(),
        u64::try_from(bytes.len()).unwrap()
    );
    let mut back = vec![0; bytes.len()];
    unsparse_into(&form, |at, data| {
        let at = usize::try_from(at).unwrap();
        back[at..at + data.len()].copy_from_slice(data);
    })
    .unwrap();
    assert_eq!(back, bytes);
    let mut disk = MemDisk::from_image(back);
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    let ino = fs.resolve(&mut disk, "/etc/hello").unwrap();
    assert_eq!(fs.read(&mut disk, ino, 0, 10).unwrap(), b"hello");
    assert!(journal_header_is_clear(&fs, &mut disk));
}
