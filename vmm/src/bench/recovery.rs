//! `ankh bench recovery` (first part): what a checkpoint and a rollback cost, and a
//! restart for comparison, against the raw exit cost of the same run.
//!
//! The `ckpt-probe` image writes `CKPT_PAGES` pages between a checkpoint and a fault,
//! so each rollback restores that many guest pages plus the pages of its stack.
//!
//! It also measures what a write to a write-protected page costs (the trap that the
//! dirty log's hot pages avoid, see `dirty_log::ring`): the probe's second pass over
//! its pages, once with them still writable after a checkpoint, once after they were
//! all protected again.

use std::fmt;
use std::time::{Duration, Instant};

use ankh_image_catalog::expect::{CKPT_PAGES, NOP_LOOP_COUNT};
use virtio_seep::abi::hypercall::Hypercall;

use super::modes::time_run_on;
use super::stats::{micros, ratio, Summary};
use crate::console::CapturedConsole;
use crate::domain::{Domain, DomainConfig, Substrate};
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::x86_boot::GuestMode;

/// What `ankh bench recovery` measured.
#[derive(Debug)]
pub struct RecoveryReport {
    /// Median raw exit, the baseline.
    pub raw_exit: Duration,
    /// Taking a domain's first checkpoint, after the probe's first pass (it also reads
    /// the state later checkpoints carry over: debug registers, XCR0, MSRs).
    pub checkpoint: Summary,
    /// Pages a checkpoint copied (median).
    pub checkpoint_pages: usize,
    /// A later checkpoint: after the rollback, at the end of the probe's second pass.
    pub checkpoint_later: Summary,
    /// Pages a later checkpoint copied (median).
    pub checkpoint_later_pages: usize,
    /// Rolling back after the fault.
    pub rollback: Summary,
    /// Pages a rollback restored (median).
    pub rollback_pages: usize,
    /// A restart: a fresh domain from the image to its first hypercall.
    pub restart: Summary,
    /// The probe's second pass with its pages still writable (hot).
    pub pass_hot: Summary,
    /// The same pass with every page write-protected again first.
    pub pass_protected: Summary,
}

impl RecoveryReport {
    /// What one write-protection trap costs: the difference of the passes' medians,
    /// per page.
    pub fn trap(&self) -> Duration {
        let pages = u32::try_from(CKPT_PAGES).expect("a few pages");
        self.pass_protected
            .median
            .saturating_sub(self.pass_hot.median)
            / pages
    }
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ankh bench recovery (ckpt-probe: {CKPT_PAGES} pages written per pass)"
        )?;
        writeln!(f, "baseline: raw exit median {}", micros(self.raw_exit))?;
        writeln!(
            f,
            "{:<24} {:>10} {:>10} {:>7} {:>8}",
            "", "median", "p99", "pages", "/exit"
        )?;
        for (label, s, pages) in [
            (
                "checkpoint (first)",
                self.checkpoint,
                Some(self.checkpoint_pages),
            ),
            (
                "checkpoint (later)",
                self.checkpoint_later,
                Some(self.checkpoint_later_pages),
            ),
            ("rollback", self.rollback, Some(self.rollback_pages)),
            ("restart (new domain)", self.restart, None),
            ("pass, pages hot", self.pass_hot, Some(CKPT_PAGES)),
            (
                "pass, pages protected",
                self.pass_protected,
                Some(CKPT_PAGES),
            ),
        ] {
            writeln!(
                f,
                "{label:<24} {:>10} {:>10} {:>7} {:>8}",
                micros(s.median),
                micros(s.p99),
                pages.map_or("-".into(), |p| p.to_string()),
                ratio(s.median, self.raw_exit)
            )?;
        }
        writeln!(
            f,
            "a write to a protected page traps: {} per page ({} of a raw exit)",
            micros(self.trap()),
            ratio(self.trap(), self.raw_exit)
        )
    }
}

/// Runs `rounds` checkpoint/fault/rollback cycles.
pub fn run(rounds: usize) -> Result<RecoveryReport, Box<dyn std::error::Error>> {
    run_on(rounds, Substrate::Kvm)
}

/// [`run`] with the probe on `substrate` (the baseline's exits too).
pub fn run_on(
    rounds: usize,
    substrate: Substrate,
) -> Result<RecoveryReport, Box<dyn std::error::Error>> {
    let host = KvmHost::open()?;
    let builtin = ankh_image_catalog::find("ckpt-probe").ok_or("ckpt-probe is not built in")?;
    let image = GuestImage::parse(builtin.name, builtin.elf.to_vec())?;
    let config = DomainConfig {
        dirty_log: true,
        substrate,
        ..DomainConfig::named("probe")
    };
    let mut exits = Vec::new();
    let (mut checkpoints, mut rollbacks, mut restarts) = (Vec::new(), Vec::new(), Vec::new());
    let (mut checkpoint_pages, mut rollback_pages) = (Vec::new(), Vec::new());
    let (mut checkpoints_later, mut checkpoint_later_pages) = (Vec::new(), Vec::new());
    let (mut pass_hot, mut pass_protected) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        exits.push(time_run_on(&host, "nop-loop", GuestMode::User, substrate)? / NOP_LOOP_COUNT);

        let start = Instant::now();
        let mut domain =
            Domain::create(&host, &config, &image, Box::new(CapturedConsole::default()))?;
        domain.run_until(|call| call == Hypercall::Nop)?;
        restarts.push(start.elapsed());

        let start = Instant::now();
        checkpoint_pages.push(domain.checkpoint()?);
        checkpoints.push(start.elapsed());
        domain.run()?;
        let start = Instant::now();
        rollback_pages.push(domain.rollback()?);
        rollbacks.push(start.elapsed());
        domain.run_until(|call| call == Hypercall::Nop)?;
        let start = Instant::now();
        checkpoint_later_pages.push(domain.checkpoint()?);
        checkpoints_later.push(start.elapsed());

        for protect in [false, true] {
            let mut domain =
                Domain::create(&host, &config, &image, Box::new(CapturedConsole::default()))?;
            domain.run_until(|call| call == Hypercall::Nop)?;
            if protect {
                domain.take_dirty_pages()?;
            } else {
                domain.checkpoint()?;
            }
            let start = Instant::now();
            domain.run_until(|call| call == Hypercall::Nop)?;
            let passes = if protect {
                &mut pass_protected
            } else {
                &mut pass_hot
            };
            passes.push(start.elapsed());
        }
    }
    checkpoint_pages.sort_unstable();
    rollback_pages.sort_unstable();
    checkpoint_later_pages.sort_unstable();
    Ok(RecoveryReport {
        raw_exit: Summary::of(&mut exits).expect("rounds >= 1").median,
        checkpoint: Summary::of(&mut checkpoints).expect("rounds >= 1"),
        checkpoint_pages: checkpoint_pages[checkpoint_pages.len() / 2],
        checkpoint_later: Summary::of(&mut checkpoints_later).expect("rounds >= 1"),
        checkpoint_later_pages: checkpoint_later_pages[checkpoint_later_pages.len() / 2],
        rollback: Summary::of(&mut rollbacks).expect("rounds >= 1"),
        rollback_pages: rollback_pages[rollback_pages.len() / 2],
        restart: Summary::of(&mut restarts).expect("rounds >= 1"),
        pass_hot: Summary::of(&mut pass_hot).expect("rounds >= 1"),
        pass_protected: Summary::of(&mut pass_protected).expect("rounds >= 1"),
    })
}
