//! The host side of a disk: a raw image file, read and written at offsets (`pread`,
//! `pwrite`) straight into and out of guest memory, flushed with `fdatasync`.
//!
//! Guest buffers are reached as vm-memory `VolatileSlice`s, and every byte the disk
//! writes into the guest is marked in the slice's dirty bitmap, so checkpoints see it
//! (KVM's dirty log sees only the guest's own writes).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use virtio_seep::abi::blk::SECTOR_SIZE;
use vm_memory::bitmap::BitmapSlice;
use vm_memory::VolatileSlice;

/// Why a disk image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The file could not be opened for reading and writing.
    #[error("cannot open disk image {}", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file holds less than one sector.
    #[error("disk image {} holds {len} bytes, less than one 512-byte sector", path.display())]
    TooSmall {
        /// The path given.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
}

impl DiskError {
    /// Whether the person who gave the path can fix it (a directory, a missing or
    /// unwritable file, a file too small), as opposed to a failing host.
    pub fn is_usage(&self) -> bool {
        match self {
            DiskError::Open { source, .. } => crate::io_is_usage(source),
            DiskError::TooSmall { .. } => true,
        }
    }
}

/// A raw disk image on the host: sector `n` is bytes `512 n .. 512 (n + 1)` of the
/// file. Bytes after the last whole sector are never touched.
#[derive(Debug)]
pub struct DiskFile {
    file: File,
    path: PathBuf,
    sectors: u64,
}

impl DiskFile {
    /// Opens the image at `path` for reading and writing.
    pub fn open(path: &Path) -> Result<DiskFile, DiskError> {
        let open_error = |source| DiskError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(open_error)?;
        let len = file.metadata().map_err(open_error)?.len();
        if len < SECTOR_SIZE {
            return Err(DiskError::TooSmall {
                path: path.to_path_buf(),
                len,
            });
        }
        Ok(DiskFile {
            file,
            path: path.to_path_buf(),
            sectors: len / SECTOR_SIZE,
        })
    }

    /// Sectors on the disk.
    pub fn sectors(&self) -> u64 {
        self.sectors
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills `slice` with the bytes of the image at `offset`, and marks them dirty. The
    /// caller checked that the range lies within the disk.
    pub(crate) fn read_into<B: BitmapSlice>(
        &self,
        offset: u64,
        slice: &VolatileSlice<'_, B>,
    ) -> io::Result<()> {
        let guard = slice.ptr_guard_mut();
        let base = guard.as_ptr();
        let result = transfer(slice.len(), offset, |done, left, at| {
            // SAFETY: `base .. base + slice.len()` is guest memory the slice covers,
            // mapped for as long as the slice (and its guard) lives, and `done + left`
            // never exceeds that length, so the kernel writes only inside it. The
            // domain's vCPU is stopped in this exit: nothing else accesses the bytes.
            unsafe { libc::pread(self.file.as_raw_fd(), base.add(done).cast(), left, at) }
        });
        // Whatever was read, even partly, changed guest memory.
        slice.bitmap().mark_dirty(0, slice.len());
        result
    }

    /// Writes the bytes of `slice` into the image at `offset`. The caller checked that
    /// the range lies within the disk.
    pub(crate) fn write_from<B: BitmapSlice>(
        &self,
        offset: u64,
        slice: &VolatileSlice<'_, B>,
    ) -> io::Result<()> {
        let guard = slice.ptr_guard();
        let base = guard.as_ptr();
        transfer(slice.len(), offset, |done, left, at| {
            // SAFETY: as in `read_into`, the range is inside the slice's guest memory,
            // which stays mapped while the guard lives; the kernel only reads it.
            unsafe { libc::pwrite(self.file.as_raw_fd(), base.add(done).cast(), left, at) }
        })
    }

    /// Makes every completed write durable on the host (`fdatasync`).
    pub(crate) fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Moves `len` bytes with `call(done, left, file_offset)`, a `pread` or `pwrite`,
/// until all are moved; a call that moves nothing (end of file) is an error.
fn transfer(
    len: usize,
    offset: u64,
    mut call: impl FnMut(usize, usize, libc::off_t) -> isize,
) -> io::Result<()> {
    let mut done = 0;
    while done < len {
        let at = offset
            .checked_add(done as u64)
            .and_then(|at| libc::off_t::try_from(at).ok())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        match call(done, len - done, at) {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            moved if moved > 0 => done += moved.unsigned_abs(),
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
    Ok(())
}
