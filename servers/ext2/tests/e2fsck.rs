//! Images made and changed by this crate pass `e2fsck -fn`, and debugfs reads back
//! what was written.

mod common;

use ankh_ext2::{mkfs, Ext2Fs, Image, MemDisk, BLOCK_SIZE};
use ankh_proto::vfs::{O_CREAT, O_RDWR};
use common::{debugfs, e2fsck};

#[test]
fn a_fresh_file_system_is_clean() {
    for blocks in [2048, 16384, 40000, 100_000] {
        let mut disk = MemDisk::new(blocks);
        mkfs(&mut disk, blocks, None).unwrap();
        e2fsck(
            disk.image(),
            &format!("a fresh file system of {blocks} blocks"),
        );
        Ext2Fs::mount(&mut disk).unwrap();
    }
}

#[test]
fn an_image_with_files_is_clean_and_readable_by_debugfs() {
    let mut image = Image::new(16384).unwrap();
    image.add_dir("/bin").unwrap();
    image.add_dir("/bin").unwrap();
    image.add_dir("/etc").unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    image.add_file("/bin/big", &big).unwrap();
    image.add_file("/etc/motd", b"hello, ankh\n").unwrap();
    image.add_file("/empty", b"").unwrap();
    let bytes = image.finish().unwrap();
    e2fsck(&bytes, "an image with files");
    assert!(debugfs(&bytes, "cat /etc/motd").contains("hello, ankh"));
    let listing = debugfs(&bytes, "ls -l /bin");
    assert!(listing.contains("5000000"), "{listing}");
}

#[test]
fn many_operations_leave_it_clean() {
    let blocks = 40000;
    let mut disk = MemDisk::new(blocks);
    mkfs(&mut disk, blocks, None).unwrap();
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    for d in 0..20 {
        fs.mkdir(&mut disk, &format!("/d{d}")).unwrap();
        for f in 0..30 {
            let ino = fs
                .open(&mut disk, &format!("/d{d}/f{f}"), O_CREAT | O_RDWR)
                .unwrap();
            let data = vec![u8::try_from(f).unwrap(); (f * 7919) % 60000];
            fs.write(&mut disk, ino, u64::try_from(f * 100).unwrap(), &data)
                .unwrap();
            fs.close(&mut disk, ino).unwrap();
        }
    }
    // A file with a hole reaching into the double indirect range.
    let ino = fs.open(&mut disk, "/sparse", O_CREAT | O_RDWR).unwrap();
    fs.write(&mut disk, ino, 9 << 20, b"far").unwrap();
    fs.write(&mut disk, ino, 3, b"near").unwrap();
    fs.close(&mut disk, ino).unwrap();
    for d in (0..20).step_by(2) {
        for f in 0..30 {
            fs.unlink(&mut disk, &format!("/d{d}/f{f}")).unwrap();
        }
        fs.rmdir(&mut disk, &format!("/d{d}")).unwrap();
    }
    assert_eq!(
        fs.rename(&mut disk, "/d1", "/d1/x/y"),
        Err(ankh_proto::errno::ENOENT)
    );
    assert_eq!(
        fs.rename(&mut disk, "/d1", "/d1/x"),
        Err(ankh_proto::errno::EINVAL)
    );
    fs.rename(&mut disk, "/d1", "/d5/moved").unwrap();
    fs.rename(&mut disk, "/d3/f1", "/d3/f2").unwrap();
    let ino = fs.resolve(&mut disk, "/d3/f3").unwrap();
    fs.truncate(&mut disk, ino, 5).unwrap();
    fs.sync(&mut disk).unwrap();
    e2fsck(disk.image(), "a file system after many operations");
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    let ino = fs.resolve(&mut disk, "/sparse").unwrap();
    assert_eq!(fs.read(&mut disk, ino, 0, 8).unwrap(), b"\0\0\0near\0");
    assert_eq!(fs.read(&mut disk, ino, 9 << 20, 10).unwrap(), b"far");
    assert_eq!(fs.len(&mut disk, ino).unwrap(), (9 << 20) + 3);
    let _ = BLOCK_SIZE;
}

#[test]
fn a_directory_past_its_direct_blocks_is_clean() {
    let mut disk = MemDisk::new(8192);
    mkfs(&mut disk, 8192, Some(4000)).unwrap();
    let mut fs = Ext2Fs::mount(&mut disk).unwrap();
    fs.mkdir(&mut disk, "/many").unwrap();
    let name = |i: u32| format!("/many/{i:0>56}");
    for i in 0..1500 {
        let ino = fs.open(&mut disk, &name(i), O_CREAT | O_RDWR).unwrap();
        fs.close(&mut disk, ino).unwrap();
    }
    let dir = fs.resolve(&mut disk, "/many").unwrap();
    assert_eq!(fs.stat(&mut disk, dir).unwrap().size, 1500);
    for i in (0..1500).step_by(3) {
        fs.unlink(&mut disk, &name(i)).unwrap();
    }
    for i in 0..100 {
        fs.mkdir(&mut disk, &format!("/many/d{i}")).unwrap();
    }
    fs.sync(&mut disk).unwrap();
    e2fsck(disk.image(), "a directory with an indirect block");
    let listing = fs.readdir(&mut disk, dir).unwrap();
    assert_eq!(listing.iter().filter(|&&b| b == 0).count(), 1100);
    assert_eq!(fs.stat(&mut disk, dir).unwrap().nlink, 102);
}
