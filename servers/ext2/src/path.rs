//! Path syntax, as the VFS server defines it: absolute paths within `PATH_MAX`, names
//! within `NAME_MAX`, `//` and `.` normalized away (`..` is kept and resolved against
//! the directories, where a file in the middle of a path is an error).

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::vfs::{NAME_MAX, PATH_MAX};

/// A checked path, split into components.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path<'a> {
    /// The components, without empty ones and `.`; `..` is kept.
    pub components: Vec<&'a str>,
    /// The path ends with `/` (or `.`): what it names must be a directory.
    pub trailing_slash: bool,
    /// The last component written was `.`: the path names its directory itself, which
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
        let rest = path.strip_prefix('/').ok_or(errno::EINVAL)?;
        let mut components = Vec::new();
        let mut ends_with_dot = false;
        for name in rest.split('/').filter(|name| !name.is_empty()) {
            if name.len() > NAME_MAX {
                return Err(errno::ENAMETOOLONG);
            }
            ends_with_dot = name == ".";
            if !ends_with_dot {
                components.push(name);
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
    fn splits_and_normalizes() {
        let p = Path::parse("//a/./b//").unwrap();
        assert_eq!(p.components, ["a", "b"]);
        assert!(p.trailing_slash && !p.ends_with_dot);
        let p = Path::parse("/a/..").unwrap();
        assert_eq!(p.components, ["a", ".."]);
        assert!(!p.trailing_slash);
        let p = Path::parse("/a/.").unwrap();
        assert!(p.trailing_slash && p.ends_with_dot);
        assert!(Path::parse("/").unwrap().components.is_empty());
        assert!(!Path::parse("/").unwrap().trailing_slash);
    }

    #[test]
    fn rejects_bad_paths() {
        assert_eq!(Path::parse(""), Err(errno::EINVAL));
        assert_eq!(Path::parse("a"), Err(errno::EINVAL));
        let long = "/".repeat(PATH_MAX + 1);
        assert_eq!(Path::parse(&long), Err(errno::ENAMETOOLONG));
        let name = alloc::format!("/{}", "n".repeat(NAME_MAX + 1));
        assert_eq!(Path::parse(&name), Err(errno::ENAMETOOLONG));
    }
}
