//! What the test images do, as values the VMM's tests can assert on.
//!
//! This file has no dependencies: the guests use it through `ankh_test_images::expect`,
//! and the host crate `ankh-images` includes it as `ankh_images::expect`.

/// `hello` prints exactly one line: this prefix, then the domain's name.
pub const HELLO_PREFIX: &str = "hello from ";

/// `exit7` returns this exit code.
pub const EXIT7_CODE: u32 = 7;

/// `nop-loop` makes this many `Nop` hypercalls, then returns 0.
pub const NOP_LOOP_COUNT: u32 = 20_000;

/// `busy-loop` runs this many iterations of a small arithmetic loop with no exit, then
/// returns 0 (compute speed of a guest mode).
pub const BUSY_LOOP_ITERATIONS: u64 = 100_000;

/// `fault-page` reads from this address (above the 4 GiB identity map): #PF with CR2 =
/// this address.
pub const FAULT_PAGE_ADDR: u64 = 0x40_0000_0000;

/// `fault-mmio` writes [`FAULT_MMIO_VALUE`] (4 bytes) to this address: mapped but not
/// RAM, so the VMM sees an MMIO write.
pub const FAULT_MMIO_ADDR: u64 = 0xd000_0000;

/// The value `fault-mmio` writes.
pub const FAULT_MMIO_VALUE: u32 = 0xdead_beef;

/// The value `fault-hypercall` writes (`out dx, eax`, 4 bytes) to
/// `virtio_seep::abi::hypercall::UNASSIGNED_PORT`.
pub const FAULT_HYPERCALL_VALUE: u32 = 0x0bad_ca11;

/// The port `fault-port` writes to: COM1, outside the hypercall range.
pub const FAULT_PORT: u16 = 0x3f8;

/// `fault-panic` panics with this static message...
pub const FAULT_PANIC_MESSAGE: &str = "deliberate panic";

/// ...in this file, as `core::panic::Location::file` reports it (relative to the
/// guest workspace, where cargo runs rustc)...
pub const FAULT_PANIC_FILE: &str = "test-images/src/bin/fault-panic.rs";

/// ...at this line (checked against the source by `images/tests/expect.rs`).
pub const FAULT_PANIC_LINE: u32 = 11;

/// Vector of the divide error `fault-div0` causes.
pub const VECTOR_DIVIDE_ERROR: u32 = 0;

/// Vector of the invalid opcode `fault-ud2` causes.
pub const VECTOR_INVALID_OPCODE: u32 = 6;

/// Vector of the page fault `fault-page` causes.
pub const VECTOR_PAGE_FAULT: u32 = 14;

/// The instruction `fault-sse` executes (`xorps xmm0, xmm0`), which KVM here cannot
/// emulate.
pub const FAULT_SSE_BYTES: [u8; 3] = [0x0f, 0x57, 0xc0];

/// Exit code of a fault image whose fault the VMM ignored and resumed (it never should).
pub const RESUMED_AFTER_FAULT_CODE: u32 = 0xfa11;
