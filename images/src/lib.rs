//! The guest images built into Ankh, and the check that they contain no SIMD code.
//!
//! `build.rs` builds the nested guest workspace (`guest-servers/`) with its SSE-free
//! flags and embeds every executable it produces; [`builtin`] and [`find`] give them to
//! the VMM. [`simd`] finds SSE/AVX instructions, which KVM cannot run in a guest on the
//! project's machines: in an image before it runs, or at a failed guest instruction.
//! [`expect`] says what each test image does, for the VMM's tests; [`ubench`] names
//! the workloads of the `ubench` program.
#![forbid(unsafe_code)]

#[path = "../../guest-servers/test-images/src/expect.rs"]
pub mod expect;
pub mod simd;
#[path = "../../guest-servers/apps/src/workloads.rs"]
pub mod ubench;

/// A guest image embedded in the binary.
#[derive(Debug)]
pub struct BuiltinImage {
    /// The image's name: the name of the guest binary that produced it, e.g. `hello`.
    pub name: &'static str,
    /// The ELF executable, 16-byte aligned (so its headers can be read in place).
    pub elf: &'static [u8],
}

/// Bytes with the alignment of the largest ELF header field, for the embedded images.
#[repr(C, align(16))]
struct Aligned<Bytes: ?Sized>(Bytes);

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

include!(concat!(env!("OUT_DIR"), "/tender.rs"));

/// The tender of the process substrate: the static Linux program each process domain
/// starts as (`guest-servers/tender`, see `virtio_seep::abi::process`).
pub fn tender() -> &'static [u8] {
    &TENDER_ELF.0
}

/// The root file system archive (`ankh_proto::rootfs` format) built with the images:
/// the programs of `guest-servers/rootfs.list` in `/bin` and the files of
/// `images/rootfs/`.
pub fn root_fs() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/rootfs.img"))
}

/// The root disk: an ext2 image of the same files as [`root_fs`], built by
/// `ankh_ext2`, in `ankh_ext2::sparse` form (expand it with `ankh_ext2::unsparse_into`).
pub fn root_disk() -> &'static [u8] {
    include_bytes!(concat!(env!("OUT_DIR"), "/rootdisk.sparse"))
}

/// Every built-in image, sorted by name.
pub fn builtin() -> &'static [BuiltinImage] {
    BUILTIN
}

/// The built-in image called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static BuiltinImage> {
    BUILTIN
        .binary_search_by(|image| image.name.cmp(name))
        .ok()
        .map(|index| &BUILTIN[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        assert!(builtin().windows(2).all(|pair| pair[0].name < pair[1].name));
    }

    #[test]
    fn images_are_aligned() {
        for image in builtin() {
            assert_eq!(image.elf.as_ptr().align_offset(16), 0, "{}", image.name);
        }
    }

    #[test]
    fn find_by_name() {
        for image in builtin() {
            assert_eq!(find(image.name).map(|found| found.name), Some(image.name));
        }
        assert!(find("no-such-image").is_none());
    }
}
