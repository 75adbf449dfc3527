//! The interrupt descriptor table: every one of the 256 vectors reports to the VMM.
//!
//! Each vector has a 16-byte stub (assembly below) that pushes a zero error code when the
//! CPU does not push one, then the vector number, and jumps to a common handler. The
//! handler makes the `Exception` hypercall (vector, error code, faulting RIP, CR2) and
//! halts; the VMM never resumes a domain after an exception.
//!
//! All gates use IST 1: the VMM's TSS points it at a stack of its own
//! (`EXCEPTION_STACK_TOP`), so a fault on a broken stack is still reported.

#[cfg(not(test))]
use virtio_seep::abi::hypercall::Hypercall;
use virtio_seep::abi::layout::CODE64_SELECTOR;

/// Number of vectors in the IDT.
pub const VECTORS: usize = 256;

/// Bytes between the stubs of consecutive vectors.
pub const STUB_SIZE: u64 = 16;

/// Vectors for which the CPU pushes an error code (the `.if` of the stubs below lists
/// the same vectors).
pub const ERROR_CODE_VECTORS: [u8; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];

/// The IST index every gate uses (the VMM's TSS sets IST1).
pub const IST_INDEX: u8 = 1;

/// Type and attributes of a present, ring-0, 64-bit interrupt gate.
pub const INTERRUPT_GATE: u8 = 0x8e;

/// The `lidt` limit of a full table: its size in bytes minus one.
pub const IDT_LIMIT: u16 = 4095;

const _: () = assert!(IDT_LIMIT as usize + 1 == VECTORS * 16);

/// Encodes a 64-bit interrupt gate to `handler` as the two quadwords of the descriptor.
///
/// Layout (Intel SDM vol. 3, 6.14.1): offset bits 0..16, segment selector, IST index,
/// type/attributes, offset bits 16..32, then offset bits 32..64 and a reserved dword.
pub const fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | ((CODE64_SELECTOR as u64) << 16)
        | ((IST_INDEX as u64) << 32)
        | ((INTERRUPT_GATE as u64) << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

#[cfg(not(test))]
mod imp {
    use core::arch::{asm, global_asm};

    use super::{gate, Hypercall, IDT_LIMIT, STUB_SIZE, VECTORS};

    /// The table itself, page-aligned so that it occupies exactly one page.
    #[repr(C, align(4096))]
    struct Idt([[u64; 2]; VECTORS]);

    /// The IDT. Written once by [`install`], then only read by the CPU.
    static mut IDT: Idt = Idt([[0; 2]; VECTORS]);

    /// The operand of `lidt`.
    #[repr(C, packed)]
    struct Descriptor {
        limit: u16,
        base: u64,
    }

    extern "C" {
        /// First of the 256 exception stubs, [`STUB_SIZE`] bytes apart (assembly below).
        static __ankh_exception_stubs: u8;
    }

    // The stubs and the common handler, in a section the linker script puts after all
    // other code (exceptions are rare; the hot code stays together). AT&T syntax so that
    // `$.Lvector` is an immediate.
    // Each stub starts on a 16-byte boundary and is at most 12 bytes long (push imm8 or
    // imm32, push imm, jmp rel32); the `.org` fails the build if they do not fit.
    // After the pushes the stack (IST1) holds: vector, error code, RIP, CS, RFLAGS, RSP,
    // SS. The handler never returns, so it saves nothing.
    global_asm!(
        ".pushsection .ankh_exceptions, \"ax\", @progbits",
        ".balign 16",
        ".global __ankh_exception_stubs",
        ".type __ankh_exception_stubs, @function",
        "__ankh_exception_stubs:",
        ".set .Lvector, 0",
        ".rept 256",
        "    .balign 16",
        "    .if (.Lvector == 8) || (.Lvector == 10) || (.Lvector == 11) || (.Lvector == 12) || (.Lvector == 13) || (.Lvector == 14) || (.Lvector == 17) || (.Lvector == 21) || (.Lvector == 29) || (.Lvector == 30)",
        "    .else",
        "    pushq $0",
        "    .endif",
        "    pushq $.Lvector",
        "    jmp __ankh_exception_common",
        "    .set .Lvector, .Lvector + 1",
        ".endr",
        ".balign 16",
        ".org __ankh_exception_stubs + 256 * {stub_size}",
        ".size __ankh_exception_stubs, . - __ankh_exception_stubs",
        ".type __ankh_exception_common, @function",
        "__ankh_exception_common:",
        "    movl (%rsp), %eax",
        "    movq 8(%rsp), %rdi",
        "    movq 16(%rsp), %rsi",
        "    movq %cr2, %r8",
        "    movw ${port}, %dx",
        "    outl %eax, %dx",
        "2:  hlt",
        "    jmp 2b",
        ".size __ankh_exception_common, . - __ankh_exception_common",
        ".popsection",
        stub_size = const STUB_SIZE,
        port = const Hypercall::Exception.port(),
        options(att_syntax),
    );

    /// Fills the IDT and loads it. Called once by `_start`, before the image's main.
    pub fn install() {
        let stubs = (&raw const __ankh_exception_stubs) as u64;
        let idt = &raw mut IDT;
        // SAFETY: `IDT` is only ever accessed here, once, on the only CPU, before any
        // other code runs, so this is the only reference to it.
        let table = unsafe { &mut (*idt).0 };
        let mut handler = stubs;
        for entry in table.iter_mut() {
            *entry = gate(handler);
            handler += STUB_SIZE;
        }
        let descriptor = Descriptor {
            limit: IDT_LIMIT,
            base: idt as u64,
        };
        // SAFETY: the descriptor names a complete table of valid 64-bit interrupt gates
        // whose handlers are the stubs above; the table is a static, so it outlives every
        // use by the CPU. `lidt` only reads the 10-byte descriptor.
        unsafe {
            asm!(
                "lidt [{}]",
                in(reg) &raw const descriptor,
                options(readonly, nostack, preserves_flags)
            );
        }
    }
}

#[cfg(not(test))]
pub use imp::install;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_layout() {
        let [low, high] = gate(0x1234_5678_9abc_def0);
        let bytes: Vec<u8> = low
            .to_le_bytes()
            .into_iter()
            .chain(high.to_le_bytes())
            .collect();
        assert_eq!(
            bytes,
            [
                0xf0, 0xde, // offset 0..16
                0x08, 0x00, // selector
                0x01, // IST
                0x8e, // present, DPL 0, 64-bit interrupt gate
                0xbc, 0x9a, // offset 16..32
                0x78, 0x56, 0x34, 0x12, // offset 32..64
                0, 0, 0, 0, // reserved
            ]
        );
    }

    #[test]
    fn limit_covers_all_vectors() {
        assert_eq!(IDT_LIMIT, 4095);
        assert_eq!(ERROR_CODE_VECTORS.len(), 10);
    }
}
