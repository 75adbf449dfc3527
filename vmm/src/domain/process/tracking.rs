//! The pages a process domain wrote, found without a system call of the VMM: the
//! tender maps guest RAM read-only, logs each page the guest writes for the first time
//! in the control page (`ControlPage::written_log`) and makes it writable (see the
//! tender's `track`). Such a page is *hot*: the VMM reports it as written at every
//! look (a checkpoint copies it) for a period that adapts to how the page is used, as
//! the kvm substrate's dirty ring does (`dirty_log::ring`), then hands it back in the
//! control page's `reprotect` list, which the domain applies before it runs again; its
//! next write is logged again.
//!
//! A domain may also track a region of its RAM itself (`ControlPage::declared`, the
//! runtime's `declared` module): its pages stay writable, and the domain logs each
//! one before it writes it. A logged page of that region is reported once, at the
//! next look, instead of being kept hot; the VMM latches the first valid region it
//! sees and never hands its pages back.
//!
//! The control page is the domain's to scribble: every page number is checked against
//! guest RAM (a bogus one is ignored), a log that overflowed or a hand-back that was
//! not applied makes the VMM report more pages, never fewer. On overflow the VMM
//! reads the process's writable mappings (`/proc/PID/maps`): the kernel's word on
//! which pages of guest RAM the process can write.

use std::io::{BufRead, BufReader};
use std::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use virtio_seep::abi::process::{
    ControlPage, PageRange, RAM_START, REPROTECT_LEN, WRITTEN_LOG_LEN,
};

use crate::dirty_log::hot_periods::HotPeriods;

/// Looks a page stays writable after its first logged write. Shorter than the kvm
/// substrate's 32: a write fault costs less here (a signal, an `mprotect` and a
/// `sigreturn`: about 3.5 us, against 6 to 7 us for a VM's), and a server's pages
/// written once (VFS's under fcopy: a few per request) would otherwise be copied at
/// 32 checkpoints each. Under fcopy-1k, 8 cost VFS the fewest copies and faults of
/// 2, 8 and 32 (copies at 0.16 us, faults at 3.5 us: 6.0 ms against 7.0 and 7.8).
const FIRST_HOT_LOOKS: u32 = 8;

/// A page written again this soon after it went back should have stayed hot: going
/// back and coming again costs about as much as copying it (about 0.13 us) at every
/// look for this long. That is its write fault (about 3.5 us: a signal, an
/// `mprotect`, a `sigreturn`), its share of the hand-back's `mprotect` and the
/// splitting and merging of the mapping both do. 20 looks (the fault alone) handed
/// back and faulted `fcopy-4k`'s file blocks, each written every 35 looks, again and
/// again; with 40 they stay hot, and two interleaved 9-round `ankh bench ubench
/// --substrate process` pairs measured the geometric mean 18.0% and 18.4% with 20
/// against 16.4% and 17.3% with 40 (`fcopy-4k` 52% and 61% against 38% and 52%).
const REWRITE_LOOKS: u64 = 40;

/// Cooled pages handed back together: each batch costs the domain an `mprotect` per
/// range before it runs again.
const HAND_BACK_BATCH: usize = 16;

/// Looks a cooled page waits at most for its batch to fill.
const LINGER_LOOKS: u32 = 4;

/// What the tracking of one domain did (tests and benchmarks read it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackingStats {
    /// Pages the tender logged (first writes after a protection).
    pub logged: u64,
    /// Pages of the declared region the domain logged itself (no fault).
    pub declared: u64,
    /// Log entries ignored (not a page of guest RAM), and looks that found a declared
    /// region that is not one of guest RAM.
    pub bogus: u64,
    /// Looks at which the log had overflowed (the writable mappings were read).
    pub overflows: u64,
    /// Pages handed back (protected again).
    pub handed_back: u64,
    /// Hand-backs the domain did not apply (it reported a failure, or left the list):
    /// their pages were taken as written again.
    pub hand_backs_refused: u64,
    /// Pages hot now.
    pub hot: u64,
    /// Looks (checkpoints, rollbacks, counts of written pages).
    pub looks: u64,
    /// Pages reported as written, over all looks (the pages checkpoints copied).
    pub reported: u64,
}

#[derive(Clone, Copy)]
struct HotPage {
    page: u32,
    /// The look from which it has cooled.
    expiry: u32,
    period: u32,
}

/// The VMM's side of one process domain's write tracking.
pub(super) struct WriteTracker {
    pid: u32,
    /// Pages `first_page..end_page` are guest RAM in the process.
    first_page: u32,
    end_page: u32,
    hot: Vec<HotPage>,
    /// Bit per page: whether it is in `hot`.
    hot_bits: Vec<u64>,
    periods: HotPeriods,
    /// The pages of the last hand-back, until the domain is seen to have applied it.
    handed_back: Vec<u32>,
    looks: u32,
    /// No hot page cools before this look.
    soonest: u32,
    /// The pages the domain tracks itself (empty until it names them).
    declared: std::ops::Range<u32>,
    stats: TrackingStats,
}

impl WriteTracker {
    /// Tracking of process `pid` with `memory_size` bytes of guest RAM, all protected
    /// (the tender maps it read-only from the start).
    pub(super) fn new(pid: u32, memory_size: u64) -> WriteTracker {
        let end_page = u32::try_from(memory_size / 4096).expect("guest RAM below 16 TiB");
        WriteTracker {
            pid,
            first_page: u32::try_from(RAM_START / 4096).expect("small"),
            end_page,
            hot: Vec::new(),
            hot_bits: vec![0; (end_page as usize).div_ceil(64)],
            periods: HotPeriods::new(FIRST_HOT_LOOKS, REWRITE_LOOKS),
            handed_back: Vec::new(),
            looks: 0,
            soonest: u32::MAX,
            declared: 0..0,
            stats: TrackingStats::default(),
        }
    }

    /// What the tracking did so far.
    pub(super) fn stats(&self) -> TrackingStats {
        TrackingStats {
            hot: self.hot.len() as u64,
            ..self.stats
        }
    }

    /// A look, while the turn is the VMM's: sets in `bitmap` every page the domain may
    /// have written since the last look (the hot pages, which include the ones logged
    /// since), and hands back the pages that cooled down (all hot pages with
    /// `hand_back_all`, so that the next write of each is logged).
    ///
    /// # Safety
    ///
    /// `control` is the domain's mapped control page and the turn is the VMM's.
    pub(super) unsafe fn look(
        &mut self,
        control: *mut ControlPage,
        bitmap: &mut [u64],
        hand_back_all: bool,
    ) -> std::io::Result<()> {
        // SAFETY: per the caller; the values are the domain's and checked below.
        let (logged, overflow, pending, refused) = unsafe {
            (
                read_volatile(addr_of!((*control).written_len)),
                read_volatile(addr_of!((*control).written_overflow)),
                read_volatile(addr_of!((*control).reprotect_len)),
                read_volatile(addr_of!((*control).reprotect_failed)),
            )
        };
        self.looks += 1;
        // The last hand-back is applied before the domain runs again. If it was not
        // (the domain has not run since, or it failed or scribbled), its pages may
        // still be writable: hot again.
        let handed_back = std::mem::take(&mut self.handed_back);
        if pending != 0 || refused != 0 {
            self.stats.hand_backs_refused += 1;
            for page in handed_back {
                self.heat(page);
            }
        }
        let logged = (logged as usize).min(WRITTEN_LOG_LEN);
        for index in 0..logged {
            // SAFETY: per the caller; `index` is inside the log.
            let page = unsafe { read_volatile(addr_of!((*control).written_log[index])) };
            if self.declared.contains(&page) {
                self.stats.declared += 1;
                set(bitmap, page);
            } else if (self.first_page..self.end_page).contains(&page) {
                self.stats.logged += 1;
                self.heat(page);
            } else {
                self.stats.bogus += 1;
            }
        }
        if overflow != 0 {
            self.stats.overflows += 1;
            for page in self.writable_pages()? {
                self.written(page, bitmap);
            }
        }
        // SAFETY: per the caller.
        unsafe {
            write_volatile(addr_of_mut!((*control).written_len), 0);
            write_volatile(addr_of_mut!((*control).written_overflow), 0);
            write_volatile(addr_of_mut!((*control).reprotect_len), 0);
            write_volatile(addr_of_mut!((*control).reprotect_failed), 0);
        }
        for hot in &self.hot {
            set(bitmap, hot.page);
        }
        if self.declared.is_empty() {
            // SAFETY: per the caller.
            let declared = unsafe { read_volatile(addr_of!((*control).declared)) };
            self.declare(declared);
        }
        self.stats.looks += 1;
        self.stats.reported += self.hot.len() as u64;
        // SAFETY: per the caller.
        unsafe { self.hand_back(control, hand_back_all) };
        Ok(())
    }

    /// Takes `page` as written since the last look: a page of the declared region is
    /// reported this once; any other becomes hot.
    fn written(&mut self, page: u32, bitmap: &mut [u64]) {
        if self.declared.contains(&page) {
            set(bitmap, page);
        } else {
            self.heat(page);
        }
    }

    /// Latches the region the domain tracks itself, if `range` is a valid one of
    /// guest RAM: its hot pages leave the hot list without being handed back (they
    /// stay writable, their writes logged by the domain from now on).
    fn declare(&mut self, range: PageRange) {
        let Some(end) = range.first.checked_add(range.count) else {
            self.stats.bogus += 1;
            return;
        };
        if range.count == 0 {
            return;
        }
        if range.first < self.first_page || end > self.end_page {
            self.stats.bogus += 1;
            return;
        }
        self.declared = range.first..end;
        let declared = self.declared.clone();
        let hot_bits = &mut self.hot_bits;
        self.hot.retain(|hot| {
            let keep = !declared.contains(&hot.page);
            if !keep {
                hot_bits[(hot.page / 64) as usize] &= !(1 << (hot.page % 64));
            }
            keep
        });
        self.handed_back.retain(|page| !declared.contains(page));
    }

    /// Makes `page` hot (written now), if it is not already.
    fn heat(&mut self, page: u32) {
        let (word, bit) = ((page / 64) as usize, page % 64);
        let Some(bits) = self.hot_bits.get_mut(word) else {
            return;
        };
        if *bits & (1 << bit) != 0 {
            return;
        }
        *bits |= 1 << bit;
        let period = self
            .periods
            .period_of(u64::from(page), u64::from(self.looks));
        let expiry = self.looks + period;
        self.soonest = self.soonest.min(expiry);
        self.hot.push(HotPage {
            page,
            expiry,
            period,
        });
    }

    /// Writes the cooled pages (in ranges) into the control page's `reprotect` list,
    /// when there are enough of them, or they waited long enough.
    ///
    /// # Safety
    ///
    /// As [`look`](Self::look).
    unsafe fn hand_back(&mut self, control: *mut ControlPage, all: bool) {
        let looks = self.looks;
        if !all && looks < self.soonest {
            return;
        }
        let cooled = |hot: &HotPage| all || hot.expiry <= looks;
        let count = self.hot.iter().filter(|hot| cooled(hot)).count();
        let overdue = self
            .hot
            .iter()
            .any(|hot| hot.expiry + LINGER_LOOKS <= looks);
        if count == 0 || !(all || count >= HAND_BACK_BATCH || overdue) {
            return;
        }
        let mut going: Vec<HotPage> = Vec::with_capacity(count);
        self.hot.retain(|hot| {
            if cooled(hot) {
                going.push(*hot);
                false
            } else {
                true
            }
        });
        going.sort_unstable_by_key(|hot| hot.page);
        let mut ranges: Vec<PageRange> = Vec::new();
        let mut kept = Vec::new();
        for hot in going {
            let full = ranges.len() == REPROTECT_LEN;
            match ranges.last_mut() {
                Some(range) if range.first + range.count == hot.page => range.count += 1,
                _ if full => {
                    // No room in the list: hot a while longer.
                    kept.push(hot);
                    continue;
                }
                _ => ranges.push(PageRange {
                    first: hot.page,
                    count: 1,
                }),
            }
            self.hot_bits[(hot.page / 64) as usize] &= !(1 << (hot.page % 64));
            // Held past its period (waiting for its batch), it counts as gone back
            // when it cooled (see `HotPeriods::went_back`).
            let cooled_at = looks.min(hot.expiry);
            self.periods
                .went_back(u64::from(hot.page), u64::from(cooled_at), hot.period);
            self.handed_back.push(hot.page);
        }
        for mut hot in kept {
            hot.expiry = looks + 1;
            self.hot.push(hot);
        }
        self.soonest = self
            .hot
            .iter()
            .map(|hot| hot.expiry)
            .min()
            .unwrap_or(u32::MAX);
        self.stats.handed_back += self.handed_back.len() as u64;
        // SAFETY: per the caller; `ranges` fits the list (bounded above).
        unsafe {
            for (index, range) in ranges.iter().enumerate() {
                write_volatile(addr_of_mut!((*control).reprotect[index]), *range);
            }
            write_volatile(
                addr_of_mut!((*control).reprotect_len),
                u32::try_from(ranges.len()).expect("at most REPROTECT_LEN"),
            );
        }
    }

    /// Every page of guest RAM the process can write now, from its mappings: the
    /// fallback when the log overflowed.
    fn writable_pages(&self) -> std::io::Result<Vec<u32>> {
        let maps = std::fs::File::open(format!("/proc/{}/maps", self.pid))?;
        let mut pages = Vec::new();
        let ram = u64::from(self.first_page) * 4096..u64::from(self.end_page) * 4096;
        for line in BufReader::new(maps).lines() {
            let line = line?;
            let Some((range, perms)) = line.split_once(' ') else {
                continue;
            };
            if perms.as_bytes().get(1) != Some(&b'w') {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            else {
                continue;
            };
            let (start, end) = (start.max(ram.start), end.min(ram.end));
            let mut page = start / 4096;
            while page * 4096 < end {
                pages.push(u32::try_from(page).expect("inside guest RAM"));
                page += 1;
            }
        }
        Ok(pages)
    }
}

/// Sets bit `page` of `bitmap` (ignored beyond it).
fn set(bitmap: &mut [u64], page: u32) {
    if let Some(word) = bitmap.get_mut((page / 64) as usize) {
        *word |= 1 << (page % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tracker of 4 MiB of guest RAM (pages below 0x400).
    fn tracker() -> WriteTracker {
        WriteTracker::new(0, 4 << 20)
    }

    #[test]
    fn a_declared_region_outside_ram_or_wrapping_is_ignored() {
        for (first, count) in [(0, 4), (0x3ff, 2), (u32::MAX, 2), (0x200, u32::MAX)] {
            let mut tracker = tracker();
            tracker.declare(PageRange { first, count });
            assert!(tracker.declared.is_empty(), "{first:#x}+{count}");
            assert_eq!(tracker.stats.bogus, 1, "{first:#x}+{count}");
        }
        let mut tracker = tracker();
        tracker.declare(PageRange {
            first: 0x200,
            count: 0,
        });
        assert!(tracker.declared.is_empty());
    }

    #[test]
    fn hot_pages_of_a_declared_region_leave_the_hot_list_without_a_hand_back() {
        let mut tracker = tracker();
        let mut bitmap = vec![0u64; 16];
        for page in [0x200, 0x201, 0x300] {
            tracker.written(page, &mut bitmap);
        }
        tracker.declare(PageRange {
            first: 0x200,
            count: 16,
        });
        assert_eq!(tracker.declared, 0x200..0x210);
        let hot: Vec<u32> = tracker.hot.iter().map(|hot| hot.page).collect();
        assert_eq!(hot, [0x300]);
        assert!(tracker.handed_back.is_empty());
        // From now on a page of the region is reported once, not made hot.
        tracker.written(0x205, &mut bitmap);
        assert_eq!(tracker.hot.len(), 1);
        assert_ne!(bitmap[0x205 / 64] & (1 << (0x205 % 64)), 0);
    }
}
