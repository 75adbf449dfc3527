//! KVM's log of the pages a guest writes, read so that the pages a server writes at
//! nearly every request stay writable.
//!
//! Why: a plain `KVM_GET_DIRTY_LOG` write-protects every logged page again, and on
//! these hosts (shadow paging under `kvm_pvm`) the first write to each of them in the
//! next request traps, at about the cost of an exit. A server writes the same few pages
//! in every request (its stack, its IPC area, its heap's top), so per request it paid a
//! trap for each. Here a page, once written, stays *hot* for [`HOT_LOOKS`] looks: it is
//! not write-protected again, and every look reports it as written, so a checkpoint
//! copies it (far cheaper than a trap). A page left alone that long is protected again;
//! if it is written later it is logged once and is hot again. The pages a look reports
//! are a superset of the pages written since the last look, which is all a checkpoint
//! or a rollback needs.
//!
//! Three ways to read the log, the best KVM offers:
//! - the **dirty ring** (`KVM_CAP_DIRTY_LOG_RING`): KVM appends each newly written page
//!   to a ring shared with the VMM, so a look reads memory and makes no system call
//!   (one costs about 2.3 us here); hot pages are entries not yet handed back, handed
//!   back in ring order as they cool down (`KVM_RESET_DIRTY_RINGS`, now and then);
//! - **manual protection** (`KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`): `KVM_GET_DIRTY_LOG`
//!   no longer protects, and cooled pages are protected with `KVM_CLEAR_DIRTY_LOG`;
//! - plain `KVM_GET_DIRTY_LOG` otherwise (every page is protected again at each look).

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use kvm_bindings::{
    kvm_clear_dirty_log, kvm_dirty_gfn, kvm_enable_cap, KVM_CAP_DIRTY_LOG_RING,
    KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, KVM_DIRTY_LOG_PAGE_OFFSET,
};
use kvm_ioctls::{VcpuFd, VmFd};
use vmm_sys_util::errno;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ref};

/// Looks a page stays writable after it was last found written.
pub const HOT_LOOKS: u32 = 32;

/// Bytes of the dirty ring of a vCPU: 16384 entries of 16 bytes.
const RING_BYTES: usize = 256 << 10;

/// Cooled entries handed back together: each `KVM_RESET_DIRTY_RINGS` flushes the
/// guest's TLB, so they go in batches (a cooled page stays hot a little longer).
const RESET_BATCH: usize = 64;

/// `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE`: the flag that turns manual protection on.
const MANUAL_PROTECT_ENABLE: u64 = 1;

/// A ring entry KVM published.
const GFN_DIRTY: u32 = 1;
/// A ring entry the VMM hands back (`KVM_RESET_DIRTY_RINGS` protects its page again).
const GFN_RESET: u32 = 2;

/// The ioctls kvm-ioctls does not wrap.
mod ioctls {
    use kvm_bindings::kvm_clear_dirty_log;
    use vmm_sys_util::{ioctl_io_nr, ioctl_iowr_nr};

    /// The KVM ioctl type.
    const KVMIO: u32 = 0xAE;
    ioctl_iowr_nr!(KVM_CLEAR_DIRTY_LOG, KVMIO, 0xc0, kvm_clear_dirty_log);
    ioctl_io_nr!(KVM_RESET_DIRTY_RINGS, KVMIO, 0xc7);
}

/// The dirty log of memory slot 0 of one VM with one vCPU.
#[derive(Debug)]
pub struct DirtyLog {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Plain,
    /// Hot pages and the looks each has left.
    Manual(HashMap<u64, u32>),
    /// Waiting for its vCPU (the ring is mapped from the vCPU).
    RingPending,
    Ring(Ring),
}

impl DirtyLog {
    /// The log of `vm`, in the best mode KVM offers. Call before the memory slot and
    /// the vCPU are created, then [`attach_vcpu`](DirtyLog::attach_vcpu).
    pub fn new(vm: &VmFd) -> DirtyLog {
        let ring_max = vm.check_extension_raw(u64::from(KVM_CAP_DIRTY_LOG_RING));
        if usize::try_from(ring_max).is_ok_and(|max| max >= RING_BYTES)
            && enable(vm, KVM_CAP_DIRTY_LOG_RING, RING_BYTES as u64)
        {
            return DirtyLog {
                mode: Mode::RingPending,
            };
        }
        let offered = vm.check_extension_raw(u64::from(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
        let manual = offered & 1 != 0
            && enable(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, MANUAL_PROTECT_ENABLE);
        DirtyLog {
            mode: if manual {
                Mode::Manual(HashMap::new())
            } else {
                Mode::Plain
            },
        }
    }

    /// Maps the dirty ring of `vcpu`, in ring mode.
    pub fn attach_vcpu(&mut self, vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
        if matches!(self.mode, Mode::RingPending) {
            self.mode = Mode::Ring(Ring::map(vcpu)?);
        }
        Ok(())
    }

    /// The pages written since the last look (and the hot ones), as a bitmap of
    /// `size` bytes of memory; pages that cooled down are protected again.
    pub fn look(&mut self, vm: &VmFd, size: usize) -> Result<Vec<u64>, kvm_ioctls::Error> {
        match &mut self.mode {
            Mode::Plain | Mode::RingPending => vm.get_dirty_log(0, size),
            Mode::Manual(hot) => {
                let bitmap = vm.get_dirty_log(0, size)?;
                let mut cool = vec![0u64; bitmap.len()];
                let mut any = false;
                for page in crate::checkpoint::pages(&bitmap) {
                    let left = hot.entry(page).or_insert(HOT_LOOKS);
                    if *left == 0 {
                        hot.remove(&page);
                        set(&mut cool, page);
                        any = true;
                    } else {
                        *left -= 1;
                    }
                }
                if any {
                    clear(vm, &cool, size)?;
                }
                Ok(bitmap)
            }
            Mode::Ring(ring) => ring.look(size, &mut || reset_rings(vm)),
        }
    }

    /// KVM stopped the vCPU because its ring is full: every entry is handed back now
    /// (their pages are still reported at the next look).
    pub fn ring_full(&mut self, vm: &VmFd) -> Result<(), kvm_ioctls::Error> {
        if let Mode::Ring(ring) = &mut self.mode {
            ring.harvest();
            ring.hand_back_all(&mut || reset_rings(vm))?;
        }
        Ok(())
    }

    /// Reads and protects again every logged page: the count of pages written since the
    /// last call (benchmarks).
    pub fn take_all(&mut self, vm: &VmFd, size: usize) -> Result<usize, kvm_ioctls::Error> {
        match &mut self.mode {
            Mode::Ring(ring) => {
                let fresh = ring.harvest();
                ring.hand_back_all(&mut || reset_rings(vm))?;
                ring.pending.clear();
                Ok(fresh)
            }
            mode => {
                let bitmap = vm.get_dirty_log(0, size)?;
                if let Mode::Manual(hot) = mode {
                    clear(vm, &bitmap, size)?;
                    hot.clear();
                }
                Ok(bitmap.iter().map(|word| word.count_ones() as usize).sum())
            }
        }
    }
}

/// Hands the entries marked reset back to KVM (`KVM_RESET_DIRTY_RINGS`).
type Reset<'a> = &'a mut dyn FnMut() -> Result<(), kvm_ioctls::Error>;

/// A vCPU's dirty ring, mapped from its fd, with the hot entries not yet handed back.
#[derive(Debug)]
struct Ring {
    entries: *mut kvm_dirty_gfn,
    count: u64,
    /// The index of the next entry KVM will publish.
    next: u64,
    /// Harvested entries not handed back, in ring order: index, page, expiry look.
    hot: VecDeque<(u64, u64, u64)>,
    /// Pages handed back early (ring full) since the last look: still to be reported.
    pending: Vec<u64>,
    looks: u64,
    /// Heap entries standing in for KVM's mapping (unit tests); `None` when mapped.
    heap: Option<Box<[kvm_dirty_gfn]>>,
}

// SAFETY: the ring is a mapping owned by this value (unmapped in `drop`) and used only
// through `&mut self`; moving it to another thread moves that ownership.
unsafe impl Send for Ring {}

impl Ring {
    fn map(vcpu: &VcpuFd) -> Result<Ring, kvm_ioctls::Error> {
        let offset = i64::from(KVM_DIRTY_LOG_PAGE_OFFSET) * 4096;
        // SAFETY: maps RING_BYTES of the vCPU fd at KVM's dirty-ring offset, shared, as
        // KVM documents; nothing else uses the address range it returns.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RING_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                vcpu.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(errno::Error::last());
        }
        Ok(Ring {
            entries: ptr.cast(),
            count: (RING_BYTES / std::mem::size_of::<kvm_dirty_gfn>()) as u64,
            next: 0,
            hot: VecDeque::new(),
            pending: Vec::new(),
            looks: 0,
            heap: None,
        })
    }

    /// The flags of entry `index`, shared with KVM.
    fn flags(&self, index: u64) -> &AtomicU32 {
        let slot = usize::try_from(index % self.count).expect("small ring");
        // SAFETY: `slot` is inside the mapping (`count` entries), which lives as long as
        // `self`; `flags` is a naturally aligned u32 that KVM and the VMM update with
        // atomic accesses, as the dirty-ring protocol requires.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*self.entries.add(slot)).flags)) }
    }

    /// Takes the entries KVM published since the last harvest into the hot set;
    /// returns how many.
    fn harvest(&mut self) -> usize {
        let mut fresh = 0;
        // Every slot is ours until handed back (cooled entries go back with a reset
        // right away), so a ring whose slots are all hot has nothing new to read: the
        // next slot is our own oldest entry.
        while (self.hot.len() as u64) < self.count
            && self.flags(self.next).load(Ordering::Acquire) & GFN_DIRTY != 0
        {
            let slot = usize::try_from(self.next % self.count).expect("small ring");
            // SAFETY: the entry is inside the mapping, and KVM published it (its flags
            // say so, read with acquire ordering), so its fields are written.
            let entry = unsafe { std::ptr::read_volatile(self.entries.add(slot)) };
            let expiry = self.looks + u64::from(HOT_LOOKS);
            self.hot.push_back((self.next, entry.offset, expiry));
            self.next += 1;
            fresh += 1;
        }
        fresh
    }

    /// A look; `reset` is `KVM_RESET_DIRTY_RINGS`.
    fn look(&mut self, size: usize, reset: Reset<'_>) -> Result<Vec<u64>, kvm_ioctls::Error> {
        self.harvest();
        let mut bitmap = vec![0u64; (size / 4096).div_ceil(64)];
        for &(_, page, _) in &self.hot {
            set(&mut bitmap, page);
        }
        for page in self.pending.drain(..) {
            set(&mut bitmap, page);
        }
        // Entries cool down in ring order (expiries only grow along the ring), and are
        // handed back in batches.
        let cooled = self
            .hot
            .iter()
            .take_while(|&&(_, _, expiry)| expiry <= self.looks)
            .count();
        if cooled >= RESET_BATCH {
            for _ in 0..cooled {
                let (index, _, _) = self.hot.pop_front().expect("counted");
                self.flags(index).store(GFN_RESET, Ordering::Release);
            }
            reset()?;
        }
        self.looks += 1;
        Ok(bitmap)
    }

    /// Hands every hot entry back; their pages are reported at the next look.
    fn hand_back_all(&mut self, reset: Reset<'_>) -> Result<(), kvm_ioctls::Error> {
        while let Some((index, page, _)) = self.hot.pop_front() {
            self.flags(index).store(GFN_RESET, Ordering::Release);
            self.pending.push(page);
        }
        reset()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.heap.is_some() {
            return;
        }
        // SAFETY: unmaps exactly the mapping `map` made, which nothing uses any more.
        unsafe { libc::munmap(self.entries.cast(), RING_BYTES) };
    }
}

/// Enables `cap` on `vm` with argument `arg`; whether KVM accepted.
fn enable(vm: &VmFd, cap: u32, arg: u64) -> bool {
    let mut request = kvm_enable_cap {
        cap,
        ..kvm_enable_cap::default()
    };
    request.args[0] = arg;
    vm.enable_cap(&request).is_ok()
}

/// Sets page `page`'s bit (pages outside the bitmap are ignored).
fn set(bitmap: &mut [u64], page: u64) {
    if let Some(word) = usize::try_from(page / 64)
        .ok()
        .and_then(|w| bitmap.get_mut(w))
    {
        *word |= 1 << (page % 64);
    }
}

/// `KVM_RESET_DIRTY_RINGS`: protects again the pages of the entries handed back.
fn reset_rings(vm: &VmFd) -> Result<(), kvm_ioctls::Error> {
    // SAFETY: an ioctl without argument on the VM fd.
    let ret = unsafe { ioctl(vm, ioctls::KVM_RESET_DIRTY_RINGS()) };
    if ret < 0 {
        return Err(errno::Error::last());
    }
    Ok(())
}

/// Protects again the pages set in `bitmap` (a bitmap of the whole slot of `size`
/// bytes), in manual mode.
fn clear(vm: &VmFd, bitmap: &[u64], size: usize) -> Result<(), kvm_ioctls::Error> {
    let pages = size / 4096;
    let request = kvm_clear_dirty_log {
        slot: 0,
        num_pages: u32::try_from(pages).expect("a domain's RAM has fewer than 2^32 pages"),
        first_page: 0,
        __bindgen_anon_1: kvm_bindings::kvm_clear_dirty_log__bindgen_ty_1 {
            dirty_bitmap: bitmap.as_ptr().cast_mut().cast(),
        },
    };
    // SAFETY: `request` names slot 0 from its first page for the slot's whole length
    // (allowed: the range ends at the end of the slot), and its bitmap pointer points
    // at `bitmap`, which holds one bit per page of the slot (KVM_GET_DIRTY_LOG made it
    // for the same size) and lives until the call returns. KVM only reads the bitmap.
    let ret = unsafe { ioctl_with_ref(vm, ioctls::KVM_CLEAR_DIRTY_LOG(), &request) };
    if ret < 0 {
        return Err(errno::Error::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of `count` entries on the heap, as KVM would map it.
    fn heap_ring(count: usize) -> Ring {
        let mut heap: Box<[kvm_dirty_gfn]> = vec![kvm_dirty_gfn::default(); count].into();
        Ring {
            entries: heap.as_mut_ptr(),
            count: count as u64,
            next: 0,
            hot: VecDeque::new(),
            pending: Vec::new(),
            looks: 0,
            heap: Some(heap),
        }
    }

    /// What KVM does when the guest first writes `page`.
    fn publish(ring: &mut Ring, at: u64, page: u64) {
        let slot = usize::try_from(at % ring.count).unwrap();
        ring.heap.as_mut().unwrap()[slot].offset = page;
        ring.flags(at).store(GFN_DIRTY, Ordering::Release);
    }

    /// What KVM_RESET_DIRTY_RINGS does: entries marked reset are free again.
    fn kvm_reset(ring: &Ring, from: u64, to: u64) {
        for at in from..to {
            if ring.flags(at).load(Ordering::Acquire) == GFN_RESET {
                ring.flags(at).store(0, Ordering::Release);
            }
        }
    }

    fn pages_of(bitmap: &[u64]) -> Vec<u64> {
        crate::checkpoint::pages(bitmap).collect()
    }

    #[test]
    fn written_pages_stay_hot_then_cool_down_in_batches() {
        let mut ring = heap_ring(1024);
        let mut resets = 0;
        for (at, page) in [3, 7, 9].into_iter().enumerate() {
            publish(&mut ring, at as u64, page);
        }
        // Reported at every look while hot, though KVM logs them once.
        for _ in 0..HOT_LOOKS {
            let bitmap = ring
                .look(64 * 4096, &mut || {
                    resets += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(pages_of(&bitmap), [3, 7, 9]);
        }
        assert_eq!(resets, 0);
        // Cooled, but fewer than a batch: still hot, no reset.
        assert_eq!(
            pages_of(
                &ring
                    .look(64 * 4096, &mut || {
                        resets += 1;
                        Ok(())
                    })
                    .unwrap()
            ),
            [3, 7, 9]
        );
        assert_eq!(resets, 0);
        // A batch of cooled entries goes back at once.
        for at in 3..3 + RESET_BATCH as u64 {
            publish(&mut ring, at, 100 + at);
        }
        for _ in 0..=HOT_LOOKS {
            ring.look(1024 * 4096, &mut || {
                resets += 1;
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(resets, 1);
        assert!(ring.hot.is_empty());
        assert_eq!(ring.flags(0).load(Ordering::Acquire), GFN_RESET);
        kvm_reset(&ring, 0, ring.next);
        assert!(pages_of(&ring.look(1024 * 4096, &mut || Ok(())).unwrap()).is_empty());
    }

    #[test]
    fn a_full_ring_hands_everything_back_and_the_next_look_still_reports_it() {
        let mut ring = heap_ring(8);
        for at in 0..8 {
            publish(&mut ring, at, 10 + at);
        }
        ring.harvest();
        let mut resets = 0;
        ring.hand_back_all(&mut || {
            resets += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(resets, 1);
        kvm_reset(&ring, 0, 8);
        // The ring wraps: KVM publishes into freed slots.
        publish(&mut ring, 8, 42);
        let bitmap = ring.look(64 * 4096, &mut || Ok(())).unwrap();
        let mut expected: Vec<u64> = (10..18).collect();
        expected.insert(0, 42);
        expected.sort_unstable();
        assert_eq!(pages_of(&bitmap), expected);
        // Handed back pages are reported once; the hot one again.
        assert_eq!(
            pages_of(&ring.look(64 * 4096, &mut || Ok(())).unwrap()),
            [42]
        );
    }
}
