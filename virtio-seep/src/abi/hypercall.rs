//! Hypercalls: how a guest asks the VMM for something.
//!
//! A hypercall is one `out dx, eax` instruction (one VM exit). The port selects the
//! call: each call is a 32-bit I/O register at `port = HYPERCALL_PORT_BASE + 4 * number`
//! (a 4-byte access covers four port addresses, and user-mode guests may only touch
//! ports inside [`HYPERCALL_PORT_BASE`]`..`[`HYPERCALL_PORT_END`]). The 32-bit value
//! written (`eax`) is the call's first argument, so the most frequent calls need no
//! register read on the VMM side. Further arguments travel in `rdi`, `rsi`, `r8`, `r9` and `r10`, read by the VMM
//! only for the calls that define them. No hypercall returns a value in a register; the
//! one call that answers ([`Hypercall::DeclareRegion`]) writes its answer into the
//! structure it was given.
//!
//! The VMM treats every argument as hostile: pointers must lie inside the domain's
//! memory, lengths are bounded, and any port outside this table, any `in` instruction
//! and any access size other than 4 bytes is a fault of the domain (unknown hypercall).

/// First I/O port of the hypercall range.
pub const HYPERCALL_PORT_BASE: u16 = 0x0a40;

/// Number of hypercall numbers reserved (`0..HYPERCALL_COUNT`).
pub const HYPERCALL_COUNT: u16 = 16;

/// Bytes of port space each hypercall register occupies.
pub const HYPERCALL_PORT_STRIDE: u16 = 4;

/// One past the last port of the hypercall range.
pub const HYPERCALL_PORT_END: u16 = HYPERCALL_PORT_BASE + HYPERCALL_COUNT * HYPERCALL_PORT_STRIDE;

/// The hypercalls a guest can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Hypercall {
    /// Stop this domain cleanly. `eax`: the exit code.
    Exit = 0,
    /// Append bytes to this domain's console. `rdi`: address, `rsi`: length
    /// (at most [`CONSOLE_WRITE_MAX`]). The VMM prints complete lines, prefixed with the
    /// domain's name.
    ConsoleWrite = 1,
    /// The guest took a CPU exception it cannot handle. `eax`: vector, `rdi`: error code
    /// (0 when the vector has none), `rsi`: faulting RIP, `r8`: CR2 (page faults).
    Exception = 2,
    /// The guest panicked. `rdi`/`rsi`: file name address/length, `r8`: line,
    /// `r9`/`r10`: message address/length (length 0: no static message).
    Panic = 3,
    /// Does nothing and returns: the cheapest possible exit, used to measure the raw
    /// exit cost and to mark "booted" in the boot benchmark.
    Nop = 4,
    /// Registers the domain's queue pair. `rdi`: address of a
    /// [`crate::queue::QueueSetup`]. Once per domain.
    IpcSetup = 5,
    /// The IPC notify: the VMM consumes the TX queue, then does what `eax` says
    /// ([`crate::queue::IpcOp`] and a source domain).
    Ipc = 6,
    /// Names a region of this domain's RAM whose writes the guest declares itself
    /// (declared writes in a VM). `rdi`: address of a [`crate::abi::declared::DeclaredLog`]
    /// whose `requested` field holds the region. The VMM answers in its `declared`
    /// field: the region it keeps, or empty when it keeps none. Once per domain; a
    /// bad address is a fault of the domain.
    DeclareRegion = 7,
}

impl Hypercall {
    /// Every hypercall, in number order.
    pub const ALL: [Hypercall; 8] = [
        Hypercall::Exit,
        Hypercall::ConsoleWrite,
        Hypercall::Exception,
        Hypercall::Panic,
        Hypercall::Nop,
        Hypercall::IpcSetup,
        Hypercall::Ipc,
        Hypercall::DeclareRegion,
    ];

    /// The I/O port a guest writes to make this call.
    pub const fn port(self) -> u16 {
        HYPERCALL_PORT_BASE + self as u16 * HYPERCALL_PORT_STRIDE
    }

    /// The call's name, as logs and fault reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Hypercall::Exit => "exit",
            Hypercall::ConsoleWrite => "console-write",
            Hypercall::Exception => "exception",
            Hypercall::Panic => "panic",
            Hypercall::Nop => "nop",
            Hypercall::IpcSetup => "ipc-setup",
            Hypercall::Ipc => "ipc",
            Hypercall::DeclareRegion => "declare-region",
        }
    }

    /// The call made by a write to `port`, if any.
    pub fn from_port(port: u16) -> Option<Hypercall> {
        Hypercall::ALL
            .iter()
            .copied()
            .find(|call| call.port() == port)
    }
}

/// Largest console write the VMM accepts in one hypercall.
pub const CONSOLE_WRITE_MAX: u64 = 4096;

/// Longest file name or panic message the VMM reads from a guest.
pub const PANIC_TEXT_MAX: u64 = 512;

/// A port inside the hypercall range that no call uses; test images write to it to
/// check that the VMM reports an unknown hypercall.
pub const UNASSIGNED_PORT: u16 = HYPERCALL_PORT_END - HYPERCALL_PORT_STRIDE;

const _: () = assert!((Hypercall::DeclareRegion as u16) < HYPERCALL_COUNT - 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_round_trip() {
        for call in Hypercall::ALL {
            assert_eq!(Hypercall::from_port(call.port()), Some(call));
        }
    }

    #[test]
    fn foreign_ports_are_not_calls() {
        assert_eq!(Hypercall::from_port(0x3f8), None);
        assert_eq!(Hypercall::from_port(HYPERCALL_PORT_BASE - 1), None);
        assert_eq!(Hypercall::from_port(UNASSIGNED_PORT), None);
        // Inside a register but not at its start: not a call.
        assert_eq!(
            Hypercall::from_port(Hypercall::ConsoleWrite.port() + 1),
            None
        );
    }
}
