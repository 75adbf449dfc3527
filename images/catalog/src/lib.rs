//! What the VMM knows of the guest images without building them.
//!
//! The images themselves are build output of `ankh-images` (its build script builds the
//! nested guest workspace); the VMM library depends on this crate instead, so that it
//! compiles while the guests build. A program that runs guests installs the built
//! images once, at its start (`ankh_images::install()`); [`builtin`], [`find`],
//! [`tender`], [`root_fs`] and [`root_disk`] then read them.
//!
//! [`simd`] finds SSE/AVX instructions, which KVM cannot run in a guest on the project's
//! machines: in an image before it runs, or at a failed guest instruction. [`expect`]
//! says what each test image does, for the VMM's tests; [`ubench`] names the workloads
//! of the `ubench` program.
#![forbid(unsafe_code)]

#[path = "../../../guest-servers/test-images/src/expect.rs"]
pub mod expect;
pub mod simd;
#[path = "../../../guest-servers/apps/src/workloads.rs"]
pub mod ubench;

use std::sync::OnceLock;

/// A guest image embedded in the binary.
#[derive(Debug)]
pub struct BuiltinImage {
    /// The image's name: the name of the guest binary that produced it, e.g. `hello`.
    pub name: &'static str,
    /// The ELF executable, 16-byte aligned (so its headers can be read in place).
    pub elf: &'static [u8],
}

/// Everything one build of the guests produced, as embedded in the binary.
#[derive(Debug)]
pub struct Catalog {
    /// The guest images, sorted by name (their names are unique).
    pub images: &'static [BuiltinImage],
    /// The tender of the process substrate: the static Linux program each process
    /// domain starts as (`guest-servers/tender`, see `virtio_seep::abi::process`).
    pub tender: &'static [u8],
    /// The root file system archive (`ankh_proto::rootfs` format): the programs of
    /// `guest-servers/rootfs.list` in `/bin` and the files of `images/rootfs/`.
    pub root_fs: &'static [u8],
    /// The root disk: an ext2 image of the same files as `root_fs`, in
    /// `ankh_ext2::sparse` form (expand it with `ankh_ext2::unsparse_into`).
    pub root_disk: &'static [u8],
}

impl Catalog {
    /// The image called `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<&'static BuiltinImage> {
        let images = self.images;
        images
            .binary_search_by(|image| image.name.cmp(name))
            .ok()
            .map(|index| &images[index])
    }
}

/// The catalog the running program installed.
static INSTALLED: OnceLock<&'static Catalog> = OnceLock::new();

/// Makes `catalog` the one [`builtin`], [`find`] and the others read. Installing the
/// same catalog again does nothing.
///
/// # Panics
/// If its images are not sorted by unique name (lookups search them by halves), or if
/// another catalog is installed already: a program holds one build of the guests.
pub fn install(catalog: &'static Catalog) {
    // The common call (`ankh_images` installs at every lookup): nothing to check.
    if INSTALLED
        .get()
        .is_some_and(|installed| std::ptr::eq(*installed, catalog))
    {
        return;
    }
    assert!(
        catalog
            .images
            .windows(2)
            .all(|pair| pair[0].name < pair[1].name),
        "the built-in images must be sorted by unique name"
    );
    let installed = INSTALLED.get_or_init(|| catalog);
    assert!(
        std::ptr::eq(*installed, catalog),
        "another catalog of built-in images is installed already"
    );
}

/// The installed catalog.
///
/// # Panics
/// If none is installed: a program that runs guests calls `ankh_images::install()`
/// first.
pub fn installed() -> &'static Catalog {
    INSTALLED.get().copied().unwrap_or_else(|| {
        panic!("no built-in images installed: call ankh_images::install() first")
    })
}

/// Every built-in image, sorted by name.
pub fn builtin() -> &'static [BuiltinImage] {
    installed().images
}

/// The built-in image called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static BuiltinImage> {
    installed().find(name)
}

/// The tender of the process substrate (see [`Catalog::tender`]).
pub fn tender() -> &'static [u8] {
    installed().tender
}

/// The root file system archive (see [`Catalog::root_fs`]).
pub fn root_fs() -> &'static [u8] {
    installed().root_fs
}

/// The root disk, in `ankh_ext2::sparse` form (see [`Catalog::root_disk`]).
pub fn root_disk() -> &'static [u8] {
    installed().root_disk
}

#[cfg(test)]
mod tests;
