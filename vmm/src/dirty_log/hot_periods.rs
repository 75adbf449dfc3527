//! How long a written page stays *hot* (writable, and copied at every look): the rule
//! shared by KVM's dirty ring (`ring`) and the process substrate's write tracking
//! (`domain::process::tracking`). Each page starts with a first period; a page written
//! again soon after it went back was given back too early (keeping it would have cost
//! less than its trap), and its period doubles, up to [`MAX_HOT_LOOKS`]; one that
//! stays away longer halves it again, down to the first period.

use rustc_hash::FxHashMap;

/// The longest a page stays writable without being logged again.
pub const MAX_HOT_LOOKS: u32 = 1024;

/// What is known of a page that was handed back.
#[derive(Clone, Copy, Debug)]
struct WentBack {
    /// Its hot period when it went back.
    period: u32,
    /// The look at which it went back.
    at: u64,
}

/// The hot periods of one domain's pages.
#[derive(Debug)]
pub struct HotPeriods {
    /// A page's period at its first write.
    first: u32,
    /// A page written again within this many looks after it went back should have
    /// stayed hot.
    rewrite: u64,
    went_back: FxHashMap<u64, WentBack>,
}

impl HotPeriods {
    /// Periods starting at `first` looks, doubled for a page written again within
    /// `rewrite` looks after it went back.
    pub fn new(first: u32, rewrite: u64) -> HotPeriods {
        HotPeriods {
            first,
            rewrite,
            went_back: FxHashMap::default(),
        }
    }

    /// The hot period of `page`, written again at look `look`.
    pub fn period_of(&self, page: u64, look: u64) -> u32 {
        match self.went_back.get(&page) {
            None => self.first,
            Some(past) if look <= past.at + self.rewrite => (past.period * 2).min(MAX_HOT_LOOKS),
            Some(past) => (past.period / 2).max(self.first),
        }
    }

    /// `page`, hot for `period` looks, went back at look `look`: the look its period
    /// ended, for a page handed back later than that (held behind a hot entry in the
    /// ring, or waiting for its batch). A write soon after a late hand-back says
    /// nothing about the period being too short: the page had been idle since it
    /// cooled, and doubling its period would only hold it longer next time.
    pub fn went_back(&mut self, page: u64, look: u64, period: u32) {
        self.went_back.insert(page, WentBack { period, at: look });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_doubles_when_its_page_comes_back_soon_and_halves_when_not() {
        let mut periods = HotPeriods::new(8, 20);
        assert_eq!(periods.period_of(5, 100), 8);
        periods.went_back(5, 100, 8);
        assert_eq!(periods.period_of(5, 120), 16, "back within 20 looks");
        periods.went_back(5, 200, 512);
        assert_eq!(periods.period_of(5, 201), MAX_HOT_LOOKS);
        periods.went_back(5, 300, 16);
        assert_eq!(periods.period_of(5, 400), 8, "halved, not below the first");
    }
}
