//! The guest's heap: `alloc` (`Vec`, `BTreeMap`, `String`, ...) over the RAM the image
//! does not use.
//!
//! The heap covers `[boot.free_memory_start, boot.memory_size - HEAP_TOP_RESERVE)` (see
//! [`heap_range`]); the entry path initializes it before the image's main runs. The
//! allocator is `linked_list_allocator`'s first-fit [`Heap`], behind a one-flag lock:
//! a domain has one vCPU and no interrupt handler that returns, so the lock is never
//! contended and only catches re-entry (a bug).
//!
//! Small allocations (a reply's payload, most of what a request allocates and frees)
//! come first from a few blocks in the image's hot page ([`small`]), which every
//! request writes anyway; the rest from the first-fit heap.
//!
//! Running out of heap panics with a static message (through the runtime's panic
//! handler, so the VMM reports a panic): `alloc` never returns null, which keeps the
//! formatting default out-of-memory handler of `alloc` from ever running.

pub mod small;

use virtio_seep::abi::boot::BootInfo;
use virtio_seep::abi::layout::{IMAGE_BASE, PAGE_SIZE};

/// Bytes at the top of RAM the heap leaves alone: headroom for later use (e.g. a
/// per-domain stack for a `syscall` path); nothing lives there today. The boot stack is
/// in `.bss`, below `free_memory_start`.
pub const HEAP_TOP_RESERVE: u64 = 64 << 10;

/// The heap's `(start, size)` for a domain described by `boot`, or `None` when the
/// boot information leaves no room (or is inconsistent: free memory below the image).
///
/// The start is rounded up to a page; the end is `memory_size - HEAP_TOP_RESERVE`.
pub fn heap_range(boot: &BootInfo) -> Option<(u64, u64)> {
    let start = boot.free_memory_start.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1);
    let end = boot.memory_size.checked_sub(HEAP_TOP_RESERVE)?;
    if start < IMAGE_BASE || end <= start {
        return None;
    }
    Some((start, end - start))
}

// The global allocator: freestanding images only (see the crate docs).
#[cfg(all(not(test), panic = "abort"))]
pub(crate) use imp::init;

/// Hands small allocations the hot page's blocks from now on (see
/// `SmallBlocks::open`): a server's loop calls it once the server has started. Does
/// nothing where the runtime is not the global allocator (host tests).
pub fn open_small_blocks() {
    #[cfg(all(not(test), panic = "abort"))]
    imp::open_small_blocks();
}

#[cfg(all(not(test), panic = "abort"))]
mod imp {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, Ordering};

    use linked_list_allocator::Heap;

    use super::heap_range;
    use super::small::SmallBlocks;
    use crate::BootInfo;

    /// The global allocator: small blocks, a first-fit heap and a flag that says it is
    /// in use.
    struct GuestHeap {
        /// Set while a call holds `parts`.
        busy: AtomicBool,
        parts: UnsafeCell<Parts>,
    }

    /// What the allocator hands blocks out of.
    struct Parts {
        small: SmallBlocks,
        /// The heap, empty until [`init`].
        heap: Heap,
    }

    // SAFETY: `parts` is only reached through `with`, which lets one caller at a time in
    // (the `busy` flag); a domain has a single vCPU anyway.
    unsafe impl Sync for GuestHeap {}

    impl GuestHeap {
        /// Runs `f` with exclusive access to the heap.
        ///
        /// # Panics
        ///
        /// On re-entry (an allocation from inside an allocation), which cannot happen
        /// with one vCPU and no returning interrupt handlers.
        fn with<R>(&self, f: impl FnOnce(&mut Parts) -> R) -> R {
            // `swap` is an `xchg`: SSE-free, no fence instruction.
            assert!(
                !self.busy.swap(true, Ordering::Acquire),
                "heap: re-entered allocator"
            );
            // SAFETY: the flag was clear and is now set: no other reference to the heap
            // exists until it is cleared below.
            let result = f(unsafe { &mut *self.parts.get() });
            self.busy.store(false, Ordering::Release);
            result
        }
    }

    /// In the hot page, next to the IPC area: most requests allocate or free, and each
    /// page a request writes is copied at every checkpoint (see `ipc::area`).
    #[global_allocator]
    #[link_section = ".bss.ankh_hot"]
    static HEAP: GuestHeap = GuestHeap {
        busy: AtomicBool::new(false),
        parts: UnsafeCell::new(Parts {
            small: SmallBlocks::new(),
            heap: Heap::empty(),
        }),
    };

    // SAFETY: blocks come from `SmallBlocks` (each block handed out once until given
    // back, large and aligned enough for the layouts it accepts) or from
    // `linked_list_allocator`'s `Heap`, which hands out disjoint blocks of at least the
    // requested size and alignment inside the RAM given to `init`. The two never
    // overlap (the small blocks are a static, the heap is RAM above the image), and
    // `dealloc` returns each block to the one it came from, by address.
    unsafe impl GlobalAlloc for GuestHeap {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let block = self.with(|parts| match parts.small.take(layout) {
                Some(block) => Ok(block),
                None => parts.heap.allocate_first_fit(layout).map(NonNull::as_ptr),
            });
            match block {
                Ok(block) => block,
                Err(()) => panic!("heap: out of memory"),
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if let Some(block) = NonNull::new(ptr) {
                self.with(|parts| {
                    if !parts.small.give_back(ptr) {
                        // SAFETY: the caller (GlobalAlloc's contract) passes a block
                        // this allocator returned for `layout` and no longer uses it;
                        // not a small block, so one of the heap's.
                        unsafe { parts.heap.deallocate(block, layout) }
                    }
                });
            }
        }
    }

    /// See [`super::open_small_blocks`].
    pub(super) fn open_small_blocks() {
        HEAP.with(|parts| parts.small.open());
    }

    /// Gives the heap the free RAM of the domain (see [`heap_range`]). Called once by the
    /// entry path, before the image's main.
    ///
    /// # Panics
    ///
    /// When the domain has no room for a heap (the VMM always leaves some: images are
    /// far smaller than the smallest domain).
    pub(crate) fn init(boot: &BootInfo) {
        let Some((start, size)) = heap_range(boot) else {
            panic!("heap: no free RAM for the heap");
        };
        let size = usize::try_from(size).unwrap_or(0);
        // SAFETY: `[start, start + size)` is guest RAM (below `memory_size`, identity
        // mapped) above the loaded image, which nothing else uses: the image's sections,
        // its stack and the IPC buffers all lie below `free_memory_start`, and the VMM
        // writes into a domain only into the buffers its queues name. The range stays
        // valid for the whole run.
        HEAP.with(|parts| unsafe { parts.heap.init(start as *mut u8, size) });
    }
}

#[cfg(test)]
mod tests {
    use virtio_seep::abi::boot::{BootInfo, BOOT_INFO_MAGIC};
    use virtio_seep::abi::layout::IMAGE_BASE;
    use zerocopy::FromZeros;

    use super::{heap_range, HEAP_TOP_RESERVE};

    fn boot(free: u64, memory: u64) -> BootInfo {
        let mut boot = BootInfo::new_zeroed();
        boot.magic = BOOT_INFO_MAGIC;
        boot.free_memory_start = free;
        boot.memory_size = memory;
        boot
    }

    #[test]
    fn heap_spans_free_ram_minus_the_reserve() {
        let range = heap_range(&boot(0x30_0000, 4 << 20));
        assert_eq!(
            range,
            Some((0x30_0000, (4 << 20) - 0x30_0000 - HEAP_TOP_RESERVE))
        );
    }

    #[test]
    fn heap_start_is_page_aligned() {
        let (start, _) = heap_range(&boot(0x30_0001, 4 << 20)).unwrap();
        assert_eq!(start, 0x30_1000);
    }

    #[test]
    fn no_heap_without_room_or_below_the_image() {
        assert_eq!(heap_range(&boot(4 << 20, 4 << 20)), None);
        assert_eq!(
            heap_range(&boot((4 << 20) - HEAP_TOP_RESERVE, 4 << 20)),
            None
        );
        assert_eq!(heap_range(&boot(0x1000, 4 << 20)), None);
        assert_eq!(heap_range(&boot(u64::MAX, 4 << 20)), None);
        assert_eq!(heap_range(&boot(IMAGE_BASE, 0)), None);
    }
}
