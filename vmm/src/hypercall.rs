//! Serving the hypercalls of [`virtio_seep::abi::hypercall`] for one domain.
//!
//! Every argument is guest input: pointers and lengths are checked against the
//! domain's RAM and the per-call limits, and a bad argument is a fault of the domain.

use kvm_bindings::kvm_regs;
use virtio_seep::abi::declared::DeclaredLog;
use virtio_seep::abi::hypercall::{Hypercall, CONSOLE_WRITE_MAX, PANIC_TEXT_MAX};

use crate::console::Console;
use crate::fault::{DomainExit, DomainFault, INVALID_OPCODE_VECTOR};
use crate::memory::DomainMemory;

/// What the domain does after a hypercall.
#[derive(Debug, PartialEq, Eq)]
pub enum HypercallOutcome {
    /// Resume the guest.
    Resume,
    /// The domain stops.
    Stop(DomainExit),
    /// The domain registers its queues (the system's router handles it).
    IpcSetup {
        /// Guest address of its `QueueSetup`.
        setup: u64,
    },
    /// The domain's IPC notify (the system's router handles it).
    Ipc {
        /// The hypercall value: an `IpcOp` and a source.
        value: u32,
    },
    /// The domain names a declared region (the domain handles it: it changes the VM's
    /// memory slots).
    DeclareRegion {
        /// Guest address of its `DeclaredLog`, checked to lie inside its RAM.
        log: u64,
    },
}

/// Longest x86 instruction, in bytes.
pub const MAX_INSTRUCTION_LEN: u64 = 15;

/// Everything a hypercall may touch.
pub struct HypercallContext<'a> {
    /// The domain's RAM.
    pub memory: &'a DomainMemory,
    /// The domain's console.
    pub console: &'a mut Console,
}

impl HypercallContext<'_> {
    /// Serves `call` with `value` (the 32-bit `eax` of the `out`); `regs` reads the
    /// guest's registers for calls that take more arguments.
    pub fn serve(
        &mut self,
        call: Hypercall,
        value: u32,
        regs: impl FnOnce() -> kvm_regs,
    ) -> HypercallOutcome {
        match call {
            Hypercall::Nop => HypercallOutcome::Resume,
            Hypercall::Exit => HypercallOutcome::Stop(DomainExit::Exited { code: value }),
            Hypercall::ConsoleWrite => {
                let regs = regs();
                match self
                    .memory
                    .read_guest(regs.rdi, regs.rsi, CONSOLE_WRITE_MAX)
                {
                    Ok(bytes) => {
                        self.console.write(&bytes);
                        HypercallOutcome::Resume
                    }
                    Err(e) => bad_argument(call, e.to_string()),
                }
            }
            Hypercall::Exception => self.exception(value, &regs()),
            Hypercall::Panic => self.panic(&regs()),
            Hypercall::IpcSetup => HypercallOutcome::IpcSetup { setup: regs().rdi },
            Hypercall::Ipc => HypercallOutcome::Ipc { value },
            Hypercall::DeclareRegion => self.declare_region(regs().rdi),
        }
    }

    fn declare_region(&self, log: u64) -> HypercallOutcome {
        let len = std::mem::size_of::<DeclaredLog>() as u64;
        if !log.is_multiple_of(4) {
            return bad_argument(
                Hypercall::DeclareRegion,
                format!("log at {log:#x}: not 4-byte aligned"),
            );
        }
        match self.memory.check_range(log, len, len) {
            Ok(()) => HypercallOutcome::DeclareRegion { log },
            Err(e) => bad_argument(Hypercall::DeclareRegion, format!("log: {e}")),
        }
    }

    fn exception(&self, vector: u32, regs: &kvm_regs) -> HypercallOutcome {
        let Ok(vector) = u8::try_from(vector) else {
            return bad_argument(Hypercall::Exception, format!("vector {vector} > 255"));
        };
        let rip = regs.rsi;
        // The bytes of an invalid opcode are kept: an SSE instruction is named from them.
        let instruction = match vector == INVALID_OPCODE_VECTOR {
            true => self.instruction_at(rip),
            false => Vec::new(),
        };
        HypercallOutcome::Stop(DomainExit::Faulted(DomainFault::CpuException {
            vector,
            error_code: regs.rdi,
            rip,
            cr2: regs.r8,
            instruction,
        }))
    }

    fn panic(&self, regs: &kvm_regs) -> HypercallOutcome {
        let file = match self.text(regs.rdi, regs.rsi) {
            Ok(file) => file,
            Err(reason) => return bad_argument(Hypercall::Panic, format!("file name: {reason}")),
        };
        let message = match regs.r10 {
            0 => None,
            len => match self.text(regs.r9, len) {
                Ok(message) => Some(message),
                Err(reason) => return bad_argument(Hypercall::Panic, format!("message: {reason}")),
            },
        };
        HypercallOutcome::Stop(DomainExit::Faulted(DomainFault::GuestPanic {
            file,
            line: u32::try_from(regs.r8).unwrap_or(u32::MAX),
            message,
        }))
    }

    /// The bytes of the instruction at `rip` (RIP is a physical address: identity map).
    pub fn instruction_at(&self, rip: u64) -> Vec<u8> {
        self.memory.read_prefix(rip, MAX_INSTRUCTION_LEN)
    }

    fn text(&self, addr: u64, len: u64) -> Result<String, String> {
        let bytes = self
            .memory
            .read_guest(addr, len, PANIC_TEXT_MAX)
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&bytes)
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect())
    }
}

fn bad_argument(call: Hypercall, reason: String) -> HypercallOutcome {
    HypercallOutcome::Stop(DomainExit::Faulted(DomainFault::BadHypercallArgument {
        call: call.name(),
        reason,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::CapturedConsole;
    use vm_memory::{Bytes, GuestAddress};

    /// Whether `outcome` stops the domain for a bad argument of call `name`.
    fn is_bad_argument(outcome: &HypercallOutcome, name: &str) -> bool {
        matches!(
            outcome,
            HypercallOutcome::Stop(DomainExit::Faulted(DomainFault::BadHypercallArgument {
                call,
                ..
            })) if *call == name
        )
    }

    fn setup() -> (DomainMemory, Console, CapturedConsole) {
        let captured = CapturedConsole::default();
        let console = Console::new("t", Box::new(captured.clone()));
        (DomainMemory::new(4 << 20).unwrap(), console, captured)
    }

    #[test]
    fn console_write_reads_guest_bytes() {
        let (memory, mut console, out) = setup();
        memory
            .guest()
            .write_slice(b"hi\n", GuestAddress(0x20_0000))
            .unwrap();
        let mut ctx = HypercallContext {
            memory: &memory,
            console: &mut console,
        };
        let regs = kvm_regs {
            rdi: 0x20_0000,
            rsi: 3,
            ..Default::default()
        };
        assert_eq!(
            ctx.serve(Hypercall::ConsoleWrite, 0, || regs),
            HypercallOutcome::Resume
        );
        assert_eq!(out.lines(), ["hi"]);
    }

    #[test]
    fn console_write_outside_memory_is_a_fault() {
        let (memory, mut console, out) = setup();
        let mut ctx = HypercallContext {
            memory: &memory,
            console: &mut console,
        };
        for (rdi, rsi) in [(u64::MAX - 1, 4), (4 << 20, 1), (0, CONSOLE_WRITE_MAX + 1)] {
            let regs = kvm_regs {
                rdi,
                rsi,
                ..Default::default()
            };
            let outcome = ctx.serve(Hypercall::ConsoleWrite, 0, || regs);
            assert!(is_bad_argument(&outcome, "console-write"), "{outcome:?}");
        }
        assert!(out.lines().is_empty());
    }

    #[test]
    fn a_declared_log_must_lie_inside_ram_and_be_aligned() {
        let (memory, mut console, _) = setup();
        let mut ctx = HypercallContext {
            memory: &memory,
            console: &mut console,
        };
        let serve = |ctx: &mut HypercallContext<'_>, rdi| {
            let regs = kvm_regs {
                rdi,
                ..Default::default()
            };
            ctx.serve(Hypercall::DeclareRegion, 0, || regs)
        };
        assert_eq!(
            serve(&mut ctx, 0x20_0000),
            HypercallOutcome::DeclareRegion { log: 0x20_0000 }
        );
        // The last page of RAM holds it exactly; a byte later it ends outside.
        let last = (4 << 20) - 4096;
        assert_eq!(
            serve(&mut ctx, last),
            HypercallOutcome::DeclareRegion { log: last }
        );
        for rdi in [last + 4, 0x20_0002, u64::MAX - 3, 4 << 20] {
            let outcome = serve(&mut ctx, rdi);
            assert!(
                is_bad_argument(&outcome, "declare-region"),
                "{rdi:#x}: {outcome:?}"
            );
        }
    }

    #[test]
    fn exception_vector_out_of_range_is_a_fault() {
        let (memory, mut console, _) = setup();
        let mut ctx = HypercallContext {
            memory: &memory,
            console: &mut console,
        };
        let outcome = ctx.serve(Hypercall::Exception, 256, kvm_regs::default);
        assert!(matches!(
            outcome,
            HypercallOutcome::Stop(DomainExit::Faulted(
                DomainFault::BadHypercallArgument { .. }
            ))
        ));
    }

    #[test]
    fn panic_text_is_bounded_and_sanitized() {
        let (memory, mut console, _) = setup();
        memory
            .guest()
            .write_slice(b"src/x.rs\x1b", GuestAddress(0x20_0000))
            .unwrap();
        let mut ctx = HypercallContext {
            memory: &memory,
            console: &mut console,
        };
        let regs = kvm_regs {
            rdi: 0x20_0000,
            rsi: 9,
            r8: 12,
            ..Default::default()
        };
        assert_eq!(
            ctx.serve(Hypercall::Panic, 0, || regs),
            HypercallOutcome::Stop(DomainExit::Faulted(DomainFault::GuestPanic {
                file: "src/x.rs?".into(),
                line: 12,
                message: None,
            }))
        );
        let regs = kvm_regs {
            rdi: 0x20_0000,
            rsi: PANIC_TEXT_MAX + 1,
            ..Default::default()
        };
        assert!(matches!(
            ctx.serve(Hypercall::Panic, 0, || regs),
            HypercallOutcome::Stop(DomainExit::Faulted(
                DomainFault::BadHypercallArgument { .. }
            ))
        ));
    }
}
