//! What `ankh demo` concludes, from what happened: the suite's lines (each with the
//! count of recoveries done when it was printed) and the system's report. Pure, so
//! that every branch of the verdict is tested here.
//!
//! The suite runs twice (`suite --runs 2`, see `ankh_apps::suite::runs` in the guest
//! workspace): phase 1 while the servers are hot-killed, phase 2 after. It prints, per
//! run: `suite: run K of 2`, its failures, `suite: M failed, K of them after
//! ERESTART; R ERESTART answers`, then `N passed, M failed`.

/// One line the suite printed, and how many recoveries the system had done by then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuiteLine {
    /// The line.
    pub text: String,
    /// Recoveries done before it was printed.
    pub recoveries_before: u64,
}

/// One run of the suite, as its lines tell it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Recoveries done before it started.
    pub recoveries_at_start: u64,
    /// Its failure lines (`suite: FAIL ...`).
    pub failures: Vec<String>,
    /// What the clean-up before it removed (`suite: run K starts clean: ...`).
    pub clean_up: Option<String>,
    /// Its result, if it finished.
    pub result: Option<RunResult>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// Checks passed.
    pub passed: u64,
    /// Checks failed.
    pub failed: u64,
    /// Of them, those after an ERESTART (the suite's own count).
    pub after_restart: u64,
    /// `ERESTART` answers its calls got (each call was made again, up to a bound).
    pub restart_answers: u64,
}

impl RunResult {
    /// Checks run.
    pub fn total(&self) -> u64 {
        self.passed + self.failed
    }
}

/// `N passed, M failed` as numbers.
fn parse_summary(line: &str) -> Option<(u64, u64)> {
    let (passed, failed) = line.strip_suffix(" failed")?.split_once(" passed, ")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

/// `suite: M failed, K of them after ERESTART; R ERESTART answers` as numbers.
fn parse_attribution(line: &str) -> Option<(u64, u64, u64)> {
    let (attribution, answers) = line.strip_prefix("suite: ")?.split_once("; ")?;
    let (failed, after) = attribution
        .strip_suffix(" of them after ERESTART")?
        .split_once(" failed, ")?;
    let answers = answers.strip_suffix(" ERESTART answers")?;
    Some((
        failed.parse().ok()?,
        after.parse().ok()?,
        answers.parse().ok()?,
    ))
}

/// The runs in the suite's lines, in order. A run starts at `suite: run K of N` (or at
/// the first line, for a single run) and has a result once its `N passed, M failed`
/// line came, with the attribution line before it.
pub fn runs(lines: &[SuiteLine]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut attribution = None;
    for line in lines {
        let text = line.text.as_str();
        let starts = text.strip_prefix("suite: run ").is_some_and(|rest| {
            rest.split_once(" of ")
                .is_some_and(|(k, n)| k.parse::<u64>().is_ok() && n.parse::<u64>().is_ok())
        });
        if starts || runs.is_empty() {
            runs.push(Run {
                recoveries_at_start: line.recoveries_before,
                ..Run::default()
            });
            attribution = None;
        }
        let run = runs.last_mut().expect("a run was pushed");
        if text.starts_with("suite: FAIL ") {
            run.failures.push(text.to_owned());
        } else if text.contains(" starts clean: ") {
            run.clean_up = Some(text.to_owned());
        } else if let Some(numbers) = parse_attribution(text) {
            attribution = Some(numbers);
        } else if let Some((passed, failed)) = parse_summary(text) {
            // Without its attribution line (or with one that disagrees), no failure
            // counts as explained.
            let (after_restart, restart_answers) = match attribution {
                Some((attributed, after, answers)) if attributed == failed => (after, answers),
                _ => (0, 0),
            };
            run.result = Some(RunResult {
                passed,
                failed,
                after_restart,
                restart_answers,
            });
        }
    }
    runs
}

/// Everything the verdict depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    /// The suite's runs: phase 1, then phase 2.
    pub runs: Vec<Run>,
    /// Recoveries done in all, when the system stopped.
    pub recoveries: u64,
    /// Why the system stopped early, in words, if it did.
    pub stopped: Option<String>,
    /// Servers the demo planned to kill that no recovery event names.
    pub never_killed: Vec<String>,
    /// Servers that were not serving any more at the end.
    pub not_serving: Vec<String>,
}

/// The demo's conclusion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the system survived: stayed up, and stayed consistent.
    pub survived: bool,
    /// Why (survived) or why not (every reason).
    pub reasons: Vec<String>,
}

impl Verdict {
    /// `verdict: survived: ...` or `verdict: did not survive: ...; ...`.
    pub fn line(&self) -> String {
        let what = if self.survived {
            "survived"
        } else {
            "did not survive"
        };
        format!("verdict: {what}: {}", self.reasons.join("; "))
    }
}

/// "1 failure", "3 failures".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The verdict: survived iff the system never stopped, every planned server was
/// killed and still serves, phase 2 ran after the last recovery and passed every check
/// (at least as many as phase 1 ran), and every phase-1 failure followed an ERESTART.
pub fn verdict(evidence: &Evidence) -> Verdict {
    let mut reasons = Vec::new();
    if let Some(stop) = &evidence.stopped {
        reasons.push(format!("the system stopped: {stop}"));
    }
    if !evidence.never_killed.is_empty() {
        reasons.push(format!(
            "no fault struck {} (nothing to survive there)",
            evidence.never_killed.join(", ")
        ));
    }
    if !evidence.not_serving.is_empty() {
        reasons.push(format!(
            "{} no longer serving",
            evidence.not_serving.join(", ")
        ));
    }
    let phase1 = evidence.runs.first().and_then(|run| run.result);
    match phase1 {
        None => reasons.push("phase 1 did not finish".to_owned()),
        Some(result) if result.after_restart < result.failed => reasons.push(format!(
            "{} of phase 1 not explained by an ERESTART",
            count(result.failed - result.after_restart, "failure", "failures")
        )),
        Some(_) => {}
    }
    match evidence.runs.get(1) {
        None => reasons.push("phase 2 did not run".to_owned()),
        Some(run) => {
            let during = evidence.recoveries.saturating_sub(run.recoveries_at_start);
            if during > 0 {
                reasons.push(format!(
                    "{} during phase 2 (it did not run after the last one)",
                    count(during, "recovery", "recoveries")
                ));
            }
            match run.result {
                None => reasons.push("phase 2 did not finish".to_owned()),
                Some(result) if result.failed > 0 => reasons.push(format!(
                    "phase 2 (no fault injected) failed {}",
                    count(result.failed, "check", "checks")
                )),
                Some(result) if phase1.is_some_and(|p| result.total() < p.total()) => reasons.push(
                    format!("phase 2 ran {} checks, fewer than phase 1", result.total()),
                ),
                Some(_) => {}
            }
        }
    }
    if !reasons.is_empty() {
        return Verdict {
            survived: false,
            reasons,
        };
    }
    let phase1 = phase1.expect("checked above");
    let phase2 = evidence.runs[1].result.expect("checked above");
    Verdict {
        survived: true,
        reasons: vec![
            format!(
                "phase 2 passed {} of {} checks after {}",
                phase2.passed,
                phase2.total(),
                count(evidence.recoveries, "recovery", "recoveries")
            ),
            match phase1.failed {
                0 => "no check of phase 1 failed".to_owned(),
                n => format!(
                    "each of the {} of phase 1 followed an ERESTART (error virtualization)",
                    count(n, "failure", "failures")
                ),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(texts: &[(&str, u64)]) -> Vec<SuiteLine> {
        texts
            .iter()
            .map(|&(text, recoveries_before)| SuiteLine {
                text: text.to_owned(),
                recoveries_before,
            })
            .collect()
    }

    /// Two runs: phase 1 with `failed` failures, `after` of them after ERESTART, with
    /// `recoveries` recoveries before phase 2; phase 2 with `failed2` failures.
    fn two_runs(failed: u64, after: u64, recoveries: u64, failed2: u64) -> Vec<Run> {
        let attribution =
            format!("suite: {failed} failed, {after} of them after ERESTART; 7 ERESTART answers");
        let summary = format!("{} passed, {failed} failed", 252 - failed);
        let attribution2 =
            format!("suite: {failed2} failed, 0 of them after ERESTART; 0 ERESTART answers");
        let summary2 = format!("{} passed, {failed2} failed", 252 - failed2);
        runs(&lines(&[
            ("suite: run 1 of 2", 0),
            ("suite: FAIL x errno 1001 (after ERESTART)", 3),
            (&attribution, 9),
            (&summary, 9),
            ("suite: run 2 of 2", recoveries),
            ("suite: run 2 starts clean: removed 1 files", recoveries),
            (&attribution2, recoveries),
            (&summary2, recoveries),
        ]))
    }

    fn evidence(runs: Vec<Run>, recoveries: u64) -> Evidence {
        Evidence {
            runs,
            recoveries,
            ..Evidence::default()
        }
    }

    #[test]
    fn runs_are_read_from_the_suite_lines() {
        let runs = two_runs(2, 1, 20, 0);
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0].result,
            Some(RunResult {
                passed: 250,
                failed: 2,
                after_restart: 1,
                restart_answers: 7,
            })
        );
        assert_eq!(runs[0].failures.len(), 1);
        assert_eq!(runs[1].recoveries_at_start, 20);
        assert!(runs[1].clean_up.is_some());
        assert_eq!(runs[1].result.map(|r| r.total()), Some(252));
        // One run without a header; a run cut short has no result.
        let single = runs_of(&[
            "suite: 0 failed, 0 of them after ERESTART; 0 ERESTART answers",
            "9 passed, 0 failed",
        ]);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].result.map(|r| r.passed), Some(9));
        let cut = runs_of(&["suite: run 1 of 2", "suite: FAIL a errno 5"]);
        assert_eq!(cut[0].result, None);
    }

    fn runs_of(texts: &[&str]) -> Vec<Run> {
        runs(&lines(&texts.iter().map(|t| (*t, 0)).collect::<Vec<_>>()))
    }

    #[test]
    fn a_summary_without_its_attribution_explains_nothing() {
        let runs = runs_of(&["3 passed, 2 failed"]);
        assert_eq!(runs[0].result.map(|r| r.after_restart), Some(0));
        let runs = runs_of(&[
            "suite: 1 failed, 1 of them after ERESTART; 1 ERESTART answers",
            "3 passed, 2 failed",
        ]);
        assert_eq!(runs[0].result.map(|r| r.after_restart), Some(0));
    }

    #[test]
    fn survived_when_phase_2_passes_and_every_phase_1_failure_followed_erestart() {
        let verdict = verdict(&evidence(two_runs(2, 2, 20, 0), 20));
        assert!(verdict.survived, "{verdict:?}");
        assert_eq!(
            verdict.line(),
            "verdict: survived: phase 2 passed 252 of 252 checks after 20 recoveries; \
             each of the 2 failures of phase 1 followed an ERESTART (error virtualization)"
        );
    }

    #[test]
    fn an_unexplained_phase_1_failure_is_not_survival() {
        let verdict = verdict(&evidence(two_runs(3, 1, 20, 0), 20));
        assert!(!verdict.survived);
        assert_eq!(
            verdict.line(),
            "verdict: did not survive: 2 failures of phase 1 not explained by an ERESTART"
        );
    }

    #[test]
    fn a_phase_2_failure_is_not_survival() {
        let verdict = verdict(&evidence(two_runs(0, 0, 20, 48), 20));
        assert!(!verdict.survived);
        assert_eq!(
            verdict.reasons,
            ["phase 2 (no fault injected) failed 48 checks"]
        );
    }

    #[test]
    fn phase_2_must_come_after_the_last_recovery() {
        let verdict = verdict(&evidence(two_runs(0, 0, 19, 0), 20));
        assert_eq!(
            verdict.reasons,
            ["1 recovery during phase 2 (it did not run after the last one)"]
        );
    }

    #[test]
    fn a_stop_a_missing_phase_and_an_untouched_server_each_say_so() {
        let halted = Evidence {
            runs: runs_of(&["suite: run 1 of 2"]),
            recoveries: 1,
            stopped: Some("ds halted after injected-fault".to_owned()),
            never_killed: vec!["mm".to_owned()],
            not_serving: vec!["ds".to_owned()],
        };
        let stopped = verdict(&halted);
        assert!(!stopped.survived);
        assert_eq!(
            stopped.reasons,
            [
                "the system stopped: ds halted after injected-fault",
                "no fault struck mm (nothing to survive there)",
                "ds no longer serving",
                "phase 1 did not finish",
                "phase 2 did not run",
            ]
        );
        let nothing = verdict(&Evidence::default());
        assert!(!nothing.survived);
    }

    #[test]
    fn phase_2_must_run_every_check_phase_1_ran() {
        let mut runs = two_runs(0, 0, 20, 0);
        runs[1].result = Some(RunResult {
            passed: 200,
            ..RunResult::default()
        });
        let verdict = verdict(&evidence(runs, 20));
        assert_eq!(
            verdict.reasons,
            ["phase 2 ran 200 checks, fewer than phase 1"]
        );
    }
}
