//! The controller's CPU time and memory, read from /proc: the controller
//! runs as a pod on this machine, so its process is visible here.

use std::fs;

use anyhow::{Context as _, bail};

/// Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Clone, Copy)]
pub struct Controller {
    pid: u32,
}

/// CPU seconds used and the memory high-water mark since the last reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
}

impl Controller {
    /// Finds the (single) `cicd-controller run` process on this machine,
    /// waiting up to a minute for a replaced one (after an install) to go.
    pub fn find() -> anyhow::Result<Self> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            match Self::find_once() {
                Ok(found) => return Ok(found),
                Err(error) if std::time::Instant::now() >= deadline => return Err(error),
                Err(_) => std::thread::sleep(std::time::Duration::from_secs(2)),
            }
        }
    }

    fn find_once() -> anyhow::Result<Self> {
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc")? {
            let entry = entry?;
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_controller = args.first().is_some_and(|a| a.ends_with(b"cicd-controller"))
                && args.get(1).is_some_and(|a| *a == b"run");
            if is_controller {
                found.push(pid);
            }
        }
        match found.as_slice() {
            [pid] => Ok(Controller { pid: *pid }),
            [] => {
                bail!("no `cicd-controller run` process on this machine: install the operator (hack/install-operator)")
            }
            pids => bail!("several controller processes ({pids:?}): scale the Deployment to one replica"),
        }
    }

    fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
        let tick =
            |index: usize| -> anyhow::Result<u64> { Ok(fields.get(index).context("short stat line")?.parse::<u64>()?) };
        let ticks = tick(11)? + tick(12)?;
        Ok(ticks as f64 / TICKS_PER_SECOND)
    }

    fn status_kib(&self, key: &str) -> anyhow::Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status
            .lines()
            .find(|line| line.starts_with(key))
            .with_context(|| format!("no {key} in /proc/{}/status", self.pid))?;
        let kib = line.split_whitespace().nth(1).context("malformed status line")?;
        Ok(kib.parse()?)
    }

    /// Resets the peak-RSS counter (VmHWM), so a phase reports its own peak.
    pub fn reset_peak(&self) -> anyhow::Result<()> {
        fs::write(format!("/proc/{}/clear_refs", self.pid), "5").context("reset VmHWM (needs root)")
    }

    pub fn usage(&self) -> anyhow::Result<Usage> {
        Ok(Usage {
            cpu_seconds: self.cpu_seconds()?,
            peak_rss_kib: self.status_kib("VmHWM:")?,
            rss_kib: self.status_kib("VmRSS:")?,
        })
    }
}
