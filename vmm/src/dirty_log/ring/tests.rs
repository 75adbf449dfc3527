//! The ring's bookkeeping over heap entries, with a model of what KVM does.

use std::collections::HashSet;

use proptest::prelude::*;

use super::*;
use crate::dirty_log::hot_periods::MAX_HOT_LOOKS;

/// A ring of `count` entries on the heap, and what KVM does with it: a write to a
/// protected page publishes an entry and makes the page writable; a reset takes back
/// the entries marked reset, in ring order, and protects their pages again.
struct Kvm {
    ring: Ring,
    /// Where KVM publishes next.
    publish_at: u64,
    /// Where KVM's reset starts.
    reset_at: u64,
    /// Pages that are writable (they have an entry not taken back).
    writable: HashSet<u64>,
    resets: usize,
}

impl Kvm {
    fn new(count: usize) -> Kvm {
        let mut heap: Box<[kvm_dirty_gfn]> = vec![kvm_dirty_gfn::default(); count].into();
        let entries = heap.as_mut_ptr();
        Kvm {
            ring: Ring::over(entries, count as u64, Some(heap)),
            publish_at: 0,
            reset_at: 0,
            writable: HashSet::new(),
            resets: 0,
        }
    }

    /// The guest writes `page`. Returns whether it trapped (was logged).
    fn write(&mut self, page: u64) -> bool {
        if self.writable.contains(&page) {
            return false;
        }
        let slot = usize::try_from(self.publish_at % self.ring.count).unwrap();
        self.ring.heap.as_mut().unwrap()[slot].offset = page;
        self.ring
            .flags(self.publish_at)
            .store(GFN_DIRTY, Ordering::Release);
        self.publish_at += 1;
        self.writable.insert(page);
        true
    }

    /// `KVM_RESET_DIRTY_RINGS`.
    fn reset(ring: &Ring, reset_at: &mut u64, writable: &mut HashSet<u64>) {
        while *reset_at < ring.next && ring.flags(*reset_at).load(Ordering::Acquire) == GFN_RESET {
            let slot = usize::try_from(*reset_at % ring.count).unwrap();
            writable.remove(&ring.heap.as_ref().unwrap()[slot].offset);
            ring.flags(*reset_at).store(0, Ordering::Release);
            *reset_at += 1;
        }
    }

    /// A look of a 64-page slot: the pages it reports.
    fn look(&mut self) -> Vec<u64> {
        let mut bitmap = [0u64; 1];
        self.look_into(&mut bitmap);
        crate::checkpoint::pages(&bitmap).collect()
    }

    fn look_into(&mut self, bitmap: &mut [u64]) {
        let Kvm {
            ring,
            reset_at,
            writable,
            resets,
            ..
        } = self;
        let mut pending_reset = false;
        ring.look(bitmap, &mut || {
            pending_reset = true;
            Ok(())
        })
        .unwrap();
        if pending_reset {
            *resets += 1;
            Kvm::reset(ring, reset_at, writable);
        }
    }

    /// Looks until the next reset; how many it took.
    fn looks_until_reset(&mut self) -> u64 {
        let resets = self.resets;
        let mut looks = 0u64;
        while self.resets == resets {
            self.look();
            looks += 1;
        }
        looks
    }

    fn full(&mut self) {
        let Kvm {
            ring,
            reset_at,
            writable,
            ..
        } = self;
        ring.harvest();
        let mut pending_reset = false;
        ring.hand_back_all(&mut || {
            pending_reset = true;
            Ok(())
        })
        .unwrap();
        assert!(pending_reset);
        Kvm::reset(ring, reset_at, writable);
    }
}

/// Looks from a page's logged write to its hand-back, with hot period `period`.
fn cycle(period: u32) -> u64 {
    u64::from(period) + LINGER_LOOKS + 1
}

#[test]
fn an_entry_of_another_slot_names_its_page_from_the_slot_start() {
    let mut kvm = Kvm::new(16);
    kvm.ring.set_slot_base(2, 40);
    kvm.write(5);
    // KVM's entry for page 3 of slot 2 (page 43 of the guest).
    kvm.write(3);
    kvm.ring.heap.as_mut().unwrap()[1].slot = 2;
    assert_eq!(kvm.look(), [5, 43]);
    assert_eq!(kvm.ring.harvested(), 2);
}

#[test]
fn written_pages_stay_hot_then_go_back_within_a_linger() {
    let mut kvm = Kvm::new(1024);
    for page in [3, 7, 9] {
        assert!(kvm.write(page));
    }
    // Reported at every look while hot, though KVM logged them once.
    for _ in 0..FIRST_HOT_LOOKS {
        assert_eq!(kvm.look(), [3, 7, 9]);
        assert!(!kvm.write(7), "a hot page stays writable");
    }
    // Cooled, but fewer than a batch: they wait for one, LINGER_LOOKS at most.
    for _ in 0..LINGER_LOOKS {
        assert_eq!(kvm.look(), [3, 7, 9]);
    }
    assert_eq!(kvm.resets, 0);
    assert_eq!(kvm.look(), [3, 7, 9], "written since the last look");
    assert_eq!(
        kvm.resets, 1,
        "overdue entries go back without a full batch"
    );
    assert!(kvm.writable.is_empty());
    assert!(kvm.look().is_empty());
}

#[test]
fn a_batch_of_cooled_entries_goes_back_before_it_is_overdue() {
    let mut kvm = Kvm::new(1024);
    for page in 0..RESET_BATCH as u64 {
        kvm.write(page);
    }
    for _ in 0..FIRST_HOT_LOOKS {
        kvm.look();
    }
    assert_eq!(kvm.resets, 0);
    kvm.look();
    assert_eq!(kvm.resets, 1);
    assert!(kvm.writable.is_empty());
}

#[test]
fn a_page_written_again_soon_after_it_went_back_stays_hot_twice_as_long() {
    let mut kvm = Kvm::new(1024);
    kvm.write(5);
    let mut looks = 0u64;
    while kvm.resets == 0 {
        kvm.look();
        looks += 1;
    }
    assert_eq!(looks, cycle(FIRST_HOT_LOOKS));
    // Written right away: it was not cold, so it is kept for twice as long.
    assert!(kvm.write(5));
    let mut looks = 0u64;
    while kvm.resets == 1 {
        assert_eq!(kvm.look(), [5]);
        looks += 1;
    }
    assert_eq!(looks, cycle(2 * FIRST_HOT_LOOKS));
    // Left alone for long: back to a shorter period.
    for _ in 0..=REWRITE_LOOKS {
        assert!(kvm.look().is_empty());
    }
    assert!(kvm.write(5));
    let mut looks = 0u64;
    while kvm.resets == 2 {
        kvm.look();
        looks += 1;
    }
    assert_eq!(looks, cycle(FIRST_HOT_LOOKS));
}

#[test]
fn periods_stop_growing_at_the_maximum() {
    let mut kvm = Kvm::new(1024);
    let mut last = 0u64;
    for _ in 0..8 {
        kvm.write(1);
        last = kvm.looks_until_reset();
    }
    assert_eq!(last, cycle(MAX_HOT_LOOKS));
}

#[test]
fn a_page_held_past_its_period_is_not_judged_by_its_late_hand_back() {
    let mut kvm = Kvm::new(1024);
    // Pages 0 and 2 earn long periods: written again right after each hand-back.
    for _ in 0..3 {
        kvm.write(0);
        kvm.write(2);
        kvm.looks_until_reset();
    }
    kvm.write(0);
    kvm.write(2);
    kvm.write(1);
    let held = kvm.looks_until_reset();
    assert!(
        held > u64::from(FIRST_HOT_LOOKS) + REWRITE_LOOKS,
        "page 1 waited behind the hot pages for longer than a rewrite window ({held} looks)"
    );
    // Written right after that late hand-back, but long after it cooled: its period
    // was not too short, so it does not double.
    assert!(kvm.write(1));
    let resets = kvm.resets;
    let mut looks = 0u64;
    while kvm.resets == resets {
        assert_eq!(kvm.look(), [1]);
        looks += 1;
    }
    assert_eq!(looks, cycle(FIRST_HOT_LOOKS));
}

/// Page 0 earns a period of 2 * FIRST_HOT_LOOKS, then `behind` pages are written once
/// right behind it in the ring; returns the system at the look where they cooled.
fn held_behind_a_hot_page(behind: u64) -> Kvm {
    let mut kvm = Kvm::new(1024);
    kvm.write(0);
    while kvm.resets == 0 {
        kvm.look();
    }
    kvm.write(0);
    for page in 1..=behind {
        kvm.write(page);
    }
    for _ in 0..FIRST_HOT_LOOKS {
        kvm.look();
    }
    assert_eq!(kvm.resets, 1);
    kvm
}

/// The most cooled pages whose copies for FIRST_HOT_LOOKS more looks (until page 0 of
/// `held_behind_a_hot_page` cools) cost no more than one trap.
fn worth_waiting_for() -> u64 {
    REWRITE_LOOKS / u64::from(FIRST_HOT_LOOKS)
}

#[test]
fn cooled_entries_held_behind_a_hot_one_go_back_with_it_once_their_copies_cost_its_trap() {
    let behind = worth_waiting_for() + 4;
    let mut kvm = held_behind_a_hot_page(behind);
    assert_eq!(kvm.writable.len() as u64, behind + 1);
    // Held for as many looks as one trap buys copies of them, no more.
    let looks = REWRITE_LOOKS / behind + 1;
    assert!(
        looks < u64::from(FIRST_HOT_LOOKS),
        "page 0 would cool first"
    );
    for look in 1..=looks {
        kvm.look();
        let expected = if look < looks { 1 } else { 2 };
        assert_eq!(kvm.resets, expected, "look {look} of {looks}");
    }
    assert!(kvm.writable.is_empty(), "all went back, page 0 with them");
}

#[test]
fn a_few_cooled_entries_wait_for_the_hot_one_in_front() {
    let behind = worth_waiting_for();
    assert!(behind >= 1);
    let mut kvm = held_behind_a_hot_page(behind);
    let all: Vec<u64> = (0..=behind).collect();
    for _ in 0..FIRST_HOT_LOOKS {
        assert_eq!(kvm.look(), all);
    }
    assert_eq!(kvm.resets, 1, "page 0 is still hot: the cooled ones wait");
    while kvm.resets == 1 {
        kvm.look();
    }
    assert!(kvm.writable.is_empty(), "they went back once page 0 cooled");
}

#[test]
fn a_full_ring_hands_everything_back_and_the_next_look_still_reports_it() {
    let mut kvm = Kvm::new(8);
    for page in 10..18 {
        kvm.write(page);
    }
    kvm.full();
    assert!(kvm.writable.is_empty());
    // The ring wraps: KVM publishes into freed slots.
    kvm.write(42);
    let mut bitmap = [0u64; 1];
    kvm.look_into(&mut bitmap);
    let mut expected: Vec<u64> = (10..18).collect();
    expected.push(42);
    let reported: Vec<u64> = crate::checkpoint::pages(&bitmap).collect();
    assert_eq!(reported, expected);
    // Handed back pages are reported once; the hot one again.
    assert_eq!(kvm.look(), [42]);
}

proptest! {
    /// Whatever the guest writes between looks, the next look reports it: the one
    /// property checkpoints and rollbacks rely on.
    #[test]
    fn every_write_is_reported_at_the_next_look(
        steps in proptest::collection::vec(
            prop_oneof![
                3 => (0u64..64).prop_map(Some),
                1 => Just(None),
            ],
            1..3000,
        ),
        ring_entries in prop_oneof![Just(16usize), Just(1024usize)],
    ) {
        let mut kvm = Kvm::new(ring_entries);
        let mut written = HashSet::new();
        let mut trapped = 0u64;
        for step in steps {
            match step {
                Some(page) => {
                    // A full ring stops the vCPU before the write, as KVM does.
                    if (kvm.publish_at - kvm.reset_at) == kvm.ring.count
                        && !kvm.writable.contains(&page)
                    {
                        kvm.full();
                    }
                    trapped += u64::from(kvm.write(page));
                    written.insert(page);
                }
                None => {
                    let reported: HashSet<u64> = kvm.look().into_iter().collect();
                    prop_assert!(written.is_subset(&reported), "{written:?} not in {reported:?}");
                    // Every writable page is hot, hence reported: none escapes the log.
                    prop_assert!(kvm.writable.is_subset(&reported));
                    written.clear();
                    // Every trapped write was harvested, once.
                    prop_assert_eq!(kvm.ring.harvested(), trapped);
                }
            }
        }
    }
}

#[test]
fn pages_whose_reset_failed_are_reported_until_a_reset_succeeds() {
    let mut kvm = Kvm::new(1024);
    assert!(kvm.write(5));
    for _ in 0..u64::from(FIRST_HOT_LOOKS) + LINGER_LOOKS {
        assert_eq!(kvm.look(), [5]);
    }
    // The look that hands the entry back: KVM_RESET_DIRTY_RINGS fails, so KVM never
    // protects the page again and the guest's next writes to it are not logged.
    let mut bitmap = [0u64; 1];
    let failed = kvm
        .ring
        .look(&mut bitmap, &mut || Err(errno::Error::new(libc::EIO)));
    assert!(failed.is_err());
    assert!(kvm.writable.contains(&5), "still writable, unlogged");
    assert_eq!(kvm.look(), [5], "reported again, and the reset is retried");
    assert!(kvm.writable.is_empty(), "protected now");
    assert!(kvm.look().is_empty(), "and no longer reported");
}
