//! Guest images built into Ankh.
#![forbid(unsafe_code)]
