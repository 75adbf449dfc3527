//! How `ankh bench compare` shows what it measured: one Markdown report (the default),
//! JSON, CSV, and a grouped bar chart of the ubench workloads (SVG, via `plotters`).
//! Every sentence with a figure or a verdict is computed from the measurements.

use std::fmt::{self, Write as _};
use std::time::Duration;

use ankh_domains::Policy;
use serde_json::json;

use super::{geomean, paired, CompareReport, ConfigWorkloads, SubstrateFigures};
use crate::bench::bootstrap::geomean_of_medians_interval;
use crate::bench::stats::micros;
use crate::bench::ubench::round_slowdowns;
use crate::domain::Substrate;

/// The native workload whose operation is a round trip between two processes through
/// pipes: the reference of the null call.
const PIPE_ROUND_TRIP: &str = "context1";

/// The target of the process substrate's null call, in native pipe round trips.
pub const NULL_CALL_TARGET: f64 = 3.0;

/// A row of the costs table: its label, how to read the figure, its unit.
type Row = (&'static str, fn(&SubstrateFigures) -> f64, &'static str);

/// The target of the process substrate's recovery overhead (geometric mean).
pub const OVERHEAD_TARGET: f64 = 1.10;

/// The target of the kvm substrate's recovery overhead (geometric mean).
pub const KVM_OVERHEAD_TARGET: f64 = 1.05;

/// Whether a measured overhead meets `target`, given its interval over the rounds: met
/// or missed only when the whole interval is on one side of it.
fn verdict(overhead: f64, interval: Option<(f64, f64)>, target: f64) -> &'static str {
    match interval {
        Some((_, high)) if high <= target => "met",
        Some((low, _)) if low > target => "missed",
        Some(_) => "not decided: the interval spans it",
        None if overhead <= target => "met",
        None => "missed",
    }
}

impl CompareReport {
    /// A native pipe round trip between two processes (median of `context1`).
    pub fn native_round_trip(&self) -> Option<Duration> {
        let per_second = self.native.per_second(PIPE_ROUND_TRIP)?;
        (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second))
    }

    pub(super) fn substrate(&self, substrate: Substrate) -> Option<&SubstrateFigures> {
        self.substrates.iter().find(|s| s.substrate == substrate)
    }

    pub(super) fn config(&self, substrate: Substrate, policy: Policy) -> Option<&ConfigWorkloads> {
        self.ubench
            .iter()
            .find(|c| c.config.substrate == substrate && c.config.policy == policy)
    }

    /// The paired slowdown of `enhanced` against `none` on `substrate`, per workload.
    pub fn recovery_overhead(&self, substrate: Substrate) -> Vec<f64> {
        match (
            self.config(substrate, Policy::None),
            self.config(substrate, Policy::Enhanced),
        ) {
            (Some(none), Some(enhanced)) => paired(none, enhanced),
            _ => Vec::new(),
        }
    }

    /// The 95% bootstrap interval over the rounds of the geometric mean of
    /// [`recovery_overhead`](Self::recovery_overhead) (`None` with fewer than 3 rounds).
    pub fn recovery_overhead_interval(&self, substrate: Substrate) -> Option<(f64, f64)> {
        let none = self.config(substrate, Policy::None)?;
        let enhanced = self.config(substrate, Policy::Enhanced)?;
        geomean_of_medians_interval(&round_slowdowns(&none.rounds, &enhanced.rounds))
    }

    /// Per workload, kvm's operations per second over process's under `none`
    /// (paired: the median over the rounds of each round's ratio).
    pub fn kvm_over_process(&self) -> Vec<f64> {
        match (
            self.config(Substrate::Kvm, Policy::None),
            self.config(Substrate::Process, Policy::None),
        ) {
            (Some(kvm), Some(process)) => paired(kvm, process),
            _ => Vec::new(),
        }
    }

    /// The whole report as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let substrates: Vec<_> = self
            .substrates
            .iter()
            .map(|s| {
                json!({
                    "substrate": s.substrate.name(),
                    "null_call_us": s.null_call.round_trip.median.as_secs_f64() * 1e6,
                    "null_call_p99_us": s.null_call.round_trip.p99.as_secs_f64() * 1e6,
                    "exits_per_call": s.null_call.exits_per_call,
                    "vmm_switches_per_call": s.null_call.vmm_switches_per_call,
                    "os_run_ms": s.os_run.median.as_secs_f64() * 1e3,
                    "idle_domain_kib": s.idle_domain_bytes / 1024,
                    "checkpoint_us": s.recovery.checkpoint_later.median.as_secs_f64() * 1e6,
                    "checkpoint_pages": s.recovery.checkpoint_later_pages,
                    "rollback_us": s.recovery.rollback.median.as_secs_f64() * 1e6,
                    "restart_us": s.recovery.restart.median.as_secs_f64() * 1e6,
                    "exit_us": s.recovery.raw_exit.as_secs_f64() * 1e6,
                    "write_trap_us": s.recovery.trap().as_secs_f64() * 1e6,
                    "recovery_overhead_geomean": geomean(&self.recovery_overhead(s.substrate)),
                    "recovery_overhead_interval": self.recovery_overhead_interval(s.substrate),
                })
            })
            .collect();
        let workloads: Vec<_> = self
            .native
            .workloads
            .iter()
            .enumerate()
            .map(|(index, native)| {
                let mut row = json!({ "workload": native.name, "linux": native.per_second() });
                for config in &self.ubench {
                    if let Some(w) = config.workloads.get(index) {
                        row[config.config.label()] = json!(w.per_second());
                        let per_op = w.exits as f64 / w.operations.max(1) as f64;
                        row[format!("{}_exits_per_op", config.config.label())] = json!(per_op);
                    }
                }
                row
            })
            .collect();
        json!({
            "rounds": self.rounds,
            "native_pipe_round_trip_us": self.native_round_trip().map(|d| d.as_secs_f64() * 1e6),
            "nested_exit_us": self.nested_exit().map(|d| d.as_secs_f64() * 1e6),
            "bare_exit_us": self.bare_exit.as_secs_f64() * 1e6,
            "overhead_exit_us": self.overhead_exit.as_secs_f64() * 1e6,
            "kvm_recovery_overhead_projected_geomean": self.kvm_overhead_projected(),
            "kvm_recovery_overhead_projected_traps_kept_geomean": self.kvm_overhead_projected_traps_kept(),
            "substrates": substrates,
            "ubench_ops_per_second": workloads,
        })
    }

    /// The ubench table as CSV: one row per workload, operations per second.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("workload,linux");
        for config in &self.ubench {
            let _ = write!(out, ",{}", config.config.label());
        }
        out.push('\n');
        for (index, native) in self.native.workloads.iter().enumerate() {
            let _ = write!(out, "{},{:.0}", native.name, native.per_second());
            for config in &self.ubench {
                let value = config
                    .workloads
                    .get(index)
                    .map_or(f64::NAN, |w| w.per_second());
                let _ = write!(out, ",{value:.0}");
            }
            out.push('\n');
        }
        out
    }

    /// The ubench workloads as a grouped bar chart (operations per second, log scale
    /// when they span orders of magnitude).
    pub fn svg(&self) -> Result<String, crate::chart::ChartError> {
        let groups: Vec<&str> = self
            .native
            .workloads
            .iter()
            .map(|w| w.name.as_str())
            .collect();
        let mut series: Vec<(String, Vec<f64>)> = vec![(
            "linux".to_owned(),
            self.native
                .workloads
                .iter()
                .map(|w| w.per_second())
                .collect(),
        )];
        for config in &self.ubench {
            series.push((
                config.config.label(),
                config.workloads.iter().map(|w| w.per_second()).collect(),
            ));
        }
        let series: Vec<(&str, Vec<f64>)> = series
            .iter()
            .map(|(name, values)| (name.as_str(), values.clone()))
            .collect();
        crate::chart::grouped_bars(
            "ubench: the same OS on KVM VMs, on Linux processes, and Linux natively",
            "operations per second",
            &groups,
            &series,
        )
    }
}

impl fmt::Display for CompareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# ankh bench compare ({} rounds)\n", self.rounds)?;
        self.fmt_null_call(f)?;
        self.fmt_ubench(f)?;
        self.fmt_costs(f)?;
        self.fmt_projection(f)?;
        self.fmt_overhead_projection(f)
    }
}

impl CompareReport {
    /// The exit cost of the kvm substrate on this host (the recovery bench's raw exit).
    pub fn nested_exit(&self) -> Option<Duration> {
        self.substrate(Substrate::Kvm).map(|s| s.recovery.raw_exit)
    }

    fn fmt_projection(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(nested), Some(kvm)) = (
            self.nested_exit(),
            self.config(Substrate::Kvm, Policy::None),
        ) else {
            return Ok(());
        };
        let saved_per_exit = nested.saturating_sub(self.bare_exit).as_secs_f64() * 1e6;
        writeln!(
            f,
            "\n## Projection to bare-metal KVM (kvm-none)\n\nAn exit costs {} here (measured, nested); the projection replaces it with {} (a parameter, `--bare-exit-us`): time per operation minus exits per operation times the difference.\n",
            micros(nested),
            micros(self.bare_exit)
        )?;
        writeln!(f, "| workload | exits/op | us/op here | us/op projected | linux us/op | projected / linux |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        let mut unprojected = Vec::new();
        for (workload, native) in kvm.workloads.iter().zip(&self.native.workloads) {
            let ops = workload.operations.max(1) as f64;
            let exits = workload.exits as f64 / ops;
            let here = workload.elapsed.as_secs_f64() * 1e6 / ops;
            let linux = 1e6 / native.per_second();
            let Some(projected) = project(here, exits, saved_per_exit) else {
                unprojected.push(workload.name.as_str());
                writeln!(
                    f,
                    "| {} | {exits:.1} | {here:.1} | - | {linux:.2} | - |",
                    workload.name
                )?;
                continue;
            };
            writeln!(
                f,
                "| {} | {exits:.1} | {here:.1} | {projected:.1} | {linux:.2} | {:.1}x |",
                workload.name,
                projected / linux
            )?;
        }
        if !unprojected.is_empty() {
            writeln!(
                f,
                "\nNot projected: {} (its exits took less than the nop-loop's measured exit in \
                 this run, so subtracting that cost would leave nothing).",
                unprojected.join(", ")
            )?;
        }
        Ok(())
    }

    fn fmt_null_call(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let native = self.native_round_trip();
        writeln!(f, "## Null IPC round trip\n")?;
        writeln!(
            f,
            "| | median | p99 | exits/call | VMM thread switches/call | / Linux pipe round trip |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for s in &self.substrates {
            let call = &s.null_call;
            let versus = native.map_or("-".into(), |n| {
                format!(
                    "{:.2}x",
                    call.round_trip.median.as_secs_f64() / n.as_secs_f64()
                )
            });
            writeln!(
                f,
                "| {} | {} | {} | {:.1} | {:.1} | {versus} |",
                s.substrate.name(),
                micros(call.round_trip.median),
                micros(call.round_trip.p99),
                call.exits_per_call,
                call.vmm_switches_per_call,
            )?;
        }
        if let Some(native) = native {
            writeln!(
                f,
                "| Linux: pipe round trip between two processes, same CPU | {} | | | | 1.00x |",
                micros(native)
            )?;
        }
        if let (Some(native), Some(process)) = (native, self.substrate(Substrate::Process)) {
            let ratio = process.null_call.round_trip.median.as_secs_f64() / native.as_secs_f64();
            writeln!(
                f,
                "\nprocess null call: {ratio:.2}x a Linux pipe round trip (target at most {NULL_CALL_TARGET:.0}x: {})",
                if ratio <= NULL_CALL_TARGET { "met" } else { "missed" }
            )?;
        }
        writeln!(f)
    }

    fn fmt_ubench(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "## ubench (operations per second, median of the rounds)\n"
        )?;
        write!(f, "| workload | linux")?;
        for config in &self.ubench {
            write!(f, " | {}", config.config.label())?;
        }
        writeln!(
            f,
            " | linux / kvm-none | linux / process-none | kvm / process (none, paired) |"
        )?;
        write!(f, "|---|---:")?;
        for _ in &self.ubench {
            write!(f, "|---:")?;
        }
        writeln!(f, "|---:|---:|---:|")?;
        let kvm_over_process = self.kvm_over_process();
        let none = |substrate| self.config(substrate, Policy::None);
        for (index, native) in self.native.workloads.iter().enumerate() {
            write!(f, "| {} | {:.0}", native.name, native.per_second())?;
            for config in &self.ubench {
                let value = config
                    .workloads
                    .get(index)
                    .map_or(f64::NAN, |w| w.per_second());
                write!(f, " | {value:.0}")?;
            }
            let versus = |substrate| {
                none(substrate)
                    .and_then(|c: &ConfigWorkloads| c.workloads.get(index))
                    .map_or("-".into(), |w| {
                        format!("{:.1}x", native.per_second() / w.per_second())
                    })
            };
            let paired = kvm_over_process
                .get(index)
                .map_or("-".into(), |r| format!("{r:.2}x"));
            writeln!(
                f,
                " | {} | {} | {paired} |",
                versus(Substrate::Kvm),
                versus(Substrate::Process)
            )?;
        }
        writeln!(f)?;
        for s in &self.substrates {
            let overhead = geomean(&self.recovery_overhead(s.substrate));
            let interval = self.recovery_overhead_interval(s.substrate);
            let target = match s.substrate {
                Substrate::Process => OVERHEAD_TARGET,
                Substrate::Kvm => KVM_OVERHEAD_TARGET,
            };
            let spread = interval.map_or(String::new(), |(low, high)| {
                format!(
                    " (95% interval over the rounds {:+.1}% to {:+.1}%)",
                    (low - 1.0) * 100.0,
                    (high - 1.0) * 100.0
                )
            });
            writeln!(
                f,
                "{}: enhanced vs none, paired geometric mean: {:+.1}%{spread}; target within {:.0}%: {}",
                s.substrate.name(),
                (overhead - 1.0) * 100.0,
                (target - 1.0) * 100.0,
                verdict(overhead, interval, target)
            )?;
        }
        writeln!(
            f,
            "kvm vs process (none), paired geometric mean: kvm does {:.2}x the operations per second of process\n",
            geomean(&self.kvm_over_process())
        )
    }

    fn fmt_costs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## Boot, memory, recovery\n")?;
        write!(f, "| |")?;
        for s in &self.substrates {
            write!(f, " {} |", s.substrate.name())?;
        }
        writeln!(f, " process / kvm |")?;
        writeln!(f, "|---|---:|---:|---:|")?;
        let rows: [Row; 7] = [
            (
                "exit: a Nop hypercall's round trip (nop-loop)",
                |s| s.recovery.raw_exit.as_secs_f64() * 1e6,
                "us",
            ),
            (
                "first write to a page after a checkpoint (trap)",
                |s| s.recovery.trap().as_secs_f64() * 1e6,
                "us",
            ),
            (
                "OS boot, `hello-os`, shutdown (median)",
                |s| s.os_run.median.as_secs_f64() * 1e3,
                "ms",
            ),
            (
                "host memory per idle domain (PSS)",
                |s| s.idle_domain_bytes as f64 / 1024.0,
                "KiB",
            ),
            (
                "checkpoint of a request (ckpt-probe)",
                |s| s.recovery.checkpoint_later.median.as_secs_f64() * 1e6,
                "us",
            ),
            (
                "rollback",
                |s| s.recovery.rollback.median.as_secs_f64() * 1e6,
                "us",
            ),
            (
                "restart (new domain to its first hypercall)",
                |s| s.recovery.restart.median.as_secs_f64() * 1e6,
                "us",
            ),
        ];
        for (label, value, unit) in rows {
            write!(f, "| {label} |")?;
            for s in &self.substrates {
                write!(f, " {:.1} {unit} |", value(s))?;
            }
            match (
                self.substrate(Substrate::Kvm),
                self.substrate(Substrate::Process),
            ) {
                (Some(kvm), Some(process)) => {
                    writeln!(f, " {:.2}x |", value(process) / value(kvm))?
                }
                _ => writeln!(f, " - |")?,
            }
        }
        Ok(())
    }
}

/// The time per operation on bare metal: `here` (us) minus `exits` per operation times
/// what each would save (`saved_per_exit`, us). `None` when nothing would be left: the
/// workload's exits cost less here than the exit measured on its own, so the
/// projection does not apply.
pub(super) fn project(here: f64, exits: f64, saved_per_exit: f64) -> Option<f64> {
    let projected = here - exits * saved_per_exit;
    (projected > 0.0).then_some(projected)
}

#[cfg(test)]
mod tests {
    use super::verdict;

    #[test]
    fn a_target_is_met_or_missed_only_when_the_whole_interval_says_so() {
        assert_eq!(verdict(1.04, Some((1.02, 1.049)), 1.05), "met");
        assert_eq!(verdict(1.07, Some((1.051, 1.09)), 1.05), "missed");
        assert_eq!(
            verdict(1.049, Some((1.03, 1.06)), 1.05),
            "not decided: the interval spans it"
        );
        assert_eq!(verdict(1.05, None, 1.05), "met");
        assert_eq!(verdict(1.06, None, 1.05), "missed");
    }
}
