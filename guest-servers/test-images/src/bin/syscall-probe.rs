//! A hostile guest that asks the host kernel directly, with the `syscall` instruction,
//! for what its domain must never get. The domain's name picks the attempt:
//! `open` (a host file), `mmap` (a descriptor it does not own), `ptrace` (attach to
//! init), `kill` (every process it can reach, the VMM included), `getpid` (a
//! harmless call the filter still refuses), `scribble` (overwrite the process
//! substrate's control page with garbage, then make a hypercall).
//!
//! In a VM there is no host kernel to ask: `syscall` is off and raises #UD. As a
//! process domain, the seccomp filter refuses each call and the domain faults. Should
//! a call ever get through, the image exits with [`CALL_RETURNED`].
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

/// Exit code when a forbidden call returned to the guest.
const CALL_RETURNED: u32 = 0xbad;

fn syscall(number: u64, args: [u64; 3]) -> i64 {
    let result: i64;
    // SAFETY: a raw system call on the host's kernel: exactly what this image tests
    // the domain cannot make. The arguments point at nothing the guest needs.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number.cast_signed() => result,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

fn main(boot: &BootInfo) -> u32 {
    static PATH: &[u8] = b"/etc/passwd\0";
    let _ = match boot.name() {
        "open" => syscall(2, [PATH.as_ptr() as u64, 0, 0]),
        // mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd 3, 0): the VMM's fds are not ours.
        "mmap" => syscall(9, [0, 4096, 1]),
        // ptrace(PTRACE_ATTACH, 1)
        "ptrace" => syscall(101, [16, 1, 0]),
        // kill(-1, SIGKILL): every process this one may signal.
        "kill" => syscall(62, [u64::MAX, 9, 0]),
        "getpid" => syscall(39, [0, 0, 0]),
        "scribble" => {
            let control = virtio_seep::abi::process::CONTROL_ADDR as *mut u64;
            for i in 0..512 {
                // SAFETY: deliberately hostile: in a process domain this is the page
                // the tender shares with the VMM (a VM has nothing mapped there and
                // faults at the first write).
                unsafe {
                    core::ptr::write_volatile(control.add(i), 0xdead_beef_0bad_f00d ^ i as u64)
                };
            }
            ankh_guest_rt::hypercall::nop();
            return 0;
        }
        _ => return 2,
    };
    CALL_RETURNED
}
