//! The fault list of a campaign: from a profile of the golden run and a seed, the same
//! faults on every host, and the disjoint shards of it. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::debug::decode::{self, FaultType};
use crate::domain::debug::{FaultPlan, SplitMix64};
use crate::domain::Substrate;

/// One executed instruction of a server in the golden run's profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Its guest address.
    pub address: u64,
    /// Executions counted after the server's first message.
    pub count: u64,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Per server, its executed instructions, in address order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignProfile {
    /// Server name -> sites.
    pub servers: BTreeMap<String, Vec<Site>>,
    /// Server name -> whether its single-step bound was reached (partial profile).
    pub truncated: BTreeMap<String, bool>,
    /// Server name -> its instructions executed with a request in hand, (inside,
    /// outside) the recovery window under `enhanced`: OSIRIS's coverage, counted.
    #[serde(default)]
    pub instructions_in_window: BTreeMap<String, (u64, u64)>,
}

/// What to plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSpec {
    /// Faults per policy.
    pub faults: u64,
    /// The seed.
    pub seed: u64,
    /// Fault types drawn from.
    pub types: Vec<FaultType>,
    /// Servers drawn from.
    pub servers: Vec<String>,
    /// Policies: each gets the same faults.
    pub policies: Vec<String>,
    /// The largest hit count drawn (each hit before it costs the VMM two exits).
    pub max_hit: u64,
    /// What the OS runs on (campaigns before it existed ran on kvm).
    #[serde(default)]
    pub substrate: Substrate,
}

/// One planned fault: where, which execution, what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Its index in the fault list.
    pub index: u64,
    /// The server.
    pub server: String,
    /// The instruction, as Intel syntax.
    pub instruction: String,
    /// What the VMM does.
    pub plan: FaultPlan,
}

/// One run of a campaign: a fault under a policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// `<policy>-<fault index>`.
    pub id: String,
    /// The policy of ds, vfs, mm and pm.
    pub policy: String,
    /// The fault.
    pub fault: Fault,
    /// What the OS runs on.
    #[serde(default)]
    pub substrate: Substrate,
}

/// The fault list: fault `i` depends on the seed, `i` and the profile only.
pub fn faults(spec: &PlanSpec, profile: &CampaignProfile) -> Vec<Fault> {
    // Per server and type, the sites where the type applies.
    let mut candidates: BTreeMap<(&str, FaultType), Vec<&Site>> = BTreeMap::new();
    for server in &spec.servers {
        let Some(sites) = profile.servers.get(server) else {
            continue;
        };
        for site in sites {
            let Some(instruction) = decode::decode(site.address, &site.bytes) else {
                continue;
            };
            for &fault in &spec.types {
                if decode::applies(fault, &instruction) {
                    candidates.entry((server, fault)).or_default().push(site);
                }
            }
        }
    }
    let pairs: Vec<(&str, FaultType)> = candidates.keys().copied().collect();
    if pairs.is_empty() {
        return Vec::new();
    }
    (0..spec.faults)
        .map(|index| {
            let mut random = SplitMix64::new(spec.seed ^ index.wrapping_mul(0x2545_f491_4f6c_dd1d));
            // Server first, then a type that applies somewhere in it, then a site.
            let servers: Vec<&str> = {
                let mut names: Vec<&str> = pairs.iter().map(|(s, _)| *s).collect();
                names.dedup();
                names
            };
            let server = *random.pick(&servers);
            let types: Vec<FaultType> = pairs
                .iter()
                .filter(|(s, _)| *s == server)
                .map(|(_, t)| *t)
                .collect();
            let fault = *random.pick(&types);
            let sites = &candidates[&(server, fault)];
            let site = *random.pick(sites);
            let hit = 1 + random.below(site.count.min(spec.max_hit).max(1));
            let instruction = decode::decode(site.address, &site.bytes)
                .map(|i| decode::describe(&i))
                .unwrap_or_default();
            Fault {
                index,
                server: server.to_owned(),
                instruction,
                plan: FaultPlan {
                    address: site.address,
                    hit,
                    fault,
                    seed: random.next(),
                },
            }
        })
        .collect()
}

/// Every experiment: each policy with each fault, policy-major.
pub fn experiments(spec: &PlanSpec, profile: &CampaignProfile) -> Vec<Experiment> {
    let faults = faults(spec, profile);
    spec.policies
        .iter()
        .flat_map(|policy| {
            faults.iter().map(move |fault| Experiment {
                id: format!("{policy}-{}", fault.index),
                policy: policy.clone(),
                fault: fault.clone(),
                substrate: spec.substrate,
            })
        })
        .collect()
}

/// Shard `index` of `count` (0-based): every `count`-th experiment from `index`.
pub fn shard(experiments: Vec<Experiment>, index: u64, count: u64) -> Vec<Experiment> {
    experiments
        .into_iter()
        .enumerate()
        .filter(|(n, _)| *n as u64 % count.max(1) == index)
        .map(|(_, e)| e)
        .collect()
}

/// `i/N` as (i, N), with 0 <= i < N.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("shard {text:?} is not i/N"))?;
    let (i, n): (u64, u64) = (
        i.trim()
            .parse()
            .map_err(|_| format!("bad shard index {i:?}"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("bad shard count {n:?}"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: the index must be in 0..{n}"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> CampaignProfile {
        let mut servers = BTreeMap::new();
        let sites = vec![
            Site {
                address: 0x1000,
                count: 50,
                bytes: vec![0x75, 0x10],
            }, // jne
            Site {
                address: 0x1002,
                count: 3,
                bytes: vec![0x48, 0x8b, 0x04, 0xc8],
            }, // load
            Site {
                address: 0x1006,
                count: 1,
                bytes: vec![0x48, 0x89, 0x03],
            }, // store
        ];
        servers.insert("vfs".to_owned(), sites.clone());
        servers.insert("pm".to_owned(), sites);
        CampaignProfile {
            servers,
            ..CampaignProfile::default()
        }
    }

    fn spec(seed: u64) -> PlanSpec {
        PlanSpec {
            faults: 40,
            seed,
            types: FaultType::ALL.to_vec(),
            servers: vec!["vfs".into(), "pm".into()],
            policies: vec!["enhanced".into(), "none".into()],
            substrate: Default::default(),
            max_hit: 1000,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_another_seed_others() {
        let a = faults(&spec(1), &profile());
        assert_eq!(a, faults(&spec(1), &profile()));
        assert_ne!(a, faults(&spec(2), &profile()));
        assert_eq!(a.len(), 40);
        for fault in &a {
            let site = profile().servers[&fault.server]
                .iter()
                .find(|s| s.address == fault.plan.address)
                .cloned()
                .expect("a profiled site");
            assert!((1..=site.count).contains(&fault.plan.hit), "{fault:?}");
            let insn = decode::decode(site.address, &site.bytes).unwrap();
            assert!(decode::applies(fault.plan.fault, &insn), "{fault:?}");
        }
    }

    #[test]
    fn shards_are_disjoint_and_together_the_whole_campaign() {
        let all = experiments(&spec(9), &profile());
        assert_eq!(all.len(), 80);
        let mut merged: Vec<Experiment> = (0..4).flat_map(|i| shard(all.clone(), i, 4)).collect();
        merged.sort_by(|a, b| a.id.cmp(&b.id));
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(merged, sorted);
        assert_eq!(parse_shard("3/4"), Ok((3, 4)));
        assert!(parse_shard("4/4").is_err() && parse_shard("x").is_err());
    }
}
