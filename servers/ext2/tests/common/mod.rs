//! Helpers shared by the integration tests: running e2fsck on an image, a device
//! that crashes, and a device that counts its calls.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use ankh_ext2::{BlockDevice, MemDisk, BLOCK_SIZE};
use ankh_proto::errno::{self, Errno};

/// Where e2fsck is.
const E2FSCK: &str = "/usr/sbin/e2fsck";

/// A fresh temporary file path.
pub fn temp_path(tag: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ankh-ext2-{}-{tag}-{n}.img", std::process::id()))
}

/// Runs `e2fsck -fn` on an image; panics with its output unless it finds nothing.
pub fn e2fsck(image: &[u8], what: &str) {
    assert!(
        std::path::Path::new(E2FSCK).exists(),
        "{E2FSCK} is missing: install e2fsprogs (apt-get install e2fsprogs) to run these tests"
    );
    let path = temp_path("fsck");
    std::fs::write(&path, image).unwrap();
    let out = Command::new(E2FSCK).arg("-fn").arg(&path).output().unwrap();
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "e2fsck found problems in {what} (status {:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a debugfs request on an image and returns its output.
pub fn debugfs(image: &[u8], request: &str) -> String {
    let path = temp_path("debugfs");
    std::fs::write(&path, image).unwrap();
    let out = Command::new("/usr/sbin/debugfs")
        .arg("-R")
        .arg(request)
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A device that stops accepting writes after a number of them; writes since the last
/// flush are pending, and a crash keeps any subset of them.
pub struct CrashDisk {
    /// What is durable.
    pub durable: MemDisk,
    /// Writes since the last flush: (block, contents of one block).
    pending: Vec<(u64, Vec<u8>)>,
    /// Writes left before the crash (`None`: never).
    pub writes_left: Option<u64>,
    /// Set once crashed.
    pub crashed: bool,
    /// `write_blocks` calls accepted.
    pub writes: u64,
}

impl CrashDisk {
    /// A device over `disk`.
    pub fn new(disk: MemDisk) -> CrashDisk {
        CrashDisk {
            durable: disk,
            pending: Vec::new(),
            writes_left: None,
            crashed: false,
            writes: 0,
        }
    }

    /// The disk after a crash: the durable blocks plus the pending writes `keep`
    /// chooses (by index).
    pub fn after_crash(&self, mut keep: impl FnMut(usize) -> bool) -> MemDisk {
        let mut disk = self.durable.clone();
        for (i, (block, data)) in self.pending.iter().enumerate() {
            if keep(i) {
                disk.write_blocks(*block, data).unwrap();
            }
        }
        disk
    }

    /// The disk as if every write landed.
    pub fn current(&self) -> MemDisk {
        self.after_crash(|_| true)
    }

    /// Pending writes.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

impl BlockDevice for CrashDisk {
    fn blocks(&self) -> u64 {
        self.durable.blocks()
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.durable.read_blocks(block, buf)?;
        // Reads see pending writes, as a real device's would.
        for (b, data) in &self.pending {
            if *b >= block && *b < block + (buf.len() / BLOCK_SIZE) as u64 {
                let at = usize::try_from(*b - block).unwrap() * BLOCK_SIZE;
                buf[at..at + BLOCK_SIZE].copy_from_slice(data);
            }
        }
        Ok(())
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno> {
        if self.crashed {
            return Err(errno::EIO);
        }
        if let Some(left) = self.writes_left.as_mut() {
            if *left == 0 {
                self.crashed = true;
                return Err(errno::EIO);
            }
            *left -= 1;
        }
        if block + (data.len() / BLOCK_SIZE) as u64 > self.blocks() {
            return Err(errno::EINVAL);
        }
        self.writes += 1;
        for (i, chunk) in data.chunks_exact(BLOCK_SIZE).enumerate() {
            self.pending.push((block + i as u64, chunk.to_vec()));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Errno> {
        if self.crashed {
            return Err(errno::EIO);
        }
        for (block, data) in self.pending.drain(..) {
            self.durable.write_blocks(block, &data).unwrap();
        }
        Ok(())
    }
}

/// A device that counts its calls and the blocks they move.
pub struct CountingDisk {
    /// The device.
    pub disk: MemDisk,
    /// `read_blocks` calls.
    pub reads: u64,
    /// `write_blocks` calls.
    pub writes: u64,
    /// Blocks written.
    pub blocks_written: u64,
    /// `flush` calls.
    pub flushes: u64,
    /// The most blocks one call moved.
    pub largest: usize,
}

impl CountingDisk {
    /// Counts calls to `disk`.
    pub fn new(disk: MemDisk) -> CountingDisk {
        CountingDisk {
            disk,
            reads: 0,
            writes: 0,
            blocks_written: 0,
            flushes: 0,
            largest: 0,
        }
    }
}

impl BlockDevice for CountingDisk {
    fn blocks(&self) -> u64 {
        self.disk.blocks()
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.reads += 1;
        self.largest = self.largest.max(buf.len() / BLOCK_SIZE);
        self.disk.read_blocks(block, buf)
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno> {
        self.writes += 1;
        self.blocks_written += (data.len() / BLOCK_SIZE) as u64;
        self.largest = self.largest.max(data.len() / BLOCK_SIZE);
        self.disk.write_blocks(block, data)
    }

    fn flush(&mut self) -> Result<(), Errno> {
        self.flushes += 1;
        self.disk.flush()
    }
}
