//! `ankh bench modes`: what the guest privilege level costs on this host.
//!
//! On `kvm_pvm` hosts supervisor-mode guest code is emulated and user-mode code runs
//! natively, with exits that cost more (docs/guest-modes.md). This benchmark measures
//! both sides in one run: the cost of one exit (`nop-loop`) and the time of a compute
//! loop with no exit (`busy-loop`), in each mode.

use std::fmt;
use std::time::{Duration, Instant};

use ankh_image_catalog::expect::{BUSY_LOOP_ITERATIONS, NOP_LOOP_COUNT};

use super::stats::{micros, ratio, Summary};
use crate::console::CapturedConsole;
use crate::domain::{Domain, DomainConfig};
use crate::fault::DomainExit;
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::x86_boot::GuestMode;

/// Figures of one mode.
#[derive(Debug)]
pub struct ModeFigures {
    /// The mode.
    pub mode: GuestMode,
    /// Median time of one `Nop` hypercall round trip.
    pub exit: Duration,
    /// Median time of the whole `busy-loop` run (boot excluded is not possible, so it
    /// includes one boot; the boot benchmark gives that cost).
    pub busy_loop: Duration,
}

/// What `ankh bench modes` measured.
#[derive(Debug)]
pub struct ModesReport {
    /// User mode, then kernel mode.
    pub modes: [ModeFigures; 2],
}

impl fmt::Display for ModesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [user, kernel] = &self.modes;
        writeln!(f, "ankh bench modes (medians)")?;
        writeln!(
            f,
            "{:<8} {:>16} {:>28}",
            "mode",
            "one exit (nop)",
            format!("busy-loop ({BUSY_LOOP_ITERATIONS} iter.)")
        )?;
        for m in &self.modes {
            let busy = format!("{:.3} ms", m.busy_loop.as_secs_f64() * 1e3);
            writeln!(
                f,
                "{:<8} {:>16} {:>28}",
                format!("{:?}", m.mode).to_lowercase(),
                micros(m.exit),
                busy
            )?;
        }
        writeln!(
            f,
            "exit cost kernel / user: {}",
            ratio(kernel.exit, user.exit)
        )?;
        writeln!(
            f,
            "compute time kernel / user: {}",
            ratio(kernel.busy_loop, user.busy_loop)
        )
    }
}

/// Runs each image `rounds` times per mode.
pub fn run(rounds: usize) -> Result<ModesReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let measure = |mode| -> Result<ModeFigures, Box<dyn std::error::Error>> {
        let mut exits = Vec::new();
        let mut busy = Vec::new();
        for _ in 0..rounds.max(1) {
            exits.push(time_run(&host, "nop-loop", mode)? / NOP_LOOP_COUNT);
            busy.push(time_run(&host, "busy-loop", mode)?);
        }
        Ok(ModeFigures {
            mode,
            exit: Summary::of(&mut exits).expect("rounds >= 1").median,
            busy_loop: Summary::of(&mut busy).expect("rounds >= 1").median,
        })
    };
    Ok(ModesReport {
        modes: [measure(GuestMode::User)?, measure(GuestMode::Kernel)?],
    })
}

/// Boots `image` in `mode` and times its run to a clean exit (creation excluded).
pub fn time_run(
    host: &KvmHost,
    image: &str,
    mode: GuestMode,
) -> Result<Duration, Box<dyn std::error::Error>> {
    time_run_on(host, image, mode, crate::domain::Substrate::Kvm)
}

/// [`time_run`] on `substrate`.
pub fn time_run_on(
    host: &KvmHost,
    image: &str,
    mode: GuestMode,
    substrate: crate::domain::Substrate,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let builtin =
        ankh_image_catalog::find(image).ok_or_else(|| format!("{image} is not built in"))?;
    let image = GuestImage::parse(builtin.name, builtin.elf.to_vec())?;
    // Kernel mode is emulated here: give the compute loop time.
    let config = DomainConfig {
        watchdog_timeout: Duration::from_secs(60),
        substrate,
        ..DomainConfig::named("bench").in_mode(mode)
    };
    let mut domain = Domain::create(host, &config, &image, Box::new(CapturedConsole::default()))?;
    let start = Instant::now();
    let exit = domain.run()?;
    let elapsed = start.elapsed();
    match exit {
        DomainExit::Exited { code: 0 } => Ok(elapsed),
        other => Err(format!("{} in {mode:?} mode: {other}", image.name()).into()),
    }
}
