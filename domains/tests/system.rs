//! Valid descriptions: ids, the call graph queries, defaults, the built-in demo, and
//! the TOML round trip.

use ankh_domains::{
    DomainSpec, MessageRate, Mode, Policy, SystemDescription, DEFAULT_MEMORY_MIB, VMM_DOMAIN,
};

const OS: &str = r#"
threads = 2
policy = "pessimistic"

[message_rate]
per_second = 500

[[domain]]
name = "ds"
policy = "stateless"

[[domain]]
name = "vfs"
image = "images/vfs.elf"
memory_mib = 16
calls = ["ds"]
mode = "kernel"

[[domain]]
name = "pm"
calls = ["vfs", "ds"]
thread = 1

[[domain]]
name = "app"
calls = ["pm", "ds", "vfs"]
thread = 1
"#;

fn os() -> SystemDescription {
    SystemDescription::from_toml_str(OS, &|_| true).unwrap()
}

#[test]
fn ids_follow_the_order_of_the_tables() {
    let system = os();
    assert_eq!(system.ids().collect::<Vec<_>>(), [1, 2, 3, 4]);
    for (name, id) in [("ds", 1), ("vfs", 2), ("pm", 3), ("app", 4)] {
        assert_eq!(system.id_of(name), Some(id));
        assert_eq!(system.spec(id).unwrap().name, name);
        assert_eq!(system.name(id), Some(name));
    }
    assert_eq!(system.id_of("vmm"), None);
    assert_eq!(system.spec(VMM_DOMAIN), None);
    assert_eq!(system.spec(5), None);
    assert_eq!(system.spec(u32::MAX), None);
}

#[test]
fn settings_and_defaults() {
    let system = os();
    assert_eq!(system.threads, 2);
    assert_eq!(
        system.message_rate,
        MessageRate {
            per_second: 500,
            burst: MessageRate::DEFAULT_BURST
        }
    );
    let ds = system.spec(1).unwrap();
    assert_eq!(ds.image, "ds");
    assert_eq!(ds.memory_mib, DEFAULT_MEMORY_MIB);
    assert_eq!(ds.policy, Policy::Stateless, "its own policy wins");
    assert_eq!((ds.thread, ds.mode), (0, Mode::User));
    let vfs = system.spec(2).unwrap();
    assert_eq!(vfs.image, "images/vfs.elf");
    assert_eq!(vfs.memory_mib, 16);
    assert_eq!(vfs.memory_bytes(), 16 << 20);
    assert_eq!(vfs.policy, Policy::Pessimistic, "the system's policy");
    assert_eq!(vfs.mode, Mode::Kernel);
    assert_eq!(system.on_thread(1).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(system.on_thread(0).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn defaults_of_an_almost_empty_description() {
    let system = SystemDescription::from_toml_str("[[domain]]\nname = \"a\"\n", &|_| true).unwrap();
    assert_eq!(system.threads, 1);
    assert_eq!(system.message_rate, MessageRate::default());
    assert_eq!(system.domains, [DomainSpec::new("a", "a")]);
    assert_eq!(system.domains[0].policy, Policy::Enhanced);
}

#[test]
fn may_call_follows_the_edges_only() {
    let system = os();
    let edges = [(2, 1), (3, 2), (3, 1), (4, 3), (4, 1), (4, 2)];
    for from in 0..=6 {
        for to in 0..=6 {
            assert_eq!(
                system.may_call(from, to),
                edges.contains(&(from, to)),
                "{from} -> {to}"
            );
        }
    }
    assert!(!system.may_call(u32::MAX, 1));
    assert!(!system.may_call(4, u32::MAX));
    assert!(!system.may_call(4, 256));
}

#[test]
fn callees_keep_the_order_of_calls() {
    let system = os();
    assert_eq!(
        system.callees(4).collect::<Vec<_>>(),
        [(3, "pm"), (1, "ds"), (2, "vfs")]
    );
    assert_eq!(
        system.callees(3).collect::<Vec<_>>(),
        [(2, "vfs"), (1, "ds")]
    );
    assert_eq!(system.callees(1).count(), 0);
    assert_eq!(system.callees(0).count(), 0);
    assert_eq!(system.callees(9).count(), 0);
    assert_eq!(system.callers(1).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(system.callers(4).count(), 0);
}

#[test]
fn builder_and_toml_agree() {
    let built = SystemDescription::builder()
        .threads(2)
        .message_rate(MessageRate {
            per_second: 500,
            burst: MessageRate::DEFAULT_BURST,
        })
        .domain(
            DomainSpec::new("ds", "ds")
                .policy(Policy::Stateless)
                .memory_mib(4),
        )
        .domain(
            DomainSpec::new("vfs", "images/vfs.elf")
                .memory_mib(16)
                .calls(["ds"])
                .policy(Policy::Pessimistic)
                .mode(Mode::Kernel),
        )
        .domains([
            DomainSpec::new("pm", "pm")
                .calls(["vfs", "ds"])
                .thread(1)
                .policy(Policy::Pessimistic),
            DomainSpec::new("app", "app")
                .calls(["pm", "ds", "vfs"])
                .thread(1)
                .policy(Policy::Pessimistic),
        ])
        .build(&|_| true)
        .unwrap();
    assert_eq!(built, os());
}

#[test]
fn toml_round_trip() {
    let pair = SystemDescription::builder()
        .domain(DomainSpec::new("echo", "echo"))
        .domain(DomainSpec::new("ping", "ping").calls(["echo"]))
        .build(&|_| true)
        .unwrap();
    for system in [os(), pair] {
        let text = system.to_toml_string();
        let again = SystemDescription::from_toml_str(&text, &|_| true)
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(again, system, "{text}");
    }
}

#[test]
fn into_builder_rebuilds_and_revalidates() {
    let system = os();
    let changed = system
        .clone()
        .into_builder()
        .domain(DomainSpec::new("extra", "x").calls(["app"]))
        .build(&|_| true)
        .unwrap();
    assert_eq!(changed.id_of("extra"), Some(5));
    assert!(changed.may_call(5, 4));
    let same = system.clone().into_builder().build(&|_| true).unwrap();
    assert_eq!(same, system);
}

#[test]
fn the_image_callback_sees_every_image() {
    let seen = std::cell::RefCell::new(Vec::new());
    SystemDescription::from_toml_str(OS, &|image| {
        seen.borrow_mut().push(image.to_owned());
        true
    })
    .unwrap();
    assert_eq!(seen.into_inner(), ["ds", "images/vfs.elf", "pm", "app"]);
}

#[test]
fn policy_and_mode_names() {
    for policy in Policy::ALL {
        let text = format!("[[domain]]\nname = \"a\"\npolicy = \"{policy}\"\n");
        let system = SystemDescription::from_toml_str(&text, &|_| true).unwrap();
        assert_eq!(system.domains[0].policy, policy);
    }
    assert_eq!(Policy::default(), Policy::Enhanced);
    assert_eq!(Mode::default(), Mode::User);
    assert_eq!(Mode::Kernel.to_string(), "kernel");
}

#[test]
fn the_disk_domain_is_found_and_survives_the_round_trip() {
    let text =
        "[[domain]]\nname = \"blk\"\ndisk = true\n[[domain]]\nname = \"app\"\ncalls = [\"blk\"]\n";
    let system = SystemDescription::from_toml_str(text, &|_| true).unwrap();
    assert_eq!(system.disk_domain(), system.id_of("blk"));
    assert!(!system.spec(2).unwrap().disk, "disk defaults to false");
    let again = SystemDescription::from_toml_str(&system.to_toml_string(), &|_| true).unwrap();
    assert_eq!(again, system);
    let none = SystemDescription::from_toml_str("[[domain]]\nname = \"a\"\n", &|_| true).unwrap();
    assert_eq!(none.disk_domain(), None);
}
