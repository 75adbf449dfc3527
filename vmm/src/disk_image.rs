//! The host file behind a system's disk: a persistent image (`ankh up --disk PATH`,
//! created from the built-in root file system when missing) or a temporary copy of the
//! built-in one, plus the host's own view of the file system on it ([`FileDisk`]), used
//! to write the job list init reads before the system boots.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ankh_ext2::{BlockDevice, Ext2Fs, BLOCK_SIZE};
use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{O_CREAT, O_TRUNC, O_WRONLY};

/// Why a disk image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskImageError {
    /// The file cannot be created, opened or written.
    #[error("disk image {path}: {source}")]
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
    _temporary: Option<File>,
}

impl DiskImageError {
    /// Whether the user's input is at fault (a wrong path or file), not the host.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            DiskImageError::Unwanted { .. } | DiskImageError::NotAFileSystem { .. }
        )
    }
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
            _temporary: None,
        })
    }

    /// A fresh copy of the built-in root file system in the temporary directory. It is
    /// unlinked at once and reached through `/proc/<pid>/fd/<n>`, so nothing is left
    /// behind even when the run is killed.
    pub fn temporary() -> Result<DiskImage, DiskImageError> {
        let file_path = std::env::temp_dir().join(format!(
            "ankh-disk-{}-{}.img",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        write_builtin(&file_path)?;
        let io = |source| DiskImageError::Io {
            path: file_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file_path)
            .map_err(io)?;
        std::fs::remove_file(&file_path).map_err(io)?;
        let path = PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            file.as_raw_fd()
        ));
        Ok(DiskImage {
            path,
            _temporary: Some(file),
        })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
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

/// Writes the built-in root file system image to a new file at `path` (sparse: only
/// the blocks that hold data are written).
fn write_builtin(path: &Path) -> Result<(), DiskImageError> {
    let io = |source| DiskImageError::Io {
        path: path.to_owned(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    let mut result = Ok(());
    let size = ankh_ext2::unsparse_into(ankh_images::root_disk(), |offset, data| {
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
        let io = |source| DiskImageError::Io {
            path: path.to_owned(),
            source,
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
