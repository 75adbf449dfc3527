//! The Ankh VMM.
