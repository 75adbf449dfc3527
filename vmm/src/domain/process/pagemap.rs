//! The pages a process domain wrote: the tender registers guest RAM with userfaultfd
//! asynchronous write-protection (`UFFD_FEATURE_WP_ASYNC`), so a write unprotects its
//! page without a fault; the VMM's `PAGEMAP_SCAN` of the process's pagemap finds the
//! pages written since the last scan and protects them again in the same call (Linux
//! 6.7+). The process substrate's analogue of KVM's dirty log.
//!
//! The scan asks for pages both *present* and not protected: a page the process never
//! touched is a hole, which must not match (protecting a hole of a memfd installs a
//! marker, and the page tables of the whole range would fill with them, making every
//! scan walk all of guest RAM). A page that becomes present is unprotected, so it is
//! reported once at its first touch, read or write.
//!
//! The system headers of these hosts predate PAGEMAP_SCAN, so its structures are
//! defined here (linux/fs.h).

use std::fs::File;
use std::os::fd::AsRawFd;

/// `PAGEMAP_SCAN`: `_IOWR('f', 16, struct pm_scan_arg)`.
const PAGEMAP_SCAN: libc::c_ulong = 0xc060_6610;
/// Write-protect the pages that match while reporting them.
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
/// Refuse a range not registered for asynchronous write-protection.
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
/// The page was written since it was last protected.
const PAGE_IS_WRITTEN: u64 = 1 << 1;
/// The page is mapped in the process.
const PAGE_IS_PRESENT: u64 = 1 << 3;

/// `struct pm_scan_arg`.
#[repr(C)]
#[derive(Default)]
struct ScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

/// `struct page_region`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// The pagemap of one process domain, and a buffer for the regions a scan returns.
pub(super) struct Pagemap {
    file: File,
    regions: Vec<PageRegion>,
}

impl Pagemap {
    /// Opens the pagemap of process `pid`.
    pub(super) fn open(pid: u32) -> std::io::Result<Pagemap> {
        Ok(Pagemap {
            file: File::open(format!("/proc/{pid}/pagemap"))?,
            regions: vec![PageRegion::default(); 64],
        })
    }

    /// Sets in `bitmap` (bit `n` of word `w`: page `64 * w + n`) the pages of
    /// `start..end` written since the last scan, and protects them again.
    pub(super) fn take_written(
        &mut self,
        start: u64,
        end: u64,
        bitmap: &mut [u64],
    ) -> std::io::Result<()> {
        let mut from = start;
        while from < end {
            let mut arg = ScanArg {
                size: std::mem::size_of::<ScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: from,
                end,
                vec: self.regions.as_mut_ptr() as u64,
                vec_len: self.regions.len() as u64,
                category_mask: PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
                return_mask: PAGE_IS_WRITTEN,
                ..ScanArg::default()
            };
            // SAFETY: the kernel reads `arg` and writes at most `vec_len` regions into
            // `regions`, both owned by this frame / `self` for the call's duration.
            let found = unsafe { libc::ioctl(self.file.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
            if found < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let found = usize::try_from(found).unwrap_or(0).min(self.regions.len());
            for region in &self.regions[..found] {
                let mut page = region.start / 4096;
                while page < region.end / 4096 {
                    if let Some(word) =
                        bitmap.get_mut(usize::try_from(page / 64).unwrap_or(usize::MAX))
                    {
                        *word |= 1 << (page % 64);
                    }
                    page += 1;
                }
            }
            if arg.walk_end <= from {
                break;
            }
            from = arg.walk_end;
        }
        Ok(())
    }
}
