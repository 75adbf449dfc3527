//! The built-in images are the ones the VMM expects, laid out as it loads them, and do
//! what `ankh_images::expect` says.

use ankh_images::expect::{
    FAULT_PANIC_FILE, FAULT_PANIC_LINE, FAULT_PANIC_MESSAGE, FAULT_SSE_BYTES, HELLO_PREFIX,
};
use ankh_images::{builtin, find};
use object::elf::PT_LOAD;
use object::read::elf::{ElfFile64, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use virtio_seep::abi::layout::IMAGE_BASE;
use virtio_seep::abi::{AbiNote, ABI_NOTE_MAGIC, ABI_NOTE_SECTION, ABI_VERSION};
use zerocopy::FromBytes;

const NAMES: [&str; 65] = [
    "blk",
    "blk-bad",
    "blk-bench",
    "blk-client",
    "blk-rollback",
    "boot-probe",
    "bulk",
    "busy-caller",
    "busy-loop",
    "child-args",
    "child-exit3",
    "child-hog",
    "child-sleep",
    "child-subscribe",
    "child-ud2",
    "ckpt-probe",
    "code-writer",
    "crasher",
    "deadlock-a",
    "deadlock-b",
    "debug-probe",
    "declared-probe",
    "deferred-release",
    "deferred-wait",
    "disk-bench",
    "disk-check",
    "disk-writer",
    "ds",
    "echo",
    "exit7",
    "fault-div0",
    "fault-hypercall",
    "fault-mmio",
    "fault-page",
    "fault-panic",
    "fault-port",
    "fault-spin",
    "fault-sse",
    "fault-triple",
    "fault-ud2",
    "flood",
    "hanger",
    "hello",
    "hello-os",
    "hog",
    "hostile",
    "init",
    "ipc-bad",
    "ipc-bench",
    "mm",
    "mmio-loop",
    "nop-loop",
    "oneway-crasher",
    "ping",
    "pipe-child",
    "pm",
    "queue-crasher",
    "release-crasher",
    "segment-probe",
    "suite",
    "syscall-probe",
    "track-probe",
    "ubench",
    "vfs",
    "x87-probe",
];

fn elf(name: &str) -> &'static [u8] {
    find(name).unwrap_or_else(|| panic!("no image {name}")).elf
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn the_tender_is_a_static_linux_program_not_a_guest_image() {
    let file = ElfFile64::<Endianness>::parse(ankh_images::tender()).expect("the tender");
    let entry = file.entry();
    assert_eq!(entry, virtio_seep::abi::process::TENDER_BASE);
    assert!(find("tender").is_none(), "not among the guest images");
}

#[test]
fn all_images_are_built_in() {
    let names: Vec<&str> = builtin().iter().map(|image| image.name).collect();
    assert_eq!(names, NAMES);
}

#[test]
fn images_load_above_image_base_and_enter_at_start() {
    for name in NAMES {
        let file = ElfFile64::<Endianness>::parse(elf(name)).expect(name);
        let endian = file.endian();
        let loads: Vec<_> = file
            .elf_program_headers()
            .iter()
            .filter(|header| header.p_type(endian) == PT_LOAD)
            .collect();
        assert!(!loads.is_empty(), "{name}: no PT_LOAD");
        for header in loads {
            assert!(
                header.p_paddr(endian) >= IMAGE_BASE,
                "{name}: segment below IMAGE_BASE"
            );
            assert_eq!(
                header.p_paddr(endian) % 4096,
                0,
                "{name}: segment not page-aligned"
            );
        }
        let start = file
            .symbols()
            .find(|symbol| symbol.name() == Ok("_start"))
            .unwrap_or_else(|| panic!("{name}: no _start"));
        assert_eq!(file.entry(), start.address(), "{name}: entry is not _start");
    }
}

#[test]
fn images_carry_the_current_abi_note() {
    for name in NAMES {
        let file = ElfFile64::<Endianness>::parse(elf(name)).expect(name);
        let section = file
            .section_by_name(ABI_NOTE_SECTION)
            .unwrap_or_else(|| panic!("{name}: no {ABI_NOTE_SECTION}"));
        let (note, _) = AbiNote::read_from_prefix(section.data().expect(name)).expect(name);
        assert_eq!(note.magic, ABI_NOTE_MAGIC, "{name}");
        assert_eq!(note.version, ABI_VERSION, "{name}");
        assert_eq!(note.flags, 0, "{name}");
        let stubs = file
            .symbols()
            .find(|symbol| symbol.name() == Ok("__ankh_exception_stubs"))
            .unwrap_or_else(|| panic!("{name}: no exception stubs"));
        assert_eq!(
            note.exception_stubs,
            stubs.address(),
            "{name}: note names the stubs"
        );
    }
}

#[test]
fn panic_location_matches_the_source() {
    let source = include_str!("../../guest-servers/test-images/src/bin/fault-panic.rs");
    let line = source
        .lines()
        .position(|line| line.contains(&format!("panic!(\"{FAULT_PANIC_MESSAGE}\")")))
        .expect("fault-panic.rs panics with FAULT_PANIC_MESSAGE");
    assert_eq!(u32::try_from(line + 1), Ok(FAULT_PANIC_LINE));
    assert!(contains(elf("fault-panic"), FAULT_PANIC_FILE.as_bytes()));
    assert!(contains(elf("fault-panic"), FAULT_PANIC_MESSAGE.as_bytes()));
}

#[test]
fn images_hold_their_markers() {
    assert!(contains(elf("hello"), HELLO_PREFIX.as_bytes()));
    assert!(contains(elf("fault-sse"), &FAULT_SSE_BYTES));
}
