//! Benchmarks behind `ankh bench`. Each prints its figures beside a baseline measured
//! in the same run, because absolute times on nested-virtualization hosts mean little.
//! They are never pass/fail tests.

pub mod blk;
pub mod boot;
pub mod bootstrap;
pub mod compare;
pub mod ipc;
pub mod modes;
pub mod native;
pub mod neighbours;
pub mod recovery;
pub mod stats;
pub mod storage;
pub mod ubench;

/// Keeps the calling thread, and the threads it starts from now on, on CPU `cpu`.
pub fn pin_to_cpu(cpu: usize) -> Result<(), std::io::Error> {
    // SAFETY: `cpu_set_t` is plain data, for which all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: `cpu` is below the set's size in bits (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a valid set of the size passed.
    let ret = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
