//! A corrupt disk gives errors, never a panic or a hang: random damage to a valid
//! image's metadata, directories, indirect blocks and journal, then mount, reads,
//! changes and a sync.

use ankh_ext2::{BlockDevice, Ext2Fs, Image, MemDisk, BLOCK_SIZE};
use ankh_proto::vfs::{KIND_DIR, O_CREAT, O_RDWR};
use proptest::prelude::*;

const BLOCKS: u64 = 4096;

/// A small file system with directories, files of every mapping depth, and a few
/// hundred names.
fn image() -> Vec<u8> {
    let mut image = Image::new(BLOCKS).unwrap();
    for d in ["/a", "/a/b", "/a/b/c", "/d"] {
        image.add_dir(d).unwrap();
    }
    image.add_file("/small", b"small file").unwrap();
    image.add_file("/a/indirect", &vec![7; 200_000]).unwrap();
    image.add_file("/a/b/c/tiny", b"x").unwrap();
    for i in 0..200 {
        image
            .add_file(&format!("/d/file-with-a-longer-name-{i}"), &[1; 10])
            .unwrap();
    }
    let (fs, disk) = image.parts();
    let ino = fs.open(disk, "/a/double", O_CREAT | O_RDWR).unwrap();
    fs.write(disk, ino, 5 << 20, b"far away").unwrap();
    fs.close(disk, ino).unwrap();
    image.finish().unwrap()
}

/// Reads everything reachable, tolerating errors, visiting a bounded number of
/// names (a corrupt directory may contain itself).
fn explore(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice) {
    let mut dirs = vec![String::from("/")];
    let mut visits = 0;
    while let Some(dir) = dirs.pop() {
        let Ok(ino) = fs.resolve(disk, &dir) else {
            continue;
        };
        let Ok(list) = fs.readdir(disk, ino) else {
            continue;
        };
        let names: Vec<String> = list
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        for name in names {
            visits += 1;
            if visits > 400 {
                return;
            }
            let path = format!("{dir}{name}");
            let Ok(ino) = fs.resolve(disk, &path) else {
                continue;
            };
            match fs.stat(disk, ino) {
                Ok(stat) if stat.kind == KIND_DIR => dirs.push(format!("{path}/")),
                Ok(stat) => {
                    let _ = fs.read(
                        disk,
                        ino,
                        0,
                        usize::try_from(stat.size.min(1 << 20)).unwrap(),
                    );
                    let _ = fs.read(disk, ino, stat.size.saturating_sub(10), 100);
                }
                Err(_) => {}
            }
        }
    }
}

/// Tries every kind of change, ignoring their errors.
fn change(fs: &mut Ext2Fs, disk: &mut dyn BlockDevice) {
    let _ = fs.mkdir(disk, "/new");
    let _ = fs.mkdir(disk, "/a/b/new");
    if let Ok(ino) = fs.open(disk, "/a/indirect", O_RDWR) {
        let _ = fs.write(disk, ino, 100, &[9; 50_000]);
        let _ = fs.truncate(disk, ino, 10);
        let _ = fs.close(disk, ino);
    }
    if let Ok(ino) = fs.open(disk, "/d/created", O_CREAT | O_RDWR) {
        let _ = fs.write(disk, ino, 0, &[3; 9000]);
        let _ = fs.close(disk, ino);
    }
    let _ = fs.rename(disk, "/a/b", "/d/b");
    let _ = fs.rename(disk, "/small", "/a/double");
    let _ = fs.unlink(disk, "/d/file-with-a-longer-name-7");
    let _ = fs.unlink(disk, "/a/double");
    let _ = fs.rmdir(disk, "/a/b/c");
    let _ = fs.sync(disk);
}

#[derive(Clone, Debug)]
struct Damage {
    block: u64,
    offset: usize,
    byte: u8,
}

fn damage() -> impl Strategy<Value = Damage> {
    let block = prop_oneof![
        6 => 0u64..42,       // superblock, descriptors, bitmaps, inode table, root, lost+found
        1 => 42u64..44,      // the journal's first blocks
        4 => 298u64..420,    // directories, indirect blocks, data
    ];
    (block, 0..BLOCK_SIZE, any::<u8>()).prop_map(|(block, offset, byte)| Damage {
        block,
        offset,
        byte,
    })
}

fn run_damaged(image: &[u8], damages: &[Damage]) {
    let mut bytes = image.to_vec();
    for d in damages {
        bytes[usize::try_from(d.block).unwrap() * BLOCK_SIZE + d.offset] = d.byte;
    }
    let mut disk = MemDisk::from_image(bytes);
    if let Ok(mut fs) = Ext2Fs::mount(&mut disk) {
        explore(&mut fs, &mut disk);
        change(&mut fs, &mut disk);
        explore(&mut fs, &mut disk);
    }
    if let Ok(mut fs) = Ext2Fs::mount(&mut disk) {
        explore(&mut fs, &mut disk);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn damage_gives_errors_not_panics(damages in prop::collection::vec(damage(), 1..12)) {
        thread_local!(static IMAGE: Vec<u8> = image());
        IMAGE.with(|image| run_damaged(image, &damages));
    }
}

#[test]
fn a_forged_journal_header_is_refused_or_replayed_safely() {
    let image = image();
    let disk = MemDisk::from_image(image.clone());
    let mut probe = disk.clone();
    let journal = Ext2Fs::mount(&mut probe).unwrap().journal_blocks()[0];
    for (h, nj, no) in [
        (1u32, 3u32, 0u32),
        (0, 0, 0),
        (u32::MAX, u32::MAX, 1),
        (1, 0, 500),
        (2, 300, 300),
    ] {
        let mut bytes = image.clone();
        let at = usize::try_from(journal).unwrap() * BLOCK_SIZE;
        bytes[at..at + 8].copy_from_slice(b"ANKHJNL1");
        bytes[at + 16..at + 20].copy_from_slice(&h.to_le_bytes());
        bytes[at + 20..at + 24].copy_from_slice(&nj.to_le_bytes());
        bytes[at + 24..at + 28].copy_from_slice(&no.to_le_bytes());
        let mut disk = MemDisk::from_image(bytes);
        // A header whose checksum fails is no transaction: the file system mounts.
        let mut fs = Ext2Fs::mount(&mut disk).unwrap();
        explore(&mut fs, &mut disk);
    }
}

#[test]
fn garbage_is_not_a_file_system() {
    for fill in [0u8, 0xFF, 0x53] {
        let mut disk = MemDisk::from_image(vec![fill; 64 * BLOCK_SIZE]);
        assert!(Ext2Fs::mount(&mut disk).is_err());
    }
    let mut empty = MemDisk::new(0);
    assert!(Ext2Fs::mount(&mut empty).is_err());
}
