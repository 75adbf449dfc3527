//! The memory a checkpoint's shadow lives in: anonymous, zero-filled, backed by the
//! host only where written, and left out of `fork`.
//!
//! The process substrate starts each domain's tender by forking the VMM. A fork
//! copies the page tables of the parent's private memory and makes each of its pages
//! copy-on-write in the parent too, so every shadow page written after a spawn took
//! one more page fault: under `spawn`, each page every checkpoint copied (about 80 per
//! operation). The forked child only sets up descriptors and execs the tender; it
//! never touches a shadow.

use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// `len` bytes of shadow memory (see the module documentation).
pub struct ShadowMemory {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone (like a `Vec`'s buffer) and only
// reached through `&self`/`&mut self`.
unsafe impl Send for ShadowMemory {}
// SAFETY: as above; shared references only read it.
unsafe impl Sync for ShadowMemory {}

impl ShadowMemory {
    /// A zero-filled mapping of `len` bytes. Aborts like a failed allocation when the
    /// host has no room for the mapping (as `vec![0; len]` would).
    pub fn zeroed(len: usize) -> ShadowMemory {
        if len == 0 {
            return ShadowMemory {
                start: NonNull::dangling(),
                len,
            };
        }
        // SAFETY: a fresh anonymous private mapping; no existing memory is affected.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        let Some(start) = NonNull::new(at.cast::<u8>()).filter(|_| at != libc::MAP_FAILED) else {
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, 4096).expect("a valid layout"),
            );
        };
        // Only a hint of cost: should it fail, a fork copies the mapping as before.
        // SAFETY: the range is the mapping just made.
        unsafe { libc::madvise(at, len, libc::MADV_DONTFORK) };
        ShadowMemory { start, len }
    }
}

impl Deref for ShadowMemory {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `start` points to `len` readable bytes owned by `self` (or is
        // dangling with `len` 0), initialized (zero-filled by the host).
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for ShadowMemory {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for ShadowMemory {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmaps exactly the mapping `zeroed` made, which nothing borrows
            // any more.
            unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_memory_starts_zero_and_keeps_what_is_written() {
        let mut shadow = ShadowMemory::zeroed(3 * 4096);
        assert!(shadow.iter().all(|&byte| byte == 0));
        shadow[4096..8192].fill(7);
        assert_eq!(
            (shadow[4095], shadow[4096], shadow[8191], shadow[8192]),
            (0, 7, 7, 0)
        );
        assert_eq!(ShadowMemory::zeroed(0).len(), 0);
    }

    #[test]
    fn a_forked_child_does_not_inherit_shadow_memory() {
        let shadow = ShadowMemory::zeroed(4096);
        let at = shadow.as_ptr() as usize;
        // The child asks whether the address is mapped (`msync` fails on an unmapped
        // range) and answers with its exit status.
        // SAFETY: fork in a test; the child makes one system call and `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: msync of a page-aligned range; `_exit` ends the child at once.
            unsafe {
                let mapped = libc::msync(at as *mut libc::c_void, 4096, libc::MS_ASYNC) == 0;
                libc::_exit(if mapped { 1 } else { 0 });
            }
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status));
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child saw the shadow mapped"
        );
    }
}
