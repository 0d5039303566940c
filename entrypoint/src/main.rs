//! `cicd-entrypoint`: runs as every step container's entrypoint (`step`)
//! and once in the pod's init container (`init`). See README.md.
//!
//! The shipped binary has no std and no libc: its own `_start`, allocator
//! and panic handler are in `rt.rs`, and the library makes raw system calls.
//! build.rs sets `own_runtime` for that. Otherwise (the `std` feature, which
//! is on when the controller is part of the build, or an unwinding profile)
//! it is an ordinary std program running the same code.
#![cfg_attr(own_runtime, no_std)]
#![cfg_attr(own_runtime, no_main)]

#[cfg(own_runtime)]
mod rt;

#[cfg(all(not(own_runtime), not(all(target_os = "linux", target_arch = "x86_64"))))]
fn main() -> std::process::ExitCode {
    eprintln!("cicd-entrypoint: only x86-64 Linux is supported");
    std::process::ExitCode::from(125)
}

#[cfg(all(not(own_runtime), target_os = "linux", target_arch = "x86_64"))]
fn main() -> std::process::ExitCode {
    use cicd_entrypoint::binary::{self, OsString};
    use std::os::unix::ffi::OsStrExt;

    let mut argv = std::env::args_os().map(|a| OsString::from(a.as_bytes()));
    let argv0 = argv.next();
    let args: Vec<OsString> = argv.collect();
    let env: Vec<OsString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = OsString::from(k.as_bytes());
            e.push(b"=");
            e.push(v.as_bytes());
            e
        })
        .collect();
    std::process::ExitCode::from(binary::main(argv0, &args, &env))
}
