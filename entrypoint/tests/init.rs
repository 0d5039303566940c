//! Process-level tests of `cicd-entrypoint init`, including a run from an
//! otherwise empty root (no shell, no libc) like the FROM-scratch image.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cicd_entrypoint::base64::encode as base64;
use cicd_entrypoint::termination::{self, Outcome};
use common::*;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

#[test]
fn init_installs_binary_scripts_and_dirs() {
    let tmp = TempDir::new("init");
    let tools = tmp.path().join("tools");
    let scripts = tmp.path().join("scripts");
    let plain = "echo one\nfalse\necho after-false\n";
    // `$(VAR)` would be expanded by Kubernetes in plain args; base64 keeps it.
    let with_bang = "#!/bin/sh\necho 'two $(VAR) é'\nfalse\necho after2\n";
    let out = output({
        let mut c = Command::new(BIN);
        c.arg("init")
            .arg("--tools-dir")
            .arg(&tools)
            .arg("--scripts-dir")
            .arg(&scripts)
            .arg(format!("--script=plain={}", base64(plain.as_bytes())))
            .arg("--script")
            .arg(format!("bang={}", base64(with_bang.as_bytes())))
            .arg("--mkdir")
            .arg(tmp.path().join("run/0"))
            .arg("--mkdir")
            .arg(tmp.path().join("run/1"));
        c
    });
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let copied = tools.join("entrypoint");
    assert_eq!(fs::read(&copied).expect("copy"), fs::read(BIN).expect("bin"));
    assert_eq!(mode(&copied), 0o755);
    for d in ["run/0", "run/1"] {
        assert_eq!(mode(&tmp.path().join(d)), 0o777, "{d}");
    }

    let plain_path = scripts.join("plain");
    assert_eq!(
        fs::read_to_string(&plain_path).expect("plain"),
        format!("#!/bin/sh -e\n{plain}")
    );
    assert_eq!(mode(&plain_path), 0o755);
    let bang_path = scripts.join("bang");
    assert_eq!(fs::read_to_string(&bang_path).expect("bang"), with_bang);
    assert_eq!(mode(&bang_path), 0o755);

    // Run both through the copied entrypoint, as a pod would.
    let pod = Pod::new("init-run");
    let run = |i: usize, script: &Path| {
        let mut c = Command::new(&copied);
        c.arg("step")
            .arg("--post-file")
            .arg(pod.post(i))
            .arg("--termination-path")
            .arg(pod.term(i))
            .arg("--results-dir")
            .arg(pod.results())
            .arg("--on-error=continue")
            .arg("--")
            .arg(script);
        output(c)
    };
    // The added `-e` stops at `false`.
    let out = run(0, &plain_path);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\n");
    assert_eq!(pod.report(0).exit_code, 1);
    // The script's own shebang (no -e) is kept: it runs to the end.
    let out = run(1, &bang_path);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "two $(VAR) é\nafter2\n");
    assert_eq!(pod.report(1).exit_code, 0);
}

#[test]
fn init_rejects_bad_base64_before_writing_anything() {
    let tmp = TempDir::new("init-bad");
    let tools = tmp.path().join("tools");
    let out = output({
        let mut c = Command::new(BIN);
        c.arg("init")
            .arg("--tools-dir")
            .arg(&tools)
            .arg("--scripts-dir")
            .arg(tmp.path().join("scripts"))
            .arg("--script")
            .arg("broken=not*base64");
        c
    });
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--script broken") && stderr.contains("base64"),
        "{stderr}"
    );
    assert!(!tools.exists());
}

/// True if the ELF file has no program interpreter and no DT_NEEDED
/// libraries, i.e. it runs with no dynamic loader and no shared libc.
fn is_static_elf(bytes: &[u8]) -> bool {
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert_eq!(&bytes[..4], b"\x7fELF");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let mut interp = false;
    let mut needed = false;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32::from_le_bytes([bytes[ph], bytes[ph + 1], bytes[ph + 2], bytes[ph + 3]]);
        match p_type {
            3 => interp = true, // PT_INTERP
            2 => {
                // PT_DYNAMIC: look for DT_NEEDED (tag 1) entries.
                let (off, size) = (u64_at(ph + 0x08), u64_at(ph + 0x20));
                needed |= (off..off + size)
                    .step_by(16)
                    .any(|e| e + 16 <= bytes.len() && u64_at(e) == 1);
            }
            _ => {}
        }
    }
    !interp && !needed
}

/// The static build (profile `entrypoint`, crt-static). Built on demand in
/// its own target dir, so it does not fight the outer cargo for the lock.
fn static_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CICD_ENTRYPOINT_STATIC_BIN") {
        return Ok(PathBuf::from(p));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = manifest.join("../target/static-test");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(manifest)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--quiet",
            "--offline",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--profile",
            "entrypoint",
            "-p",
            "cicd-entrypoint",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("static build failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(target_dir.join("x86_64-unknown-linux-gnu/entrypoint/cicd-entrypoint"))
}

#[test]
fn static_binary_runs_alone_in_an_empty_root() {
    let bin = static_binary().expect("static binary");
    let bytes = fs::read(&bin).expect("read static binary");
    assert!(is_static_elf(&bytes), "{} is not fully static", bin.display());
    assert!(!is_static_elf(&fs::read("/bin/sh").expect("/bin/sh")), "checker sanity");

    // The root holds the binary and nothing else: no /bin/sh, no libc, no
    // /proc (so init must find itself via argv[0]).
    let root = TempDir::new("chroot");
    let inside = root.path().join("cicd-entrypoint");
    fs::copy(&bin, &inside).expect("copy");
    let script = base64(b"echo hi");
    let init = Command::new("chroot")
        .arg(root.path())
        .args([
            "/cicd-entrypoint",
            "init",
            "--tools-dir",
            "/tools",
            "--scripts-dir",
            "/scripts",
            "--script",
            &format!("s0={script}"),
            "--mkdir",
            "/run/0",
        ])
        .output();
    let init = match init {
        Ok(o) if o.status.success() => o,
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("Operation not permitted") => {
            println!(
                "SKIPPED: chroot not permitted here: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Ok(o) => panic!("init in chroot failed: {o:?}"),
        Err(e) => {
            println!("SKIPPED: no chroot command: {e}");
            return;
        }
    };
    assert!(init.stderr.is_empty(), "{init:?}");
    assert_eq!(fs::read(root.path().join("tools/entrypoint")).expect("copied"), bytes);
    assert_eq!(mode(&root.path().join("tools/entrypoint")), 0o755);
    assert_eq!(
        fs::read_to_string(root.path().join("scripts/s0")).expect("script"),
        "#!/bin/sh -e\necho hi"
    );
    assert_eq!(mode(&root.path().join("run/0")), 0o777);

    // A step in the same empty root: its command is the copied binary
    // itself (there is nothing else to run there).
    let step = Command::new("chroot")
        .arg(root.path())
        .args([
            "/tools/entrypoint",
            "step",
            "--post-file",
            "/run/0/out",
            "--termination-path",
            "/term",
            "--results-dir",
            "/results",
            "--timeout",
            "10s",
            "--",
            "/tools/entrypoint",
            "--version",
        ])
        .output()
        .expect("step in chroot");
    assert_eq!(step.status.code(), Some(0), "{step:?}");
    assert!(String::from_utf8_lossy(&step.stdout).starts_with("cicd-entrypoint "));
    assert!(root.path().join("run/0/out").exists());
    let report = termination::decode(&fs::read_to_string(root.path().join("term")).expect("report")).expect("decode");
    assert_eq!(report.outcome, Outcome::Succeeded);
}
