//! Validation: the one code path that turns parsed or built data into a
//! [`SystemDescription`], whether it came from TOML or from the builder.

use std::collections::HashSet;

use crate::error::DescriptionError;
use crate::graph::CallGraph;
use crate::spec::{
    DomainSpec, MessageRate, Role, MAX_CALLEES, MAX_DOMAINS, MAX_MEMORY_MIB, MAX_THREADS,
    MIN_MEMORY_MIB, NAME_MAX,
};
use crate::SystemDescription;

/// Where in a description an error is: the TOML parser turns it into a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Site {
    /// The description as a whole.
    System,
    /// The top-level `threads`.
    Threads,
    /// `message_rate.per_second`.
    PerSecond,
    /// `message_rate.burst`.
    Burst,
    /// The `[[domain]]` table at this index.
    Domain(usize),
    /// The `name` of the domain at this index.
    Name(usize),
    /// The `image` of the domain at this index.
    Image(usize),
    /// The `memory_mib` of the domain at this index.
    Memory(usize),
    /// The `thread` of the domain at this index.
    Thread(usize),
    /// The `disk` of the domain at this index.
    Disk(usize),
    /// The entry at the second index of the `calls` of the domain at the first index.
    Call(usize, usize),
}

/// A validation error and where it is.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) error: DescriptionError,
    pub(crate) site: Site,
}

impl Invalid {
    pub(crate) fn new(error: DescriptionError, site: Site) -> Self {
        Invalid { error, site }
    }
}

/// Checks everything and builds the description. Checks run in a fixed order
/// (system settings, then each domain in order, then the call graph), so the error
/// reported for a description with several problems is deterministic.
pub(crate) fn validate(
    threads: usize,
    message_rate: MessageRate,
    domains: Vec<DomainSpec>,
    image_exists: &dyn Fn(&str) -> bool,
) -> Result<SystemDescription, Invalid> {
    if threads == 0 || threads > MAX_THREADS {
        let error = DescriptionError::ThreadsOutOfRange { threads };
        return Err(Invalid::new(error, Site::Threads));
    }
    if message_rate.per_second == 0 {
        let error = DescriptionError::ZeroRate {
            field: "per_second",
        };
        return Err(Invalid::new(error, Site::PerSecond));
    }
    if message_rate.burst == 0 {
        let error = DescriptionError::ZeroRate { field: "burst" };
        return Err(Invalid::new(error, Site::Burst));
    }
    if domains.is_empty() {
        return Err(Invalid::new(DescriptionError::NoDomains, Site::System));
    }
    if domains.len() > MAX_DOMAINS {
        let error = DescriptionError::TooManyDomains {
            count: domains.len(),
        };
        return Err(Invalid::new(error, Site::Domain(MAX_DOMAINS)));
    }
    let mut names = HashSet::with_capacity(domains.len());
    for (index, domain) in domains.iter().enumerate() {
        check_domain(index, domain, threads, image_exists)?;
        if !names.insert(domain.name.as_str()) {
            let error = DescriptionError::DuplicateName {
                name: domain.name.clone(),
            };
            return Err(Invalid::new(error, Site::Name(index)));
        }
    }
    let managers: Vec<usize> = (0..domains.len())
        .filter(|&i| domains[i].role == Role::ProcessManager)
        .collect();
    if let [_, second, ..] = managers.as_slice() {
        let error = DescriptionError::SecondProcessManager {
            name: domains[*second].name.clone(),
        };
        return Err(Invalid::new(error, Site::Name(*second)));
    }
    let disks: Vec<usize> = (0..domains.len()).filter(|&i| domains[i].disk).collect();
    if let [first, second, ..] = disks.as_slice() {
        let error = DescriptionError::SecondDisk {
            first: domains[*first].name.clone(),
            second: domains[*second].name.clone(),
        };
        return Err(Invalid::new(error, Site::Disk(*second)));
    }
    let graph = CallGraph::resolve(&domains)?;
    Ok(SystemDescription::from_validated(
        threads,
        message_rate,
        domains,
        graph,
    ))
}

/// The checks of one domain that do not need the others.
fn check_domain(
    index: usize,
    domain: &DomainSpec,
    threads: usize,
    image_exists: &dyn Fn(&str) -> bool,
) -> Result<(), Invalid> {
    if let Some(reason) = name_problem(&domain.name) {
        let error = DescriptionError::InvalidName {
            name: domain.name.clone(),
            reason,
        };
        return Err(Invalid::new(error, Site::Name(index)));
    }
    if !image_exists(&domain.image) {
        let error = DescriptionError::UnknownImage {
            domain: domain.name.clone(),
            image: domain.image.clone(),
        };
        return Err(Invalid::new(error, Site::Image(index)));
    }
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&domain.memory_mib) {
        let error = DescriptionError::MemoryOutOfRange {
            domain: domain.name.clone(),
            memory_mib: domain.memory_mib,
        };
        return Err(Invalid::new(error, Site::Memory(index)));
    }
    if domain.thread >= threads {
        let error = DescriptionError::ThreadOutOfRange {
            domain: domain.name.clone(),
            thread: domain.thread,
            threads,
        };
        return Err(Invalid::new(error, Site::Thread(index)));
    }
    if domain.calls.len() > MAX_CALLEES {
        let error = DescriptionError::TooManyCallees {
            domain: domain.name.clone(),
            count: domain.calls.len(),
        };
        return Err(Invalid::new(error, Site::Call(index, MAX_CALLEES)));
    }
    Ok(())
}

/// What is wrong with a domain name, if anything.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name must not be empty")
    } else if name.len() > NAME_MAX {
        Some("a name is at most 16 bytes long")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("a name may only contain a-z, 0-9 and '-'")
    } else if name.starts_with('-') {
        Some("a name must not start with '-'")
    } else {
        None
    }
}
