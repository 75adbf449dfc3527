//! What a fault type does to one x86-64 instruction: which types apply to it (the
//! campaign planner and the VMM ask the same question) and the registers and targets
//! each type acts on. Decoded with iced-x86; pure, so every type is tested here.

use iced_x86::{
    ConditionCode, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, Mnemonic,
    OpAccess, OpKind, Register,
};
use serde::{Deserialize, Serialize};

/// Longest x86 instruction.
pub const MAX_INSTRUCTION_LEN: usize = 15;

/// A machine-level analogue of one of EDFI's fault types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultType {
    /// The domain crashes right there (EDFI's null-pointer faults, as OSIRIS's fail-stop
    /// campaigns used them).
    FailStop,
    /// A conditional branch goes the other way.
    FlipBranch,
    /// A load from memory is skipped (its destination keeps its old value).
    NoLoad,
    /// A store to memory is skipped.
    NoStore,
    /// The value a plain load brings in is replaced with a random one.
    RndLoad,
    /// One random bit of the base register of a memory operand is flipped.
    CorruptPointer,
    /// One random bit of the index register of a memory operand is flipped.
    CorruptIndex,
    /// One random bit of a general register the instruction reads (not an address
    /// register, not the stack pointer) is flipped.
    CorruptInteger,
    /// The domain spins right there, without exits, until the watchdog stops it.
    StuckAtLoop,
}

impl FaultType {
    /// Every type, in a fixed order (the planner draws from it).
    pub const ALL: [FaultType; 9] = [
        FaultType::FailStop,
        FaultType::FlipBranch,
        FaultType::NoLoad,
        FaultType::NoStore,
        FaultType::RndLoad,
        FaultType::CorruptPointer,
        FaultType::CorruptIndex,
        FaultType::CorruptInteger,
        FaultType::StuckAtLoop,
    ];

    /// The type's name on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            FaultType::FailStop => "fail-stop",
            FaultType::FlipBranch => "flip-branch",
            FaultType::NoLoad => "no-load",
            FaultType::NoStore => "no-store",
            FaultType::RndLoad => "rnd-load",
            FaultType::CorruptPointer => "corrupt-pointer",
            FaultType::CorruptIndex => "corrupt-index",
            FaultType::CorruptInteger => "corrupt-integer",
            FaultType::StuckAtLoop => "stuck-at-loop",
        }
    }

    /// The type called `name`.
    pub fn from_name(name: &str) -> Option<FaultType> {
        FaultType::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for FaultType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Decodes the instruction at `address` from its bytes (`None`: not a valid one).
pub fn decode(address: u64, bytes: &[u8]) -> Option<Instruction> {
    let mut decoder = Decoder::with_ip(64, bytes, address, DecoderOptions::NONE);
    let instruction = decoder.decode();
    (!instruction.is_invalid()).then_some(instruction)
}

/// The instruction as Intel syntax, for results and reports.
pub fn describe(instruction: &Instruction) -> String {
    use iced_x86::Formatter;
    let mut text = String::new();
    iced_x86::IntelFormatter::new().format(instruction, &mut text);
    text
}

/// Whether `fault` can be applied to `instruction`.
pub fn applies(fault: FaultType, instruction: &Instruction) -> bool {
    match fault {
        FaultType::FailStop | FaultType::StuckAtLoop => true,
        FaultType::FlipBranch => instruction.is_jcc_short_or_near(),
        FaultType::NoLoad => memory_access(instruction).is_some_and(|a| a == Access::Load),
        FaultType::NoStore => memory_access(instruction).is_some_and(|a| a != Access::Load),
        FaultType::RndLoad => plain_load_destination(instruction).is_some(),
        FaultType::CorruptPointer | FaultType::CorruptIndex | FaultType::CorruptInteger => {
            !corruptible(fault, instruction).is_empty()
        }
    }
}

/// How an instruction touches memory through its explicit memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Load,
    Store,
    LoadStore,
}

/// The access of the explicit memory operand (`lea` and implicit stack accesses such
/// as `push` do not count: skipping those is not a load or store fault).
fn memory_access(instruction: &Instruction) -> Option<Access> {
    let index = (0..instruction.op_count()).find(|&i| instruction.op_kind(i) == OpKind::Memory)?;
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(instruction);
    let access = match index {
        0 => info.op0_access(),
        1 => info.op1_access(),
        2 => info.op2_access(),
        3 => info.op3_access(),
        _ => info.op4_access(),
    };
    match access {
        OpAccess::Read | OpAccess::CondRead => Some(Access::Load),
        OpAccess::Write | OpAccess::CondWrite => Some(Access::Store),
        OpAccess::ReadWrite | OpAccess::ReadCondWrite => Some(Access::LoadStore),
        _ => None,
    }
}

/// The destination register of a plain load (`mov`, `movzx`, `movsx`, `movsxd` from
/// memory into a general register), the only loads whose value rnd-load replaces.
pub fn plain_load_destination(instruction: &Instruction) -> Option<Register> {
    let plain = matches!(
        instruction.mnemonic(),
        Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd
    );
    let loads = instruction.op_count() == 2
        && instruction.op0_kind() == OpKind::Register
        && instruction.op1_kind() == OpKind::Memory;
    (plain && loads && instruction.op0_register().is_gpr()).then(|| instruction.op0_register())
}

/// The registers `fault` (a corrupt-* type) may flip a bit of, in operand order.
pub fn corruptible(fault: FaultType, instruction: &Instruction) -> Vec<Register> {
    let has_memory = (0..instruction.op_count()).any(|i| instruction.op_kind(i) == OpKind::Memory);
    let usable = |r: Register| r.is_gpr() && r.full_register() != Register::RSP;
    match fault {
        FaultType::CorruptPointer if has_memory => Some(instruction.memory_base())
            .filter(|&r| usable(r))
            .into_iter()
            .collect(),
        FaultType::CorruptIndex if has_memory => Some(instruction.memory_index())
            .filter(|&r| usable(r))
            .into_iter()
            .collect(),
        FaultType::CorruptInteger => {
            let mut factory = InstructionInfoFactory::new();
            let info = factory.info(instruction);
            let mut registers: Vec<Register> = (0..instruction.op_count())
                .filter(|&i| instruction.op_kind(i) == OpKind::Register)
                .map(|i| instruction.op_register(i))
                .filter(|&r| usable(r))
                .filter(|&r| {
                    info.used_registers().iter().any(|used| {
                        used.register() == r
                            && matches!(
                                used.access(),
                                OpAccess::Read | OpAccess::ReadWrite | OpAccess::CondRead
                            )
                    })
                })
                .collect();
            registers.dedup();
            registers
        }
        _ => Vec::new(),
    }
}

/// Where a conditional branch goes when its condition is the opposite of what the
/// flags in `rflags` say: the fall-through when it would be taken, the target when not.
pub fn flipped_branch(instruction: &Instruction, rflags: u64) -> Option<u64> {
    if !instruction.is_jcc_short_or_near() {
        return None;
    }
    let taken = condition_holds(instruction.condition_code(), rflags)?;
    Some(if taken {
        instruction.next_ip()
    } else {
        instruction.near_branch_target()
    })
}

/// Whether condition `code` holds under the flags in `rflags`.
fn condition_holds(code: ConditionCode, rflags: u64) -> Option<bool> {
    let flag = |bit: u32| rflags & (1 << bit) != 0;
    let (cf, pf, zf, sf, of) = (flag(0), flag(2), flag(6), flag(7), flag(11));
    Some(match code {
        ConditionCode::o => of,
        ConditionCode::no => !of,
        ConditionCode::b => cf,
        ConditionCode::ae => !cf,
        ConditionCode::e => zf,
        ConditionCode::ne => !zf,
        ConditionCode::be => cf || zf,
        ConditionCode::a => !cf && !zf,
        ConditionCode::s => sf,
        ConditionCode::ns => !sf,
        ConditionCode::p => pf,
        ConditionCode::np => !pf,
        ConditionCode::l => sf != of,
        ConditionCode::ge => sf == of,
        ConditionCode::le => zf || sf != of,
        ConditionCode::g => !zf && sf == of,
        ConditionCode::None => return None,
    })
}

/// `register`'s value with bit `bit` (taken modulo its width) flipped, as the full
/// 64-bit register holds it after the write (`value` is the full register's value).
pub fn flip_bit(register: Register, value: u64, bit: u32) -> u64 {
    let width = u32::try_from(register.size() * 8).unwrap_or(64);
    let shift = if register.is_gpr8() && is_high_byte(register) {
        8
    } else {
        0
    };
    value ^ (1u64 << (bit % width + shift))
}

/// `value` written into `register` by a load: 32-bit writes zero the upper half, 8-
/// and 16-bit writes keep the rest of the full register.
pub fn write_partial(register: Register, old: u64, value: u64) -> u64 {
    match register.size() {
        8 => value,
        4 => value & 0xffff_ffff,
        2 => (old & !0xffff) | (value & 0xffff),
        _ if is_high_byte(register) => (old & !0xff00) | ((value & 0xff) << 8),
        _ => (old & !0xff) | (value & 0xff),
    }
}

fn is_high_byte(register: Register) -> bool {
    matches!(
        register,
        Register::AH | Register::BH | Register::CH | Register::DH
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insn(bytes: &[u8]) -> Instruction {
        decode(0x1000, bytes).expect("valid instruction")
    }

    #[test]
    fn types_apply_to_the_instructions_they_describe() {
        let jne = insn(&[0x75, 0x10]); // jne +0x10
        let load = insn(&[0x48, 0x8b, 0x04, 0xc8]); // mov rax, [rax+rcx*8]
        let store = insn(&[0x48, 0x89, 0x03]); // mov [rbx], rax
        let push = insn(&[0x50]); // push rax
        let lea = insn(&[0x48, 0x8d, 0x04, 0xc8]); // lea rax, [rax+rcx*8]
        let add = insn(&[0x48, 0x01, 0xd8]); // add rax, rbx
        assert!(applies(FaultType::FlipBranch, &jne));
        assert!(!applies(FaultType::FlipBranch, &load));
        assert!(applies(FaultType::NoLoad, &load) && !applies(FaultType::NoStore, &load));
        assert!(applies(FaultType::NoStore, &store) && !applies(FaultType::NoLoad, &store));
        assert!(!applies(FaultType::NoStore, &push) && !applies(FaultType::NoLoad, &push));
        assert!(!applies(FaultType::NoLoad, &lea));
        assert!(applies(FaultType::RndLoad, &load) && !applies(FaultType::RndLoad, &store));
        assert_eq!(plain_load_destination(&load), Some(Register::RAX));
        assert_eq!(
            corruptible(FaultType::CorruptPointer, &load),
            [Register::RAX]
        );
        assert_eq!(corruptible(FaultType::CorruptIndex, &load), [Register::RCX]);
        assert_eq!(corruptible(FaultType::CorruptIndex, &store), []);
        assert_eq!(
            corruptible(FaultType::CorruptInteger, &add),
            [Register::RAX, Register::RBX]
        );
        // The stack pointer is never flipped: push's only register is read, but as data.
        assert_eq!(
            corruptible(FaultType::CorruptInteger, &push),
            [Register::RAX]
        );
        assert!(applies(FaultType::FailStop, &push) && applies(FaultType::StuckAtLoop, &push));
    }

    #[test]
    fn a_flipped_branch_goes_where_the_flags_do_not_send_it() {
        let je = insn(&[0x74, 0x10]); // je 0x1012
        const ZF: u64 = 1 << 6;
        assert_eq!(flipped_branch(&je, ZF), Some(0x1002)); // taken -> falls through
        assert_eq!(flipped_branch(&je, 0), Some(0x1012)); // not taken -> jumps
        let jg = insn(&[0x7f, 0x10]);
        const SF: u64 = 1 << 7;
        const OF: u64 = 1 << 11;
        assert_eq!(flipped_branch(&jg, SF | OF), Some(0x1002)); // g holds
        assert_eq!(flipped_branch(&jg, SF), Some(0x1012)); // l holds
        assert_eq!(flipped_branch(&insn(&[0x90]), 0), None);
    }

    #[test]
    fn bit_flips_and_partial_writes_follow_the_register_width() {
        assert_eq!(flip_bit(Register::EAX, 0, 33), 1 << 1);
        assert_eq!(flip_bit(Register::RAX, 0, 63), 1 << 63);
        assert_eq!(flip_bit(Register::AH, 0, 0), 1 << 8);
        assert_eq!(
            write_partial(Register::EAX, u64::MAX, u64::MAX),
            0xffff_ffff
        );
        assert_eq!(write_partial(Register::AX, u64::MAX, 0), !0xffff);
        assert_eq!(write_partial(Register::AL, 0, 0x1ff), 0xff);
        assert_eq!(write_partial(Register::AH, 0, 0x12), 0x1200);
    }

    #[test]
    fn names_round_trip() {
        for fault in FaultType::ALL {
            assert_eq!(FaultType::from_name(fault.name()), Some(fault));
        }
        assert_eq!(FaultType::from_name("melt"), None);
    }
}
