//! `ankh images`: the built-in images.

use std::error::Error;
use std::process::ExitCode;

use ankh_vmm::GuestImage;
use virtio_seep::abi::ABI_VERSION;

pub fn list() -> Result<ExitCode, Box<dyn Error>> {
    outln!("{:<18} {:>9}  ABI", "NAME", "BYTES")?;
    for builtin in ankh_images::builtin() {
        // Built-in images are checked like any other: a stale one shows up here.
        let abi = match GuestImage::parse(builtin.name, builtin.elf.to_vec()) {
            Ok(_) => ABI_VERSION.to_string(),
            Err(e) => format!("unusable: {e}"),
        };
        outln!("{:<18} {:>9}  {abi}", builtin.name, builtin.elf.len())?;
    }
    Ok(ExitCode::SUCCESS)
}
