//! Pins a fingerprint of the guest/VMM contract so that no change to it goes out under
//! an old [`ABI_VERSION`].
//!
//! The fingerprint is a text listing of every size, alignment, field offset and value
//! a guest image bakes in: the `abi` module (note, hypercalls, memory layout, boot
//! information, the block device), the message header, the queue setup, the split-ring
//! layout, the opcode table (the VMM classifies messages by it) and the error numbers.
//! `abi_fingerprint.txt` holds the listing of the current version. When the listing
//! changes and [`ABI_VERSION`] did not, the test fails and says to bump it; after a
//! bump, `ANKH_BLESS_ABI=1 cargo test -p virtio-seep --test abi_fingerprint` re-pins the
//! listing (it refuses to re-pin an unchanged version).

use std::fmt::Write as _;

use virtio_seep::abi::blk::{self, config, reg, RequestHeader};
use virtio_seep::abi::boot::{BootInfo, Peer};
use virtio_seep::abi::declared::DeclaredLog;
use virtio_seep::abi::hypercall::{self, Hypercall};
use virtio_seep::abi::{self, layout, AbiNote, ABI_VERSION};
use virtio_seep::message::{self, MessageHeader};
use virtio_seep::queue::{self, IpcOp, QueueSetup, RingAddresses};
use virtio_seep::split::{self, SplitRing};
use virtio_seep::{errno, opcode};
use zerocopy::FromZeros;

/// The pinned listing, beginning with its `ABI_VERSION = N` line.
const PINNED: &str = include_str!("abi_fingerprint.txt");

/// Where the pinned listing lives, for the bless step and the messages.
const PINNED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/abi_fingerprint.txt");

/// One `name = value` line per constant, spelled as in the source.
macro_rules! values {
    ($out:expr, $($path:path),+ $(,)?) => {
        $( writeln!($out, "{} = {:?}", stringify!($path), $path).unwrap(); )+
    };
}

/// Size and alignment of a type, then offset and size of each listed field.
macro_rules! layout {
    ($out:expr, $ty:ty, $instance:expr, [$($field:ident),+ $(,)?]) => {{
        let instance: $ty = $instance;
        writeln!(
            $out,
            "{}: size {} align {}",
            stringify!($ty),
            core::mem::size_of::<$ty>(),
            core::mem::align_of::<$ty>()
        )
        .unwrap();
        $(
            writeln!(
                $out,
                "  .{} at {} size {}",
                stringify!($field),
                core::mem::offset_of!($ty, $field),
                core::mem::size_of_val(&instance.$field)
            )
            .unwrap();
        )+
    }};
}

/// The listing of everything a guest image depends on, without the version itself.
fn describe() -> String {
    let mut out = String::new();

    writeln!(out, "# abi").unwrap();
    values!(
        out,
        abi::ABI_NOTE_SECTION,
        abi::ABI_NOTE_MAGIC,
        abi::EXCEPTION_VECTORS,
        abi::EXCEPTION_STUB_SIZE,
        abi::ABI_NOTE_VERSION_OFFSET,
        abi::ABI_NOTE_STUBS_OFFSET,
    );
    layout!(
        out,
        AbiNote,
        AbiNote::new_zeroed(),
        [magic, version, flags, exception_stubs]
    );

    writeln!(out, "# abi::hypercall").unwrap();
    values!(
        out,
        hypercall::HYPERCALL_PORT_BASE,
        hypercall::HYPERCALL_COUNT,
        hypercall::HYPERCALL_PORT_STRIDE,
        hypercall::HYPERCALL_PORT_END,
        hypercall::CONSOLE_WRITE_MAX,
        hypercall::PANIC_TEXT_MAX,
        hypercall::UNASSIGNED_PORT,
    );
    for call in Hypercall::ALL {
        writeln!(
            out,
            "Hypercall::{call:?} = {} port {:#x} name {}",
            call as u16,
            call.port(),
            call.name()
        )
        .unwrap();
    }

    writeln!(out, "# abi::declared").unwrap();
    values!(
        out,
        abi::declared::DECLARED_LOG_LEN,
        abi::declared::DECLARED_LOG_LEN_OFFSET,
    );
    layout!(
        out,
        DeclaredLog,
        DeclaredLog::new_zeroed(),
        [requested, declared, len, overflow, pages]
    );

    writeln!(out, "# abi::layout").unwrap();
    values!(
        out,
        layout::PAGE_SIZE,
        layout::GDT_ADDR,
        layout::TSS_ADDR,
        layout::BOOT_INFO_ADDR,
        layout::PML4_ADDR,
        layout::PDPT_ADDR,
        layout::PD_ADDR,
        layout::PT_LOW_ADDR,
        layout::IDT_ADDR,
        layout::DEVICE_PD_ADDR,
        layout::DEVICE_WINDOW_BASE,
        layout::DEVICE_WINDOW_MAP_SIZE,
        layout::EXCEPTION_STACK_BOTTOM,
        layout::EXCEPTION_STACK_TOP,
        layout::IMAGE_BASE,
        layout::IDENTITY_MAP_SIZE,
        layout::SUPERVISOR_AREA_END,
        layout::CODE64_SELECTOR,
        layout::DATA_SELECTOR,
        layout::USER_DATA_SELECTOR,
        layout::USER_CODE64_SELECTOR,
        layout::TSS_SELECTOR,
        layout::MIN_MEMORY_SIZE,
        layout::MAX_MEMORY_SIZE,
    );

    writeln!(out, "# abi::boot").unwrap();
    values!(
        out,
        abi::boot::BOOT_INFO_MAGIC,
        abi::boot::DOMAIN_NAME_MAX,
        abi::boot::PEERS_MAX,
        abi::boot::PEER_NAME_MAX,
    );
    layout!(out, Peer, Peer::new_zeroed(), [id, name_len, name]);
    layout!(
        out,
        BootInfo,
        BootInfo::new_zeroed(),
        [
            magic,
            abi_version,
            name_len,
            memory_size,
            free_memory_start,
            name,
            domain_id,
            peer_count,
            peers
        ]
    );

    writeln!(out, "# abi::blk").unwrap();
    values!(
        out,
        blk::BLK_MMIO_BASE,
        blk::BLK_MMIO_SIZE,
        blk::MAGIC,
        blk::VERSION,
        blk::DEVICE_ID_BLOCK,
        blk::VENDOR_ID,
        reg::MAGIC_VALUE,
        reg::VERSION,
        reg::DEVICE_ID,
        reg::VENDOR_ID,
        reg::DEVICE_FEATURES,
        reg::DEVICE_FEATURES_SEL,
        reg::DRIVER_FEATURES,
        reg::DRIVER_FEATURES_SEL,
        reg::QUEUE_SEL,
        reg::QUEUE_NUM_MAX,
        reg::QUEUE_NUM,
        reg::QUEUE_READY,
        reg::QUEUE_NOTIFY,
        reg::INTERRUPT_STATUS,
        reg::INTERRUPT_ACK,
        reg::STATUS,
        reg::QUEUE_DESC_LOW,
        reg::QUEUE_DESC_HIGH,
        reg::QUEUE_DRIVER_LOW,
        reg::QUEUE_DRIVER_HIGH,
        reg::QUEUE_DEVICE_LOW,
        reg::QUEUE_DEVICE_HIGH,
        reg::CONFIG_GENERATION,
        reg::CONFIG,
        config::CAPACITY,
        config::SIZE_MAX,
        config::SEG_MAX,
        config::BLK_SIZE,
        config::SIZE,
        blk::STATUS_ACKNOWLEDGE,
        blk::STATUS_DRIVER,
        blk::STATUS_DRIVER_OK,
        blk::STATUS_FEATURES_OK,
        blk::STATUS_FAILED,
        blk::F_SIZE_MAX,
        blk::F_SEG_MAX,
        blk::F_BLK_SIZE,
        blk::F_FLUSH,
        blk::F_VERSION_1,
        blk::DEVICE_FEATURES,
        blk::QUEUE_NUM_MAX,
        blk::SEG_MAX,
        blk::SIZE_MAX,
        blk::SECTOR_SIZE,
        blk::T_IN,
        blk::T_OUT,
        blk::T_FLUSH,
        blk::T_GET_ID,
        blk::S_OK,
        blk::S_IOERR,
        blk::S_UNSUPP,
        blk::ID_BYTES,
        blk::DEVICE_ID_STRING,
    );
    layout!(
        out,
        RequestHeader,
        RequestHeader::default(),
        [kind, reserved, sector]
    );

    writeln!(out, "# message").unwrap();
    values!(
        out,
        message::VMM_DOMAIN,
        message::INLINE_PAYLOAD_MAX,
        message::MESSAGE_BUFFER_SIZE,
        message::HEADER_SIZE,
        message::BULK_MAX,
        message::CHAIN_MAX,
        message::FLAG_TRUNCATED,
    );
    layout!(
        out,
        MessageHeader,
        MessageHeader::default(),
        [
            source,
            destination,
            opcode,
            flags,
            status,
            request_id,
            payload_len,
            bulk_len
        ]
    );

    writeln!(out, "# queue").unwrap();
    values!(out, queue::QUEUE_SIZE_MAX);
    layout!(
        out,
        RingAddresses,
        RingAddresses::default(),
        [desc, avail, used, size, reserved]
    );
    layout!(out, QueueSetup, QueueSetup::default(), [tx, rx]);
    for op in [IpcOp::Flush, IpcOp::Receive, IpcOp::AwaitReply] {
        writeln!(
            out,
            "IpcOp::{op:?} = {} (source 5: {:#x})",
            op as u8,
            op.encode(5)
        )
        .unwrap();
    }

    writeln!(out, "# split").unwrap();
    values!(
        out,
        split::QUEUE_SIZE,
        split::DESC_F_NEXT,
        split::DESC_F_WRITE
    );
    layout!(
        out,
        split::Descriptor,
        split::Descriptor::default(),
        [addr, len, flags, next]
    );
    layout!(
        out,
        split::AvailRing,
        SplitRing::new().avail,
        [flags, idx, ring, used_event]
    );
    layout!(out, split::UsedElem, split::UsedElem::default(), [id, len]);
    layout!(
        out,
        split::UsedRing,
        SplitRing::new().used,
        [flags, idx, ring, avail_event]
    );
    layout!(out, SplitRing, SplitRing::new(), [desc, avail, used]);

    writeln!(out, "# opcode").unwrap();
    for info in opcode::OPCODES {
        writeln!(
            out,
            "{:#06x} {} {:?} expects_reply={}",
            info.code, info.name, info.class, info.expects_reply
        )
        .unwrap();
    }

    writeln!(out, "# errno").unwrap();
    values!(
        out,
        errno::OK,
        errno::EPERM,
        errno::ENOENT,
        errno::ESRCH,
        errno::EIO,
        errno::E2BIG,
        errno::ENOEXEC,
        errno::EBADF,
        errno::ECHILD,
        errno::EAGAIN,
        errno::ENOMEM,
        errno::EFAULT,
        errno::EEXIST,
        errno::ENOTDIR,
        errno::EISDIR,
        errno::EINVAL,
        errno::ENFILE,
        errno::EMFILE,
        errno::ENOSPC,
        errno::ESPIPE,
        errno::EPIPE,
        errno::EDEADLK,
        errno::ENAMETOOLONG,
        errno::ENOSYS,
        errno::ENOTEMPTY,
        errno::EMSGSIZE,
        errno::EDEADSRCDST,
        errno::ERESTART,
    );
    out
}

/// The version line of a listing file.
fn version_line(version: u32) -> String {
    format!("ABI_VERSION = {version}\n")
}

/// Splits the pinned file into its version and its listing.
fn parse_pinned(pinned: &str) -> (u32, &str) {
    let (first, rest) = pinned
        .split_once('\n')
        .expect("abi_fingerprint.txt starts with an `ABI_VERSION = N` line");
    let version = first
        .strip_prefix("ABI_VERSION = ")
        .and_then(|number| number.trim().parse().ok())
        .expect("abi_fingerprint.txt starts with an `ABI_VERSION = N` line");
    (version, rest)
}

/// The lines only one side has, for the failure message.
fn difference(pinned: &str, current: &str) -> String {
    let mut diff = String::new();
    for line in pinned
        .lines()
        .filter(|line| !current.lines().any(|l| l == *line))
    {
        writeln!(diff, "  - {line}").unwrap();
    }
    for line in current
        .lines()
        .filter(|line| !pinned.lines().any(|l| l == *line))
    {
        writeln!(diff, "  + {line}").unwrap();
    }
    diff
}

#[test]
fn abi_changes_come_with_a_version_bump() {
    let current = describe();
    let (pinned_version, pinned) = parse_pinned(PINNED);
    let bless = std::env::var_os("ANKH_BLESS_ABI").is_some();

    if pinned_version == ABI_VERSION {
        assert!(
            pinned == current,
            "the guest/VMM ABI changed but ABI_VERSION is still {ABI_VERSION}: bump \
             ABI_VERSION in virtio-seep/src/abi.rs, then re-pin with `ANKH_BLESS_ABI=1 \
             cargo test -p virtio-seep --test abi_fingerprint`. Changed lines:\n{}",
            difference(pinned, &current)
        );
        return;
    }
    assert!(
        ABI_VERSION > pinned_version,
        "ABI_VERSION went back from {pinned_version} to {ABI_VERSION}: versions only grow"
    );
    assert!(
        bless,
        "ABI_VERSION is {ABI_VERSION} but {PINNED_PATH} pins version {pinned_version}: \
         re-pin with `ANKH_BLESS_ABI=1 cargo test -p virtio-seep --test abi_fingerprint`"
    );
    std::fs::write(PINNED_PATH, version_line(ABI_VERSION) + &current)
        .unwrap_or_else(|e| panic!("cannot write {PINNED_PATH}: {e}"));
}

#[test]
fn listing_sees_a_changed_layout() {
    // The fingerprint is only as good as the listing: a field moved or a constant
    // changed must change it.
    let listing = describe();
    assert!(listing.contains("MessageHeader: size 32 align 8"));
    assert!(listing.contains("  .request_id at 16 size 8"));
    assert!(listing.contains("layout::IMAGE_BASE = 1048576"));
    assert!(listing.contains("0x0501 blk-read Query expects_reply=true"));
    assert_ne!(
        difference("a\nb\n", "a\nc\n"),
        "",
        "a changed line must show up in the message"
    );
}

#[test]
fn pinned_file_names_a_version() {
    let (version, listing) = parse_pinned(PINNED);
    assert!(version >= 1);
    assert!(listing.starts_with("# abi\n"));
}
