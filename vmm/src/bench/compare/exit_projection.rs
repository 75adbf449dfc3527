//! kvm's recovery overhead at another exit cost: a projection for hosts whose exits
//! cost less than this one's.
//!
//! Why: what recovery adds to a request (the page copies of its checkpoint, the VMM's
//! bookkeeping) does not shrink with the exit cost, while the operations it is added to
//! do. The ratio a run measures on a host with slow exits is therefore smaller than it
//! would be on a host with fast ones, and a target stated as a ratio cannot be judged
//! from it alone. The model, per workload: kvm-none's time per operation minus its exits
//! per operation times the difference in exit cost; enhanced's added time per
//! operation (the paired overhead times kvm-none's time) as measured here, less its
//! trapped writes per operation times the measured trap cost scaled like the exit (a
//! trap is a nested exit of its own: about a third of an exit on days of 24 us and of
//! 64 us exits alike); its page copies and the VMM's work stay as they are.

use std::fmt;
use std::time::Duration;

use ankh_domains::Policy;

use super::{geomean, CompareReport};
use crate::bench::stats::micros;
use crate::domain::Substrate;

/// One workload's recovery overhead on kvm, here and projected.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectedOverhead {
    /// The workload.
    pub name: String,
    /// kvm-none's exits per operation.
    pub exits_per_op: f64,
    /// kvm-none's time per operation here, in microseconds.
    pub none_us: f64,
    /// Enhanced's trapped writes per operation.
    pub traps_per_op: f64,
    /// What enhanced adds per operation here, in microseconds.
    pub added_us: f64,
    /// What it would add with exits of the projected cost (its traps scaled).
    pub added_projected_us: f64,
    /// Enhanced's paired slowdown here (1.05: 5% slower).
    pub here: f64,
    /// The slowdown with exits of the projected cost; `None` when kvm-none's time
    /// would not stay positive (its exits took less than the measured exit here).
    pub projected: Option<f64>,
    /// The same with the trapped writes kept at their cost here (the pessimistic end
    /// of the model).
    pub projected_traps_kept: Option<f64>,
}

impl CompareReport {
    /// kvm's recovery overhead per workload, here and with exits costing `exit`
    /// (empty without both kvm configurations).
    pub fn kvm_overhead_at(&self, exit: Duration) -> Vec<ProjectedOverhead> {
        let (Some(kvm), Some(none), Some(enhanced)) = (
            self.substrate(Substrate::Kvm),
            self.config(Substrate::Kvm, Policy::None),
            self.config(Substrate::Kvm, Policy::Enhanced),
        ) else {
            return Vec::new();
        };
        let nested = kvm.recovery.raw_exit.as_secs_f64() * 1e6;
        let exit = exit.as_secs_f64() * 1e6;
        let saved_per_exit = nested - exit;
        // The share of a trap's cost that goes with the exit's.
        let trap_saved = if nested > 0.0 {
            kvm.recovery.trap().as_secs_f64() * 1e6 * (1.0 - exit / nested)
        } else {
            0.0
        };
        none.workloads
            .iter()
            .zip(self.recovery_overhead(Substrate::Kvm))
            .enumerate()
            .map(|(index, (workload, slowdown))| {
                let ops = workload.operations.max(1) as f64;
                let exits_per_op = workload.exits as f64 / ops;
                let none_us = workload.elapsed.as_secs_f64() * 1e6 / ops;
                let traps_per_op = enhanced.trapped_writes_per_op(index);
                let added_us = (slowdown - 1.0) * none_us;
                let added_projected_us = added_us - traps_per_op * trap_saved;
                ProjectedOverhead {
                    name: workload.name.clone(),
                    exits_per_op,
                    none_us,
                    traps_per_op,
                    added_us,
                    added_projected_us,
                    here: slowdown,
                    projected: project_slowdown(
                        none_us,
                        exits_per_op,
                        added_projected_us,
                        saved_per_exit,
                    ),
                    projected_traps_kept: project_slowdown(
                        none_us,
                        exits_per_op,
                        added_us,
                        saved_per_exit,
                    ),
                }
            })
            .collect()
    }

    /// The geometric mean of the projected slowdowns, over the workloads projected.
    pub fn kvm_overhead_projected(&self) -> Option<f64> {
        projected_geomean(&self.kvm_overhead_at(self.overhead_exit), |row| {
            row.projected
        })
    }

    /// The same with the trapped writes kept at their cost here: the pessimistic end
    /// of the model.
    pub fn kvm_overhead_projected_traps_kept(&self) -> Option<f64> {
        projected_geomean(&self.kvm_overhead_at(self.overhead_exit), |row| {
            row.projected_traps_kept
        })
    }

    pub(super) fn fmt_overhead_projection(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.kvm_overhead_at(self.overhead_exit);
        let (Some(nested), Some(kvm), Some(projected)) = (
            self.nested_exit(),
            self.substrate(Substrate::Kvm),
            projected_geomean(&rows, |row| row.projected),
        ) else {
            return Ok(());
        };
        let trap = kvm.recovery.trap();
        writeln!(
            f,
            "\n## kvm's recovery overhead at another exit cost\n\nAn exit costs {} here, a \
             trapped write {}. Most of what recovery adds to an operation (page copies, the \
             VMM's work) does not shrink with the exit cost; the operation does. With exits \
             of {} (`--overhead-exit-us`), kvm-none's operations would take their exits \
             times the difference less, and enhanced would add what it adds here less the \
             same share of its trapped writes' cost. A projection, not a measurement.\n",
            micros(nested),
            micros(trap),
            micros(self.overhead_exit)
        )?;
        writeln!(
            f,
            "| workload | exits/op | traps/op | kvm-none us/op here | enhanced adds us/op here | projected | overhead here | overhead projected |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        for row in &rows {
            let projected = row
                .projected
                .map_or("-".to_owned(), |p| format!("{:+.1}%", (p - 1.0) * 100.0));
            writeln!(
                f,
                "| {} | {:.1} | {:.2} | {:.1} | {:.2} | {:.2} | {:+.1}% | {projected} |",
                row.name,
                row.exits_per_op,
                row.traps_per_op,
                row.none_us,
                row.added_us,
                row.added_projected_us,
                (row.here - 1.0) * 100.0
            )?;
        }
        let left_out: Vec<&str> = rows
            .iter()
            .filter(|row| row.projected.is_none())
            .map(|row| row.name.as_str())
            .collect();
        let over = if left_out.is_empty() {
            String::new()
        } else {
            format!(" (without {}, not projected)", left_out.join(", "))
        };
        if let Some(kept) = projected_geomean(&rows, |row| row.projected_traps_kept) {
            writeln!(
                f,
                "\nWith the trapped writes kept at their cost here (the pessimistic end of the model): {:+.1}%.",
                (kept - 1.0) * 100.0
            )?;
        }
        writeln!(
            f,
            "\nkvm: enhanced vs none, projected to exits of {}: {:+.1}%{over}; within {:.0}%: {}",
            micros(self.overhead_exit),
            (projected - 1.0) * 100.0,
            (super::report::KVM_OVERHEAD_TARGET - 1.0) * 100.0,
            if projected <= super::report::KVM_OVERHEAD_TARGET {
                "yes, as projected"
            } else {
                "no, as projected"
            }
        )
    }
}

/// The geometric mean of `figure` over the rows that have one.
fn projected_geomean(
    rows: &[ProjectedOverhead],
    figure: impl Fn(&ProjectedOverhead) -> Option<f64>,
) -> Option<f64> {
    let projected: Vec<f64> = rows.iter().filter_map(figure).collect();
    (!projected.is_empty()).then(|| geomean(&projected))
}

/// The slowdown of an operation of `none_us` with `exits_per_op` exits to which
/// `added_us` is added, once each exit costs `saved_per_exit` microseconds less;
/// `None` when the operation would take no time.
fn project_slowdown(
    none_us: f64,
    exits_per_op: f64,
    added_us: f64,
    saved_per_exit: f64,
) -> Option<f64> {
    let projected_none = none_us - exits_per_op * saved_per_exit;
    (projected_none > 0.0).then(|| 1.0 + added_us / projected_none)
}

#[cfg(test)]
mod tests {
    use super::project_slowdown;

    #[test]
    fn the_added_time_stays_while_the_exits_shrink() {
        // 100 us with 2 exits of 40 us, 2 us added: with exits of 10 us the operation
        // takes 40 us, and 2 us is 5% of it.
        let projected = project_slowdown(100.0, 2.0, 2.0, 30.0).unwrap();
        assert!((projected - 1.05).abs() < 1e-9, "{projected}");
        // The same exit cost: the same slowdown.
        assert!((project_slowdown(100.0, 2.0, 2.0, 0.0).unwrap() - 1.02).abs() < 1e-9);
        // Exits that took less than the measured exit: nothing left to project.
        assert_eq!(project_slowdown(100.0, 4.0, 2.0, 30.0), None);
    }
}
