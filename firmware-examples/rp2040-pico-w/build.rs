//! Puts `memory.x` on the linker path, names the linker scripts (the build-id note's too), and copies the CYW43439 NVRAM (board configuration
//! data no crate ships, which this repository must not carry) from `CYW43_NVRAM_PATH` into
//! `OUT_DIR`, where `src/wifi.rs` includes it.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    // A GNU build-id note (SHA-1 of the image), kept in flash by sentelite-board-common's
    // script (on the search path through that crate): the firmware announces it as its build
    // id, the key `sentelite elf add FILE` registers this ELF under. Here rather than in
    // `.cargo/config.toml` so the bootloader (./bootloader, under that config) links without.
    println!("cargo:rustc-link-arg-bins=--build-id=sha1");
    println!("cargo:rustc-link-arg-bins=-Tsentelite-build-id-flash.x");

    println!("cargo:rerun-if-env-changed=CYW43_NVRAM_PATH");
    let Some(nvram) = env::var_os("CYW43_NVRAM_PATH") else {
        panic!(
            "CYW43_NVRAM_PATH is not set: point it at the CYW43439 NVRAM for the Pico W \
             (nvram_rp2040.bin from the embassy repository's cyw43-firmware directory)"
        );
    };
    let nvram = PathBuf::from(nvram);
    println!("cargo:rerun-if-changed={}", nvram.display());
    let bytes =
        fs::read(&nvram).unwrap_or_else(|e| panic!("CYW43_NVRAM_PATH={}: {e}", nvram.display()));
    // The NVRAM is a few hundred bytes of `key=value` text; anything else is the wrong file.
    assert!(
        !bytes.is_empty() && bytes.len() <= 8192,
        "CYW43_NVRAM_PATH={}: {} bytes is not a CYW43 NVRAM file",
        nvram.display(),
        bytes.len()
    );
    fs::write(out.join("nvram.bin"), bytes).expect("write nvram.bin");
}
