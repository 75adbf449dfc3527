//! `ankh bench ipc`: the cost of a call between two domains, against the cost of a
//! bare exit measured in the same run.
//!
//! A client domain (`ipc-bench`, its name choosing the payload) calls the `echo`
//! server in a loop. The VMM timestamps every IPC hypercall of the client: the time
//! between two of them is one full round trip (client exit, routing, switch to the
//! server, its work and exit, reply delivery, switch back). The baseline is the bare
//! exit of `nop-loop`. A second pass with KVM's dirty log on counts the pages each side
//! writes per call (reads cannot be observed; the VMM's own writes are counted from
//! what it delivers).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ankh_domains::{DomainSpec, Policy, Role, SystemDescription};
use virtio_seep::message::DomainId;

use super::modes::time_run_on;
use super::stats::{micros, ratio, Summary};
use crate::console::CapturedConsole;
use crate::domain::Substrate;
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::system::{run_system, SystemOptions, TraceEvent};
use crate::x86_boot::GuestMode;

/// One workload of the benchmark.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// Client domain name (selects what `ipc-bench` does).
    pub client: &'static str,
    /// Bulk bytes sent each way per call.
    pub bulk: usize,
}

/// The workloads, in report order.
pub const CASES: [Case; 3] = [
    Case {
        client: "bench-null",
        bulk: 0,
    },
    Case {
        client: "bench-4k",
        bulk: 4096,
    },
    Case {
        client: "bench-64k",
        bulk: 65536,
    },
];

/// Figures of one workload.
#[derive(Debug)]
pub struct CaseFigures {
    /// The workload.
    pub case: Case,
    /// Round trips, direct switch on one thread.
    pub round_trip: Summary,
    /// Pages the client wrote per call (dirty log).
    pub client_pages: f64,
    /// Pages the server wrote per call (dirty log).
    pub server_pages: f64,
    /// Pages the VMM wrote into each side per call (its deliveries).
    pub vmm_pages: u64,
}

/// What `ankh bench ipc` measured.
#[derive(Debug)]
pub struct IpcReport {
    /// What ran the domains.
    pub substrate: Substrate,
    /// Median cost of one bare exit (`Nop` hypercall round trip).
    pub raw_exit: Duration,
    /// Each workload.
    pub cases: Vec<CaseFigures>,
    /// The null call with client and server on two host threads.
    pub cross_thread_null: Summary,
}

impl fmt::Display for IpcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench ipc ({:?} substrate, user-mode domains, one host thread, direct switch)",
            self.substrate
        )?;
        writeln!(
            f,
            "baseline: raw exit (nop hypercall) median {}",
            micros(self.raw_exit)
        )?;
        writeln!(
            f,
            "{:<10} {:>10} {:>10} {:>9} {:>12} {:>13} {:>13} {:>9}",
            "call", "median", "p99", "/exit", "calls/s", "MiB/s (1 way)", "pages c/s", "vmm pg"
        )?;
        for c in &self.cases {
            let per_second = 1.0 / c.round_trip.median.as_secs_f64();
            let mib = per_second * c.case.bulk as f64 / f64::from(1 << 20);
            writeln!(
                f,
                "{:<10} {:>10} {:>10} {:>9} {:>12.0} {:>13.1} {:>13} {:>9}",
                c.case.client.trim_start_matches("bench-"),
                micros(c.round_trip.median),
                micros(c.round_trip.p99),
                ratio(c.round_trip.median, self.raw_exit),
                per_second,
                mib,
                format!("{:.1}/{:.1}", c.client_pages, c.server_pages),
                c.vmm_pages,
            )?;
        }
        writeln!(
            f,
            "null call, client and server on two host threads: median {} p99 {} ({} of raw exit)",
            micros(self.cross_thread_null.median),
            micros(self.cross_thread_null.p99),
            ratio(self.cross_thread_null.median, self.raw_exit)
        )
    }
}

/// Runs the benchmark with its domains on `substrate`.
pub fn run(rounds: usize, substrate: Substrate) -> Result<IpcReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let mut exits = Vec::new();
    for _ in 0..rounds.max(1) {
        let total = time_run_on(&host, "nop-loop", GuestMode::User, substrate)?;
        exits.push(total / ankh_image_catalog::expect::NOP_LOOP_COUNT);
    }
    let raw_exit = Summary::of(&mut exits).expect("rounds >= 1").median;
    let mut cases = Vec::new();
    for case in CASES {
        let latency = measure(&host, case, false, 1, substrate)?;
        let pages = measure(&host, case, true, 1, substrate)?;
        cases.push(CaseFigures {
            case,
            round_trip: Summary::of(&mut latency.client_intervals.clone())
                .ok_or("the client made no calls")?,
            client_pages: pages.client_pages_per_call,
            server_pages: pages.server_pages_per_call,
            vmm_pages: vmm_pages_per_delivery(case.bulk),
        });
    }
    let mut cross = measure(&host, CASES[0], false, 2, substrate)?.client_intervals;
    Ok(IpcReport {
        substrate,
        raw_exit,
        cases,
        cross_thread_null: Summary::of(&mut cross).ok_or("the client made no calls")?,
    })
}

/// Pages the VMM writes into a domain per delivered message: the header buffer, the
/// bulk buffer and the used ring (buffers assumed page-aligned).
fn vmm_pages_per_delivery(bulk: usize) -> u64 {
    (2 + bulk.div_ceil(4096)) as u64
}

pub(super) struct Measured {
    /// The time between two calls of the client: one round trip each.
    pub(super) client_intervals: Vec<Duration>,
    client_pages_per_call: f64,
    server_pages_per_call: f64,
    /// IPC exits of both sides per call.
    pub(super) exits_per_call: f64,
    /// Voluntary context switches of the VMM thread per call (it sleeps once per exit
    /// of a process domain, never for a VM's).
    pub(super) vmm_switches_per_call: f64,
}

#[derive(Default)]
struct Trace {
    client_times: Vec<Instant>,
    client_pages: usize,
    server_pages: usize,
    /// IPC exits of either side after the client's first call.
    exits: usize,
    /// The VMM thread's voluntary context switches at some of the client's calls: the
    /// call's index in `client_times`, and the count.
    client_switches: Vec<(usize, i64)>,
}

/// The client's calls between two readings of the VMM thread's context switches: a
/// reading is a system call of the VMM thread on the path being timed (about 0.3 us
/// here), so only one round trip in this many pays for one.
const SWITCHES_SAMPLE_EVERY: usize = 256;

/// Voluntary context switches of the calling thread so far.
fn voluntary_switches() -> i64 {
    // SAFETY: getrusage writes the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    usage.ru_nvcsw
}

pub(super) fn measure(
    host: &KvmHost,
    case: Case,
    dirty_log: bool,
    threads: usize,
    substrate: Substrate,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let description = SystemDescription::builder()
        .threads(threads)
        // Recovery off: this measures the message path alone.
        .domain(
            DomainSpec::new("echo", "echo")
                .thread(threads - 1)
                .policy(Policy::None),
        )
        .domain(
            DomainSpec::new(case.client, "ipc-bench")
                .calls(["echo"])
                .role(Role::Process),
        )
        .build(&|name| ankh_image_catalog::find(name).is_some())?;
    let server: DomainId = 1;
    let trace = Arc::new(Mutex::new(Trace::default()));
    let recorder = Arc::clone(&trace);
    let options = SystemOptions {
        watchdog_timeout: Duration::from_secs(10),
        ipc_trace: Some(Arc::new(move |event, id, domain| {
            if event != TraceEvent::Ipc {
                return;
            }
            // Only the client's calls are timed (a clock read costs 50 to 80 ns here).
            let now = (id != server).then(Instant::now);
            let pages = if dirty_log {
                domain.take_dirty_pages().unwrap_or(0)
            } else {
                0
            };
            let mut trace = recorder.lock().expect("trace lock");
            if !trace.client_times.is_empty() {
                trace.exits += 1;
            }
            if let Some(now) = now {
                trace.client_times.push(now);
                // From the second call (the first follows boot and setup).
                let call = trace.client_times.len() - 1;
                if call % SWITCHES_SAMPLE_EVERY == 1 {
                    trace.client_switches.push((call, voluntary_switches()));
                }
                trace.client_pages += pages;
            } else {
                trace.server_pages += pages;
            }
        })),
        dirty_log,
        substrate,
        ..SystemOptions::new(Arc::new(|_| Box::new(CapturedConsole::default())))
    };
    let image_of = |name: &str| {
        let builtin = ankh_image_catalog::find(name)
            .ok_or_else(|| crate::ImageError::Load(format!("{name} is not built in")))?;
        GuestImage::parse(builtin.name, builtin.elf.to_vec())
    };
    let report = run_system(host, &description, &image_of, &options)?;
    let client_end = report.end(case.client).ok_or("no client")?;
    if !matches!(
        client_end,
        crate::system::DomainEnd::Stopped(crate::DomainExit::Exited { code: 0 })
    ) {
        return Err(format!("{}: {client_end:?}", case.client).into());
    }
    let trace = trace.lock().expect("trace lock");
    // The first notify follows boot and setup; every later one closes a round trip.
    let intervals: Vec<Duration> = trace
        .client_times
        .windows(2)
        .skip(1)
        .map(|w| w[1] - w[0])
        .collect();
    let calls = intervals.len().max(1) as f64;
    let switches_per_call = match (trace.client_switches.first(), trace.client_switches.last()) {
        (Some(first), Some(last)) if last.0 > first.0 => {
            (last.1 - first.1) as f64 / (last.0 - first.0) as f64
        }
        _ => 0.0,
    };
    Ok(Measured {
        client_intervals: intervals,
        client_pages_per_call: trace.client_pages as f64 / calls,
        server_pages_per_call: trace.server_pages as f64 / calls,
        // The exits counted from the first call on, less the last call's own.
        exits_per_call: trace.exits.saturating_sub(1) as f64 / calls,
        vmm_switches_per_call: switches_per_call,
    })
}
