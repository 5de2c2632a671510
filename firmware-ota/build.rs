//! Records the target triple this binary is built for: the default `--target` of `verify`.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=LUACH_OTA_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
