//! Every way a description is rejected: the variant, its message, and the line.

use ankh_domains::{DescriptionError, DomainSpec, MessageRate, SystemDescription};

/// Images the tests know: everything but "missing".
fn image_exists(image: &str) -> bool {
    image != "missing"
}

fn reject(text: &str) -> DescriptionError {
    match SystemDescription::from_toml_str(text, &image_exists) {
        Ok(system) => panic!("accepted:\n{text}\nas {system:?}"),
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            error
        }
    }
}

fn reject_built(builder: ankh_domains::SystemBuilder) -> DescriptionError {
    builder.build(&image_exists).unwrap_err()
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let error = reject("threads = 1\n[[domain]\nname = \"a\"\n");
    assert!(
        matches!(error, DescriptionError::Syntax { line: 2, .. }),
        "{error:?}"
    );
    assert!(error.to_string().starts_with("line 2, column "), "{error}");
}

#[test]
fn wrong_type_is_a_syntax_error_at_the_value() {
    let error = reject("threads = \"two\"\n[[domain]]\nname = \"a\"\n");
    assert!(
        matches!(error, DescriptionError::Syntax { line: 1, .. }),
        "{error}"
    );
    let error = reject("[[domain]]\nname = \"a\"\nmemory_mib = -4\n");
    assert!(
        matches!(error, DescriptionError::Syntax { line: 3, .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "line 3, column 14: invalid value: integer `-4`, expected a non-negative integer"
    );
    let error = reject("[message_rate]\nburst = 4294967296\n[[domain]]\nname = \"a\"\n");
    assert!(
        error
            .to_string()
            .ends_with("expected an integer from 0 to 4294967295"),
        "{error}"
    );
}

#[test]
fn unknown_fields_are_rejected_everywhere() {
    let error = reject("thread = 1\n[[domain]]\nname = \"a\"\n");
    assert!(
        error.to_string().contains("unknown field `thread`"),
        "{error}"
    );
    let error = reject("[[domain]]\nname = \"a\"\nmemory = 4\n");
    assert!(
        error.to_string().contains("unknown field `memory`"),
        "{error}"
    );
    assert_eq!(error.line(), Some(3), "{error}");
    let error = reject("[message_rate]\nrate = 4\n[[domain]]\nname = \"a\"\n");
    assert!(
        error.to_string().contains("unknown field `rate`"),
        "{error}"
    );
    let error = reject("[[domains]]\nname = \"a\"\n");
    assert!(
        error.to_string().contains("unknown field `domains`"),
        "{error}"
    );
}

#[test]
fn unknown_policy_and_mode_are_rejected() {
    let error = reject("[[domain]]\nname = \"a\"\npolicy = \"optimistic\"\n");
    assert!(
        error.to_string().contains("unknown variant `optimistic`"),
        "{error}"
    );
    let error = reject("policy = \"Enhanced\"\n[[domain]]\nname = \"a\"\n");
    assert!(
        error.to_string().contains("unknown variant `Enhanced`"),
        "{error}"
    );
    let error = reject("[[domain]]\nname = \"a\"\nmode = \"supervisor\"\n");
    assert!(
        error.to_string().contains("unknown variant `supervisor`"),
        "{error}"
    );
}

#[test]
fn missing_name_is_rejected() {
    let error = reject("[[domain]]\nimage = \"a\"\n");
    assert!(
        error.to_string().contains("missing field `name`"),
        "{error}"
    );
}

#[test]
fn no_domains() {
    let error = reject("threads = 1\n");
    assert!(matches!(error, DescriptionError::NoDomains), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the system has no domain: add at least one [[domain]] table"
    );
    let error = reject("");
    assert!(matches!(error, DescriptionError::NoDomains));
    let error = reject_built(SystemDescription::builder());
    assert!(matches!(error, DescriptionError::NoDomains));
}

#[test]
fn too_many_domains() {
    let text: String = (0..256)
        .map(|i| format!("[[domain]]\nname = \"d{i}\"\nimage = \"x\"\n"))
        .collect();
    let error = reject(&text);
    assert!(
        matches!(
            error.root(),
            DescriptionError::TooManyDomains { count: 256 }
        ),
        "{error:?}"
    );
    assert_eq!(error.line(), Some(255 * 3 + 1), "the 256th table");
    assert_eq!(
        error.to_string(),
        "line 766: the system has 256 domains: at most 255 are supported"
    );
    let text: String = (0..255)
        .map(|i| format!("[[domain]]\nname = \"d{i}\"\nimage = \"x\"\n"))
        .collect();
    let system = SystemDescription::from_toml_str(&text, &image_exists).unwrap();
    assert_eq!(system.id_of("d254"), Some(255));
}

#[test]
fn duplicate_name() {
    let error = reject("[[domain]]\nname = \"a\"\n\n[[domain]]\nname = \"a\"\n");
    assert!(matches!(error.root(), DescriptionError::DuplicateName { name } if name == "a"));
    assert_eq!(error.to_string(), "line 5: two domains are named \"a\"");
}

#[test]
fn invalid_names() {
    for (name, reason) in [
        ("", "must not be empty"),
        ("abcdefghijklmnopq", "at most 16 bytes"),
        ("Vfs", "only contain a-z, 0-9 and '-'"),
        ("v_fs", "only contain"),
        ("v fs", "only contain"),
        ("vé", "only contain"),
        ("-vfs", "must not start with '-'"),
    ] {
        let error = reject(&format!("\n[[domain]]\nname = {name:?}\nimage = \"x\"\n"));
        let DescriptionError::InvalidName { name: got, .. } = error.root() else {
            panic!("{name:?}: {error:?}");
        };
        assert_eq!(got, name);
        assert!(error.to_string().contains(reason), "{name:?}: {error}");
        assert_eq!(error.line(), Some(3));
    }
    // Sixteen bytes and digits and inner hyphens are fine.
    let text = "[[domain]]\nname = \"abcdefghijklm-09\"\nimage = \"x\"\n";
    SystemDescription::from_toml_str(text, &image_exists).unwrap();
}

#[test]
fn control_characters_in_a_name_stay_on_one_line() {
    let error = reject("[[domain]]\nname = \"a\\nb\"\nimage = \"x\"\n");
    assert!(error.to_string().contains(r#""a\nb""#), "{error}");
}

#[test]
fn unknown_image() {
    let error = reject("[[domain]]\nname = \"a\"\nimage = \"missing\"\n");
    assert!(matches!(
        error.root(),
        DescriptionError::UnknownImage { domain, image } if domain == "a" && image == "missing"
    ));
    assert_eq!(
        error.to_string(),
        "line 3: domain \"a\" boots unknown image \"missing\" \
         (neither a built-in image nor an existing file)"
    );
    // The default image is the name, and the error points at the name.
    let error = reject("[[domain]]\nname = \"missing\"\n");
    assert!(matches!(
        error.root(),
        DescriptionError::UnknownImage { .. }
    ));
    assert_eq!(error.line(), Some(2));
}

#[test]
fn memory_out_of_range() {
    for memory in [0, 1, 1025, u64::from(u32::MAX)] {
        let error = reject(&format!(
            "[[domain]]\nname = \"a\"\nmemory_mib = {memory}\n"
        ));
        assert!(
            matches!(error.root(), DescriptionError::MemoryOutOfRange { memory_mib, .. } if *memory_mib == memory),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!("line 3: domain \"a\" has memory_mib = {memory}: it must be 2..=1024")
        );
    }
    for memory in [2, 1024] {
        let text = format!("[[domain]]\nname = \"a\"\nmemory_mib = {memory}\n");
        SystemDescription::from_toml_str(&text, &image_exists).unwrap();
    }
}

#[test]
fn threads_out_of_range() {
    for threads in [0, 65] {
        let error = reject(&format!("threads = {threads}\n[[domain]]\nname = \"a\"\n"));
        assert!(
            matches!(error.root(), DescriptionError::ThreadsOutOfRange { threads: t } if *t == threads)
        );
        assert_eq!(
            error.to_string(),
            format!(
                "line 1: threads = {threads} is out of range: a system runs on 1..=64 host threads"
            )
        );
    }
    let error = reject_built(
        SystemDescription::builder()
            .threads(0)
            .domain(DomainSpec::new("a", "x")),
    );
    assert!(matches!(
        error,
        DescriptionError::ThreadsOutOfRange { threads: 0 }
    ));
}

#[test]
fn thread_index_out_of_range() {
    let error = reject("threads = 2\n[[domain]]\nname = \"a\"\nthread = 2\n");
    assert!(matches!(
        error.root(),
        DescriptionError::ThreadOutOfRange {
            thread: 2,
            threads: 2,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "line 4: domain \"a\" runs on thread 2, but the system has threads = 2 (valid: 0..=1)"
    );
    let error = reject("[[domain]]\nname = \"a\"\nthread = 1\n");
    assert!(matches!(
        error.root(),
        DescriptionError::ThreadOutOfRange { threads: 1, .. }
    ));
}

#[test]
fn zero_rates() {
    let error = reject("[message_rate]\nper_second = 0\n[[domain]]\nname = \"a\"\n");
    assert!(matches!(
        error.root(),
        DescriptionError::ZeroRate {
            field: "per_second"
        }
    ));
    assert_eq!(
        error.to_string(),
        "line 2: message_rate.per_second = 0: it must be at least 1"
    );
    let error = reject("[message_rate]\nburst = 0\n[[domain]]\nname = \"a\"\n");
    assert!(matches!(
        error.root(),
        DescriptionError::ZeroRate { field: "burst" }
    ));
    let rate = MessageRate {
        per_second: 1,
        burst: 0,
    };
    let error = reject_built(
        SystemDescription::builder()
            .message_rate(rate)
            .domain(DomainSpec::new("a", "x")),
    );
    assert!(matches!(
        error,
        DescriptionError::ZeroRate { field: "burst" }
    ));
}

#[test]
fn unknown_callee() {
    let text = "[[domain]]\nname = \"vfs\"\ncalls = [\n  \"ds\",\n  \"vsf\",\n]\n\n[[domain]]\nname = \"ds\"\n";
    let error = reject(text);
    assert!(matches!(
        error.root(),
        DescriptionError::UnknownCallee { domain, callee } if domain == "vfs" && callee == "vsf"
    ));
    assert_eq!(
        error.to_string(),
        "line 5: domain \"vfs\" calls unknown domain \"vsf\""
    );
}

#[test]
fn self_call() {
    let error = reject("[[domain]]\nname = \"a\"\ncalls = [\"a\"]\n");
    assert!(matches!(error.root(), DescriptionError::SelfCall { domain } if domain == "a"));
    assert_eq!(error.to_string(), "line 3: domain \"a\" calls itself");
}

#[test]
fn duplicate_callee() {
    let error =
        reject("[[domain]]\nname = \"a\"\ncalls = [\"b\", \"b\"]\n[[domain]]\nname = \"b\"\n");
    assert!(matches!(
        error.root(),
        DescriptionError::DuplicateCallee { domain, callee } if domain == "a" && callee == "b"
    ));
    assert_eq!(
        error.to_string(),
        "line 3: domain \"a\" lists \"b\" twice in calls"
    );
}

#[test]
fn too_many_callees() {
    let servers: Vec<String> = (0..17).map(|i| format!("s{i}")).collect();
    let mut builder =
        SystemDescription::builder().domain(DomainSpec::new("app", "x").calls(&servers));
    for server in &servers {
        builder = builder.domain(DomainSpec::new(server.as_str(), "x"));
    }
    let error = reject_built(builder.clone());
    assert!(
        matches!(error, DescriptionError::TooManyCallees { count: 17, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "domain \"app\" calls 17 domains: at most 16 (the boot info lists at most that many peers)"
    );
    // Sixteen are fine.
    let mut text = format!("[[domain]]\nname = \"app\"\ncalls = {:?}\n", &servers[..16]);
    for server in &servers[..16] {
        text.push_str(&format!("[[domain]]\nname = \"{server}\"\nimage = \"x\"\n"));
    }
    let system = SystemDescription::from_toml_str(&text, &image_exists).unwrap();
    assert_eq!(system.callees(1).count(), 16);
}

#[test]
fn cycles_are_reported_as_paths() {
    let text = "\
[[domain]]
name = \"a\"
calls = [\"b\"]
[[domain]]
name = \"b\"
calls = [\"c\"]
[[domain]]
name = \"c\"
calls = [\"a\"]
";
    let error = reject(text);
    let DescriptionError::Cycle { cycle } = error.root() else {
        panic!("{error:?}");
    };
    assert_eq!(cycle, &["a", "b", "c", "a"]);
    assert_eq!(
        error.to_string(),
        "line 9: the call graph has a cycle: a -> b -> c -> a"
    );

    // A cycle that does not go through the first domain is found too, and the path
    // starts where the cycle does.
    let error = reject_built(
        SystemDescription::builder()
            .domain(DomainSpec::new("app", "x").calls(["x"]))
            .domain(DomainSpec::new("x", "x").calls(["y"]))
            .domain(DomainSpec::new("y", "x").calls(["z"]))
            .domain(DomainSpec::new("z", "x").calls(["x"])),
    );
    assert_eq!(
        error.to_string(),
        "the call graph has a cycle: x -> y -> z -> x"
    );

    // Two domains calling each other.
    let error = reject_built(
        SystemDescription::builder()
            .domain(DomainSpec::new("a", "x").calls(["b"]))
            .domain(DomainSpec::new("b", "x").calls(["a"])),
    );
    assert!(matches!(error, DescriptionError::Cycle { ref cycle } if cycle == &["a", "b", "a"]));
}

#[test]
fn a_diamond_is_not_a_cycle() {
    SystemDescription::builder()
        .domain(DomainSpec::new("app", "x").calls(["vfs", "pm"]))
        .domain(DomainSpec::new("vfs", "x").calls(["ds"]))
        .domain(DomainSpec::new("pm", "x").calls(["ds", "vfs"]))
        .domain(DomainSpec::new("ds", "x"))
        .build(&image_exists)
        .unwrap();
}

#[test]
fn from_path_names_the_file() {
    let dir = std::env::temp_dir().join(format!("ankh-domains-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "[[domain]]\nname = \"a\"\ncalls = [\"b\"]\n").unwrap();
    let error = SystemDescription::from_path(&path, &image_exists).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: line 3: domain \"a\" calls unknown domain \"b\"",
            path.display()
        )
    );
    assert_eq!(error.path(), Some(path.as_path()));
    assert_eq!(error.line(), Some(3));
    assert!(matches!(
        error.root(),
        DescriptionError::UnknownCallee { .. }
    ));

    let good = dir.join("good.toml");
    std::fs::write(&good, "[[domain]]\nname = \"a\"\n").unwrap();
    let system = SystemDescription::from_path(&good, &image_exists).unwrap();
    assert_eq!(system.id_of("a"), Some(1));

    let missing = dir.join("missing.toml");
    let error = SystemDescription::from_path(&missing, &image_exists).unwrap_err();
    assert!(matches!(error, DescriptionError::Read { .. }));
    assert_eq!(
        error.to_string(),
        format!("cannot read system description {}", missing.display())
    );
    assert!(
        std::error::Error::source(&error).is_some(),
        "the I/O error is the source"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_disk_domain_is_rejected_at_its_disk_key() {
    let error = reject(
        "[[domain]]\nname = \"blk\"\ndisk = true\n\
         [[domain]]\nname = \"blk2\"\nmemory_mib = 4\ndisk = true\n",
    );
    assert_eq!(
        error.to_string(),
        "line 7: domains \"blk\" and \"blk2\" both have disk = true; \
         a system has at most one disk domain"
    );
    assert!(matches!(error.root(), DescriptionError::SecondDisk { .. }));
    let built = reject_built(
        SystemDescription::builder()
            .domain(DomainSpec::new("a", "a").disk(true))
            .domain(DomainSpec::new("b", "b").disk(true)),
    );
    assert!(matches!(built, DescriptionError::SecondDisk { .. }));
}
