//! The docs stay true to the repository: they cite only files in it, their links
//! resolve, and every `ankh` command the README shows exists.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (this crate is `cli/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf()
}

/// Every file of the repository, build outputs and git's own files left out.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let entry = entry.expect("a directory entry");
        let path = entry.path();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        if entry.file_type().expect("a file type").is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The Markdown files a reader of the project opens: README files and `docs/`.
fn markdown() -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(&root(), &mut all);
    all.retain(|path| path.extension().is_some_and(|ext| ext == "md"));
    assert!(all
        .iter()
        .any(|path| path.ends_with("docs/architecture.md")));
    all
}

#[test]
fn nothing_cites_notes_outside_the_repository() {
    // Spelled in pieces so that this file does not cite them itself.
    let outside = [
        ["../", "shared"].concat(),
        ["shared/", "DESIGN"].concat(),
        ["shared/", "ENVIRONMENT"].concat(),
        ["DESIGN", ".md"].concat(),
        ["ENVIRONMENT", ".md"].concat(),
    ];
    let mut all = Vec::new();
    files(&root(), &mut all);
    let mut citing = Vec::new();
    for path in &all {
        let Ok(text) = fs::read_to_string(path) else {
            continue; // not text
        };
        for (number, line) in text.lines().enumerate() {
            if outside.iter().any(|name| line.contains(name.as_str())) {
                citing.push(format!("{}:{}: {line}", path.display(), number + 1));
            }
        }
    }
    assert!(
        citing.is_empty(),
        "files cite notes outside the repository (move what they need into docs/):\n{}",
        citing.join("\n")
    );
}

/// The targets of the Markdown links `[text](target)` in `text`.
fn link_targets(text: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let mut broken = Vec::new();
    for path in markdown() {
        let text = fs::read_to_string(&path).expect("Markdown is text");
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().expect("split yields one piece");
            let resolved = path.parent().expect("a file has a parent").join(file);
            if !resolved.exists() {
                broken.push(format!("{}: ({target})", path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn link_targets_are_found() {
    assert_eq!(
        link_targets("see [a](a.md) and [b](../b.md#x), not (c)"),
        ["a.md", "../b.md#x"]
    );
}

/// The subcommands `ankh ARGS --help` lists.
fn subcommands(args: &[&str]) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_ankh"))
        .args(args)
        .arg("--help")
        .output()
        .expect("running ankh --help");
    assert!(output.status.success(), "ankh {args:?} --help failed");
    let help = String::from_utf8(output.stdout).expect("help is UTF-8");
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The commands of a README line that runs `ankh`: the subcommand, and for commands
/// that have their own subcommands (`bench`, `ctl`), the one it names, options and
/// their upper-case placeholders skipped.
fn command_of(line: &str) -> Option<Vec<&str>> {
    let words = line.trim().strip_prefix("ankh ")?.split('#').next()?;
    let mut command = Vec::new();
    let mut words = words.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if word.starts_with('-') {
            // An option; its value, if a placeholder, goes with it.
            if words
                .peek()
                .is_some_and(|next| next.chars().all(|c| c.is_ascii_uppercase()))
            {
                words.next();
            }
            continue;
        }
        if word.starts_with(['<', '[']) || word.chars().all(|c| c.is_ascii_uppercase()) {
            continue;
        }
        command.push(word);
        if command.len() == 2 || !["bench", "ctl"].contains(&command[0]) {
            break;
        }
    }
    (!command.is_empty()).then_some(command)
}

#[test]
fn every_ankh_command_in_the_readme_exists() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let top = subcommands(&[]);
    let mut shown = 0;
    for line in readme.lines() {
        let Some(command) = command_of(line) else {
            continue;
        };
        shown += 1;
        assert!(
            top.contains(command[0]),
            "README shows `ankh {}`, which `ankh --help` does not list: {line}",
            command[0]
        );
        if let [parent, child] = command[..] {
            assert!(
                subcommands(&[parent]).contains(child),
                "README shows `ankh {parent} {child}`, which `ankh {parent} --help` does \
                 not list: {line}"
            );
        }
    }
    assert!(shown >= 10, "the README's usage block was not found");
}

#[test]
fn readme_lines_name_their_commands() {
    assert_eq!(
        command_of("    ankh ctl --control PATH kill vfs  # inject"),
        Some(vec!["ctl", "kill"])
    );
    assert_eq!(
        command_of("    ankh bench ubench [--rounds 9]"),
        Some(vec!["bench", "ubench"])
    );
    assert_eq!(
        command_of("    ankh run-image <name|path>"),
        Some(vec!["run-image"])
    );
    assert_eq!(command_of("Ankh is a Rust KVM VMM"), None);
}
