//! KVM's dirty ring for one vCPU, with each written page kept *hot* (writable, and
//! reported at every look) for a period that adapts to how the page is used.
//!
//! KVM appends a page to the ring the first time the guest writes it after it was
//! protected; the page then stays writable until the VMM hands its entry back and
//! calls `KVM_RESET_DIRTY_RINGS`. So while an entry is held, every look must report its
//! page as written (the VMM cannot tell whether it was), and a checkpoint copies it;
//! once handed back, the page's next write traps (on these hosts 7-10 us, a third of
//! an exit: `ankh bench recovery` measures it) and appends a fresh entry.
//!
//! How long to hold an entry trades those two costs: a page the guest writes at every
//! request should be held for good (its copy is needed anyway), a page written once
//! should go back soon (each look copies it for nothing). Here a trap costs about as
//! much as copying a page at [`REWRITE_LOOKS`] looks. Each page starts with
//! [`FIRST_HOT_LOOKS`]; a page written again within `REWRITE_LOOKS` after it went back
//! was given back too early (keeping it would have been cheaper), and its period
//! doubles, up to `hot_periods::MAX_HOT_LOOKS`; one that stays away longer halves it
//! again (`hot_periods`, shared with the process substrate).
//!
//! Cooled entries go back in batches ([`RESET_BATCH`]: each reset flushes the guest's
//! TLB), or when the oldest waited [`LINGER_LOOKS`]. KVM takes entries back in ring
//! order only, so a hot entry holds back the cooled ones behind it, which are copied at
//! every look while they wait. That is rent-or-buy: they wait until the copies they
//! cost add up to the traps of handing the hot ones in front back early, then they all
//! go back. (Deciding on the copies still to come instead, as an earlier version did,
//! handed back a server's always-written pages each time one page cooled behind them:
//! under fcopy-1k VFS re-trapped its nine hottest pages every 45 checkpoints.)

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use kvm_bindings::{kvm_dirty_gfn, KVM_DIRTY_LOG_PAGE_OFFSET};
use kvm_ioctls::VcpuFd;
use vmm_sys_util::errno;

use super::hot_periods::HotPeriods;
use super::set;

/// Looks a page stays writable after its first logged write.
pub const FIRST_HOT_LOOKS: u32 = 32;

/// A page written again this soon after it went back should have stayed hot: a trap
/// (7-10 us on these hosts) costs about as much as copying the page (150-250 ns) at
/// every look for this long.
pub const REWRITE_LOOKS: u64 = 50;

/// Bytes of the dirty ring of a vCPU: 16384 entries of 16 bytes.
pub const RING_BYTES: usize = 256 << 10;

/// Cooled entries handed back together: each `KVM_RESET_DIRTY_RINGS` flushes the
/// guest's TLB, so they go in batches (a cooled page stays hot a little longer).
const RESET_BATCH: usize = 64;

/// Looks a cooled entry at the front waits at most for its batch to fill. Without
/// this bound a server whose whole hot set is smaller than a batch would never hand
/// anything back, and every page it ever wrote would be copied at every checkpoint.
const LINGER_LOOKS: u64 = 8;

/// A ring entry KVM published.
const GFN_DIRTY: u32 = 1;
/// A ring entry the VMM hands back (`KVM_RESET_DIRTY_RINGS` protects its page again).
const GFN_RESET: u32 = 2;

/// `KVM_RESET_DIRTY_RINGS`: takes back the entries marked reset.
pub type Reset<'a> = &'a mut dyn FnMut() -> Result<(), kvm_ioctls::Error>;

/// A harvested entry not handed back yet.
#[derive(Clone, Copy, Debug)]
struct HotEntry {
    /// Its index in the ring (counting from the first entry ever published).
    index: u64,
    /// The page (guest frame number in slot 0).
    page: u64,
    /// The look from which it may be handed back.
    expiry: u64,
    /// Its hot period, in looks.
    period: u32,
}

/// A vCPU's dirty ring, mapped from its fd, with the hot entries not yet handed back.
#[derive(Debug)]
pub struct Ring {
    entries: *mut kvm_dirty_gfn,
    count: u64,
    /// The index of the next entry KVM will publish.
    next: u64,
    /// Harvested entries not handed back, in ring order.
    hot: VecDeque<HotEntry>,
    /// Pages handed back early (ring full) since the last look: still to be reported.
    pending: Vec<u64>,
    /// Pages whose entries were marked reset while `KVM_RESET_DIRTY_RINGS` has not
    /// succeeded since: KVM has not protected them yet, so their writes are not
    /// logged, and every look reports them until a reset succeeds.
    unprotected: Vec<u64>,
    /// Pages that went back, for their next period.
    periods: HotPeriods,
    looks: u64,
    /// Copies spent on cooled entries held behind hot ones since none were (in pages
    /// times looks).
    held_copies: u64,
    /// No hot entry cools before this look (so most looks skip the search for cooled
    /// ones: a server holds dozens of entries, and a look is on every request's path).
    soonest: u64,
    /// Heap entries standing in for KVM's mapping (unit tests); `None` when mapped.
    heap: Option<Box<[kvm_dirty_gfn]>>,
    /// Entries harvested so far: first writes to a protected page, each a trap.
    harvested: u64,
    /// The first guest page of each logged memory slot but slot 0, which starts at
    /// page 0 (KVM's entries count pages from their slot's start).
    slot_bases: Vec<(u32, u64)>,
}

// SAFETY: the ring is a mapping owned by this value (unmapped in `drop`) and used only
// through `&mut self`; moving it to another thread moves that ownership.
unsafe impl Send for Ring {}

impl Ring {
    /// Maps the ring of `vcpu` (the VM enabled `KVM_CAP_DIRTY_LOG_RING` with
    /// [`RING_BYTES`]).
    pub fn map(vcpu: &VcpuFd) -> Result<Ring, kvm_ioctls::Error> {
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
        Ok(Ring::over(
            ptr.cast(),
            (RING_BYTES / std::mem::size_of::<kvm_dirty_gfn>()) as u64,
            None,
        ))
    }

    fn over(entries: *mut kvm_dirty_gfn, count: u64, heap: Option<Box<[kvm_dirty_gfn]>>) -> Ring {
        Ring {
            entries,
            count,
            next: 0,
            hot: VecDeque::new(),
            pending: Vec::new(),
            unprotected: Vec::new(),
            periods: HotPeriods::new(FIRST_HOT_LOOKS, REWRITE_LOOKS),
            looks: 0,
            held_copies: 0,
            soonest: u64::MAX,
            heap,
            harvested: 0,
            slot_bases: Vec::new(),
        }
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
    pub fn harvest(&mut self) -> usize {
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
            let page = self.page_of(entry.slot, entry.offset);
            let period = self.period_of(page);
            let expiry = self.looks + u64::from(period);
            self.soonest = self.soonest.min(expiry);
            self.hot.push_back(HotEntry {
                index: self.next,
                page,
                expiry,
                period,
            });
            self.next += 1;
            fresh += 1;
        }
        self.harvested += fresh as u64;
        fresh
    }

    /// Logged memory slot `slot` starts at guest page `first` (slot 0 starts at 0).
    pub fn set_slot_base(&mut self, slot: u32, first: u64) {
        self.slot_bases.retain(|&(known, _)| known != slot);
        if slot != 0 {
            self.slot_bases.push((slot, first));
        }
    }

    /// The guest page of an entry for page `offset` of memory slot `slot`. Only the
    /// VMM makes slots, so an unknown one cannot come; it would be taken as slot 0.
    fn page_of(&self, slot: u32, offset: u64) -> u64 {
        let base = self
            .slot_bases
            .iter()
            .find(|&&(known, _)| known == slot)
            .map_or(0, |&(_, first)| first);
        base + offset
    }

    /// The entries harvested so far: the guest's first writes to a protected page,
    /// each of which trapped.
    pub fn harvested(&self) -> u64 {
        self.harvested
    }

    /// The hot period of `page`, written again now.
    fn period_of(&self, page: u64) -> u32 {
        self.periods.period_of(page, self.looks)
    }

    /// A look: sets in `bitmap` the page of every hot entry (which includes every page
    /// written since the last look), and hands back the entries that cooled down.
    /// `reset` is `KVM_RESET_DIRTY_RINGS`.
    pub fn look(&mut self, bitmap: &mut [u64], reset: Reset<'_>) -> Result<(), kvm_ioctls::Error> {
        self.harvest();
        for entry in &self.hot {
            set(bitmap, entry.page);
        }
        for page in self
            .pending
            .drain(..)
            .chain(self.unprotected.iter().copied())
        {
            set(bitmap, page);
        }
        let give_back = if self.looks < self.soonest {
            // Nothing cooled, so nothing is held behind a hot entry either.
            self.held_copies = 0;
            0
        } else {
            self.due()
        };
        if give_back > 0 {
            for _ in 0..give_back {
                let entry = self.hot.pop_front().expect("counted");
                self.give_back(entry);
            }
            self.soonest = self
                .hot
                .iter()
                .map(|entry| entry.expiry)
                .min()
                .unwrap_or(u64::MAX);
        }
        // Also retries a reset that failed at an earlier look.
        if give_back > 0 || !self.unprotected.is_empty() {
            self.reset(reset)?;
        }
        self.looks += 1;
        Ok(())
    }

    /// How many entries, from the front, to hand back now.
    fn due(&mut self) -> usize {
        let looks = self.looks;
        let cooled = |entry: &HotEntry| entry.expiry <= looks;
        let prefix = self.hot.iter().take_while(|entry| cooled(entry)).count();
        let overdue = self
            .hot
            .front()
            .is_some_and(|front| front.expiry + LINGER_LOOKS <= looks);
        let due = if prefix >= RESET_BATCH || (prefix > 0 && overdue) {
            prefix
        } else {
            0
        };
        // Cooled entries held back by hot ones: `held` pages copied at every look for
        // `until` more looks, against a trap for each of the `hot` ones.
        let Some(last) = self
            .hot
            .iter()
            .rposition(cooled)
            .filter(|&last| last > prefix)
        else {
            self.held_copies = 0;
            return due;
        };
        let (held, hot) = self
            .hot
            .range(prefix..=last)
            .fold((0u64, 0u64), |(held, hot), entry| {
                if cooled(entry) {
                    (held + 1, hot)
                } else {
                    (held, hot + 1)
                }
            });
        // Each held entry is copied at this look: once those copies reach the traps
        // of the hot ones in front, hand them all back.
        self.held_copies += held;
        if self.held_copies > REWRITE_LOOKS * hot {
            self.held_copies = 0;
            last + 1
        } else {
            due
        }
    }

    /// Marks `entry` handed back (the caller then resets the ring).
    fn give_back(&mut self, entry: HotEntry) {
        self.flags(entry.index).store(GFN_RESET, Ordering::Release);
        self.unprotected.push(entry.page);
        // Held past its period (behind a hot entry), it counts as gone back when it
        // cooled: a write after that says nothing about the period being too short.
        let cooled_at = self.looks.min(entry.expiry);
        self.periods.went_back(entry.page, cooled_at, entry.period);
    }

    /// Hands every hot entry back; their pages are reported at the next look.
    pub fn hand_back_all(&mut self, reset: Reset<'_>) -> Result<(), kvm_ioctls::Error> {
        while let Some(entry) = self.hot.pop_front() {
            self.give_back(entry);
            self.pending.push(entry.page);
        }
        self.soonest = u64::MAX;
        self.reset(reset)
    }

    /// `KVM_RESET_DIRTY_RINGS`: once it succeeds, every entry marked reset is
    /// protected again, so no page is `unprotected` any more. When it fails they stay
    /// reported (a failed look must lose no written page).
    fn reset(&mut self, reset: Reset<'_>) -> Result<(), kvm_ioctls::Error> {
        reset()?;
        self.unprotected.clear();
        Ok(())
    }

    /// Forgets the pages handed back early (their writes were counted elsewhere).
    pub fn forget_pending(&mut self) {
        self.pending.clear();
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

#[cfg(test)]
mod tests;
