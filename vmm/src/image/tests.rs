//! The ELF and ABI checks, on a real built image with one defect patched in each time.

use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection};

use super::*;

fn hello() -> Vec<u8> {
    ankh_images::find("hello")
        .expect("hello is built in")
        .elf
        .to_vec()
}

fn parse(bytes: Vec<u8>) -> Result<GuestImage, ImageError> {
    GuestImage::parse("patched", bytes)
}

fn abi_note_offset(bytes: &[u8]) -> usize {
    let elf = ElfFile64::<Endianness>::parse(bytes).unwrap();
    let section = elf.section_by_name(ABI_NOTE_SECTION).unwrap();
    let (offset, _) = section.file_range().unwrap();
    usize::try_from(offset).unwrap()
}

#[test]
fn the_built_image_is_valid() {
    let image = parse(hello()).unwrap();
    assert!(image.entry() >= IMAGE_BASE);
    assert!(image.end() > image.entry());
    image.check_fits(4 << 20).unwrap();
}

#[test]
fn the_stack_is_found_by_its_symbols_and_not_without_them() {
    let stack = parse(hello())
        .unwrap()
        .stack()
        .expect("hello names its stack");
    assert_eq!(
        stack.end - stack.start,
        0x1_0000,
        "the runtime's 64 KiB stack"
    );
    let mut bytes = hello();
    let name = b"__ankh_stack_top\0";
    let at = bytes
        .windows(name.len())
        .position(|window| window == name)
        .expect("the symbol's name is in the string table");
    bytes[at + name.len() - 2] = b'q';
    assert_eq!(parse(bytes).unwrap().stack(), None);
}

#[test]
fn bad_magic_is_refused() {
    let mut bytes = hello();
    bytes[0] = b'M';
    assert!(matches!(parse(bytes), Err(ImageError::BadMagic)));
    assert!(matches!(
        parse(b"#!/bin/sh\n".to_vec()),
        Err(ImageError::BadMagic)
    ));
    assert!(matches!(parse(Vec::new()), Err(ImageError::BadMagic)));
}

#[test]
fn wrong_architecture_is_refused() {
    let mut aarch64 = hello();
    aarch64[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    let err = parse(aarch64).unwrap_err();
    assert!(matches!(err, ImageError::WrongArchitecture(_)), "{err}");
    assert!(err.to_string().contains("x86-64"), "{err}");

    let mut elf32 = hello();
    elf32[4] = 1; // ELFCLASS32
    assert!(matches!(
        parse(elf32),
        Err(ImageError::WrongArchitecture(_))
    ));
}

#[test]
fn truncated_image_is_malformed_not_a_panic() {
    let bytes = hello();
    for len in [6, 40, 64, 200, bytes.len() / 2] {
        let err = parse(bytes[..len].to_vec()).unwrap_err();
        assert!(
            matches!(err, ImageError::Malformed(_) | ImageError::MissingAbiNote),
            "{len}: {err}"
        );
    }
}

#[test]
fn segment_outside_guest_memory_is_refused() {
    let image = parse(hello()).unwrap();
    let err = image.check_fits(IMAGE_BASE + 0x1000).unwrap_err();
    assert!(
        matches!(err, ImageError::SegmentOutsideMemory { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("more memory"), "{err}");

    let memory = DomainMemory::new(2 << 20).unwrap();
    let big = GuestImage {
        segments: vec![Segment {
            addr: IMAGE_BASE,
            mem_size: u64::MAX - 8,
            executable: true,
        }],
        ..image.clone()
    };
    assert!(matches!(
        big.load(&memory),
        Err(ImageError::SegmentOutsideMemory { .. })
    ));
    let low = GuestImage {
        segments: vec![Segment {
            addr: 0x1000,
            mem_size: 0x1000,
            executable: true,
        }],
        ..image
    };
    assert!(matches!(
        low.check_fits(4 << 20),
        Err(ImageError::SegmentOutsideMemory { .. })
    ));
}

#[test]
fn abi_mismatch_is_refused_with_both_versions() {
    let mut bytes = hello();
    let offset = abi_note_offset(&bytes) + 8;
    bytes[offset..offset + 4].copy_from_slice(&(ABI_VERSION + 1).to_le_bytes());
    let err = parse(bytes).unwrap_err();
    assert!(
        matches!(err, ImageError::AbiMismatch { image, vmm } if image == ABI_VERSION + 1 && vmm == ABI_VERSION),
        "{err}"
    );
}

#[test]
fn missing_or_corrupt_abi_note_is_refused() {
    let mut corrupt = hello();
    let offset = abi_note_offset(&corrupt);
    corrupt[offset] ^= 0xff;
    assert!(matches!(parse(corrupt), Err(ImageError::BadAbiNote)));

    let mut renamed = hello();
    let name = ABI_NOTE_SECTION.as_bytes();
    let at = renamed
        .windows(name.len() + 1)
        .position(|w| &w[..name.len()] == name && w[name.len()] == 0)
        .expect("section name in the string table");
    renamed[at + 1] = b'X';
    assert!(matches!(parse(renamed), Err(ImageError::MissingAbiNote)));
}

#[test]
fn exception_stubs_must_be_code() {
    let image = parse(hello()).unwrap();
    assert!(image.exception_stubs() >= IMAGE_BASE);

    let mut bytes = hello();
    let offset = abi_note_offset(&bytes) + virtio_seep::abi::ABI_NOTE_STUBS_OFFSET;
    for bad in [0x2000u64, u64::MAX - 8, image.end()] {
        bytes[offset..offset + 8].copy_from_slice(&bad.to_le_bytes());
        let err = parse(bytes.clone()).unwrap_err();
        assert!(
            matches!(err, ImageError::BadExceptionStubs(a) if a == bad),
            "{err}"
        );
    }
    bytes[offset..offset + 8].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(parse(bytes).unwrap().exception_stubs(), 0);
}

proptest::proptest! {
    /// Whatever bytes a file holds, parsing and loading return a result: no panic, and
    /// nothing is written outside the domain's memory (loads go through vm-memory).
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        if let Ok(image) = parse(bytes) {
            let memory = DomainMemory::new(2 << 20).unwrap();
            let _ = image.load(&memory);
        }
    }

    /// A real image with a few bytes changed anywhere parses or fails cleanly, and when it
    /// parses its segments, entry and stubs still satisfy every check.
    #[test]
    fn corrupted_images_never_panic(
        edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..8)
    ) {
        let mut bytes = hello();
        let len = bytes.len();
        for (at, value) in edits {
            bytes[at % len] = value;
        }
        if let Ok(image) = parse(bytes) {
            let memory = DomainMemory::new(4 << 20).unwrap();
            if image.load(&memory).is_ok() {
                for segment in image.segments() {
                    proptest::prop_assert!(segment.addr >= IMAGE_BASE);
                    proptest::prop_assert!(segment.addr + segment.mem_size <= memory.size());
                }
            }
        }
    }
}
