//! Decides whether the binary is built with its own runtime (no std, no
//! libc; src/rt.rs) and, if so, links it without the C runtime.
//!
//! Without std only `panic = "abort"` links, and cargo does not tell build
//! scripts the profile's panic strategy. So the own runtime is used for the
//! profiles that set abort in the workspace Cargo.toml: `dev` (debug builds,
//! which `cargo test` runs) and the size-optimised `entrypoint` profile
//! (opt-level "z"). `release` and `bench` keep unwinding (the controller
//! shares them) and get an ordinary std binary, as does the `std` feature.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(own_runtime)");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let std_feature = std::env::var_os("CARGO_FEATURE_STD").is_some();
    let abort_profile = var("PROFILE") == "debug" || matches!(var("OPT_LEVEL").as_str(), "s" | "z");
    // The runtime is written for x86-64 Linux, where rustc leaves the C
    // startup files to the linker (gnu). On musl rustc links its own crt1.o,
    // whose `_start` would clash with ours: that build stays std (and small).
    let gnu_x86_64 = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ARCH") == "x86_64"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if std_feature || !abort_profile || !gnu_x86_64 {
        return;
    }
    println!("cargo::rustc-cfg=own_runtime");
    // `-no-pie` wins over the `-pie`/`-static-pie` rustc passes: there is no
    // dynamic loader to relocate a position-independent executable.
    for arg in ["-nostartfiles", "-nostdlib", "-static", "-no-pie"] {
        println!("cargo::rustc-link-arg-bin=cicd-entrypoint={arg}");
    }
}
