//! The catalog's lookups and the rules of installing one.

use super::*;

/// A catalog of three made-up images (the tests of one binary share the installed one).
static THREE: Catalog = Catalog {
    images: &[
        BuiltinImage {
            name: "alpha",
            elf: b"a",
        },
        BuiltinImage {
            name: "beta",
            elf: b"b",
        },
        BuiltinImage {
            name: "gamma",
            elf: b"g",
        },
    ],
    tender: b"tender",
    root_fs: b"archive",
    root_disk: b"disk",
};

#[test]
fn find_searches_the_sorted_names() {
    for image in THREE.images {
        assert_eq!(
            THREE.find(image.name).map(|found| found.elf),
            Some(image.elf)
        );
    }
    for missing in ["", "aaa", "delta", "zeta"] {
        assert!(THREE.find(missing).is_none(), "{missing}");
    }
}

#[test]
fn the_installed_catalog_is_the_one_read() {
    install(&THREE);
    install(&THREE); // again: nothing changes
    assert_eq!(builtin().len(), 3);
    assert_eq!(find("beta").map(|image| image.elf), Some(&b"b"[..]));
    assert!(find("delta").is_none());
    assert_eq!(tender(), b"tender");
    assert_eq!(root_fs(), b"archive");
    assert_eq!(root_disk(), b"disk");
}

#[test]
#[should_panic(expected = "another catalog of built-in images is installed already")]
fn a_second_catalog_is_refused() {
    static OTHER: Catalog = Catalog {
        images: &[],
        tender: b"",
        root_fs: b"",
        root_disk: b"",
    };
    install(&THREE);
    install(&OTHER);
}

#[test]
#[should_panic(expected = "sorted by unique name")]
fn unsorted_images_are_refused() {
    static UNSORTED: Catalog = Catalog {
        images: &[
            BuiltinImage {
                name: "b",
                elf: b"",
            },
            BuiltinImage {
                name: "a",
                elf: b"",
            },
        ],
        tender: b"",
        root_fs: b"",
        root_disk: b"",
    };
    install(&UNSORTED);
}
