//! The CPU time a process domain takes outside its turns.
//!
//! A VM's guest runs only inside the VMM's `KVM_RUN`; a process domain runs whenever
//! the host's scheduler lets it. The handover protocol says it waits on the control
//! page's futex once it has handed the VMM its turn, but the guest can skip the wait:
//! report a wait for a message nobody sends (so the VMM takes it for blocked) and then
//! compute on. Pinned to the CPU of the VMM thread that runs it, it would then take
//! that CPU's time from the VMM and every domain of that thread (each such process
//! about halved their speed), and the watchdog, which watches turns, would never see
//! it.
//!
//! So the VMM measures the wall-clock time of each turn (two reads of the time-stamp
//! counter, about 40 ns) and compares the process's CPU time, read from the kernel's
//! per-process clock now and then (`turn_audit` of the worker), with it. The CPU time
//! of a process cannot exceed the wall-clock time of its turns by more than what it
//! spends outside them, so the difference is never more than what it took outside.
//! Less a few allowances (each turn's tail, a tenth of the turns' time for the
//! counter's rate), beyond [`OUTSIDE_LIMIT`] the domain is faulted
//! (`DomainFault::RanOutsideItsTurns`). The suite's domains stay under 1 ms (init's,
//! its setup before its first turn, is the largest).

use std::time::Duration;

use crate::tsc;

/// CPU time outside its turns a domain may take in all: its setup before the first
/// turn (the tender's exec and mappings, a millisecond or two) and the few
/// microseconds after each hand-over before it sleeps on the futex (see
/// [`TAIL_PER_TURN`]) fit far below it; a process that skips its waits reaches it
/// within a few tens of milliseconds.
pub const OUTSIDE_LIMIT: Duration = Duration::from_millis(50);

/// What a turn may leave of the process's CPU time outside it: after handing the turn
/// over, the process still returns from its store and enters the futex wait, which
/// the VMM, woken on the same CPU, may not wait for.
const TAIL_PER_TURN: Duration = Duration::from_micros(5);

/// The share of the turns' time also allowed outside them (one part in this many):
/// turns are timed with the time-stamp counter at a rate measured once, and a small
/// error of that rate must not add up, over the seconds a busy server holds its turns,
/// to a fault of a domain that took nothing outside them.
const TURN_TIME_SLACK: u32 = 10;

/// One process's turns and its CPU clock.
pub(super) struct TurnAccount {
    /// Wall-clock ticks of the time-stamp counter of all turns so far.
    ticks: u64,
    /// Turns so far.
    turns: u64,
    /// The kernel's CPU-time clock of the process (`None`: it could not be had, and
    /// the account says nothing).
    clock: Option<libc::clockid_t>,
}

impl TurnAccount {
    /// The account of process `pid`, with no turn yet.
    pub(super) fn new(pid: u32) -> TurnAccount {
        let mut clock: libc::clockid_t = 0;
        let pid = libc::pid_t::try_from(pid).unwrap_or(0);
        // SAFETY: clock_getcpuclockid writes the clock id of `pid` into `clock`.
        let found = unsafe { libc::clock_getcpuclockid(pid, &mut clock) } == 0;
        // A time-stamp counter that does not advance would count no turn at all.
        let found = found && tsc::ns_per_tick() > 0.0;
        TurnAccount {
            ticks: 0,
            turns: 0,
            clock: found.then_some(clock),
        }
    }

    /// Counts a turn that began at `start` (a [`tsc::now`]) and ends now.
    #[inline]
    pub(super) fn count(&mut self, start: u64) {
        self.ticks = self.ticks.wrapping_add(tsc::now().wrapping_sub(start));
        self.turns += 1;
    }

    /// The process's CPU time beyond its turns' wall-clock time and their tails: at
    /// most what it took outside its turns. `None` when its clock cannot be read (the
    /// process is gone).
    pub(super) fn outside(&self) -> Option<Duration> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the time of a valid clock id into `now`.
        if unsafe { libc::clock_gettime(self.clock?, &mut now) } != 0 {
            return None;
        }
        let cpu = Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        );
        let turns = Duration::from_nanos(tsc::to_ns(self.ticks));
        let tails = TAIL_PER_TURN.saturating_mul(u32::try_from(self.turns).unwrap_or(u32::MAX));
        let slack = turns / TURN_TIME_SLACK;
        Some(
            cpu.saturating_sub(turns)
                .saturating_sub(tails)
                .saturating_sub(slack),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_only_waits_takes_nothing_outside_its_turns() {
        let mut child = std::process::Command::new("sleep")
            .arg("0.2")
            .spawn()
            .unwrap();
        let account = TurnAccount::new(child.id());
        let outside = account.outside().expect("a child's clock can be read");
        assert!(outside < OUTSIDE_LIMIT, "{outside:?}");
        child.wait().unwrap();
    }

    #[test]
    fn a_process_that_computes_without_turns_is_seen() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let account = TurnAccount::new(child.id());
        let seen = (0..400).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            account
                .outside()
                .is_some_and(|outside| outside > OUTSIDE_LIMIT)
        });
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen, "{:?}", account.outside());
    }
}
