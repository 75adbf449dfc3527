//! Guest images: validating an ELF file before anything of it reaches guest memory,
//! and loading it with linux-loader.
//!
//! An Ankh image is a static, little-endian x86-64 ELF executable whose loadable
//! segments lie at or above [`IMAGE_BASE`] and which carries an [`AbiNote`] with this
//! VMM's [`ABI_VERSION`] in its `.ankh_abi` section; the exception stubs the note names
//! must lie inside executable code. Images are untrusted input: every
//! check here produces a specific [`ImageError`] instead of a panic.

use std::io::Cursor;
use std::ops::Range;
use std::path::Path;

use linux_loader::loader::{elf::Elf, KernelLoader};
use object::elf::{EM_X86_64, ET_EXEC, PF_X, PT_LOAD};
use object::read::elf::{ElfFile64, FileHeader, ProgramHeader};
use object::{Endianness, Object, ObjectSection, ObjectSymbol};
use virtio_seep::abi::layout::IMAGE_BASE;
use virtio_seep::abi::{
    AbiNote, ABI_NOTE_MAGIC, ABI_NOTE_SECTION, ABI_VERSION, EXCEPTION_STUB_SIZE, EXCEPTION_VECTORS,
};
use vm_memory::GuestAddress;
use zerocopy::FromBytes;

use crate::memory::DomainMemory;

impl ImageError {
    /// Whether the person who gave the image can fix it: a path that is missing, a
    /// directory, or unreadable (a file that is not a valid image counts as a bad
    /// image, status 4 in the CLI, as before).
    pub fn is_usage(&self) -> bool {
        matches!(self, ImageError::Read { source, .. } if crate::io_is_usage(source))
    }
}

/// Why an image cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file could not be read.
    #[error("cannot read image file {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the ELF magic bytes.
    #[error("not an ELF file (bad magic); an image must be a static x86-64 ELF executable")]
    BadMagic,
    /// The file is an ELF file of another class, byte order or machine.
    #[error("wrong architecture: {0}; an image must be a 64-bit little-endian x86-64 ELF")]
    WrongArchitecture(String),
    /// The file is not an executable (a shared object or a relocatable object).
    #[error("ELF type {0} is not an executable (ET_EXEC); link the image statically")]
    NotExecutable(u16),
    /// The ELF structure is broken.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// The image has no loadable segment.
    #[error("the image has no loadable (PT_LOAD) segment")]
    NoSegments,
    /// A segment is not where guest RAM can hold it.
    #[error(
        "segment at {addr:#x} ({size:#x} bytes) lies outside guest memory \
         ({IMAGE_BASE:#x}..{memory_size:#x}); give the domain more memory or relink the image"
    )]
    SegmentOutsideMemory {
        /// Guest-physical address of the segment.
        addr: u64,
        /// Its size in memory.
        size: u64,
        /// The domain's RAM size.
        memory_size: u64,
    },
    /// The entry point is not inside a loaded segment.
    #[error("entry point {0:#x} is not inside any loadable segment")]
    BadEntry(u64),
    /// The image has no ABI note: it was not built as an Ankh guest.
    #[error("no {ABI_NOTE_SECTION} section: this is not an Ankh guest image (build it with the guest runtime)")]
    MissingAbiNote,
    /// The ABI note is malformed.
    #[error("malformed {ABI_NOTE_SECTION} section")]
    BadAbiNote,
    /// The image was built against another ABI version.
    #[error("image speaks ABI version {image}, this VMM speaks {vmm}; rebuild the image with this source tree")]
    AbiMismatch {
        /// The image's version.
        image: u32,
        /// The VMM's version.
        vmm: u32,
    },
    /// The exception stubs the ABI note names are not inside executable code.
    #[error("exception stubs at {0:#x} are not inside an executable segment")]
    BadExceptionStubs(u64),
    /// linux-loader refused the image.
    #[error("loading the image failed: {0}")]
    Load(String),
}

/// One loadable segment of a validated image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical load address.
    pub addr: u64,
    /// Bytes in memory (the tail past the file bytes is zero).
    pub mem_size: u64,
    /// Whether the segment holds code.
    pub executable: bool,
}

impl Segment {
    /// Whether `addr..addr+len` lies inside this segment.
    fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr
            && addr
                .checked_add(len)
                .is_some_and(|end| end - self.addr <= self.mem_size)
    }
}

/// A validated guest image, ready to be loaded into any domain big enough for it.
#[derive(Clone, Debug)]
pub struct GuestImage {
    name: String,
    bytes: Vec<u8>,
    entry: u64,
    exception_stubs: u64,
    segments: Vec<Segment>,
}

impl GuestImage {
    /// Validates `bytes` as an Ankh image called `name`.
    pub fn parse(name: &str, bytes: Vec<u8>) -> Result<GuestImage, ImageError> {
        check_ident(&bytes)?;
        let elf = ElfFile64::<Endianness>::parse(bytes.as_slice())
            .map_err(|e| ImageError::Malformed(e.to_string()))?;
        let endian = elf.endian();
        let header = elf.elf_header();
        let machine = header.e_machine(endian);
        if machine != EM_X86_64 {
            return Err(ImageError::WrongArchitecture(format!(
                "ELF machine {machine}, expected {EM_X86_64} (x86-64)"
            )));
        }
        let kind = header.e_type(endian);
        if kind != ET_EXEC {
            return Err(ImageError::NotExecutable(kind));
        }
        let note = check_abi_note(&elf)?;

        let mut segments = Vec::new();
        for phdr in elf.elf_program_headers() {
            if phdr.p_type(endian) != PT_LOAD {
                continue;
            }
            let (offset, file_size) = (phdr.p_offset(endian), phdr.p_filesz(endian));
            let segment = Segment {
                addr: phdr.p_paddr(endian),
                mem_size: phdr.p_memsz(endian),
                executable: phdr.p_flags(endian) & PF_X != 0,
            };
            let file_end = offset.checked_add(file_size);
            if file_size > segment.mem_size || file_end.is_none_or(|end| end > bytes.len() as u64) {
                return Err(ImageError::Malformed(format!(
                    "segment at {:#x} claims file bytes the file does not have",
                    segment.addr
                )));
            }
            segments.push(segment);
        }
        if segments.is_empty() {
            return Err(ImageError::NoSegments);
        }
        let entry = header.e_entry(endian);
        if !segments
            .iter()
            .any(|s| s.executable && s.contains(entry, 1))
        {
            return Err(ImageError::BadEntry(entry));
        }
        let stubs = note.exception_stubs;
        let stubs_len = EXCEPTION_VECTORS * EXCEPTION_STUB_SIZE;
        if stubs != 0
            && !segments
                .iter()
                .any(|s| s.executable && s.contains(stubs, stubs_len))
        {
            return Err(ImageError::BadExceptionStubs(stubs));
        }
        Ok(GuestImage {
            name: name.to_owned(),
            bytes,
            entry,
            exception_stubs: stubs,
            segments,
        })
    }

    /// Reads and validates the image file at `path`; its name is the file name.
    pub fn from_path(path: &Path) -> Result<GuestImage, ImageError> {
        let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        GuestImage::parse(&name, bytes)
    }

    /// The image's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Entry point (guest-physical = guest-virtual).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Address of the image's exception stubs (0: none; see [`AbiNote`]).
    pub fn exception_stubs(&self) -> u64 {
        self.exception_stubs
    }

    /// The guest's main stack, `__ankh_stack_bottom..__ankh_stack_top` as the guest
    /// runtime's linker script names it: `None` unless the image has both symbols and
    /// they name a non-empty range inside a data segment. A scan of the symbol table,
    /// for the domains that take checkpoints (no spawn pays for it).
    pub fn stack(&self) -> Option<Range<u64>> {
        let elf = ElfFile64::<Endianness>::parse(self.bytes.as_slice()).ok()?;
        let (mut bottom, mut top) = (None, None);
        for symbol in elf.symbols() {
            match symbol.name_bytes() {
                Ok(b"__ankh_stack_bottom") => bottom = Some(symbol.address()),
                Ok(b"__ankh_stack_top") => top = Some(symbol.address()),
                _ => {}
            }
        }
        let stack = bottom?..top?;
        let len = stack.end.checked_sub(stack.start).filter(|&len| len > 0)?;
        self.segments
            .iter()
            .any(|segment| !segment.executable && segment.contains(stack.start, len))
            .then_some(stack)
    }

    /// The loadable segments.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// One past the highest byte any segment occupies.
    pub fn end(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.addr.saturating_add(s.mem_size))
            .max()
            .unwrap_or(IMAGE_BASE)
    }

    /// Checks that every segment fits in a domain with `memory_size` bytes of RAM.
    pub fn check_fits(&self, memory_size: u64) -> Result<(), ImageError> {
        for s in &self.segments {
            let fits = s.addr >= IMAGE_BASE
                && s.addr
                    .checked_add(s.mem_size)
                    .is_some_and(|end| end <= memory_size);
            if !fits {
                return Err(ImageError::SegmentOutsideMemory {
                    addr: s.addr,
                    size: s.mem_size,
                    memory_size,
                });
            }
        }
        Ok(())
    }

    /// Copies the image into `memory` and returns the entry point.
    pub fn load(&self, memory: &DomainMemory) -> Result<u64, ImageError> {
        self.check_fits(memory.size())?;
        let result = Elf::load(
            memory.guest(),
            None,
            &mut Cursor::new(self.bytes.as_slice()),
            Some(GuestAddress(IMAGE_BASE)),
        )
        .map_err(|e| ImageError::Load(e.to_string()))?;
        Ok(result.kernel_load.0)
    }
}

fn check_ident(bytes: &[u8]) -> Result<(), ImageError> {
    const ELFCLASS64: u8 = 2;
    const ELFDATA2LSB: u8 = 1;
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ImageError::BadMagic);
    }
    match (bytes.get(4), bytes.get(5)) {
        (Some(&ELFCLASS64), Some(&ELFDATA2LSB)) => Ok(()),
        (Some(&class), Some(&data)) => Err(ImageError::WrongArchitecture(format!(
            "ELF class {class} / data encoding {data}"
        ))),
        _ => Err(ImageError::Malformed("truncated ELF header".into())),
    }
}

fn check_abi_note(elf: &ElfFile64<'_, Endianness>) -> Result<AbiNote, ImageError> {
    let section = elf
        .section_by_name(ABI_NOTE_SECTION)
        .ok_or(ImageError::MissingAbiNote)?;
    let data = section.data().map_err(|_| ImageError::BadAbiNote)?;
    let (note, _) = AbiNote::read_from_prefix(data).map_err(|_| ImageError::BadAbiNote)?;
    if note.magic != ABI_NOTE_MAGIC {
        return Err(ImageError::BadAbiNote);
    }
    if note.version != ABI_VERSION {
        return Err(ImageError::AbiMismatch {
            image: note.version,
            vmm: ABI_VERSION,
        });
    }
    Ok(note)
}

#[cfg(test)]
mod tests;
