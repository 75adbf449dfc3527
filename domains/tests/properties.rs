//! Property tests: no input panics the parser, and generated systems are judged the
//! way a reference model judges them.

use ankh_domains::{DescriptionError, DomainSpec, SystemDescription};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text never panics the parser, and every error is one line.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Err(error) = SystemDescription::from_toml_str(&text, &|_| true) {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }

    /// Text made of TOML-ish pieces (so it gets past the syntax check more often)
    /// never panics either.
    #[test]
    fn tomlish_text_never_panics(pieces in prop::collection::vec(prop::sample::select(vec![
        "[[domain]]\n", "[message_rate]\n", "name = \"a\"\n", "name = \"b\"\n",
        "name = \"\"\n", "name = \"-\"\n", "image = \"a\"\n", "calls = [\"a\"]\n",
        "calls = [\"b\", \"a\"]\n", "calls = []\n", "thread = 1\n", "threads = 2\n",
        "threads = 0\n", "memory_mib = 1\n", "memory_mib = 99999999999999\n",
        "per_second = 0\n", "burst = 3\n", "policy = \"naive\"\n", "mode = \"kernel\"\n",
        "thread = -1\n", "é", "\"", "[", "=", "\n", "#", "\r\n", "\u{0}",
    ]), 0..24)) {
        let text: String = pieces.concat();
        for exists in [true, false] {
            if let Err(error) = SystemDescription::from_toml_str(&text, &|_| exists) {
                prop_assert!(!error.to_string().contains('\n'));
            }
        }
    }

    /// Random call graphs: accepted exactly when acyclic; an accepted system answers
    /// may_call like the edge list and survives the TOML round trip; a rejected one
    /// reports a real cycle.
    #[test]
    fn random_call_graphs(n in 1usize..10, edges in prop::collection::vec((0usize..10, 0usize..10), 0..30)) {
        let mut calls = vec![Vec::<usize>::new(); n];
        for (from, to) in edges {
            let (from, to) = (from % n, to % n);
            if from != to && !calls[from].contains(&to) {
                calls[from].push(to);
            }
        }
        let name = |i: usize| format!("d{i}");
        let builder = SystemDescription::builder().domains((0..n).map(|i| {
            DomainSpec::new(name(i), "img").calls(calls[i].iter().map(|&c| name(c)))
        }));
        match builder.build(&|_| true) {
            Ok(system) => {
                prop_assert!(is_acyclic(&calls));
                for (from, callees) in calls.iter().enumerate() {
                    let got: Vec<_> = system.callees(id(from)).map(|(i, _)| i).collect();
                    let want: Vec<_> = callees.iter().map(|&c| id(c)).collect();
                    prop_assert_eq!(got, want);
                    for to in 0..n {
                        prop_assert_eq!(system.may_call(id(from), id(to)), callees.contains(&to));
                    }
                }
                let text = system.to_toml_string();
                prop_assert_eq!(SystemDescription::from_toml_str(&text, &|_| true).unwrap(), system);
            }
            Err(DescriptionError::Cycle { cycle }) => {
                prop_assert!(!is_acyclic(&calls));
                prop_assert!(cycle.len() >= 3);
                prop_assert_eq!(cycle.first(), cycle.last());
                for pair in cycle.windows(2) {
                    let from: usize = pair[0][1..].parse().unwrap();
                    let to: usize = pair[1][1..].parse().unwrap();
                    prop_assert!(calls[from].contains(&to), "{} -> {} is no edge", pair[0], pair[1]);
                }
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}

fn id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap()
}

/// Kahn's algorithm: the reference the validator's depth-first search is checked against.
fn is_acyclic(calls: &[Vec<usize>]) -> bool {
    let mut indegree = vec![0usize; calls.len()];
    for callees in calls {
        for &c in callees {
            indegree[c] += 1;
        }
    }
    let mut ready: Vec<usize> = (0..calls.len()).filter(|&i| indegree[i] == 0).collect();
    let mut done = 0;
    while let Some(node) = ready.pop() {
        done += 1;
        for &c in &calls[node] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(c);
            }
        }
    }
    done == calls.len()
}
