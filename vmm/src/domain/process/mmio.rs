//! The device window of a process domain: nothing is mapped there, so the guest's
//! access faults and the VMM emulates the instruction, as KVM does for a VM (decode,
//! serve the access, write the destination register, step over). Only the plain moves
//! a driver makes to its registers are emulated; anything else is a fault of the
//! domain.

use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use virtio_seep::abi::process::Regs;

use crate::domain::debug::decode::{decode, write_partial, MAX_INSTRUCTION_LEN};

/// One emulated access to the device window.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// A load of `size` bytes into `register`.
    Read {
        /// Bytes read.
        size: usize,
        /// The destination (as encoded: `eax`, `ax`, `al`...).
        register: Register,
        /// Bytes of the instruction.
        len: u64,
    },
    /// A store of the low `size` bytes of `value`.
    Write {
        /// Bytes written.
        size: usize,
        /// The value (a register's or an immediate).
        value: u64,
        /// Bytes of the instruction.
        len: u64,
    },
}

/// Decodes the access the instruction `bytes` at `rip` makes, given the registers.
pub fn decode_access(rip: u64, bytes: &[u8], regs: &Regs) -> Option<Access> {
    let instruction = decode(rip, &bytes[..bytes.len().min(MAX_INSTRUCTION_LEN)])?;
    let size = instruction.memory_size().size();
    if !matches!(size, 1 | 2 | 4 | 8) {
        return None;
    }
    let len = instruction.len() as u64;
    match (
        instruction.mnemonic(),
        instruction.op0_kind(),
        instruction.op1_kind(),
    ) {
        (Mnemonic::Mov | Mnemonic::Movzx, OpKind::Register, OpKind::Memory) => Some(Access::Read {
            size,
            register: instruction.op0_register(),
            len,
        }),
        (Mnemonic::Mov, OpKind::Memory, OpKind::Register) => Some(Access::Write {
            size,
            value: register_value(regs, instruction.op1_register())?,
            len,
        }),
        (Mnemonic::Mov, OpKind::Memory, _) => Some(Access::Write {
            size,
            value: immediate(&instruction)?,
            len,
        }),
        _ => None,
    }
}

fn immediate(instruction: &Instruction) -> Option<u64> {
    match instruction.op1_kind() {
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate32to64 => Some(instruction.immediate(1)),
        _ => None,
    }
}

fn slot(regs: &mut Regs, full: Register) -> Option<&mut u64> {
    Some(match full {
        Register::RAX => &mut regs.rax,
        Register::RBX => &mut regs.rbx,
        Register::RCX => &mut regs.rcx,
        Register::RDX => &mut regs.rdx,
        Register::RSI => &mut regs.rsi,
        Register::RDI => &mut regs.rdi,
        Register::RSP => &mut regs.rsp,
        Register::RBP => &mut regs.rbp,
        Register::R8 => &mut regs.r8,
        Register::R9 => &mut regs.r9,
        Register::R10 => &mut regs.r10,
        Register::R11 => &mut regs.r11,
        Register::R12 => &mut regs.r12,
        Register::R13 => &mut regs.r13,
        Register::R14 => &mut regs.r14,
        Register::R15 => &mut regs.r15,
        _ => return None,
    })
}

/// The value of `register` (narrow registers: their bits, shifted down for `ah`...).
fn register_value(regs: &Regs, register: Register) -> Option<u64> {
    let mut copy = *regs;
    let full = *slot(&mut copy, register.full_register())?;
    Some(match register {
        Register::AH | Register::BH | Register::CH | Register::DH => (full >> 8) & 0xff,
        _ => full,
    })
}

/// Writes a loaded `value` (zero-extended, as `movzx` does) into `register` as the
/// CPU would.
pub fn load_into(regs: &mut Regs, register: Register, value: u64) -> Option<()> {
    let slot = slot(regs, register.full_register())?;
    *slot = write_partial(register, *slot, value);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_stores_of_registers_are_decoded() {
        let regs = Regs {
            rcx: 0x1234_5678,
            ..Regs::default()
        };
        // mov eax, [rdi+8]
        assert_eq!(
            decode_access(0x1000, &[0x8b, 0x47, 0x08], &regs),
            Some(Access::Read {
                size: 4,
                register: Register::EAX,
                len: 3,
            })
        );
        // mov [rdi], ecx
        assert_eq!(
            decode_access(0x1000, &[0x89, 0x0f], &regs),
            Some(Access::Write {
                size: 4,
                value: 0x1234_5678,
                len: 2
            })
        );
        // mov dword [rdi], 7
        assert_eq!(
            decode_access(0x1000, &[0xc7, 0x07, 7, 0, 0, 0], &regs),
            Some(Access::Write {
                size: 4,
                value: 7,
                len: 6
            })
        );
        // add [rdi], eax: not a plain move.
        assert_eq!(decode_access(0x1000, &[0x01, 0x07], &regs), None);
    }

    #[test]
    fn loads_write_registers_as_the_cpu_does() {
        let mut regs = Regs {
            rax: u64::MAX,
            ..Regs::default()
        };
        load_into(&mut regs, Register::EAX, 5).unwrap();
        assert_eq!(regs.rax, 5);
        regs.rbx = u64::MAX;
        load_into(&mut regs, Register::BL, 5).unwrap();
        assert_eq!(regs.rbx, !0xff | 5);
    }
}
