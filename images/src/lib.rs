//! The guest images built into Ankh.
//!
//! `build.rs` builds the nested guest workspace (`guest-servers/`) with its SSE-free
//! flags and embeds every executable it produces, the tender, the root file system and
//! the root disk. The VMM library does not depend on this crate (it would then wait for
//! the guest build): it reads them from `ankh-image-catalog`, re-exported here, once a
//! program called [`install`]. This crate's own lookups ([`builtin`], [`find`], ...)
//! install first.
#![forbid(unsafe_code)]

pub use ankh_image_catalog::{expect, simd, ubench, BuiltinImage, Catalog};

/// Bytes with the alignment of the largest ELF header field, for the embedded images.
#[repr(C, align(16))]
struct Aligned<Bytes: ?Sized>(Bytes);

include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

include!(concat!(env!("OUT_DIR"), "/tender.rs"));

/// Everything this build of the guests produced.
static CATALOG: Catalog = Catalog {
    images: BUILTIN,
    tender: &TENDER_ELF.0,
    root_fs: include_bytes!(concat!(env!("OUT_DIR"), "/rootfs.img")),
    root_disk: include_bytes!(concat!(env!("OUT_DIR"), "/rootdisk.sparse")),
};

/// Makes the embedded images the ones the VMM library reads (`ankh_image_catalog`):
/// a program that runs guests calls it first. Calling it again does nothing.
pub fn install() {
    ankh_image_catalog::install(&CATALOG);
}

/// The tender of the process substrate (see [`Catalog::tender`]).
pub fn tender() -> &'static [u8] {
    install();
    CATALOG.tender
}

/// The root file system archive (see [`Catalog::root_fs`]).
pub fn root_fs() -> &'static [u8] {
    install();
    CATALOG.root_fs
}

/// The root disk, in `ankh_ext2::sparse` form (see [`Catalog::root_disk`]).
pub fn root_disk() -> &'static [u8] {
    install();
    CATALOG.root_disk
}

/// Every built-in image, sorted by name.
pub fn builtin() -> &'static [BuiltinImage] {
    install();
    CATALOG.images
}

/// The built-in image called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static BuiltinImage> {
    install();
    CATALOG.find(name)
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

    #[test]
    fn install_gives_the_catalog_to_the_vmm() {
        install();
        assert_eq!(ankh_image_catalog::builtin().len(), builtin().len());
        assert_eq!(ankh_image_catalog::tender().as_ptr(), tender().as_ptr());
        assert_eq!(ankh_image_catalog::root_fs().as_ptr(), root_fs().as_ptr());
        assert_eq!(
            ankh_image_catalog::root_disk().as_ptr(),
            root_disk().as_ptr()
        );
    }
}
