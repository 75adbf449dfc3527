//! Path syntax: absolute paths, limits, and normalization of `//` and `.` (`..` is
//! kept: it is resolved against the file system, where a file in the middle of a path
//! is an error). Shared by VFS's tree in memory and the ext2 file system.

use alloc::vec::Vec;

use crate::errno::{self, Errno};
use crate::vfs::{NAME_MAX, PATH_MAX};

/// A checked path, split into components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path<'a> {
    /// The components, without empty ones and `.`; `..` is kept.
    pub components: Vec<&'a str>,
    /// The path ends with `/` (or with `.`): what it names must be a directory.
    pub trailing_slash: bool,
    /// The last component written was `.` (`/a/.`): it names `/a` itself, which
    /// cannot be created or removed through that name.
    pub ends_with_dot: bool,
}

impl<'a> Path<'a> {
    /// Checks and splits a path: `EINVAL` when empty or relative, `ENAMETOOLONG` over
    /// [`PATH_MAX`] bytes or with a component over [`NAME_MAX`] bytes.
    pub fn parse(path: &'a str) -> Result<Path<'a>, Errno> {
        if path.len() > PATH_MAX {
            return Err(errno::ENAMETOOLONG);
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(errno::EINVAL);
        };
        let mut components = Vec::new();
        let mut ends_with_dot = false;
        for part in rest.split('/').filter(|part| !part.is_empty()) {
            if part.len() > NAME_MAX {
                return Err(errno::ENAMETOOLONG);
            }
            ends_with_dot = part == ".";
            if !ends_with_dot {
                components.push(part);
            }
        }
        Ok(Path {
            components,
            trailing_slash: path.len() > 1 && (path.ends_with('/') || ends_with_dot),
            ends_with_dot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_slashes_and_dots() {
        let p = Path::parse("//a/./b//").unwrap();
        assert_eq!(p.components, ["a", "b"]);
        assert!(p.trailing_slash);
        assert!(!p.ends_with_dot);
        let p = Path::parse("/a/../b").unwrap();
        assert_eq!(p.components, ["a", "..", "b"]);
        assert!(!p.trailing_slash);
        let p = Path::parse("/a/.").unwrap();
        assert_eq!(p.components, ["a"]);
        assert!(p.trailing_slash && p.ends_with_dot);
        assert!(Path::parse("/").unwrap().components.is_empty());
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(Path::parse(""), Err(errno::EINVAL));
        assert_eq!(Path::parse("a/b"), Err(errno::EINVAL));
        let long = "/".repeat(PATH_MAX + 1);
        assert_eq!(Path::parse(&long), Err(errno::ENAMETOOLONG));
        let name = alloc::format!("/{}", "n".repeat(NAME_MAX + 1));
        assert_eq!(Path::parse(&name), Err(errno::ENAMETOOLONG));
        let name = alloc::format!("/{}", "n".repeat(NAME_MAX));
        assert!(Path::parse(&name).is_ok());
    }
}
