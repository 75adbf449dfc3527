//! The CPU's time-stamp counter, for the run-time accounting done at every exit of a
//! server with a request in hand: a read costs about 20 ns on the project's hosts,
//! where `Instant::now` (the vDSO's `clock_gettime`) costs about 45. Ticks become
//! nanoseconds with a rate measured once against the monotonic clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long the rate is measured for.
const CALIBRATION: Duration = Duration::from_millis(1);

/// The counter now.
#[inline]
pub fn now() -> u64 {
    // SAFETY: RDTSC only reads the counter; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Nanoseconds per tick, measured at the first call (it spins for [`CALIBRATION`]).
/// A counter that does not advance (a host that hides it) gives 0: its ticks then
/// count no time, rather than a made-up amount.
pub fn ns_per_tick() -> f64 {
    static RATE: OnceLock<f64> = OnceLock::new();
    *RATE.get_or_init(|| {
        let (start, ticks) = (Instant::now(), now());
        while start.elapsed() < CALIBRATION {
            std::hint::spin_loop();
        }
        let (elapsed, ticked) = (start.elapsed(), now().saturating_sub(ticks));
        match ticked {
            0 => 0.0,
            ticked => elapsed.as_nanos() as f64 / ticked as f64,
        }
    })
}

/// `ticks` in nanoseconds.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "a float cast saturates: a negative or too large product is 0 or u64::MAX"
)]
pub fn to_ns(ticks: u64) -> u64 {
    (ticks as f64 * ns_per_tick()) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_of_a_sleep_convert_to_about_its_length() {
        let _ = ns_per_tick();
        let start = now();
        std::thread::sleep(Duration::from_millis(20));
        let ns = to_ns(now() - start);
        // Wide bounds: a loaded host may oversleep, never undersleep.
        assert!((19_000_000..2_000_000_000).contains(&ns), "{ns} ns");
    }
}
