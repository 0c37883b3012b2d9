//! Puts the linker scripts that keep the GNU build-id note in flash (`ld/`) on the final
//! link's search path; each board names its own with `-T`.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for script in ["sentelite-build-id-flash.x", "sentelite-build-id-rodata.x"] {
        let from = PathBuf::from("ld").join(script);
        println!("cargo:rerun-if-changed={}", from.display());
        fs::copy(&from, out.join(script)).expect("copy linker script");
    }
    println!("cargo:rustc-link-search={}", out.display());
}
