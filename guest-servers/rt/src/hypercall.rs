//! The hypercalls of `virtio_seep::abi::hypercall`: one `out dx, eax` each in a VM; in
//! a process domain, a handover through the control page (`process_call`).
//!
//! The port selects the call, `eax` carries the first argument and `rdi`, `rsi`, `r8`,
//! `r9`, `r10` the others. Every call is one VM exit (~10 us here), so callers batch.
//!
//! Under `cfg(test)` the module is a host stand-in that records console writes (see
//! `take_console`) and panics where the real calls would end the domain.

/// The longest prefix of `text` that has at most `max` bytes and ends on a character
/// boundary: what the guest sends where the VMM bounds a text's length.
pub fn truncate(text: &str, max: u64) -> &str {
    let mut end = usize::try_from(max).unwrap_or(usize::MAX).min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(not(test))]
mod imp {
    use core::arch::asm;

    use crate::process_call;

    use virtio_seep::abi::hypercall::{Hypercall, CONSOLE_WRITE_MAX, PANIC_TEXT_MAX};
    use virtio_seep::queue::QueueSetup;

    /// Ends the domain cleanly with exit code `code`.
    pub fn exit(code: u32) -> ! {
        if let Some(control) = process_call::control() {
            // SAFETY: no argument names memory; the VMM stops the domain.
            unsafe { process_call::call(control, Hypercall::Exit.port(), code, [0; 5]) };
        }
        // SAFETY: the `out` reaches the VMM, which stops the domain; should it ever resume
        // us, the `hlt` loop keeps the promise of never returning. Nothing is clobbered.
        unsafe {
            asm!(
                "out dx, eax",
                "2:",
                "hlt",
                "jmp 2b",
                in("dx") Hypercall::Exit.port(),
                in("eax") code,
                options(noreturn, nomem, nostack),
            );
        }
    }

    /// Appends `bytes` to the domain's console (the VMM prints complete lines). Writes
    /// longer than `CONSOLE_WRITE_MAX` are split, one exit per piece.
    pub fn console_write(bytes: &[u8]) {
        let max = usize::try_from(CONSOLE_WRITE_MAX).unwrap_or(usize::MAX);
        for piece in bytes.chunks(max) {
            if let Some(control) = process_call::control() {
                let args = [piece.as_ptr() as u64, piece.len() as u64, 0, 0, 0];
                // SAFETY: the VMM only reads the piece, borrowed for the call.
                unsafe { process_call::call(control, Hypercall::ConsoleWrite.port(), 0, args) };
                continue;
            }
            // SAFETY: the VMM only reads `piece.len()` bytes at `piece.as_ptr()`, which
            // are initialized and borrowed for the duration of the call (`readonly`
            // makes the compiler store them before the `out`). No register is changed.
            unsafe {
                asm!(
                    "out dx, eax",
                    in("dx") Hypercall::ConsoleWrite.port(),
                    in("eax") 0u32,
                    in("rdi") piece.as_ptr(),
                    in("rsi") piece.len(),
                    options(readonly, nostack, preserves_flags),
                );
            }
        }
    }

    /// The cheapest exit: does nothing and returns.
    pub fn nop() {
        if let Some(control) = process_call::control() {
            // SAFETY: no argument names memory.
            unsafe { process_call::call(control, Hypercall::Nop.port(), 0, [0; 5]) };
            return;
        }
        // SAFETY: the VMM resumes the guest right after the `out` and changes nothing.
        unsafe {
            asm!(
                "out dx, eax",
                in("dx") Hypercall::Nop.port(),
                in("eax") 0u32,
                options(nomem, nostack, preserves_flags),
            );
        }
    }

    /// Registers the domain's queue pair: the `IpcSetup` hypercall with `rdi` = `setup`.
    ///
    /// The VMM validates every address and stops the domain on a bad one, or on a second
    /// setup. Normal code calls this only through `crate::ipc::Ipc::init`.
    ///
    /// # Safety
    ///
    /// `setup` must point to a readable [`QueueSetup`]. From this call on, the VMM acts as
    /// the device of the rings it names: it writes their used rings and any buffer posted
    /// on RX (during [`ipc`] calls). That memory must be reserved for this purpose for the
    /// rest of the domain's life: no Rust reference may cover it while the VMM may write.
    pub unsafe fn ipc_setup(setup: *const QueueSetup) {
        if let Some(control) = process_call::control() {
            let args = [setup as u64, 0, 0, 0, 0];
            // SAFETY: as for the `out` below (the caller's contract).
            unsafe { process_call::call(control, Hypercall::IpcSetup.port(), 0, args) };
            return;
        }
        // SAFETY: the VMM reads the `QueueSetup` at `setup` (valid per the caller; the
        // missing `nomem`/`readonly` makes the compiler store everything first) and
        // changes no register; the caller keeps the named rings reserved for the VMM.
        unsafe {
            asm!(
                "out dx, eax",
                in("dx") Hypercall::IpcSetup.port(),
                in("eax") 0u32,
                in("rdi") setup,
                options(nostack, preserves_flags),
            );
        }
    }

    /// The IPC notify: the `Ipc` hypercall with `value` (an encoded
    /// `virtio_seep::queue::IpcOp` and source). The VMM consumes every chain on TX, then
    /// continues, or waits and delivers one message into the chain posted on RX.
    ///
    /// # Safety
    ///
    /// The queues registered with [`ipc_setup`] must be in a state the VMM may act on:
    /// every chain on TX and RX names memory it may read (TX) or write (RX), and no Rust
    /// reference covers memory posted on RX. Normal code calls this only through
    /// `crate::ipc::Ipc`, whose borrows guarantee it.
    pub unsafe fn ipc(value: u32) {
        if let Some(control) = process_call::control() {
            // SAFETY: as for the `out` below (the caller's contract).
            unsafe { process_call::call(control, Hypercall::Ipc.port(), value, [0; 5]) };
            return;
        }
        // SAFETY: the VMM reads and writes only the rings and the buffers posted on them
        // (the caller guarantees they are reserved for it). No `nomem`: the asm acts as a
        // compiler barrier, so every ring and buffer store is done before the exit and
        // nothing the VMM wrote is read from a stale register afterwards.
        unsafe {
            asm!(
                "out dx, eax",
                in("dx") Hypercall::Ipc.port(),
                in("eax") value,
                options(nostack, preserves_flags),
            );
        }
    }

    /// Names a declared region: the `DeclareRegion` hypercall with `rdi` = `log`, whose
    /// `requested` field holds the region; the VMM answers in its `declared` field.
    /// In a VM only (a process domain names its region in its control page).
    ///
    /// # Safety
    ///
    /// `log` must point to a [`DeclaredLog`](virtio_seep::abi::declared::DeclaredLog)
    /// reserved for the VMM's log of this domain for the rest of its life: the VMM
    /// reads and writes it at every checkpoint and rollback. Normal code calls this
    /// only through `crate::declared::region`.
    pub unsafe fn declare_region(log: *mut virtio_seep::abi::declared::DeclaredLog) {
        // SAFETY: the VMM reads and writes only the log at `log` (the caller's
        // contract); no `nomem`: the compiler stores the request first and reads the
        // answer afterwards. No register is changed.
        unsafe {
            asm!(
                "out dx, eax",
                in("dx") Hypercall::DeclareRegion.port(),
                in("eax") 0u32,
                in("rdi") log,
                options(nostack, preserves_flags),
            );
        }
    }

    /// Reports a CPU exception the guest cannot handle, then halts for good.
    pub fn exception(vector: u32, error_code: u64, rip: u64, cr2: u64) -> ! {
        // SAFETY: the VMM stops the domain on this call; the `hlt` loop never returns.
        unsafe {
            asm!(
                "out dx, eax",
                "2:",
                "hlt",
                "jmp 2b",
                in("dx") Hypercall::Exception.port(),
                in("eax") vector,
                in("rdi") error_code,
                in("rsi") rip,
                in("r8") cr2,
                options(noreturn, nomem, nostack),
            );
        }
    }

    /// Reports a panic at `file`:`line` with the static `message` (empty: none), then
    /// halts for good. Texts longer than `PANIC_TEXT_MAX` bytes are shortened.
    pub fn panic(file: &str, line: u32, message: &str) -> ! {
        let file = super::truncate(file, PANIC_TEXT_MAX);
        let message = super::truncate(message, PANIC_TEXT_MAX);
        if let Some(control) = process_call::control() {
            let args = [
                file.as_ptr() as u64,
                file.len() as u64,
                u64::from(line),
                message.as_ptr() as u64,
                message.len() as u64,
            ];
            // SAFETY: the VMM reads the two strings and stops the domain.
            unsafe { process_call::call(control, Hypercall::Panic.port(), 0, args) };
        }
        // SAFETY: the VMM reads the two strings (valid, 'static or borrowed for the whole
        // call) and stops the domain; `readonly` makes their bytes visible to it, and the
        // `hlt` loop never returns.
        unsafe {
            asm!(
                "out dx, eax",
                "2:",
                "hlt",
                "jmp 2b",
                in("dx") Hypercall::Panic.port(),
                in("eax") 0u32,
                in("rdi") file.as_ptr(),
                in("rsi") file.len(),
                in("r8") u64::from(line),
                in("r9") message.as_ptr(),
                in("r10") message.len(),
                options(noreturn, readonly, nostack),
            );
        }
    }
}

#[cfg(not(test))]
pub use imp::*;

#[cfg(test)]
mod host {
    use std::cell::RefCell;

    std::thread_local! {
        static CONSOLE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// Records one console write.
    pub fn console_write(bytes: &[u8]) {
        CONSOLE.with(|writes| writes.borrow_mut().push(bytes.to_vec()));
    }

    /// Host stand-in of the `IpcSetup` hypercall: there is no VMM on the host, so it
    /// panics. Host tests drive `crate::ipc::Ipc` through a fake transport instead.
    ///
    /// # Safety
    ///
    /// None needed on the host; `unsafe` only to match the guest function.
    pub unsafe fn ipc_setup(_setup: *const virtio_seep::queue::QueueSetup) {
        panic!("no VMM on the host: use a fake ipc::Transport");
    }

    /// Host stand-in of the `Ipc` hypercall: panics (see [`ipc_setup`]).
    ///
    /// # Safety
    ///
    /// None needed on the host; `unsafe` only to match the guest function.
    pub unsafe fn ipc(_value: u32) {
        panic!("no VMM on the host: use a fake ipc::Transport");
    }

    /// The console writes recorded on this thread so far, one entry per hypercall.
    pub fn take_console() -> Vec<Vec<u8>> {
        CONSOLE.with(|writes| writes.take())
    }
}

#[cfg(test)]
pub use host::*;

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("abc", 512), "abc");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn truncate_cuts_on_char_boundary() {
        assert_eq!(truncate("abcdef", 3), "abc");
        // "é" is two bytes: cutting inside it drops it entirely.
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
    }
}
