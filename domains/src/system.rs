//! A validated system and the queries the VMM asks of it; the builder for code.

use std::path::Path;

use crate::error::DescriptionError;
use crate::graph::{id_from_index, index_from_id, CallGraph};
use crate::spec::{DomainId, DomainSpec, MessageRate};
use crate::validate::validate;

/// A validated Ankh system: its domains, their call graph and the system settings.
///
/// Only validation creates one ([`SystemDescription::from_toml_str`],
/// [`SystemDescription::from_path`], [`SystemBuilder::build`]), so every value
/// satisfies the rules in
/// the crate docs. The public fields are for reading: the call graph is resolved
/// from them at validation, so to change a system, go through
/// [`SystemDescription::into_builder`] and validate again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemDescription {
    /// Host threads that run vCPUs, 1..=64.
    pub threads: usize,
    /// The message-storm limit of every domain.
    pub message_rate: MessageRate,
    /// The domains; domain id `i + 1` is `domains[i]`.
    pub domains: Vec<DomainSpec>,
    graph: CallGraph,
}

impl SystemDescription {
    /// Only [`crate::validate`] calls this, with data it checked.
    pub(crate) fn from_validated(
        threads: usize,
        message_rate: MessageRate,
        domains: Vec<DomainSpec>,
        graph: CallGraph,
    ) -> Self {
        SystemDescription {
            threads,
            message_rate,
            domains,
            graph,
        }
    }

    /// Parses and validates a description in TOML (format in the crate docs).
    /// `image_exists` says whether an image name is known (a built-in image, or a path
    /// that exists). Errors carry the line they are at when it is known.
    pub fn from_toml_str(
        text: &str,
        image_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Self, DescriptionError> {
        crate::parse::parse(text, image_exists)
    }

    /// Reads, parses and validates the TOML file at `path`; every error names the file.
    pub fn from_path(
        path: &Path,
        image_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Self, DescriptionError> {
        let text = std::fs::read_to_string(path).map_err(|source| DescriptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, image_exists).map_err(|error| DescriptionError::InFile {
            path: path.to_path_buf(),
            error: Box::new(error),
        })
    }

    /// A builder for a system made in code; [`SystemBuilder::build`] validates it
    /// exactly as a TOML description is validated.
    pub fn builder() -> SystemBuilder {
        SystemBuilder::default()
    }

    /// A builder holding this system's settings and domains, to change and rebuild.
    pub fn into_builder(self) -> SystemBuilder {
        SystemBuilder {
            threads: self.threads,
            message_rate: self.message_rate,
            domains: self.domains,
        }
    }

    /// The description as TOML that [`SystemDescription::from_toml_str`] reads back to
    /// an equal description (every field written out, no system-wide `policy`).
    pub fn to_toml_string(&self) -> String {
        crate::parse::to_toml(self)
    }

    /// The id of the domain called `name` (a linear search: at most 255 domains).
    pub fn id_of(&self, name: &str) -> Option<DomainId> {
        self.domains
            .iter()
            .position(|d| d.name == name)
            .map(id_from_index)
    }

    /// The domain with id `id`; `None` for 0 (the VMM) and ids past the last domain.
    pub fn spec(&self, id: DomainId) -> Option<&DomainSpec> {
        self.domains.get(index_from_id(id)?)
    }

    /// The name of domain `id`.
    pub fn name(&self, id: DomainId) -> Option<&str> {
        self.spec(id).map(|d| d.name.as_str())
    }

    /// Whether domain `from` may send requests to domain `to` (a call-graph edge): a
    /// bit test, cheap enough for every request. False when either id is not a domain.
    pub fn may_call(&self, from: DomainId, to: DomainId) -> bool {
        index_from_id(from).is_some_and(|index| self.graph.may_call(index, to))
    }

    /// The ids and names of the domains `id` may call, in the order of its `calls`
    /// (the order of the guest's boot-info peers). Empty when `id` is not a domain.
    pub fn callees(&self, id: DomainId) -> impl Iterator<Item = (DomainId, &str)> + '_ {
        let callees = index_from_id(id).map_or(&[][..], |index| self.graph.callees(index));
        callees
            .iter()
            .filter_map(move |&callee| Some((callee, self.name(callee)?)))
    }

    /// The ids of the domains that may call `id`, in id order.
    pub fn callers(&self, id: DomainId) -> impl Iterator<Item = DomainId> + '_ {
        self.ids().filter(move |&from| self.may_call(from, id))
    }

    /// Every domain id, in order: 1..=number of domains.
    pub fn ids(&self) -> impl Iterator<Item = DomainId> + '_ {
        (0..self.domains.len()).map(id_from_index)
    }

    /// The ids of the domains host thread `thread` runs, in id order.
    pub fn on_thread(&self, thread: usize) -> impl Iterator<Item = DomainId> + '_ {
        self.ids()
            .filter(move |&id| self.spec(id).is_some_and(|d| d.thread == thread))
    }
}

/// Builds a [`SystemDescription`] in code; `build` validates it on the same code path
/// as TOML.
///
/// ```
/// use ankh_domains::{DomainSpec, SystemDescription};
///
/// let system = SystemDescription::builder()
///     .threads(1)
///     .domain(DomainSpec::new("echo", "echo"))
///     .domain(DomainSpec::new("ping", "ping").calls(["echo"]))
///     .build(&|_| true)
///     .unwrap();
/// assert!(system.may_call(2, 1));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemBuilder {
    threads: usize,
    message_rate: MessageRate,
    domains: Vec<DomainSpec>,
}

impl Default for SystemBuilder {
    /// One thread, the default message rate, no domains yet.
    fn default() -> Self {
        SystemBuilder {
            threads: 1,
            message_rate: MessageRate::default(),
            domains: Vec::new(),
        }
    }
}

impl SystemBuilder {
    /// Sets the number of host threads that run vCPUs (default 1).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets the message-storm limit (default [`MessageRate::default`]).
    #[must_use]
    pub fn message_rate(mut self, message_rate: MessageRate) -> Self {
        self.message_rate = message_rate;
        self
    }

    /// Appends a domain: its id is the number of domains added so far plus one.
    #[must_use]
    pub fn domain(mut self, domain: DomainSpec) -> Self {
        self.domains.push(domain);
        self
    }

    /// Appends several domains, in order.
    #[must_use]
    pub fn domains(mut self, domains: impl IntoIterator<Item = DomainSpec>) -> Self {
        self.domains.extend(domains);
        self
    }

    /// Validates and builds the system; `image_exists` as in
    /// [`SystemDescription::from_toml_str`].
    pub fn build(
        self,
        image_exists: &dyn Fn(&str) -> bool,
    ) -> Result<SystemDescription, DescriptionError> {
        validate(self.threads, self.message_rate, self.domains, image_exists)
            .map_err(|invalid| invalid.error)
    }
}

impl SystemDescription {
    /// The domain that owns the disk (`disk = true`), if any.
    pub fn disk_domain(&self) -> Option<DomainId> {
        self.ids().find(|id| self.spec(*id).is_some_and(|s| s.disk))
    }

    /// The domain with the process-manager role, if any.
    pub fn process_manager(&self) -> Option<DomainId> {
        self.ids().find(|id| {
            self.spec(*id)
                .is_some_and(|s| s.role == crate::Role::ProcessManager)
        })
    }
}
