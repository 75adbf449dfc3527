//! `ankh campaign report`: OSIRIS-style survivability tables from a campaign's
//! results, with counts and 95% Wilson confidence intervals. Pure.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::run::{ExperimentResult, Outcome};
use crate::chart::{self, ChartError};

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
    coverage_table(&mut out, results);
    out
}

/// Of the activated faults a recovery followed, per policy and server: how many were
/// detected with the target idle or its window open (a consistent recovery existed)
/// and how many with it closed: OSIRIS's recovery coverage, measured by faults.
fn coverage_table(out: &mut String, results: &[ExperimentResult]) {
    let mut cells: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    // none and stateless keep no window: every fault finds the server "idle" there,
    // which says nothing about a consistent recovery.
    let windowed =
        |r: &&ExperimentResult| !matches!(r.experiment.policy.as_str(), "none" | "stateless");
    for result in results.iter().filter(|r| r.activated).filter(windowed) {
        let Some(window) = result.window_at_detection.as_deref() else {
            continue;
        };
        let key = format!(
            "{} / {}",
            result.experiment.policy, result.experiment.fault.server
        );
        let slot = match window.split_whitespace().next() {
            Some("open") => 0,
            Some("idle") => 1,
            _ => 2,
        };
        cells.entry(key).or_default()[slot] += 1;
    }
    let _ = writeln!(
        out,
        "\n### Recovery coverage per policy and server (faults detected with the window \
         open or the server idle, of those a recovery followed; policies with a window; \
         blk keeps its own, stateless)\n"
    );
    let _ = writeln!(
        out,
        "| policy / server | detected | window open | idle | window closed | coverage |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (key, [open, idle, closed]) in cells {
        let detected = open + idle + closed;
        let (low, high) = wilson(open + idle, detected);
        let _ = writeln!(
            out,
            "| {key} | {detected} | {open} | {idle} | {closed} | {:.1}% ({:.1}-{:.1}) |",
            100.0 * (open + idle) as f64 / detected as f64,
            100.0 * low,
            100.0 * high
        );
    }
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

/// A stacked bar per policy, as SVG (`crate::chart`): the share of its activated runs
/// per outcome, in report order; the bar's label gives the number of activated runs.
pub fn svg(results: &[ExperimentResult]) -> Result<String, ChartError> {
    let groups = group(results, |r| r.experiment.policy.clone());
    let labels: Vec<String> = groups
        .iter()
        .map(|(policy, tally)| format!("{policy} (n={})", tally.activated))
        .collect();
    let bars: Vec<(&str, Vec<(&str, f64)>)> = groups
        .values()
        .zip(&labels)
        .map(|(tally, label)| {
            let shares = Outcome::ALL
                .iter()
                .map(|&outcome| {
                    let k = tally.outcomes.get(&outcome).copied().unwrap_or(0);
                    let share = match tally.activated {
                        0 => 0.0,
                        n => 100.0 * k as f64 / n as f64,
                    };
                    (outcome.name(), share)
                })
                .collect();
            (label.as_str(), shares)
        })
        .collect();
    chart::stacked_bars(
        &format!("Survivability per policy ({} experiments)", results.len()),
        "share of activated runs (%)",
        &bars,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::plan::{Experiment, Fault};
    use crate::domain::debug::decode::FaultType;
    use crate::domain::debug::FaultPlan;

    fn result(policy: &str, index: u64, outcome: Outcome, activated: bool) -> ExperimentResult {
        ExperimentResult {
            experiment: Experiment {
                id: format!("{policy}-{index}"),
                policy: policy.to_owned(),
                fault: Fault {
                    index,
                    server: "mm".to_owned(),
                    instruction: String::new(),
                    plan: FaultPlan {
                        address: 0x1000,
                        hit: 1,
                        fault: FaultType::FailStop,
                        seed: index,
                    },
                },
                substrate: Default::default(),
            },
            outcome,
            activated,
            fired: activated.then(|| "fail-stop".to_owned()),
            hits: 1,
            recoveries: Vec::new(),
            window_at_detection: None,
            checks: None,
            detail: None,
            millis: 1,
        }
    }

    #[test]
    fn recovery_coverage_counts_detected_faults_by_window_per_policy_and_server() {
        let detected = |index, window: Option<&str>, activated| ExperimentResult {
            window_at_detection: window.map(str::to_owned),
            ..result("enhanced", index, Outcome::Pass, activated)
        };
        let results = [
            detected(0, Some("open (request 3)"), true),
            detected(1, Some("idle"), true),
            detected(2, Some("closed by update (request 9)"), true),
            detected(3, Some("open (request 4)"), true),
            // Neither a run without a recovery nor a fault never reached counts.
            detected(4, None, true),
            detected(5, Some("open (request 5)"), false),
            // Nor a policy without a window.
            ExperimentResult {
                window_at_detection: Some("idle".to_owned()),
                ..result("none", 6, Outcome::Crash, true)
            },
        ];
        let report = markdown(&results);
        let (_, coverage) = report
            .split_once("### Recovery coverage")
            .unwrap_or_else(|| panic!("{report}"));
        let rows: Vec<&str> = coverage.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 2, "a header and enhanced / mm: {coverage}");
        assert!(
            rows[1].starts_with("| enhanced / mm | 4 | 2 | 1 | 1 | 75.0% ("),
            "{coverage}"
        );
    }

    #[test]
    fn the_svg_has_a_bar_per_policy_with_a_segment_per_outcome_it_saw() {
        let results = [
            result("enhanced", 0, Outcome::Pass, true),
            result("enhanced", 1, Outcome::Pass, true),
            result("enhanced", 2, Outcome::Shutdown, true),
            result("enhanced", 3, Outcome::Crash, false),
            result("none", 0, Outcome::Crash, true),
            result("none", 1, Outcome::Pass, true),
        ];
        let svg = svg(&results).expect("a chart");
        assert!(svg.starts_with("<svg"));
        // Labels count activated runs only (the not-activated one is left out).
        for label in [
            "enhanced (n=3)",
            "none (n=2)",
            "Survivability per policy (6 experiments)",
        ] {
            assert!(svg.contains(&format!(">\n{label}\n<")), "{label}:\n{svg}");
        }
        for outcome in Outcome::ALL {
            assert!(
                svg.contains(&format!(">\n{}\n<", outcome.name())),
                "legend {outcome:?}"
            );
        }
        // Rectangles: the background, one per nonzero segment (enhanced: pass and
        // shutdown; none: pass and crash), one legend swatch per outcome.
        let rects = svg.lines().filter(|l| l.starts_with("<rect")).count();
        assert_eq!(rects, 1 + 4 + Outcome::ALL.len(), "{svg}");
    }

    #[test]
    fn an_empty_campaign_has_no_chart() {
        assert_eq!(svg(&[]), Err(ChartError::Empty("no bars")));
    }

    #[test]
    fn wilson_intervals_match_known_values() {
        let (low, high) = wilson(50, 100);
        assert!((low - 0.4038).abs() < 1e-3 && (high - 0.5962).abs() < 1e-3);
        let (low, high) = wilson(0, 10);
        assert!(low == 0.0 && (high - 0.2775).abs() < 1e-3);
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }
}
