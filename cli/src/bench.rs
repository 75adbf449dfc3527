//! `ankh bench`: benchmarks that print figures against a baseline of the same run.

use std::error::Error;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Domain creation to first hypercall, and resident memory per idle domain.
    Boot(BootArgs),
    /// Exit cost and compute speed of user-mode vs kernel-mode guests.
    Modes(ModesArgs),
    /// Round trip of a call between two domains, against the raw exit cost.
    Ipc(IpcArgs),
    /// Unixbench-style workloads on the OS: operations per second.
    Ubench(UbenchArgs),
    /// The same workloads as real Linux calls on this host (the monolithic reference).
    Native(NativeArgs),
    /// What VM isolation costs: the OS on KVM VMs vs on Linux processes, each without
    /// and with recovery, vs Linux natively, interleaved in one run.
    Compare(CompareArgs),
    /// The conformance suite alone vs beside four hostile programs (spin, exit loop,
    /// call loop, reply flood): what fair turns let them take.
    Neighbours(ModesArgs),
    /// Checkpoint, rollback and restart latency of a domain.
    Recovery(RecoveryArgs),
    /// 1 MiB reads and writes through the blk domain vs the host file; MMIO exit cost.
    Blk(ModesArgs),
    /// File I/O through VFS and blk vs a host file; fcopy on disk vs in memory; blk
    /// crash to service.
    Storage(StorageArgs),
}

#[derive(Debug, Args)]
pub struct ModesArgs {
    /// Runs of each image per mode.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

#[derive(Debug, Args)]
pub struct IpcArgs {
    /// Runs of the bare-exit image.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// What runs the domains.
    #[arg(long, value_enum, default_value_t = ankh_vmm::domain::Substrate::Kvm)]
    substrate: ankh_vmm::domain::Substrate,
}

#[derive(Debug, Args)]
pub struct UbenchArgs {
    /// Rounds; in each, every workload runs twice per policy (A B B A).
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// The CPU the benchmark runs on (one CPU: no migrations between the policies'
    /// runs).
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Let the host's scheduler place the threads instead.
    #[arg(long, conflicts_with = "cpu")]
    no_pin: bool,
    /// What runs the domains.
    #[arg(long, value_enum, default_value_t = ankh_vmm::domain::Substrate::Kvm)]
    substrate: ankh_vmm::domain::Substrate,
    /// The recovery policy measured against `none` (every server under it).
    #[arg(long, value_enum, default_value_t = super::up::PolicyArg::Enhanced)]
    policy: super::up::PolicyArg,
    /// Run only this workload (repeat for several); all of them without it.
    #[arg(long = "workload", value_name = "NAME")]
    workloads: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NativeArgs {
    /// Rounds; in each, every workload runs twice (a warm-up, then the measured run).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Print the report as JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// The CPU the benchmark and its children run on (as `ankh bench ubench`).
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Let the host's scheduler place the processes instead.
    #[arg(long, conflicts_with = "cpu")]
    no_pin: bool,
}

#[derive(Debug, Args)]
pub struct RecoveryArgs {
    /// Checkpoint/fault/rollback cycles (at least 20).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// What runs the probe domain.
    #[arg(long, value_enum, default_value_t = ankh_vmm::domain::Substrate::Kvm)]
    substrate: ankh_vmm::domain::Substrate,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Rounds; in each, every ubench workload runs twice per configuration.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// The CPU the benchmark and its domains run on.
    #[arg(long, default_value_t = 0)]
    cpu: usize,
    /// Let the host's scheduler place the threads and processes instead.
    #[arg(long, conflicts_with = "cpu")]
    no_pin: bool,
    /// Print JSON instead of the Markdown report.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the ubench table as CSV instead of the Markdown report.
    #[arg(long)]
    csv: bool,
    /// Also write the ubench workloads as a grouped bar chart to this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// The cost of one exit on bare-metal KVM, in microseconds, for the projection
    /// (see docs/isolation-cost.md for published figures).
    #[arg(long, default_value_t = 1.0)]
    bare_exit_us: f64,
    /// The cost of one exit, in microseconds, that kvm's recovery overhead is also
    /// projected to: what an exit cost on these hosts when they were first measured
    /// (later days measured 16 to 83 us; see docs/isolation-cost.md).
    #[arg(long, default_value_t = 10.0)]
    overhead_exit_us: f64,
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Runs of each measurement.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

#[derive(Debug, Args)]
pub struct BootArgs {
    /// Domains to boot one after the other for the latency figures.
    #[arg(long, default_value_t = 200)]
    boots: usize,
    /// Idle domains kept alive together for the memory figure.
    #[arg(long, default_value_t = 64)]
    idle: usize,
}

pub fn run(which: BenchCommand) -> Result<ExitCode, Box<dyn Error>> {
    match which {
        BenchCommand::Boot(args) => {
            let report = ankh_vmm::bench::boot::run(args.boots, args.idle)?;
            out!("{report}")?;
        }
        BenchCommand::Modes(args) => out!("{}", ankh_vmm::bench::modes::run(args.rounds)?)?,
        BenchCommand::Ipc(args) => out!(
            "{}",
            ankh_vmm::bench::ipc::run(args.rounds, args.substrate)?
        )?,
        BenchCommand::Ubench(args) => {
            let policy = args.policy.into();
            let cpu = (!args.no_pin).then_some(args.cpu);
            let report = ankh_vmm::bench::ubench::run(
                args.rounds,
                policy,
                cpu,
                args.substrate,
                &args.workloads,
            )
            .map_err(|e| format!("ankh bench ubench: {e}"))?;
            out!("{report}")?;
        }
        BenchCommand::Native(args) => {
            if !args.no_pin {
                ankh_vmm::bench::pin_to_cpu(args.cpu).map_err(|e| {
                    format!("ankh bench native: cannot pin to CPU {}: {e}", args.cpu)
                })?;
            }
            let report = ankh_vmm::bench::native::run_native(args.rounds)?;
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&report.to_json())?)?;
            } else {
                out!("{report}")?;
            }
        }
        BenchCommand::Compare(args) => {
            let cpu = (!args.no_pin).then_some(args.cpu);
            if !(args.bare_exit_us.is_finite() && args.bare_exit_us >= 0.0) {
                return Err(format!(
                    "ankh bench compare: --bare-exit-us must be a number of microseconds >= 0, not {}",
                    args.bare_exit_us
                )
                .into());
            }
            if !(args.overhead_exit_us.is_finite() && args.overhead_exit_us >= 0.0) {
                return Err(format!(
                    "ankh bench compare: --overhead-exit-us must be a number of microseconds >= 0, not {}",
                    args.overhead_exit_us
                )
                .into());
            }
            let bare_exit = std::time::Duration::from_secs_f64(args.bare_exit_us / 1e6);
            let overhead_exit = std::time::Duration::from_secs_f64(args.overhead_exit_us / 1e6);
            let report = ankh_vmm::bench::compare::run(args.rounds, cpu, bare_exit, overhead_exit)
                .map_err(|e| format!("ankh bench compare: {e}"))?;
            if let Some(path) = &args.svg {
                let svg = report.svg()?;
                std::fs::write(path, svg).map_err(|e| {
                    format!("ankh bench compare: cannot write {}: {e}", path.display())
                })?;
            }
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&report.to_json())?)?;
            } else if args.csv {
                out!("{}", report.to_csv())?;
            } else {
                out!("{report}")?;
            }
        }
        BenchCommand::Recovery(args) => {
            let rounds = args.rounds.max(20);
            out!(
                "{}",
                ankh_vmm::bench::recovery::run_on(rounds, args.substrate)?
            )?
        }
        BenchCommand::Neighbours(args) => {
            out!("{}", ankh_vmm::bench::neighbours::run(args.rounds)?)?
        }
        BenchCommand::Blk(args) => out!("{}", ankh_vmm::bench::blk::run(args.rounds)?)?,
        BenchCommand::Storage(args) => out!("{}", ankh_vmm::bench::storage::run(args.rounds)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
