//! What the test images do, as values the VMM's tests can assert on.
//!
//! This file has no dependencies: the guests use it through `ankh_test_images::expect`,
//! and the host crate `ankh-image-catalog` includes it as `ankh_image_catalog::expect`
//! (re-exported as `ankh_images::expect`).

/// `hello` prints exactly one line: this prefix, then the domain's name.
pub const HELLO_PREFIX: &str = "hello from ";

/// `debug-probe` squares `0..DEBUG_PROBE_ROUNDS` and prints this prefix, then the sum
/// of the even squares (`DEBUG_PROBE_SUM`).
pub const DEBUG_PROBE_PREFIX: &str = "even squares: ";

/// Loop rounds of `debug-probe`.
pub const DEBUG_PROBE_ROUNDS: usize = 16;

/// What `debug-probe` prints after its prefix: 0 + 4 + 16 + ... + 196.
pub const DEBUG_PROBE_SUM: u64 = 560;

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

// ---------------------------------------------------------------------------------------
// IPC images. The host tests build systems of domains from them; a domain's name is what
// the system description calls it, its image one of the names below. Numbers are plain
// integers here (this file has no dependencies); the opcodes and errnos they mention are
// those of `virtio_seep::opcode` and `virtio_seep::errno`.
// ---------------------------------------------------------------------------------------

/// The peer name every IPC client image looks up (`BootInfo::peer`) to find its server,
/// an `echo` domain. The system description must call the server domain this and list
/// it as a peer of each client.
pub const ECHO_PEER: &str = "echo";

/// Exit code of an IPC client image that found something wrong (it printed a line
/// `<image>: FAILED <what>` first).
pub const IPC_FAILED_CODE: u32 = 1;

/// Exit code of `ipc-bad` and `ipc-bench` when their domain name selects no behaviour
/// (they print `<image>: <name>` / `<image>: unknown <name>` first).
pub const UNKNOWN_NAME_CODE: u32 = 2;

/// `echo` parks at most this many `TEST_DEFERRED` requests; one more is answered at once
/// with `EINVAL` (22).
pub const ECHO_PARK_MAX: usize = 8;

/// `ping` makes this many `TEST_PING` calls (empty replies expected)...
pub const PING_COUNT: u32 = 100;

/// ...then this many `TEST_ECHO` calls; call `i` (from 0) carries an inline payload of
/// `i * 37 % 225` bytes, byte `j` = `(3 * i + j) as u8`, and no bulk data.
pub const PING_ECHO_COUNT: u32 = 100;

/// `ping` prints exactly this line and returns 0 when every reply was right...
pub const PING_OK: &str = "ping: ok";

/// ...or a line starting with this and returns [`IPC_FAILED_CODE`].
pub const PING_FAILED_PREFIX: &str = "ping: FAILED ";

/// `bulk` makes one `TEST_ECHO` call per size, in this order, with bulk data of that many
/// bytes (byte `i` = `(i * 7 + size) as u8`) and a 4-byte payload (the size, little
/// endian), and checks every byte of the reply.
pub const BULK_SIZES: [u32; 7] = [0, 1, 4095, 4096, 65536, (1 << 20) - 1, 1 << 20];

/// `bulk` prints exactly this line and returns 0 when every echo was right...
pub const BULK_OK: &str = "bulk: ok";

/// ...or a line starting with this and returns [`IPC_FAILED_CODE`].
pub const BULK_FAILED_PREFIX: &str = "bulk: FAILED ";

/// `deferred-wait` sends `TEST_DEFERRED` to `echo`, waits for the reply (which `echo`
/// sends only on a `TEST_RELEASE`) and prints this, then the reply's payload byte in
/// decimal (its position among the parked requests, from 0), and returns 0. On an error
/// reply it prints `deferred-wait: FAILED call 0 errno <errno>` and returns
/// [`IPC_FAILED_CODE`].
pub const DEFERRED_WAIT_PREFIX: &str = "deferred-wait: released ";

/// `deferred-release` sends `TEST_RELEASE` to `echo`; when the reply comes (after `echo`
/// answered every parked request) it prints exactly this line and returns 0. On an
/// error reply: `deferred-release: FAILED call 0 errno <errno>`, [`IPC_FAILED_CODE`].
pub const DEFERRED_RELEASE_DONE: &str = "deferred-release: done";

/// `deadlock-a` has no peers, so it cannot look `deadlock-b` up: it takes `deadlock-b`'s
/// id to be its own `domain_id` plus this. The system description must list
/// `deadlock-b` right after `deadlock-a` (ids follow the order of the description).
pub const DEADLOCK_B_ID_OFFSET: u32 = 1;

/// `deadlock-a` waits for a message from `deadlock-b` (`receive_from`). It prints this,
/// the opcode in lowercase hex without prefix (`7f03`), ` from ` and the source id in
/// decimal when one comes (`deadlock-a: got 7f03 from 2`)...
pub const DEADLOCK_A_GOT_PREFIX: &str = "deadlock-a: got ";

/// ...or this and the errno in decimal when the wait fails; it returns 0 either way.
pub const DEADLOCK_A_ERROR_PREFIX: &str = "deadlock-a: error ";

/// `deadlock-b` waits for a message from its peer `deadlock-a` (`receive_from`); when
/// `deadlock-a` already waits for `deadlock-b`, that is refused with `EDEADLK` (35). It
/// prints this and the errno in decimal (or, if a message came, `deadlock-b: got <opcode>
/// from <id>` with the opcode in hex as `deadlock-a` prints it), then sends `TEST_NOTIFY`
/// (empty) to `deadlock-a` and returns 0.
pub const DEADLOCK_B_ERROR_PREFIX: &str = "deadlock-b: error ";

/// `ipc-bad` misbehaves according to its domain name, one of these. Give it the peer
/// `echo` (`storm` needs it): its messages are addressed to it, so that only the intended
/// thing is wrong (without that peer they go to domain 0):
/// - `bad-desc-addr`: a TX chain whose descriptor 0 is at [`IPC_BAD_ADDR`];
/// - `bad-length`: a message header with `payload_len` = [`IPC_BAD_PAYLOAD_LEN`] in a
///   descriptor 0 of `32 + IPC_BAD_PAYLOAD_LEN` bytes;
/// - `bad-overflow`: two bulk descriptors of `0xffff_fff0` and `0x20` bytes whose sum
///   wraps to the header's `bulk_len` of `0x10` in 32 bits;
/// - `bad-loop`: descriptors 0 and 1 each pointing at the other with NEXT;
/// - `bad-opcode`: a message with opcode [`IPC_BAD_OPCODE`] to `echo`;
/// - `bad-dest`: a `TEST_NOTIFY` to domain [`IPC_BAD_DEST`];
/// - `bad-reply`: a reply to request [`IPC_BAD_REQUEST_ID`], never received;
/// - `storm`: `TEST_NOTIFY` to `echo` with `send` in an endless loop;
/// - `bad-setup`: an `IpcSetup` whose TX descriptor table is at [`IPC_BAD_ADDR`];
/// - `bad-op`: an `Ipc` hypercall with value [`IPC_BAD_OP_VALUE`].
///
/// It prints `ipc-bad: <name>` (nothing else), sets up IPC (except `bad-setup`), does the
/// bad thing and returns [`RESUMED_AFTER_FAULT_CODE`] if the VMM resumes it. Any other
/// name: it prints the same line and returns [`UNKNOWN_NAME_CODE`].
pub const IPC_BAD_NAMES: [&str; 10] = [
    "bad-desc-addr",
    "bad-length",
    "bad-overflow",
    "bad-loop",
    "bad-opcode",
    "bad-dest",
    "bad-reply",
    "storm",
    "bad-setup",
    "bad-op",
];

/// The line prefix of `ipc-bad` (followed by the domain name).
pub const IPC_BAD_PREFIX: &str = "ipc-bad: ";

/// An address far outside any domain's RAM (but canonical).
pub const IPC_BAD_ADDR: u64 = 0x7fff_0000_0000;

/// The `payload_len` of `bad-length`: one more than `INLINE_PAYLOAD_MAX`.
pub const IPC_BAD_PAYLOAD_LEN: u32 = 225;

/// The opcode of `bad-opcode`: not in the registry.
pub const IPC_BAD_OPCODE: u16 = 0x7eff;

/// The destination of `bad-dest`: no such domain.
pub const IPC_BAD_DEST: u32 = 200;

/// The request id `bad-reply` answers.
pub const IPC_BAD_REQUEST_ID: u64 = 0xdead;

/// The `Ipc` hypercall value of `bad-op`: an op that does not exist.
pub const IPC_BAD_OP_VALUE: u32 = 0xff;

/// `ipc-bench` behaves according to its domain name: `bench-null` makes
/// [`BENCH_NULL_COUNT`] `TEST_PING` calls to `echo`, `bench-4k` makes [`BENCH_4K_COUNT`]
/// `TEST_ECHO` calls with [`BENCH_4K_BULK`] bytes of bulk data, `bench-64k`
/// [`BENCH_64K_COUNT`] with [`BENCH_64K_BULK`] bytes. It prints nothing and returns 0 (the
/// host times the whole run); on an error reply it prints `ipc-bench: FAILED <name> <call
/// index> errno <errno>` and returns [`IPC_FAILED_CODE`]; for another name it prints
/// `ipc-bench: unknown <name>` and returns [`UNKNOWN_NAME_CODE`].
pub const IPC_BENCH_NAMES: [&str; 3] = ["bench-null", "bench-4k", "bench-64k"];

/// Calls of `bench-null`.
pub const BENCH_NULL_COUNT: u32 = 5000;

/// Calls of `bench-4k`.
pub const BENCH_4K_COUNT: u32 = 2000;

/// Bulk bytes per call of `bench-4k`.
pub const BENCH_4K_BULK: u32 = 4096;

/// Calls of `bench-64k`.
pub const BENCH_64K_COUNT: u32 = 300;

/// Bulk bytes per call of `bench-64k`.
pub const BENCH_64K_BULK: u32 = 65536;

/// Pages `ckpt-probe` writes between its checkpoints.
pub const CKPT_PAGES: usize = 16;

/// The x87 control word `x87-probe` loads between its two `Nop`s: round toward zero,
/// 53-bit precision, every exception masked (not the `fninit` default, 0x037f).
pub const X87_PROBE_CONTROL_WORD: u16 = 0x0e7f;

/// Exit code of `x87-probe` when its control word was lost across its second `Nop`.
pub const X87_PROBE_LOST: u32 = 87;

/// One-way messages `queue-crasher` queues behind its poison request.
pub const QUEUED_NOTIFIES: u64 = 5;

// ---------------------------------------------------------------------------------------
// Block device images. `blk` (the driver domain, in `os/`) needs `disk = true`; the
// clients call it as the peer named `blk`. `blk-bad` and `mmio-loop` drive the device
// themselves and need a disk of their own.
// ---------------------------------------------------------------------------------------

/// The peer name of the block driver domain.
pub const BLK_PEER: &str = "blk";

/// Sectors of the disk the tests give `blk-client` (2 MiB).
pub const BLK_TEST_SECTORS: u64 = 4096;

/// Byte `offset` of the test disk before `blk-client` runs (the host writes it).
pub const fn blk_initial(offset: u64) -> u8 {
    offset.wrapping_mul(13).to_le_bytes()[0] ^ (offset >> 9).to_le_bytes()[0]
}

/// Byte `offset` of the test disk in a range `blk-client` wrote.
pub const fn blk_written(offset: u64) -> u8 {
    offset.wrapping_mul(7).to_le_bytes()[0] ^ 0xa5 ^ (offset >> 12).to_le_bytes()[0]
}

/// The ranges `blk-client` writes (first sector, sectors): a small one, and a full
/// 1 MiB one that ends at the last sector of the disk. Everything else keeps
/// [`blk_initial`].
pub const BLK_CLIENT_WRITES: [(u64, u32); 2] = [(10, 3), (2048, 2048)];

/// `blk-client` prints this line and returns 0 when every check passed; otherwise a line
/// `blk-client: FAILED <what> <n>` and [`IPC_FAILED_CODE`].
pub const BLK_CLIENT_OK: &str = "blk-client: ok";

/// `blk-bench` moves this many MiB each way, 1 MiB per `BLK_READ`/`BLK_WRITE`...
pub const BLK_BENCH_MIB: u64 = 64;

/// ...on a disk of this many MiB (its writes wrap around). It makes a `Nop` hypercall
/// before the writes, after the writes and their `BLK_FLUSH`, and after the reads, then
/// returns 0 (or prints `blk-bench: FAILED ...` and returns [`IPC_FAILED_CODE`]).
pub const BLK_BENCH_DISK_MIB: u64 = 16;

/// `mmio-loop` reads the block device's magic register this many times (one MMIO exit
/// each), then returns 0 (1 if a read did not return the magic value).
pub const MMIO_LOOP_COUNT: u32 = 20_000;

/// `blk-bad` sets the block device up correctly, then does what its domain name says;
/// each is a fault of the domain, and none may change the disk. If the VMM resumes it,
/// it returns [`RESUMED_AFTER_FAULT_CODE`]; for any other name it returns
/// [`UNKNOWN_NAME_CODE`].
/// - `bad-sector`: a write of one sector at the disk's capacity (past the end);
/// - `bad-overflow`: a write of two sectors at sector `u64::MAX`;
/// - `bad-length`: a write of 700 bytes;
/// - `bad-address`: a write whose data descriptor points past the end of RAM;
/// - `bad-vmm-area`: a read into the page tables (guest address 0x3000);
/// - `bad-loop`: a write whose chain loops (data descriptor back to itself);
/// - `bad-direction`: a write whose data descriptor is device-writable;
/// - `bad-queue`: the queue made ready again with 3 entries;
/// - `bad-register`: a write to the read-only magic register;
/// - `outside-window`: a read just past the device's registers (inside its mapping).
pub const BLK_BAD_CASES: [&str; 10] = [
    "bad-sector",
    "bad-overflow",
    "bad-length",
    "bad-address",
    "bad-vmm-area",
    "bad-loop",
    "bad-direction",
    "bad-queue",
    "bad-register",
    "outside-window",
];

/// The byte `blk-rollback` writes over sector 0.
pub const BLK_ROLLBACK_BYTE: u8 = 0x5a;

/// Pages `track-probe` writes in its first phase: more than a process domain's write
/// log holds (`virtio_seep::abi::process::WRITTEN_LOG_LEN`), so the log overflows.
pub const TRACK_PAGES: usize = 400;

/// Phases of `track-probe` that write only its first page, while the others cool
/// down (more than the write tracking's first hot period, in checkpoints).
pub const TRACK_COOL_PHASES: usize = 80;

/// Phases of `track-probe` (each ends with a `Nop`).
pub const TRACK_PHASES: usize = TRACK_COOL_PHASES + 3;

/// Pages `track-probe` writes again after they cooled down (its pages 1 up to this).
pub const TRACK_REWRITTEN: usize = 3;

/// Pages of `declared-probe`'s declared region: more than a process domain's write
/// log holds (`virtio_seep::abi::process::WRITTEN_LOG_LEN`), so its first phase
/// overflows the log.
pub const DECLARED_PAGES: usize = 330;

/// Phases of `declared-probe` (each ends with a `Nop`).
pub const DECLARED_PHASES: usize = 6;
