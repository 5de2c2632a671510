//! Records the target triple the agent is built for: the target its releases must name.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=LUACH_AGENT_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
