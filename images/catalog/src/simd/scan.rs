//! Scanning a whole ELF image for SIMD instructions, function by function.

use std::collections::BTreeSet;

use iced_x86::{Decoder, DecoderOptions, Instruction};
use object::read::elf::ElfFile64;
use object::{
    Architecture, Endianness, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind,
};

use super::{format, is_simd};

/// A SIMD instruction found in an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimdFinding {
    /// Address of the instruction.
    pub address: u64,
    /// The instruction in Intel syntax, e.g. `xorps xmm0,xmm0`.
    pub instruction: String,
    /// Demangled name (without hash) of the function that contains it, e.g.
    /// `fault_sse::main`.
    pub function: String,
}

/// Why an image could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The bytes are not a 64-bit little-endian ELF file.
    #[error("not a 64-bit ELF file: {0}")]
    Parse(#[from] object::Error),
    /// The ELF file is for another architecture.
    #[error("not an x86-64 ELF file ({0:?})")]
    Architecture(Architecture),
    /// A function symbol's bytes lie outside its section.
    #[error("function {name} ({size} bytes at {address:#x}) lies outside its section")]
    FunctionOutOfBounds {
        /// The symbol's (mangled) name.
        name: String,
        /// The symbol's address.
        address: u64,
        /// The symbol's size in bytes.
        size: u64,
    },
}

/// Decodes every function of the image linearly and returns each SIMD instruction, in
/// address order.
///
/// The functions are the symbol table's function symbols (`STT_FUNC`) with a size, in
/// executable sections; code that no such symbol covers is not scanned, so images must
/// keep their symbol table. Aliases (several symbols for one address range) are scanned
/// once.
pub fn scan_elf(elf: &[u8]) -> Result<Vec<SimdFinding>, ScanError> {
    let file = ElfFile64::<Endianness>::parse(elf)?;
    if file.architecture() != Architecture::X86_64 {
        return Err(ScanError::Architecture(file.architecture()));
    }
    let mut scanned = BTreeSet::new();
    let mut findings = Vec::new();
    for symbol in file.symbols() {
        if symbol.kind() != SymbolKind::Text || symbol.size() == 0 {
            continue;
        }
        let Some(section_index) = symbol.section_index() else {
            continue;
        };
        let section = file.section_by_index(section_index)?;
        if section.kind() != SectionKind::Text || !scanned.insert((symbol.address(), symbol.size()))
        {
            continue;
        }
        let name = symbol.name().unwrap_or("?");
        let bytes = function_bytes(&section, symbol.address(), symbol.size()).ok_or_else(|| {
            ScanError::FunctionOutOfBounds {
                name: name.to_owned(),
                address: symbol.address(),
                size: symbol.size(),
            }
        })?;
        let function = format!("{:#}", rustc_demangle::demangle(name));
        let mut decoder = Decoder::with_ip(64, bytes, symbol.address(), DecoderOptions::NONE);
        let mut instruction = Instruction::default();
        while decoder.can_decode() {
            decoder.decode_out(&mut instruction);
            if !instruction.is_invalid() && is_simd(&instruction) {
                findings.push(SimdFinding {
                    address: instruction.ip(),
                    instruction: format(&instruction),
                    function: function.clone(),
                });
            }
        }
    }
    findings.sort_by_key(|finding| finding.address);
    Ok(findings)
}

/// The `size` bytes at `address` in `section`, if the section holds them all.
fn function_bytes<'data>(
    section: &impl ObjectSection<'data>,
    address: u64,
    size: u64,
) -> Option<&'data [u8]> {
    let data = section.data().ok()?;
    let start = usize::try_from(address.checked_sub(section.address())?).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    data.get(start..end)
}
