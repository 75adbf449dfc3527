//! SIMD detection: KVM on the project's machines cannot run SSE/AVX instructions in a
//! guest (it fails to emulate them), so images must contain none.
//!
//! [`describe_simd`] names one instruction if it is SIMD (for reporting a failed guest
//! instruction); [`scan_elf`] checks every function of an image.

mod scan;

use iced_x86::{
    CpuidFeature, Decoder, DecoderOptions, Formatter, Instruction, IntelFormatter, Register,
};

pub use scan::{scan_elf, ScanError, SimdFinding};

/// Whether an instruction needs a CPUID feature of the SIMD families: SSE, AVX, AVX-512,
/// MMX/3DNow!, FMA, F16C, XOP, AMX and the extensions that work on vector registers
/// (AES-NI, SHA, GFNI, ...). Instructions of these families fail in a guest here even when
/// they touch no vector register (e.g. `lfence`, `prefetchnta`): they are reported too.
fn is_simd_feature(feature: CpuidFeature) -> bool {
    use CpuidFeature as F;
    matches!(
        feature,
        F::SSE
            | F::SSE2
            | F::SSE3
            | F::SSSE3
            | F::SSE4_1
            | F::SSE4_2
            | F::SSE4A
            | F::AVX
            | F::AVX2
            | F::AVX_VNNI
            | F::AVX_IFMA
            | F::AVX_NE_CONVERT
            | F::AVX_VNNI_INT8
            | F::AVX_VNNI_INT16
            | F::AVX512F
            | F::AVX512VL
            | F::AVX512BW
            | F::AVX512CD
            | F::AVX512DQ
            | F::AVX512ER
            | F::AVX512PF
            | F::AVX512_4FMAPS
            | F::AVX512_4VNNIW
            | F::AVX512_BF16
            | F::AVX512_BITALG
            | F::AVX512_IFMA
            | F::AVX512_VBMI
            | F::AVX512_VBMI2
            | F::AVX512_VNNI
            | F::AVX512_VP2INTERSECT
            | F::AVX512_VPOPCNTDQ
            | F::AVX512_FP16
            | F::FMA
            | F::FMA4
            | F::F16C
            | F::XOP
            | F::MMX
            | F::D3NOW
            | F::D3NOWEXT
            | F::CYRIX_D3NOW
            | F::KNC
            | F::AES
            | F::VAES
            | F::PCLMULQDQ
            | F::VPCLMULQDQ
            | F::GFNI
            | F::SHA
            | F::SHA512
            | F::SM3
            | F::SM4
            | F::AMX_TILE
            | F::AMX_INT8
            | F::AMX_BF16
            | F::AMX_FP16
            | F::AMX_COMPLEX
    )
}

/// Whether `register` is a SIMD register: MMX, XMM, YMM, ZMM, an AVX-512 mask or an AMX
/// tile.
fn is_simd_register(register: Register) -> bool {
    register.is_mm() || register.is_vector_register() || register.is_k() || register.is_tmm()
}

/// Whether `instruction` is a SIMD instruction (by CPUID feature or by operand).
pub(crate) fn is_simd(instruction: &Instruction) -> bool {
    instruction
        .cpuid_features()
        .iter()
        .copied()
        .any(is_simd_feature)
        || (0..instruction.op_count())
            .any(|operand| is_simd_register(instruction.op_register(operand)))
        || is_simd_register(instruction.memory_index())
}

/// Intel-syntax text of `instruction`, e.g. `xorps xmm0,xmm0`.
pub(crate) fn format(instruction: &Instruction) -> String {
    let mut text = String::new();
    IntelFormatter::new().format(instruction, &mut text);
    text
}

/// Decodes the one instruction at the start of `bytes` (which is at address `rip`, for
/// branch targets in the text) and returns its Intel-syntax text, e.g.
/// `Some("xorps xmm0,xmm0")`, if it is a SIMD instruction; `None` if it is not, or if
/// `bytes` do not start with a valid, complete instruction.
pub fn describe_simd(bytes: &[u8], rip: u64) -> Option<String> {
    let mut decoder = Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE);
    let instruction = decoder.decode();
    (!instruction.is_invalid() && is_simd(&instruction)).then(|| format(&instruction))
}

#[cfg(test)]
mod tests {
    use super::describe_simd;

    #[test]
    fn xorps_is_simd() {
        assert_eq!(
            describe_simd(&[0x0f, 0x57, 0xc0], 0x10_0000).as_deref(),
            Some("xorps xmm0,xmm0")
        );
    }

    #[test]
    fn trailing_bytes_are_ignored() {
        assert_eq!(
            describe_simd(&[0x0f, 0x57, 0xc0, 0x0f, 0x0b, 0x90], 0).as_deref(),
            Some("xorps xmm0,xmm0")
        );
    }

    #[test]
    fn movd_to_xmm_is_simd() {
        // movd xmm0, eax
        assert_eq!(
            describe_simd(&[0x66, 0x0f, 0x6e, 0xc0], 0).as_deref(),
            Some("movd xmm0,eax")
        );
    }

    #[test]
    fn mov_is_not_simd() {
        // mov eax, 1
        assert_eq!(describe_simd(&[0xb8, 0x01, 0x00, 0x00, 0x00], 0), None);
    }

    #[test]
    fn port_io_and_hlt_are_not_simd() {
        assert_eq!(describe_simd(&[0xef], 0), None); // out dx, eax
        assert_eq!(describe_simd(&[0xf4], 0), None); // hlt
        assert_eq!(describe_simd(&[0xf3, 0x90], 0), None); // pause
    }

    #[test]
    fn avx_is_simd() {
        // vaddps ymm0, ymm1, ymm2
        assert_eq!(
            describe_simd(&[0xc5, 0xf4, 0x58, 0xc2], 0).as_deref(),
            Some("vaddps ymm0,ymm1,ymm2")
        );
    }

    #[test]
    fn fence_is_simd() {
        // lfence (SSE2)
        assert_eq!(
            describe_simd(&[0x0f, 0xae, 0xe8], 0).as_deref(),
            Some("lfence")
        );
    }

    #[test]
    fn truncated_or_empty_is_none() {
        assert_eq!(describe_simd(&[0x0f, 0x57], 0), None);
        assert_eq!(describe_simd(&[0xc5, 0xf4], 0), None);
        assert_eq!(describe_simd(&[], 0), None);
    }
}
