//! Builds the guest images (the nested workspace `../guest-servers`, with its own
//! SSE-free flags) and writes `$OUT_DIR/builtin.rs`, which embeds every executable.

#[path = "build/nested_cargo.rs"]
mod nested_cargo;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The one warning every guest crate gets, and which is expected: disabling SSE2 changes
/// the float ABI, and the guests use no floats (see `guest-servers/.cargo/config.toml`).
const EXPECTED_WARNING: &str = "target feature `sse2` must be enabled";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("..")
        .canonicalize()
        .unwrap_or_else(|err| panic!("cannot resolve the workspace root: {err}"));
    let guest_dir = root.join("guest-servers");
    watch_sources(&root, &guest_dir);

    let mut cargo = nested_cargo::guest_cargo(&guest_dir);
    cargo.args([
        "build",
        "--release",
        "--message-format=json-render-diagnostics",
    ]);
    // The images only tests run, with this crate's `test-images` feature (read here:
    // the nested cargo does not inherit the outer build's feature variables).
    if std::env::var_os("CARGO_FEATURE_TEST_IMAGES").is_some() {
        cargo.args(["--features", "ankh-test-images/test-only"]);
    }
    let output = cargo
        .arg("--target-dir")
        .arg(out_dir.join("guest-target"))
        .output()
        .unwrap_or_else(|err| panic!("cannot run cargo for the guest images: {err}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        panic!(
            "building the guest images in {} failed ({}):\n{stderr}",
            guest_dir.display(),
            output.status
        );
    }
    // Kept in the build script's output (shown by `cargo build -vv`).
    eprintln!("{stderr}");
    report_unexpected_warnings(&stderr);

    let mut images = executables(&String::from_utf8_lossy(&output.stdout));
    // The tender is not a guest image: a Linux program the process substrate starts.
    let tender = images
        .iter()
        .position(|(name, _)| name == TENDER)
        .map(|index| images.remove(index))
        .unwrap_or_else(|| panic!("the guest build produced no `{TENDER}`:\n{stderr}"));
    std::fs::write(
        out_dir.join("tender.rs"),
        format!(
            "static TENDER_ELF: &Aligned<[u8]> = &Aligned(*include_bytes!({:?}));\n",
            tender.1
        ),
    )
    .unwrap_or_else(|err| panic!("cannot write tender.rs: {err}"));
    assert!(
        !images.is_empty(),
        "the guest build produced no executables:\n{stderr}"
    );
    std::fs::write(out_dir.join("builtin.rs"), builtin_rs(&images))
        .unwrap_or_else(|err| panic!("cannot write builtin.rs: {err}"));
    let root_fs = root_fs(&root, &images);
    std::fs::write(out_dir.join("rootdisk.sparse"), root_disk(&root_fs))
        .unwrap_or_else(|err| panic!("cannot write rootdisk.sparse: {err}"));
    std::fs::write(out_dir.join("rootfs.img"), root_fs)
        .unwrap_or_else(|err| panic!("cannot write rootfs.img: {err}"));
}

/// The binary of the process substrate's tender (`guest-servers/tender`).
const TENDER: &str = "tender";

/// Blocks of the root disk: 64 MiB.
const ROOT_DISK_BLOCKS: u64 = (64 << 20) / ankh_ext2::BLOCK_SIZE as u64;

/// The root disk: an ext2 file system holding the entries of the root archive, built
/// by `ankh_ext2`, in its sparse form (only the blocks that hold data).
fn root_disk(archive: &[u8]) -> Vec<u8> {
    use ankh_proto::rootfs::{entries, ENTRY_DIR};
    let mut image = ankh_ext2::Image::new(ROOT_DISK_BLOCKS)
        .unwrap_or_else(|errno| panic!("mkfs of the root disk: errno {errno}"));
    for entry in entries(archive) {
        let entry = entry.expect("the build's own archive is well formed");
        let added = if entry.kind == ENTRY_DIR {
            // The root and directories made on the way to a file exist already.
            image.add_dir(entry.path).or_else(|errno| match errno {
                ankh_proto::errno::EEXIST => Ok(()),
                other => Err(other),
            })
        } else {
            image.add_file(entry.path, entry.data)
        };
        added.unwrap_or_else(|errno| {
            panic!("adding {} to the root disk: errno {errno}", entry.path)
        });
    }
    let image = image
        .finish()
        .unwrap_or_else(|errno| panic!("finishing the root disk: errno {errno}"));
    ankh_ext2::sparse(&image)
}

/// The root file system archive: `/bin/<name>` for every program listed in
/// `guest-servers/rootfs.list`, then every file under `images/rootfs/` at the same
/// path, with the directories they need.
fn root_fs(root: &Path, images: &[(String, String)]) -> Vec<u8> {
    use ankh_proto::rootfs::{push, ENTRY_DIR, ENTRY_FILE};
    let list_path = root.join("guest-servers/rootfs.list");
    println!("cargo:rerun-if-changed={}", list_path.display());
    let tree = root.join("images/rootfs");
    println!("cargo:rerun-if-changed={}", tree.display());
    let list = std::fs::read_to_string(&list_path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", list_path.display()));
    let mut archive = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let mut add_dirs = |archive: &mut Vec<u8>, path: &str| {
        let mut at = 0;
        while let Some(slash) = path[at + 1..].find('/') {
            let dir = &path[..at + 1 + slash];
            if dirs.insert(dir.to_owned()) {
                push(archive, ENTRY_DIR, dir, b"");
            }
            at += 1 + slash;
        }
    };
    for name in list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (_, path) = images
            .iter()
            .find(|(image, _)| image == name)
            .unwrap_or_else(|| {
                panic!("rootfs.list names {name:?}, which the guest build did not produce")
            });
        let elf = std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
        let target = format!("/bin/{name}");
        add_dirs(&mut archive, &target);
        push(&mut archive, ENTRY_FILE, &target, &elf);
    }
    let mut files = Vec::new();
    collect_files(&tree, &mut files);
    files.sort();
    for file in files {
        let relative = file.strip_prefix(&tree).expect("under the tree");
        let target = format!("/{}", relative.display());
        let data = std::fs::read(&file)
            .unwrap_or_else(|err| panic!("cannot read {}: {err}", file.display()));
        add_dirs(&mut archive, &target);
        push(&mut archive, ENTRY_FILE, &target, &data);
    }
    archive
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// Reruns this script when a guest source, manifest, lock or config file changes, or the
/// ABI crate, a server crate, or the root manifest they inherit from does. The guest build's own target
/// directory, should someone build there by hand, is left out.
fn watch_sources(root: &Path, guest_dir: &Path) {
    let entries = std::fs::read_dir(guest_dir)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", guest_dir.display()));
    for entry in entries {
        let entry =
            entry.unwrap_or_else(|err| panic!("cannot read {}: {err}", guest_dir.display()));
        if entry.file_name() != "target" {
            // A directory is scanned recursively, so new files are noticed too.
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
    // The server crates (servers/*: proto, the OS servers, ext2) are compiled into
    // the guests too.
    for path in [
        "virtio-seep/src",
        "virtio-seep/Cargo.toml",
        "servers",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
}

/// Passes on every warning of the guest build except the expected one, so that new
/// warnings in guest code are not lost in the build script's hidden output.
fn report_unexpected_warnings(stderr: &str) {
    let mut lines = stderr.lines().peekable();
    while let Some(line) = lines.next() {
        let is_warning = line.starts_with("warning:");
        let is_summary = line.contains(" generated ") && line.contains(" warning");
        if !is_warning || is_summary || line.contains(EXPECTED_WARNING) {
            continue;
        }
        println!("cargo:warning=guest build: {line}");
        while let Some(detail) = lines.next_if(|detail| !detail.trim().is_empty()) {
            println!("cargo:warning=guest build: {detail}");
        }
    }
}

/// The `(name, path)` of every executable in cargo's JSON messages, sorted by name.
fn executables(messages: &str) -> Vec<(String, String)> {
    let mut images: Vec<(String, String)> = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter_map(|message| {
            let name = message["target"]["name"].as_str()?;
            let path = message["executable"].as_str()?;
            Some((name.to_owned(), path.to_owned()))
        })
        .collect();
    images.sort();
    images.dedup_by(|a, b| a.0 == b.0);
    images
}

/// The Rust source of the `BUILTIN` table (one aligned static per image, so that ELF
/// parsers can read the headers in place).
fn builtin_rs(images: &[(String, String)]) -> String {
    let mut source = String::from("// Generated by images/build.rs.\n");
    for (index, (_, path)) in images.iter().enumerate() {
        writeln!(
            source,
            "static IMAGE_{index}: &Aligned<[u8]> = &Aligned(*include_bytes!({path:?}));"
        )
        .expect("writing to a String cannot fail");
    }
    source.push_str("/// Every built-in image, sorted by name.\n");
    source.push_str("static BUILTIN: &[BuiltinImage] = &[\n");
    for (index, (name, _)) in images.iter().enumerate() {
        writeln!(
            source,
            "    BuiltinImage {{ name: {name:?}, elf: &IMAGE_{index}.0 }},"
        )
        .expect("writing to a String cannot fail");
    }
    source.push_str("];\n");
    source
}
