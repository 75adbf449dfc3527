//! How sure a paired geometric mean is, on hosts whose noise moves it by a point
//! between runs of the same build: a bootstrap over the rounds. The rounds are drawn
//! again with replacement (all workloads of a drawn round together, since a slow
//! phase of the host slows them alike), the statistic is computed on each draw, and
//! the middle 95% of the draws is the interval. A claim such as "within 5%" is then
//! checked against the interval's top, not against one figure.

/// Draws of the rounds.
const DRAWS: usize = 2000;

/// Fewer rounds than this give no interval: a draw would mostly repeat one round.
pub const MIN_ROUNDS: usize = 3;

/// The 95% bootstrap interval of the geometric mean over workloads of each workload's
/// median slowdown across rounds. `ratios[round][workload]` is the slowdown the round
/// measured (`> 1`: slower). `None` with fewer than [`MIN_ROUNDS`] rounds, no
/// workloads, or rounds of different lengths.
pub fn geomean_of_medians_interval(ratios: &[Vec<f64>]) -> Option<(f64, f64)> {
    let workloads = ratios.first()?.len();
    if ratios.len() < MIN_ROUNDS || workloads == 0 || ratios.iter().any(|r| r.len() != workloads) {
        return None;
    }
    let columns: Vec<Vec<f64>> = (0..workloads)
        .map(|workload| ratios.iter().map(|round| round[workload]).collect())
        .collect();
    // Fixed seed: the same measurements always give the same interval.
    let mut random = SplitMix64(0x5eed_a11c_e5ee_d5ed);
    let mut estimates = Vec::with_capacity(DRAWS);
    let mut drawn_values = Vec::with_capacity(ratios.len());
    let mut drawn = vec![0usize; ratios.len()];
    for _ in 0..DRAWS {
        for slot in drawn.iter_mut() {
            *slot = random.below(ratios.len());
        }
        let mut log_sum = 0.0;
        for column in &columns {
            drawn_values.clear();
            drawn_values.extend(drawn.iter().map(|&round| column[round]));
            drawn_values.sort_by(f64::total_cmp);
            log_sum += drawn_values[drawn_values.len() / 2].ln();
        }
        estimates.push((log_sum / workloads as f64).exp());
    }
    estimates.sort_by(f64::total_cmp);
    // The 2.5th and 97.5th percentiles, by rank.
    let (low, high) = ((DRAWS - 1) * 25 / 1000, (DRAWS - 1) * 975 / 1000);
    Some((estimates[low], estimates[high]))
}

/// A small, well-known generator (SplitMix64): enough to draw rounds.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`; the bias of a modulo is immaterial here).
    fn below(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound).expect("a usize fits u64");
        usize::try_from(self.next() % bound).expect("below a usize bound")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_rounds_give_a_point() {
        let rounds = vec![vec![1.05, 1.10]; 9];
        let (low, high) = geomean_of_medians_interval(&rounds).unwrap();
        let point = (1.05f64 * 1.10).sqrt();
        assert!((low - point).abs() < 1e-12 && (high - point).abs() < 1e-12);
    }

    #[test]
    fn spread_rounds_give_an_interval_around_the_median() {
        // One workload, slowdowns 1.00 to 1.10 in steps of 0.01 over 11 rounds.
        let rounds: Vec<Vec<f64>> = (0..11).map(|i| vec![1.0 + f64::from(i) / 100.0]).collect();
        let (low, high) = geomean_of_medians_interval(&rounds).unwrap();
        assert!(low < 1.05 && 1.05 < high, "({low}, {high})");
        assert!(low >= 1.0 && high <= 1.10, "({low}, {high})");
    }

    #[test]
    fn too_few_or_ragged_rounds_give_none() {
        assert_eq!(geomean_of_medians_interval(&[vec![1.0], vec![1.1]]), None);
        assert_eq!(
            geomean_of_medians_interval(&[vec![1.0], vec![1.1], vec![]]),
            None
        );
        assert_eq!(geomean_of_medians_interval(&[]), None);
    }
}
