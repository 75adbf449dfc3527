//! The TOML form of a description: reading it (with the place of every value, so
//! errors name their line) and writing it back.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::DescriptionError;
use crate::spec::{DomainSpec, MessageRate, Mode, Policy, Role, DEFAULT_MEMORY_MIB};
use crate::validate::{validate, Invalid, Site};
use crate::SystemDescription;

/// The top level of the TOML file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSystem {
    threads: Option<Spanned<usize>>,
    policy: Option<Policy>,
    message_rate: Option<RawRate>,
    #[serde(default)]
    domain: Vec<Spanned<RawDomain>>,
}

/// `[message_rate]`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_second: Option<Spanned<u32>>,
    burst: Option<Spanned<u32>>,
}

/// One `[[domain]]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    image: Option<Spanned<String>>,
    memory_mib: Option<Spanned<u64>>,
    #[serde(default)]
    calls: Vec<Spanned<String>>,
    policy: Option<Policy>,
    thread: Option<Spanned<usize>>,
    mode: Option<Mode>,
    role: Option<Spanned<Role>>,
    disk: Option<Spanned<bool>>,
}

/// Parses and validates `text`.
pub(crate) fn parse(
    text: &str,
    image_exists: &dyn Fn(&str) -> bool,
) -> Result<SystemDescription, DescriptionError> {
    let raw: RawSystem = toml::from_str(text).map_err(|error| syntax_error(text, &error))?;
    let default_policy = raw.policy.unwrap_or_default();
    let threads = raw.threads.as_ref().map_or(1, |t| *t.get_ref());
    let defaults = MessageRate::default();
    let message_rate = MessageRate {
        per_second: raw
            .message_rate
            .as_ref()
            .and_then(|r| r.per_second.as_ref())
            .map_or(defaults.per_second, |v| *v.get_ref()),
        burst: raw
            .message_rate
            .as_ref()
            .and_then(|r| r.burst.as_ref())
            .map_or(defaults.burst, |v| *v.get_ref()),
    };
    let domains = raw
        .domain
        .iter()
        .map(|d| domain_spec(d.get_ref(), default_policy))
        .collect();
    validate(threads, message_rate, domains, image_exists)
        .map_err(|invalid| locate(text, &raw, invalid))
}

/// The spec of one domain, with the defaults filled in.
fn domain_spec(raw: &RawDomain, default_policy: Policy) -> DomainSpec {
    let name = raw.name.get_ref().clone();
    DomainSpec {
        image: raw
            .image
            .as_ref()
            .map_or_else(|| name.clone(), |i| i.get_ref().clone()),
        name,
        memory_mib: raw
            .memory_mib
            .as_ref()
            .map_or(DEFAULT_MEMORY_MIB, |m| *m.get_ref()),
        calls: raw.calls.iter().map(|c| c.get_ref().clone()).collect(),
        policy: raw.policy.unwrap_or(default_policy),
        thread: raw.thread.as_ref().map_or(0, |t| *t.get_ref()),
        mode: raw.mode.unwrap_or_default(),
        role: raw.role.as_ref().map_or(Role::default(), |r| *r.get_ref()),
        disk: raw.disk.as_ref().is_some_and(|d| *d.get_ref()),
    }
}

/// Wraps a validation error in the line of the value it is about, when known.
fn locate(text: &str, raw: &RawSystem, invalid: Invalid) -> DescriptionError {
    match site_span(raw, invalid.site).and_then(|span| position(text, span.start)) {
        Some((line, _)) => DescriptionError::AtLine {
            line,
            error: Box::new(invalid.error),
        },
        None => invalid.error,
    }
}

/// The bytes of `text` the site covers; a value left out falls back to its table.
fn site_span(raw: &RawSystem, site: Site) -> Option<Range<usize>> {
    let rate = raw.message_rate.as_ref();
    let domain = |index: usize| raw.domain.get(index);
    let table = |index: usize| domain(index).map(Spanned::span);
    match site {
        Site::System => None,
        Site::Threads => raw.threads.as_ref().map(Spanned::span),
        Site::PerSecond => rate.and_then(|r| r.per_second.as_ref()).map(Spanned::span),
        Site::Burst => rate.and_then(|r| r.burst.as_ref()).map(Spanned::span),
        Site::Domain(index) => table(index),
        Site::Name(index) => domain(index).map(|d| d.get_ref().name.span()),
        Site::Image(index) => domain(index).map(|d| {
            let d = d.get_ref();
            d.image
                .as_ref()
                .map_or_else(|| d.name.span(), Spanned::span)
        }),
        Site::Memory(index) => domain(index)
            .and_then(|d| d.get_ref().memory_mib.as_ref().map(Spanned::span))
            .or_else(|| table(index)),
        Site::Thread(index) => domain(index)
            .and_then(|d| d.get_ref().thread.as_ref().map(Spanned::span))
            .or_else(|| table(index)),
        Site::Disk(index) => domain(index)
            .and_then(|d| d.get_ref().disk.as_ref().map(Spanned::span))
            .or_else(|| table(index)),
        Site::Call(index, slot) => domain(index)
            .and_then(|d| d.get_ref().calls.get(slot).map(Spanned::span))
            .or_else(|| table(index)),
    }
}

/// The parser's error on one line, with its position when it has one.
fn syntax_error(text: &str, error: &toml::de::Error) -> DescriptionError {
    let mut message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    // serde names the Rust type a number was read into; say what it means instead.
    for (rust, meaning) in [
        ("expected usize", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
    ] {
        message = message.replace(rust, meaning);
    }
    match error.span().and_then(|span| position(text, span.start)) {
        Some((line, column)) => DescriptionError::Syntax {
            line,
            column,
            message,
        },
        None => DescriptionError::Toml { message },
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn position(text: &str, offset: usize) -> Option<(usize, usize)> {
    let before = text.get(..offset)?;
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    Some((line, column))
}

/// The TOML form of a validated system.
pub(crate) fn to_toml(system: &SystemDescription) -> String {
    #[derive(Serialize)]
    struct Out<'a> {
        threads: usize,
        message_rate: &'a MessageRate,
        domain: &'a [DomainSpec],
    }
    let out = Out {
        threads: system.threads,
        message_rate: &system.message_rate,
        domain: &system.domains,
    };
    toml::to_string(&out).expect("a validated system has only TOML-representable values")
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn position_counts_lines_and_characters() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(position(text, 0), Some((1, 1)));
        assert_eq!(position(text, 6), Some((2, 1)));
        // 'é' is two bytes but one column.
        assert_eq!(position(text, 9), Some((2, 3)));
        assert_eq!(position(text, 8), None, "inside a character");
        assert_eq!(position(text, 100), None);
    }
}
