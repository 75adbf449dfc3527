//! The host file behind a system's disk: a persistent image (`ankh up --disk PATH`,
//! created from the built-in root file system when missing) or a temporary copy of the
//! built-in one, plus the host's own view of the file system on it ([`FileDisk`]), used
//! to write the job list init reads before the system boots and, after the system
//! stopped however it stopped, to leave the image clean for e2fsck ([`recover`]).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use ankh_ext2::{BlockDevice, Ext2Fs, MountRepairs, BLOCK_SIZE};
use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{O_CREAT, O_TRUNC, O_WRONLY};

/// Why a disk image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskImageError {
    /// The file cannot be created, opened or written.
    #[error("disk image {path}")]
    Io {
        /// The image file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `--disk` was given for a system without a disk domain.
    #[error("--disk {path}: this system has no domain with disk = true")]
    Unwanted {
        /// The image file given.
        path: PathBuf,
    },
    /// The file does not exist.
    #[error("disk image {path} does not exist")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// The file holds no file system this host can recover: not ext2 as Ankh makes it
    /// (`EINVAL`), or a corrupt one (`EIO`).
    #[error("disk image {path}: {}", describe_mount_error(*errno))]
    Unrecoverable {
        /// The image file.
        path: PathBuf,
        /// What mounting it answered.
        errno: Errno,
    },
    /// The file does not hold a file system Ankh can mount.
    #[error("disk image {path} is not an Ankh root file system (errno {errno}); remove it to start from the built-in one")]
    NotAFileSystem {
        /// The image file.
        path: PathBuf,
        /// What mounting it answered.
        errno: Errno,
    },
}

/// A disk image file for one run of a system.
#[derive(Debug)]
pub struct DiskImage {
    path: PathBuf,
    /// The temporary copy of a run without `--disk`: already unlinked, so it goes
    /// away when the last descriptor closes, however the process ends (`path` names
    /// this descriptor under /proc).
    temporary: Option<File>,
}

impl DiskImageError {
    /// Whether the user's input is at fault (a wrong path or file), not the host.
    pub fn is_usage(&self) -> bool {
        if let DiskImageError::Io { source, .. } = self {
            return crate::io_is_usage(source);
        }
        matches!(
            self,
            DiskImageError::Unwanted { .. }
                | DiskImageError::NotAFileSystem { .. }
                | DiskImageError::Missing { .. }
                | DiskImageError::Unrecoverable {
                    errno: errno::EINVAL,
                    ..
                }
        )
    }
}

/// What mounting an image answered, for people.
fn describe_mount_error(errno: Errno) -> String {
    match errno {
        errno::EINVAL => "not an ext2 file system made by Ankh".to_owned(),
        errno::EIO => "its file system is corrupt (mounting it failed with EIO)".to_owned(),
        other => format!("mounting its file system failed (errno {other})"),
    }
}

/// What [`recover`] did to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The journal replay and the orphans freed.
    pub repairs: MountRepairs,
    /// How long it took (open, replay, orphans, unmount, flushes).
    pub took: Duration,
}

/// Leaves the Ankh file system in the image at `path` clean for e2fsck and with
/// nothing to replay, after the system that used it stopped (a clean end, a controlled
/// shutdown, a halt, an error, or a kill: then run by `ankh disk check`). The system
/// writes its disk through a redo journal, and a stop between a sync's commit and the
/// end of its in-place writes leaves the image consistent only once the journal is
/// replayed; a file unlinked while open leaves an inode without links. This does what
/// the next mount would: replay the journal, free orphans, then clear the journal.
pub fn recover(path: &Path) -> Result<Recovered, DiskImageError> {
    let started = Instant::now();
    let mut disk = FileDisk::open(path)?;
    let repairs = Ext2Fs::recover(&mut disk).map_err(|errno| DiskImageError::Unrecoverable {
        path: path.to_owned(),
        errno,
    })?;
    Ok(Recovered {
        repairs,
        took: started.elapsed(),
    })
}

impl DiskImage {
    /// The persistent image at `path`, created from the built-in root file system when
    /// it does not exist.
    pub fn persistent(path: &Path) -> Result<DiskImage, DiskImageError> {
        if !path.exists() {
            write_builtin(path)?;
        }
        Ok(DiskImage {
            path: path.to_owned(),
            temporary: None,
        })
    }

    /// A fresh copy of the built-in root file system in the temporary directory. It is
    /// unlinked before it is written and reached through `/proc/<pid>/fd/<n>`, so
    /// nothing is left behind even when the run is killed while making it.
    pub fn temporary() -> Result<DiskImage, DiskImageError> {
        let file_path = std::env::temp_dir().join(format!(
            "ankh-disk-{}-{}.img",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let io = |source| DiskImageError::Io {
            path: file_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&file_path)
            .map_err(io)?;
        std::fs::remove_file(&file_path).map_err(io)?;
        fill_builtin(&file, &file_path)?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        Ok(DiskImage {
            path,
            temporary: Some(file),
        })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True for the temporary copy of a run without `--disk` (gone at exit).
    pub fn is_temporary(&self) -> bool {
        self.temporary.is_some()
    }

    /// [`recover`] on this image.
    pub fn recover(&self) -> Result<Recovered, DiskImageError> {
        recover(&self.path)
    }

    /// Writes `contents` to the file at `file` (an absolute path) in the image's
    /// file system, durably (e.g. init's job list).
    pub fn write_file(&self, file: &str, contents: &[u8]) -> Result<(), DiskImageError> {
        let mut disk = FileDisk::open(&self.path)?;
        let path = self.path.clone();
        let not_fs = |errno| DiskImageError::NotAFileSystem {
            path: path.clone(),
            errno,
        };
        let mut fs = Ext2Fs::mount(&mut disk).map_err(not_fs)?;
        let ino = fs
            .open(&mut disk, file, O_WRONLY | O_CREAT | O_TRUNC)
            .map_err(not_fs)?;
        let written = fs.write(&mut disk, ino, 0, contents);
        fs.close(&mut disk, ino).map_err(not_fs)?;
        match written {
            Ok(n) if n == contents.len() => {}
            Ok(_) => return Err(not_fs(errno::ENOSPC)),
            Err(e) => return Err(not_fs(e)),
        }
        fs.sync(&mut disk).map_err(not_fs)
    }
}

/// What a walk of an image's file system read back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeSummary {
    /// Directories, the root included.
    pub dirs: u64,
    /// Files (the journal file included).
    pub files: u64,
    /// Bytes of file data read back.
    pub bytes: u64,
}

/// Where a walk of an image's file system failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: errno {errno}")]
pub struct TreeError {
    /// The path whose entry, status or data could not be read.
    pub path: String,
    /// What the file system answered.
    pub errno: Errno,
}

/// How much file data a walk reads at a time.
const WALK_CHUNK: usize = 1 << 20;

/// Mounts the file system in the image at `path` (after [`recover`]: nothing to
/// replay, nothing written) and reads every directory and every byte of every file,
/// which follows every block map: Ankh's own consistency check. `Ok(Err(..))` names
/// the first path that could not be read.
pub fn walk(path: &Path) -> Result<Result<TreeSummary, TreeError>, DiskImageError> {
    let mut disk = FileDisk::open(path)?;
    let mut fs = Ext2Fs::mount(&mut disk).map_err(|errno| DiskImageError::Unrecoverable {
        path: path.to_owned(),
        errno,
    })?;
    let mut summary = TreeSummary::default();
    let mut dirs = vec![String::from("/")];
    while let Some(dir) = dirs.pop() {
        let failed = |errno| TreeError {
            path: dir.clone(),
            errno,
        };
        let ino = fs.resolve(&mut disk, &dir).map_err(failed);
        let names = ino.and_then(|ino| fs.readdir(&mut disk, ino).map_err(failed));
        let names = match names {
            Ok(names) => names,
            Err(e) => return Ok(Err(e)),
        };
        summary.dirs += 1;
        let names = match ankh_proto::wire::split(&names) {
            Ok(names) => names,
            Err(errno) => return Ok(Err(failed(errno))),
        };
        for name in names {
            let child = format!("{dir}{name}");
            match read_entry(&mut fs, &mut disk, &child) {
                Ok(Entry::Dir) => dirs.push(format!("{child}/")),
                Ok(Entry::File(bytes)) => {
                    summary.files += 1;
                    summary.bytes += bytes;
                }
                Err(errno) => return Ok(Err(TreeError { path: child, errno })),
            }
        }
    }
    Ok(Ok(summary))
}

/// A directory entry a walk met.
enum Entry {
    Dir,
    /// A file and the bytes read from it.
    File(u64),
}

/// Reads the entry at `path`: a directory, or a file read to its end.
fn read_entry(fs: &mut Ext2Fs, disk: &mut FileDisk, path: &str) -> Result<Entry, Errno> {
    let ino = fs.resolve(disk, path)?;
    let stat = fs.stat(disk, ino)?;
    if stat.kind == ankh_proto::vfs::KIND_DIR {
        return Ok(Entry::Dir);
    }
    let mut offset = 0;
    while offset < stat.size {
        let read = fs.read(disk, ino, offset, WALK_CHUNK)?;
        if read.is_empty() {
            return Err(errno::EIO);
        }
        offset += read.len() as u64;
    }
    Ok(Entry::File(offset))
}

/// Writes the built-in root file system image to a new file at `path` (sparse: only
/// the blocks that hold data are written).
fn write_builtin(path: &Path) -> Result<(), DiskImageError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| DiskImageError::Io {
            path: path.to_owned(),
            source,
        })?;
    fill_builtin(&file, path)
}

/// Writes the built-in root file system into the empty `file` (named `path` in errors)
/// and makes it durable.
fn fill_builtin(file: &File, path: &Path) -> Result<(), DiskImageError> {
    let io = |source| DiskImageError::Io {
        path: path.to_owned(),
        source,
    };
    let mut result = Ok(());
    let size = ankh_ext2::unsparse_into(ankh_image_catalog::root_disk(), |offset, data| {
        if result.is_ok() {
            result = file.write_all_at(data, offset);
        }
    })
    .map_err(|e| io(std::io::Error::other(format!("built-in image: errno {e}"))))?;
    result.map_err(io)?;
    file.set_len(size).map_err(io)?;
    file.sync_all().map_err(io)
}

/// An image file as an `ankh_ext2` block device, for the host's own accesses.
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    blocks: u64,
}

impl FileDisk {
    /// Opens the image at `path` for reading and writing.
    pub fn open(path: &Path) -> Result<FileDisk, DiskImageError> {
        let io = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => DiskImageError::Missing {
                path: path.to_owned(),
            },
            _ => DiskImageError::Io {
                path: path.to_owned(),
                source,
            },
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let blocks = file.metadata().map_err(io)?.len() / BLOCK_SIZE as u64;
        Ok(FileDisk { file, blocks })
    }

    /// The byte offset of `block`, when `len` bytes from it are on the device.
    fn offset(&self, block: u64, len: usize) -> Result<u64, Errno> {
        let blocks = (len / BLOCK_SIZE) as u64;
        if !len.is_multiple_of(BLOCK_SIZE)
            || block
                .checked_add(blocks)
                .is_none_or(|end| end > self.blocks)
        {
            return Err(errno::EINVAL);
        }
        Ok(block * BLOCK_SIZE as u64)
    }
}

impl BlockDevice for FileDisk {
    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let at = self.offset(block, buf.len())?;
        self.file.read_exact_at(buf, at).map_err(|_| errno::EIO)
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno> {
        let at = self.offset(block, data.len())?;
        self.file.write_all_at(data, at).map_err(|_| errno::EIO)
    }

    fn flush(&mut self) -> Result<(), Errno> {
        self.file.sync_data().map_err(|_| errno::EIO)
    }
}
