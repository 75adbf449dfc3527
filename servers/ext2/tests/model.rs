//! Model-based property test: random operations run on `Ext2Fs` and on the VFS
//! server's in-memory `Tree` must give the same results and errors; after a sync and a
//! remount the two trees must still be equal, and e2fsck must find nothing wrong.

mod common;

use std::collections::BTreeMap;

use ankh_ext2::{mkfs, BlockDevice, Ext2Fs, MemDisk};
use ankh_proto::errno::Errno;
use ankh_proto::vfs::{Stat, KIND_DIR, O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY};
use ankh_vfs::tree::Tree;
use ankh_vfs::MemStorage;
use proptest::prelude::*;

const BLOCKS: u64 = 8192;

/// One operation on both file systems.
#[derive(Clone, Debug)]
enum Op {
    Mkdir(String),
    Open(String, u32),
    Close(usize),
    Unlink(String),
    Rmdir(String),
    Rename(String, String),
    Stat(usize),
    StatPath(String),
    Readdir(String),
    Read(usize, u64, usize),
    Write(usize, u64, usize, u8),
    Truncate(usize, u64),
    Sync,
    Remount,
}

fn path() -> impl Strategy<Value = String> {
    let component = prop_oneof![
        6 => Just("a"), 6 => Just("b"), 3 => Just("c"), 1 => Just(".."), 1 => Just("."),
    ];
    let depth = prop_oneof![1 => Just(0usize), 6 => Just(1), 4 => Just(2), 1 => Just(3)];
    let slash = prop_oneof![6 => Just(false), 1 => Just(true)];
    (depth, prop::collection::vec(component, 3), slash).prop_map(|(depth, parts, slash)| {
        let mut p = format!("/{}", parts[..depth].join("/"));
        if slash && p.len() > 1 {
            p.push('/');
        }
        p
    })
}

fn flags() -> impl Strategy<Value = u32> {
    (
        prop_oneof![Just(O_RDONLY), Just(O_WRONLY), Just(O_RDWR)],
        prop_oneof![Just(0), Just(O_CREAT), Just(O_CREAT | O_EXCL)],
        prop_oneof![3 => Just(0), 1 => Just(O_TRUNC)],
    )
        .prop_map(|(a, b, c)| a | b | c)
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..20_000,
        2 => 40_000u64..200_000,
        1 => 4_200_000u64..5_000_000, // the double indirect range
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => path().prop_map(Op::Mkdir),
        5 => (path(), flags()).prop_map(|(p, f)| Op::Open(p, f)),
        2 => any::<usize>().prop_map(Op::Close),
        2 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Rmdir),
        2 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => any::<usize>().prop_map(Op::Stat),
        1 => path().prop_map(Op::StatPath),
        1 => path().prop_map(Op::Readdir),
        2 => (any::<usize>(), offset(), 0usize..20_000).prop_map(|(h, o, n)| Op::Read(h, o, n)),
        4 => (any::<usize>(), offset(), 0usize..30_000, any::<u8>())
            .prop_map(|(h, o, n, seed)| Op::Write(h, o, n, seed)),
        2 => (any::<usize>(), offset()).prop_map(|(h, l)| Op::Truncate(h, l)),
        1 => Just(Op::Sync),
        1 => Just(Op::Remount),
    ]
}

/// Names ext2 has in its root that the tree has not.
const EXTRA_ROOT: [&str; 2] = ["lost+found", ".journal"];

struct Pair {
    tree: Tree<MemStorage>,
    fs: Ext2Fs,
    disk: MemDisk,
    /// Open handles: (tree inode, ext2 inode).
    handles: Vec<(u64, u64)>,
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add(u8::try_from(i % 253).unwrap()))
        .collect()
}

/// Ext2's stat of the root, made comparable with the tree's.
fn adjust_root(mut stat: Stat) -> Stat {
    if stat.ino == ankh_ext2::ROOT {
        stat.size -= 2;
        stat.nlink -= 1;
    }
    stat.ino = 0;
    stat
}

fn without_ino(mut stat: Stat) -> Stat {
    stat.ino = 0;
    stat
}

fn strip_extra(list: Vec<u8>, is_root: bool) -> Vec<u8> {
    if !is_root {
        return list;
    }
    let names: Vec<&str> = ankh_proto::wire::split(&list).unwrap();
    ankh_proto::wire::join(names.into_iter().filter(|n| !EXTRA_ROOT.contains(n)))
}

impl Pair {
    fn new() -> Pair {
        let mut disk = MemDisk::new(BLOCKS);
        mkfs(&mut disk, BLOCKS, None).unwrap();
        let fs = Ext2Fs::mount_with_cache(&mut disk, 300).unwrap();
        Pair {
            tree: Tree::new(MemStorage::new(1 << 30), 100_000),
            fs,
            disk,
            handles: Vec::new(),
        }
    }

    fn handle(&self, i: usize) -> Option<(u64, u64)> {
        (!self.handles.is_empty()).then(|| self.handles[i % self.handles.len()])
    }

    fn run(&mut self, op: &Op) {
        let picked = match op {
            Op::Close(i)
            | Op::Stat(i)
            | Op::Read(i, ..)
            | Op::Write(i, ..)
            | Op::Truncate(i, _) => self.handle(*i),
            _ => None,
        };
        let d: &mut dyn BlockDevice = &mut self.disk;
        match op {
            Op::Mkdir(p) => same(
                self.tree.mkdir(p).map(|_| ()),
                self.fs.mkdir(d, p).map(|_| ()),
                op,
            ),
            Op::Open(p, f) => {
                let t = self.tree.open(p, *f);
                let e = self.fs.open(d, p, *f);
                same(t.map(|_| ()), e.map(|_| ()), op);
                if let (Ok(t), Ok(e)) = (t, e) {
                    self.handles.push((t, e));
                }
            }
            Op::Close(_) => {
                if let Some((t, e)) = picked {
                    let at = self.handles.iter().position(|&h| h == (t, e)).unwrap();
                    self.handles.remove(at);
                    self.tree.close(t);
                    self.fs.close(d, e).unwrap();
                }
            }
            Op::Unlink(p) => same(self.tree.unlink(p), self.fs.unlink(d, p), op),
            Op::Rmdir(p) => same(self.tree.rmdir(p), self.fs.rmdir(d, p), op),
            Op::Rename(a, b) => same(self.tree.rename(a, b), self.fs.rename(d, a, b), op),
            Op::Stat(_) => {
                if let Some((t, e)) = picked {
                    same(
                        self.tree.stat(t).map(without_ino),
                        self.fs.stat(d, e).map(adjust_root),
                        op,
                    );
                }
            }
            Op::StatPath(p) => {
                let t = self.tree.resolve(p).and_then(|i| self.tree.stat(i));
                let e = self.fs.resolve(d, p).and_then(|i| self.fs.stat(d, i));
                same(t.map(without_ino), e.map(adjust_root), op);
            }
            Op::Readdir(p) => {
                let t = self.tree.resolve(p).and_then(|i| self.tree.readdir(i));
                let e = self
                    .fs
                    .resolve(d, p)
                    .and_then(|i| Ok(strip_extra(self.fs.readdir(d, i)?, i == ankh_ext2::ROOT)));
                same(t, e, op);
            }
            Op::Read(_, o, n) => {
                if let Some((t, e)) = picked {
                    same(self.tree.read(t, *o, *n), self.fs.read(d, e, *o, *n), op);
                }
            }
            Op::Write(_, o, n, seed) => {
                if let Some((t, e)) = picked {
                    let bytes = data(*n, *seed);
                    same(
                        self.tree.write(t, *o, &bytes),
                        self.fs.write(d, e, *o, &bytes),
                        op,
                    );
                }
            }
            Op::Truncate(_, l) => {
                if let Some((t, e)) = picked {
                    same(self.tree.truncate(t, *l), self.fs.truncate(d, e, *l), op);
                }
            }
            Op::Sync => self.fs.sync(d).unwrap(),
            Op::Remount => self.remount(),
        }
    }

    fn remount(&mut self) {
        for (t, e) in std::mem::take(&mut self.handles) {
            self.tree.close(t);
            self.fs.close(&mut self.disk, e).unwrap();
        }
        self.fs.sync(&mut self.disk).unwrap();
        self.fs = Ext2Fs::mount_with_cache(&mut self.disk, 300).unwrap();
    }

    /// Everything under a directory, by path, on both sides.
    fn compare_all(&mut self) {
        let t = walk_tree(&mut self.tree, "/");
        let e = walk_ext2(&mut self.fs, &mut self.disk, "/");
        assert_eq!(t.keys().collect::<Vec<_>>(), e.keys().collect::<Vec<_>>());
        assert_eq!(t, e);
    }
}

fn same<T: PartialEq + std::fmt::Debug>(tree: Result<T, Errno>, ext2: Result<T, Errno>, op: &Op) {
    assert_eq!(tree, ext2, "tree and ext2 differ on {op:?}");
}

/// (kind, nlink, contents or entry count) by path.
type Listing = BTreeMap<String, (u32, u32, Vec<u8>)>;

fn walk_tree(tree: &mut Tree<MemStorage>, dir: &str) -> Listing {
    let mut out = Listing::new();
    let ino = tree.resolve(dir).unwrap();
    let list = tree.readdir(ino).unwrap();
    for name in ankh_proto::wire::split(&list).unwrap() {
        let path = format!("{dir}{name}");
        let ino = tree.resolve(&path).unwrap();
        let stat = tree.stat(ino).unwrap();
        if stat.kind == KIND_DIR {
            out.insert(
                path.clone(),
                (stat.kind, stat.nlink, stat.size.to_le_bytes().to_vec()),
            );
            out.extend(walk_tree(tree, &format!("{path}/")));
        } else {
            let bytes = tree.read(ino, 0, usize::MAX).unwrap();
            out.insert(path, (stat.kind, stat.nlink, bytes));
        }
    }
    out
}

fn walk_ext2(fs: &mut Ext2Fs, disk: &mut MemDisk, dir: &str) -> Listing {
    let mut out = Listing::new();
    let ino = fs.resolve(disk, dir).unwrap();
    let list = strip_extra(fs.readdir(disk, ino).unwrap(), dir == "/");
    for name in ankh_proto::wire::split(&list).unwrap() {
        let path = format!("{dir}{name}");
        let ino = fs.resolve(disk, &path).unwrap();
        let stat = fs.stat(disk, ino).unwrap();
        if stat.kind == KIND_DIR {
            out.insert(
                path.clone(),
                (stat.kind, stat.nlink, stat.size.to_le_bytes().to_vec()),
            );
            out.extend(walk_ext2(fs, disk, &format!("{path}/")));
        } else {
            let bytes = fs
                .read(disk, ino, 0, usize::try_from(stat.size).unwrap())
                .unwrap();
            out.insert(path, (stat.kind, stat.nlink, bytes));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ext2_behaves_like_the_tree(ops in prop::collection::vec(op(), 1..150)) {
        let mut pair = Pair::new();
        for op in &ops {
            pair.run(op);
        }
        pair.compare_all();
        pair.remount();
        pair.compare_all();
        common::e2fsck(pair.disk.image(), "the file system after random operations");
    }
}
