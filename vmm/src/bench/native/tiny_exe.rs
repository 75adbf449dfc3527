//! The program the native `execl` workload executes: a static x86-64 Linux executable of
//! 132 bytes, built here in memory, that exits with code 3 (as `child-exit3` does on
//! Ankh) and does nothing else.
//!
//! Why not `/bin/true` or `ankh` itself: `/bin/true` is not on every system and is a
//! dynamically linked program, so an exec of it would time the dynamic loader; the
//! current executable is the test harness under `cargo test` (which has no no-op flag)
//! and a several-MiB dynamically linked `ankh` otherwise. This one is the same in
//! both, needs no file system and, like Ankh's tiny static images, costs the kernel
//! one mapping and no loader. It lives in a memfd (tmpfs) and is executed through its
//! descriptor (`fexecve`), so no mount option (`noexec` on /tmp or /dev/shm) stops it.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use object::elf::{
    FileHeader64, Ident, ProgramHeader64, ELFCLASS64, ELFDATA2LSB, ELFMAG, ELFOSABI_NONE,
    EM_X86_64, ET_EXEC, EV_CURRENT, PF_R, PF_X, PT_LOAD,
};
use object::endian::{LittleEndian, U16, U32, U64};

/// The exit code of the program, `child-exit3`'s.
pub(super) const EXIT_CODE: i32 = 3;

/// Where the program is loaded (the classic base of static executables, far above
/// `vm.mmap_min_addr`).
const LOAD_ADDRESS: u64 = 0x40_0000;

/// Bytes of the ELF header and of a program header (what `e_ehsize` and
/// `e_phentsize` say), checked against the structures at compile time.
const FILE_HEADER_SIZE: u16 = 64;
const SEGMENT_HEADER_SIZE: u16 = 56;
const _: () = assert!(size_of::<FileHeader64<LittleEndian>>() == FILE_HEADER_SIZE as usize);
const _: () = assert!(size_of::<ProgramHeader64<LittleEndian>>() == SEGMENT_HEADER_SIZE as usize);

/// `mov edi, 3; mov eax, 60 (exit); syscall`.
const CODE: [u8; 12] = [0xbf, 3, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];

/// The executable's bytes: an ELF header, one loadable segment covering the whole file
/// (read and execute), and the code right after the headers.
pub(super) fn image() -> Vec<u8> {
    let le = LittleEndian;
    let headers = u64::from(FILE_HEADER_SIZE + SEGMENT_HEADER_SIZE);
    let file_size = headers + CODE.len() as u64;
    let header = FileHeader64 {
        e_ident: Ident {
            magic: ELFMAG,
            class: ELFCLASS64,
            data: ELFDATA2LSB,
            version: EV_CURRENT,
            os_abi: ELFOSABI_NONE,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(le, ET_EXEC),
        e_machine: U16::new(le, EM_X86_64),
        e_version: U32::new(le, EV_CURRENT.into()),
        e_entry: U64::new(le, LOAD_ADDRESS + headers),
        e_phoff: U64::new(le, FILE_HEADER_SIZE.into()),
        e_shoff: U64::new(le, 0),
        e_flags: U32::new(le, 0),
        e_ehsize: U16::new(le, FILE_HEADER_SIZE),
        e_phentsize: U16::new(le, SEGMENT_HEADER_SIZE),
        e_phnum: U16::new(le, 1),
        e_shentsize: U16::new(le, 0),
        e_shnum: U16::new(le, 0),
        e_shstrndx: U16::new(le, 0),
    };
    let segment = ProgramHeader64 {
        p_type: U32::new(le, PT_LOAD),
        p_flags: U32::new(le, PF_R | PF_X),
        p_offset: U64::new(le, 0),
        p_vaddr: U64::new(le, LOAD_ADDRESS),
        p_paddr: U64::new(le, LOAD_ADDRESS),
        p_filesz: U64::new(le, file_size),
        p_memsz: U64::new(le, file_size),
        p_align: U64::new(le, 0x1000),
    };
    let mut bytes =
        Vec::with_capacity(usize::from(FILE_HEADER_SIZE + SEGMENT_HEADER_SIZE) + CODE.len());
    bytes.extend_from_slice(object::pod::bytes_of(&header));
    bytes.extend_from_slice(object::pod::bytes_of(&segment));
    bytes.extend_from_slice(&CODE);
    bytes
}

/// The program in a memfd, opened read-only: ready for `fexecve`.
pub(super) struct TinyExe {
    /// A read-only descriptor of the memfd (close-on-exec: an ELF program is mapped
    /// before the descriptors are closed, so `fexecve` still works).
    file: File,
}

impl TinyExe {
    /// Writes the program into a fresh memfd.
    pub(super) fn create() -> io::Result<TinyExe> {
        let name: &CStr = c"ankh-native-exit3";
        // MFD_EXEC says outright that this memfd is to be executed (kernels from 6.3
        // warn otherwise); older kernels reject the flag, and then need none.
        let mut fd = -1;
        for flags in [libc::MFD_CLOEXEC | libc::MFD_EXEC, libc::MFD_CLOEXEC] {
            // SAFETY: `name` is a NUL-terminated string; the call only reads it.
            fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
            if fd >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
                break;
            }
        }
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let mut writable = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        writable.write_all(&image())?;
        // exec refuses a file that is open for writing (ETXTBSY): reopen it read-only
        // and close the writable descriptor.
        let file = OpenOptions::new()
            .read(true)
            .open(format!("/proc/self/fd/{}", writable.as_raw_fd()))?;
        drop(writable);
        Ok(TinyExe { file })
    }

    /// The descriptor to pass to `fexecve`.
    pub(super) fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    use object::Object as _;

    #[test]
    fn the_image_is_a_static_executable_whose_entry_is_its_code() {
        let bytes = image();
        let elf = ElfFile64::<LittleEndian>::parse(bytes.as_slice()).expect("a valid ELF");
        assert_eq!(elf.kind(), object::ObjectKind::Executable);
        let segments = elf.elf_program_headers();
        assert_eq!(segments.len(), 1);
        let le = LittleEndian;
        assert_eq!(segments[0].p_type(le), PT_LOAD);
        assert_eq!(segments[0].p_filesz(le), bytes.len() as u64);
        let entry = usize::try_from(elf.entry() - LOAD_ADDRESS).unwrap();
        assert_eq!(&bytes[entry..], &CODE);
    }
}
