//! `ankh campaign report`: OSIRIS-style survivability tables from a campaign's
//! results, with counts and 95% Wilson confidence intervals. Pure.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::run::{ExperimentResult, Outcome};

/// The 95% Wilson score interval of `k` successes in `n` trials, as fractions.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let z = 1.959_964_f64;
    let p = k / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denominator;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Outcome counts of a group of activated experiments, and the not-activated ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Per outcome.
    pub outcomes: BTreeMap<Outcome, u64>,
    /// Activated runs.
    pub activated: u64,
    /// Runs whose fault was never reached.
    pub not_activated: u64,
}

impl Tally {
    fn add(&mut self, result: &ExperimentResult) {
        if result.activated {
            *self.outcomes.entry(result.outcome).or_default() += 1;
            self.activated += 1;
        } else {
            self.not_activated += 1;
        }
    }

    fn cell(&self, outcome: Outcome) -> String {
        let k = self.outcomes.get(&outcome).copied().unwrap_or(0);
        let n = self.activated;
        if n == 0 {
            return "-".to_owned();
        }
        let (low, high) = wilson(k, n);
        format!(
            "{k} ({:.1}%, {:.1}-{:.1})",
            100.0 * k as f64 / n as f64,
            100.0 * low,
            100.0 * high
        )
    }
}

/// Tallies of `results` grouped by `key`.
pub fn group(
    results: &[ExperimentResult],
    key: impl Fn(&ExperimentResult) -> String,
) -> BTreeMap<String, Tally> {
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for result in results {
        groups.entry(key(result)).or_default().add(result);
    }
    groups
}

fn table(out: &mut String, title: &str, first: &str, groups: &BTreeMap<String, Tally>) {
    let _ = writeln!(out, "\n### {title}\n");
    let names: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
    let _ = writeln!(
        out,
        "| {first} | activated | {} | not activated |",
        names.join(" | ")
    );
    let _ = writeln!(out, "|---|---:|{}---:|", "---:|".repeat(names.len()));
    for (name, tally) in groups {
        let cells: Vec<String> = Outcome::ALL.iter().map(|&o| tally.cell(o)).collect();
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            tally.activated,
            cells.join(" | "),
            tally.not_activated
        );
    }
}

/// The Markdown report: per policy (fail-stop faults, all types), per policy and
/// server, per policy and fault type. Each cell: count (share of activated runs, 95%
/// Wilson interval).
pub fn markdown(results: &[ExperimentResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Campaign: {} experiments\n\nCells: count (share of activated runs, 95% Wilson interval, %).",
        results.len()
    );
    let fail_stop: Vec<ExperimentResult> = results
        .iter()
        .filter(|r| r.experiment.fault.plan.fault.name() == "fail-stop")
        .cloned()
        .collect();
    let by_policy = |r: &ExperimentResult| r.experiment.policy.clone();
    if !fail_stop.is_empty() {
        table(
            &mut out,
            "Survivability per policy, fail-stop faults",
            "policy",
            &group(&fail_stop, by_policy),
        );
    }
    table(
        &mut out,
        "Survivability per policy, all fault types",
        "policy",
        &group(results, by_policy),
    );
    table(
        &mut out,
        "Per policy and server",
        "policy / server",
        &group(results, |r| {
            format!("{} / {}", r.experiment.policy, r.experiment.fault.server)
        }),
    );
    table(
        &mut out,
        "Per policy and fault type",
        "policy / type",
        &group(results, |r| {
            format!(
                "{} / {}",
                r.experiment.policy, r.experiment.fault.plan.fault
            )
        }),
    );
    let in_window = group(results, |r| {
        let window = match &r.window_at_detection {
            Some(w) => w.split_whitespace().next().unwrap_or("?").to_owned(),
            None => "no recovery".to_owned(),
        };
        format!("{} / {window}", r.experiment.policy)
    });
    table(
        &mut out,
        "Per policy and the target's window when its fault was detected",
        "policy / window",
        &in_window,
    );
    out
}

/// The same tallies as CSV: `group,key,outcome,count,activated,low,high`.
pub fn csv(results: &[ExperimentResult]) -> String {
    let mut out = String::from("group,key,outcome,count,activated,not_activated,ci_low,ci_high\n");
    let groups: [(&str, BTreeMap<String, Tally>); 3] = [
        ("policy", group(results, |r| r.experiment.policy.clone())),
        (
            "policy-server",
            group(results, |r| {
                format!("{}/{}", r.experiment.policy, r.experiment.fault.server)
            }),
        ),
        (
            "policy-type",
            group(results, |r| {
                format!("{}/{}", r.experiment.policy, r.experiment.fault.plan.fault)
            }),
        ),
    ];
    for (name, tallies) in groups {
        for (key, tally) in tallies {
            for outcome in Outcome::ALL {
                let k = tally.outcomes.get(&outcome).copied().unwrap_or(0);
                let (low, high) = wilson(k, tally.activated);
                let _ = writeln!(
                    out,
                    "{name},{key},{},{k},{},{},{low:.4},{high:.4}",
                    outcome.name(),
                    tally.activated,
                    tally.not_activated
                );
            }
        }
    }
    out
}

/// A stacked bar per policy (shares of activated runs per outcome), as SVG. Written
/// by hand: a few rectangles do not need a plotting crate.
pub fn svg(results: &[ExperimentResult]) -> String {
    const COLOURS: [&str; 5] = ["#4caf50", "#ffc107", "#2196f3", "#f44336", "#9e9e9e"];
    let groups = group(results, |r| r.experiment.policy.clone());
    let (left, width, bar, gap) = (110.0, 500.0, 28.0, 12.0);
    let height = 60.0 + groups.len() as f64 * (bar + gap);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        left + width + 20.0
    );
    for (n, (policy, tally)) in groups.iter().enumerate() {
        let y = 40.0 + n as f64 * (bar + gap);
        let _ = writeln!(
            out,
            r#"<text x="4" y="{}">{policy} ({})</text>"#,
            y + bar * 0.65,
            tally.activated
        );
        let mut x = left;
        for (outcome, colour) in Outcome::ALL.iter().zip(COLOURS) {
            let k = tally.outcomes.get(outcome).copied().unwrap_or(0);
            let w = if tally.activated == 0 {
                0.0
            } else {
                width * k as f64 / tally.activated as f64
            };
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y}" width="{w:.1}" height="{bar}" fill="{colour}"><title>{}: {k}</title></rect>"#,
                outcome.name()
            );
            x += w;
        }
    }
    for (n, (outcome, colour)) in Outcome::ALL.iter().zip(COLOURS).enumerate() {
        let x = left + n as f64 * 100.0;
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="8" width="12" height="12" fill="{colour}"/>"#
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="18">{}</text>"#,
            x + 16.0,
            outcome.name()
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_intervals_match_known_values() {
        let (low, high) = wilson(50, 100);
        assert!((low - 0.4038).abs() < 1e-3 && (high - 0.5962).abs() < 1e-3);
        let (low, high) = wilson(0, 10);
        assert!(low == 0.0 && (high - 0.2775).abs() < 1e-3);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
