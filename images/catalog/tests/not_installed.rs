//! Reading the catalog before a program installed one fails with a message that says
//! what to do (its own test binary: the tests of one process share the catalog).

#[test]
#[should_panic(expected = "no built-in images installed: call ankh_images::install() first")]
fn lookups_before_install_say_what_is_missing() {
    ankh_image_catalog::find("hello");
}
