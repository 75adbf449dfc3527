//! Exception stubs: every one of the 256 vectors reports to the VMM.
//!
//! The runtime does not load an IDT: a user-mode guest could not (`lidt` is
//! privileged), and supervisor code is emulated on the project's hosts. Instead the
//! image's ABI note (written here, in section `.ankh_abi`) gives the VMM the address of
//! the stub table, and the VMM builds the IDT from it: one DPL0 interrupt gate per
//! vector, on IST1, to `stubs + 16 * vector`.
//!
//! Each 16-byte stub pushes a zero error code when the CPU does not push one, then the
//! vector number, and jumps to a common handler that makes the `Exception` hypercall
//! (vector, error code, faulting RIP, CR2) and halts; the VMM never resumes a domain
//! after an exception. The handler runs at CPL0, so `mov cr2` and `hlt` are allowed.

/// Vectors for which the CPU pushes an error code (the `.if` of the stubs lists them).
pub const ERROR_CODE_VECTORS: [u8; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];

#[cfg(not(test))]
mod imp {
    use core::arch::global_asm;

    use virtio_seep::abi::hypercall::Hypercall;
    use virtio_seep::abi::{
        ABI_NOTE_STUBS_OFFSET, ABI_NOTE_VERSION_OFFSET, ABI_VERSION, EXCEPTION_STUB_SIZE,
        EXCEPTION_VECTORS,
    };

    global_asm!(
        ".pushsection .ankh_exceptions, \"ax\", @progbits",
        ".balign 16",
        ".global __ankh_exception_stubs",
        ".type __ankh_exception_stubs, @function",
        "__ankh_exception_stubs:",
        ".set .Lvector, 0",
        ".rept {vectors}",
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
        ".org __ankh_exception_stubs + {vectors} * {stub_size}",
        ".size __ankh_exception_stubs, . - __ankh_exception_stubs",
        // Stack: [vector][error code][RIP][CS][RFLAGS][RSP][SS].
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
        // The ABI note (virtio_seep::abi::AbiNote), in assembly because it holds the
        // stubs' address, which Rust cannot put in a static as an integer.
        ".pushsection .ankh_abi, \"a\", @progbits",
        ".balign 8",
        "__ankh_abi_note:",
        "    .ascii \"ANKH-ABI\"",
        "    .org __ankh_abi_note + {version_offset}",
        "    .long {version}",
        "    .long 0",
        "    .org __ankh_abi_note + {stubs_offset}",
        "    .quad __ankh_exception_stubs",
        ".popsection",
        vectors = const EXCEPTION_VECTORS,
        stub_size = const EXCEPTION_STUB_SIZE,
        port = const Hypercall::Exception.port(),
        version = const ABI_VERSION,
        version_offset = const ABI_NOTE_VERSION_OFFSET,
        stubs_offset = const ABI_NOTE_STUBS_OFFSET,
        options(att_syntax),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_vectors_are_the_architectural_ones() {
        // Intel SDM vol. 3, table 6-1: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX.
        assert_eq!(ERROR_CODE_VECTORS, [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
    }
}
