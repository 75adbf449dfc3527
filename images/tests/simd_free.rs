//! Every built-in image must be free of SIMD instructions, which KVM cannot run in a
//! guest on the project's machines.

use ankh_images::simd::{scan_elf, SimdFinding};
use ankh_images::{builtin, find};

/// Functions allowed to contain SIMD instructions, by demangled-name prefix, each with the
/// reason it is never called.
///
/// Empty on purpose. Without LTO, the precompiled `core` brings SSE code along (integer
/// `Display`, float formatting, `str::count`), linked even where unreachable. The guests
/// are built with fat LTO (`guest-servers/Cargo.toml`), which recompiles the `core` code
/// they use with their SSE-free flags and drops the rest, so nothing needs allowing. An
/// entry added here must come with its reason and match a finding (see
/// `allowlist_is_not_stale`).
const ALLOWLIST: &[(&str, &str)] = &[];

/// The image that contains a SIMD instruction on purpose, and where.
const DELIBERATE: (&str, &str, &str) = ("fault-sse", "fault_sse::main", "xorps xmm0,xmm0");

fn findings(image: &str) -> Vec<SimdFinding> {
    let elf = find(image)
        .unwrap_or_else(|| panic!("no image {image}"))
        .elf;
    scan_elf(elf).unwrap_or_else(|err| panic!("{image}: {err}"))
}

fn is_allowed(finding: &SimdFinding) -> bool {
    ALLOWLIST
        .iter()
        .any(|(prefix, _)| finding.function.starts_with(prefix))
}

fn is_deliberate(image: &str, finding: &SimdFinding) -> bool {
    let (name, function, instruction) = DELIBERATE;
    image == name && finding.function == function && finding.instruction == instruction
}

#[test]
fn images_are_simd_free() {
    let mut unexpected = Vec::new();
    for image in builtin() {
        for finding in findings(image.name) {
            if !is_allowed(&finding) && !is_deliberate(image.name, &finding) {
                unexpected.push(format!(
                    "{}: {:#x} {} in {}",
                    image.name, finding.address, finding.instruction, finding.function
                ));
            }
        }
    }
    assert!(
        unexpected.is_empty(),
        "SIMD instructions in guest images:\n{}",
        unexpected.join("\n")
    );
}

#[test]
fn deliberate_sse_is_found() {
    let (image, function, instruction) = DELIBERATE;
    let found: Vec<SimdFinding> = findings(image)
        .into_iter()
        .filter(|finding| !is_allowed(finding))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].function, function);
    assert_eq!(found[0].instruction, instruction);
}

#[test]
fn allowlist_is_not_stale() {
    let all: Vec<SimdFinding> = builtin()
        .iter()
        .flat_map(|image| findings(image.name))
        .collect();
    for (prefix, _) in ALLOWLIST {
        assert!(
            all.iter()
                .any(|finding| finding.function.starts_with(prefix)),
            "allowlist entry {prefix} matches nothing: remove it"
        );
    }
}
