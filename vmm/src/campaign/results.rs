//! A campaign's directory: `campaign.json` (what was planned), `profile.json` (the
//! golden run's profile), `results.jsonl` (one experiment per line, appended as each
//! ends, so an interrupted campaign keeps what it ran).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::{CampaignProfile, PlanSpec};
use super::run::ExperimentResult;

/// `campaign.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignFile {
    /// What was planned.
    pub spec: PlanSpec,
    /// The golden run's checks (passed, failed).
    pub golden: (u64, u64),
    /// The shard this directory ran, `i/N` (`None`: all).
    pub shard: Option<String>,
    /// The build's images the campaign was planned against ([`images_fingerprint`];
    /// `None` in directories written before it was recorded). A fault is an address
    /// in an image: another build's images put other instructions there.
    #[serde(default)]
    pub images: Option<String>,
}

/// A fingerprint of every built-in image (names and bytes, FNV-1a 64): the same on
/// every host for the same build, different when any image changed.
pub fn images_fingerprint() -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for image in ankh_image_catalog::builtin() {
        for &byte in image
            .name
            .as_bytes()
            .iter()
            .chain([0u8].iter())
            .chain(image.elf)
        {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

/// Whether `campaign` may be resumed, replayed or merged by this build: its images
/// are this build's (or were not recorded). The error says what to do.
pub fn check_images(campaign: &CampaignFile, dir: &Path) -> Result<(), ResultsError> {
    let Some(images) = &campaign.images else {
        return Ok(());
    };
    let ours = images_fingerprint();
    if *images == ours {
        return Ok(());
    }
    Err(ResultsError::Bad {
        path: dir.display().to_string(),
        what: format!(
            "this campaign ran on other server images (build {images}, this one {ours}): \
             replay or resume it with the build that ran it, or start a new --out"
        ),
    })
}

/// Errors reading or writing a campaign directory.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {what}")]
    Bad {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ResultsError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| ResultsError::Bad {
        path: path.display().to_string(),
        what: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(io(path))
}

/// Reads JSON from `path`.
pub fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T, ResultsError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| ResultsError::Bad {
        path: path.display().to_string(),
        what: e.to_string(),
    })
}

/// Appends one result line to `path`.
pub fn append(path: &Path, result: &ExperimentResult) -> Result<(), ResultsError> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io(path))?;
    let mut line = serde_json::to_string(result).map_err(|e| ResultsError::Bad {
        path: path.display().to_string(),
        what: e.to_string(),
    })?;
    line.push('\n');
    // One write per line: appends of whole lines do not interleave.
    file.write_all(line.as_bytes()).map_err(io(path))
}

/// Every result in `path` (one JSON object a line).
pub fn read_results(path: &Path) -> Result<Vec<ExperimentResult>, ResultsError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut results = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        results.push(serde_json::from_str(&line).map_err(|e| ResultsError::Bad {
            path: path.display().to_string(),
            what: format!("line {}: {e}", n + 1),
        })?);
    }
    Ok(results)
}

/// The results of several campaign directories (shards of one campaign), one per
/// experiment id (a later one wins), in id order. Fails when their plans differ.
pub fn merge(
    dirs: &[&Path],
) -> Result<(CampaignFile, CampaignProfile, Vec<ExperimentResult>), ResultsError> {
    let mut first: Option<(CampaignFile, CampaignProfile)> = None;
    let mut by_id: BTreeMap<String, ExperimentResult> = BTreeMap::new();
    for dir in dirs {
        let campaign: CampaignFile = read_json(&dir.join("campaign.json"))?;
        let profile: CampaignProfile = read_json(&dir.join("profile.json"))?;
        match &first {
            None => first = Some((campaign.clone(), profile)),
            Some((first, known))
                if first.spec != campaign.spec
                    || first.images != campaign.images
                    || *known != profile =>
            {
                return Err(ResultsError::Bad {
                    path: dir.display().to_string(),
                    what: "another campaign (its plan, images or profile differ from the first)"
                        .to_owned(),
                });
            }
            Some(_) => {}
        }
        for result in read_results(&dir.join("results.jsonl"))? {
            by_id.insert(result.experiment.id.clone(), result);
        }
    }
    let (mut campaign, profile) = first.ok_or_else(|| ResultsError::Bad {
        path: String::new(),
        what: "no directory to merge".to_owned(),
    })?;
    campaign.shard = None;
    Ok((campaign, profile, by_id.into_values().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::plan::{self, Site};
    use crate::campaign::run::Outcome;
    use crate::domain::debug::decode::FaultType;

    #[test]
    fn a_campaign_of_other_images_is_refused_and_one_of_these_accepted() {
        crate::install_test_images();
        let spec = PlanSpec {
            faults: 1,
            seed: 1,
            types: FaultType::ALL.to_vec(),
            servers: vec!["mm".to_owned()],
            policies: vec!["none".to_owned()],
            substrate: Default::default(),
            max_hit: 1,
        };
        let campaign = |images: Option<String>| CampaignFile {
            spec: spec.clone(),
            golden: (252, 0),
            shard: None,
            images,
        };
        let dir = Path::new("results");
        let fingerprint = images_fingerprint();
        assert_eq!(fingerprint.len(), 16);
        assert_eq!(
            fingerprint,
            images_fingerprint(),
            "the same build, the same print"
        );
        assert!(check_images(&campaign(Some(fingerprint)), dir).is_ok());
        assert!(
            check_images(&campaign(None), dir).is_ok(),
            "older directories"
        );
        let other = check_images(&campaign(Some("0123456789abcdef".to_owned())), dir)
            .expect_err("other images");
        assert!(other.to_string().contains("other server images"), "{other}");
    }

    #[test]
    fn four_shard_directories_merge_into_the_unsharded_campaign() {
        crate::install_test_images();
        let mut profile = CampaignProfile::default();
        let sites = vec![
            Site {
                address: 0x1000,
                count: 9,
                bytes: vec![0x75, 0x10],
            },
            Site {
                address: 0x1002,
                count: 2,
                bytes: vec![0x48, 0x89, 0x03],
            },
        ];
        profile.servers.insert("mm".to_owned(), sites);
        let spec = PlanSpec {
            faults: 10,
            seed: 4,
            types: FaultType::ALL.to_vec(),
            servers: vec!["mm".to_owned()],
            policies: vec!["none".to_owned(), "enhanced".to_owned()],
            substrate: Default::default(),
            max_hit: 100,
        };
        let all = plan::experiments(&spec, &profile);
        let root = std::env::temp_dir().join(format!("ankh-merge-test-{}", std::process::id()));
        let mut dirs = Vec::new();
        for shard in 0..4 {
            let dir = root.join(format!("shard-{shard}"));
            std::fs::create_dir_all(&dir).unwrap();
            let campaign = CampaignFile {
                spec: spec.clone(),
                golden: (252, 0),
                shard: Some(format!("{shard}/4")),
                images: Some(images_fingerprint()),
            };
            write_json(&dir.join("campaign.json"), &campaign).unwrap();
            write_json(&dir.join("profile.json"), &profile).unwrap();
            for experiment in plan::shard(all.clone(), shard, 4) {
                let result = ExperimentResult {
                    experiment,
                    outcome: Outcome::Pass,
                    activated: true,
                    fired: None,
                    hits: 1,
                    recoveries: Vec::new(),
                    window_at_detection: None,
                    checks: Some((252, 0)),
                    detail: None,
                    millis: 1,
                };
                append(&dir.join("results.jsonl"), &result).unwrap();
            }
            dirs.push(dir);
        }
        let paths: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
        let (campaign, _, merged) = merge(&paths).unwrap();
        let mut expected: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
        expected.sort();
        let ids: Vec<String> = merged.iter().map(|r| r.experiment.id.clone()).collect();
        assert_eq!(ids, expected);
        let planned: Vec<_> = merged.into_iter().map(|r| r.experiment).collect();
        assert!(planned.iter().all(|e| all.contains(e)));
        assert_eq!(campaign.shard, None);
        // Another campaign's directory is refused.
        let other = root.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let mut spec = spec;
        spec.seed = 5;
        let campaign = CampaignFile {
            spec,
            golden: (252, 0),
            shard: None,
            images: Some(images_fingerprint()),
        };
        write_json(&other.join("campaign.json"), &campaign).unwrap();
        write_json(&other.join("profile.json"), &profile).unwrap();
        append(
            &other.join("results.jsonl"),
            &ExperimentResult {
                experiment: all[0].clone(),
                outcome: Outcome::Pass,
                activated: true,
                fired: None,
                hits: 1,
                recoveries: Vec::new(),
                window_at_detection: None,
                checks: None,
                detail: None,
                millis: 1,
            },
        )
        .unwrap();
        assert!(merge(&[paths[0], other.as_path()]).is_err());
        let _ = std::fs::remove_dir_all(&root);
    }
}
