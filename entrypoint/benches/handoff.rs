//! Step hand-off latency and wrapper overhead of the real binary.
//!
//! cargo bench -p cicd-entrypoint --bench handoff
//!
//! Environment:
//!   CICD_ENTRYPOINT_BIN  binary to measure (default: the one cargo built for
//!                        this bench, i.e. the `bench` profile; point it at
//!                        the static `entrypoint`-profile build to measure that)
//!   CICD_ENTRYPOINT_BASELINE_BIN  an older build to compare with: the
//!                        inotify hand-off and the wrapper runs alternate
//!                        between the two binaries, one iteration each, so
//!                        both see the same machine; ratios are printed
//!                        (hack/bench-entrypoint builds both and runs this)
//!   HANDOFF_N            hand-offs with inotify and wrapper runs (default 1000)
//!   HANDOFF_POLL_N       hand-offs with the forced 50 ms poll (default 300)
//!   HANDOFF_TEKTON_N     hand-offs with a 1 s poll like Tekton's (default 20; 0 skips)
//!
//! Hand-off = from the moment the previous step's post file is renamed into
//! place until the next step's command has started and written its first
//! byte (the command is /bin/echo, whose own start cost is measured
//! separately as "direct echo").

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    std::env::var_os("CICD_ENTRYPOINT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_cicd-entrypoint")))
}

fn baseline_bin() -> Option<PathBuf> {
    std::env::var_os("CICD_ENTRYPOINT_BASELINE_BIN").map(PathBuf::from)
}

fn env_n(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Deterministic jitter source (xorshift), so runs are comparable.
struct Jitter(u64);
impl Jitter {
    fn below(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let nanos = max.as_nanos().max(1) as u64;
        Duration::from_nanos(self.0 % nanos)
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    n: usize,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let n = v.len();
    let at = |q: usize| v[((n * q) / 100).min(n - 1)];
    Stats {
        p50: at(50),
        p99: at(99),
        max: v[n - 1],
        n,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_row(name: &str, s: &Stats) {
    println!(
        "| {name:<40} | {:>6} | {:>11} | {:>11} | {:>11} |",
        s.n,
        ms(s.p50),
        ms(s.p99),
        ms(s.max)
    );
}

fn write_atomic(path: &Path) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, b"").expect("write temp");
    fs::rename(&tmp, path).expect("rename");
}

/// One hand-off: start a waiting step, release it, time until its command runs.
fn handoff(bin: &Path, dir: &Path, env: &[(&str, &str)], pre_delay: Duration) -> Duration {
    let wait = dir.join("prev-out");
    let post = dir.join("out");
    let _ = fs::remove_file(&wait);
    let _ = fs::remove_file(&post);
    let mut child = Command::new(bin)
        .arg("step")
        .arg("--wait-file")
        .arg(&wait)
        .arg("--post-file")
        .arg(&post)
        .arg("--termination-path")
        .arg(dir.join("term"))
        .arg("--results-dir")
        .arg(dir.join("results"))
        .args(["--", "/bin/echo", "go"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn step");
    // Let it reach its wait; the jitter spreads the release over the poll
    // period so poll modes are measured fairly.
    std::thread::sleep(pre_delay);
    let mut out = child.stdout.take().expect("stdout");
    let t0 = Instant::now();
    write_atomic(&wait);
    let mut buf = [0u8; 3];
    out.read_exact(&mut buf).expect("read echo output");
    let took = t0.elapsed();
    assert_eq!(&buf, b"go\n");
    assert!(child.wait().expect("wait").success());
    took
}

fn direct_echo() -> Duration {
    let t0 = Instant::now();
    let mut child = Command::new("/bin/echo")
        .arg("go")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn echo");
    let mut buf = [0u8; 3];
    child.stdout.take().expect("stdout").read_exact(&mut buf).expect("read");
    let took = t0.elapsed();
    child.wait().expect("wait");
    took
}

fn run_true_direct() -> Duration {
    let t0 = Instant::now();
    let s = Command::new("/bin/true").status().expect("true");
    let took = t0.elapsed();
    assert!(s.success());
    took
}

fn run_true_wrapped(bin: &Path, dir: &Path) -> Duration {
    let t0 = Instant::now();
    let s = Command::new(bin)
        .arg("step")
        .arg("--post-file")
        .arg(dir.join("out"))
        .arg("--termination-path")
        .arg(dir.join("term"))
        .arg("--results-dir")
        .arg(dir.join("results"))
        .args(["--", "/bin/true"])
        .status()
        .expect("wrapped true");
    let took = t0.elapsed();
    assert!(s.success());
    took
}

/// The same measurement alternating between `baseline` and `bin`, one
/// iteration each, printed with the ratio new / baseline.
fn compare_pair(name: &str, n: usize, mut measure: impl FnMut(bool) -> Duration) {
    let mut old = Vec::with_capacity(n);
    let mut new = Vec::with_capacity(n);
    for _ in 0..n {
        old.push(measure(true));
        new.push(measure(false));
    }
    let (old, new) = (stats(old), stats(new));
    print_row(&format!("{name}, baseline"), &old);
    print_row(&format!("{name}, this build"), &new);
    println!(
        "ratio this build / baseline for {name}: p50 {:.3}, p99 {:.3}",
        new.p50.as_secs_f64() / old.p50.as_secs_f64(),
        new.p99.as_secs_f64() / old.p99.as_secs_f64()
    );
}

fn compare_with(baseline: &Path, bin: &Path, dir: &Path, n: usize) {
    let size = fs::metadata(baseline).map(|m| m.len()).unwrap_or(0);
    let new_size = fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    println!(
        "baseline: {} ({size} bytes); this build is {:.3}x its size",
        baseline.display(),
        new_size as f64 / size.max(1) as f64
    );
    let mut jitter = Jitter(0x2545_F491_4F6C_DD1D);
    compare_pair("hand-off, inotify", n, |old| {
        let pre = Duration::from_millis(5) + jitter.below(Duration::from_millis(2));
        handoff(if old { baseline } else { bin }, dir, &[], pre)
    });
    compare_pair("/bin/true through the wrapper", n, |old| {
        run_true_wrapped(if old { baseline } else { bin }, dir)
    });
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let n = env_n("HANDOFF_N", 1000);
    let poll_n = env_n("HANDOFF_POLL_N", 300);
    let tekton_n = env_n("HANDOFF_TEKTON_N", 20);
    let dir = std::env::temp_dir().join(format!("cicd-ep-bench-{}", std::process::id()));
    fs::create_dir_all(dir.join("results")).expect("bench dir");
    let bin = bin();
    let size = fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    println!("binary: {} ({size} bytes)", bin.display());
    println!(
        "| {:<40} | {:>6} | {:>11} | {:>11} | {:>11} |",
        "measurement", "n", "p50", "p99", "max"
    );
    println!("|{:-<42}|{:-<8}|{:-<13}|{:-<13}|{:-<13}|", "", "", "", "", "");

    let mut jitter = Jitter(0x9E37_79B9_7F4A_7C15);
    let base = Duration::from_millis(5);

    let echo = stats((0..n).map(|_| direct_echo()).collect());
    print_row("direct /bin/echo (spawn -> first byte)", &echo);

    let inotify: Vec<_> = (0..n)
        .map(|_| handoff(&bin, &dir, &[], base + jitter.below(Duration::from_millis(2))))
        .collect();
    let inotify = stats(inotify);
    print_row("hand-off, inotify", &inotify);
    if let Some(baseline) = baseline_bin() {
        compare_with(&baseline, &bin, &dir, n);
    }

    if poll_n > 0 {
        let poll: Vec<_> = (0..poll_n)
            .map(|_| {
                handoff(
                    &bin,
                    &dir,
                    &[("CICD_ENTRYPOINT_FORCE_POLL", "1")],
                    base + jitter.below(Duration::from_millis(50)),
                )
            })
            .collect();
        print_row("hand-off, forced poll every 50 ms", &stats(poll));
    }
    if tekton_n > 0 {
        let poll: Vec<_> = (0..tekton_n)
            .map(|_| {
                handoff(
                    &bin,
                    &dir,
                    &[("CICD_ENTRYPOINT_FORCE_POLL", "1"), ("CICD_ENTRYPOINT_POLL_MS", "1000")],
                    base + jitter.below(Duration::from_secs(1)),
                )
            })
            .collect();
        print_row("hand-off, poll every 1 s (Tekton-like)", &stats(poll));
    }

    // Interleaved so both see the same machine state.
    let mut direct = Vec::with_capacity(n);
    let mut wrapped = Vec::with_capacity(n);
    for _ in 0..n {
        direct.push(run_true_direct());
        wrapped.push(run_true_wrapped(&bin, &dir));
    }
    let (direct, wrapped) = (stats(direct), stats(wrapped));
    print_row("/bin/true directly", &direct);
    print_row("/bin/true through the wrapper", &wrapped);
    println!(
        "wrapper overhead at p50: +{} ({:.2}x)",
        ms(wrapped.p50.saturating_sub(direct.p50)),
        wrapped.p50.as_secs_f64() / direct.p50.as_secs_f64()
    );
    println!(
        "hand-off p50 minus direct echo p50: {}",
        ms(inotify.p50.saturating_sub(echo.p50))
    );
    let _ = fs::remove_dir_all(&dir);
}
