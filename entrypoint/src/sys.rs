//! The few Linux system calls the entrypoint needs, made directly (x86-64),
//! so the binary links no libc. Each wrapper turns the kernel's `-errno`
//! return into an [`IoError`] whose text matches what std printed before.

use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicI32, Ordering};
use core::time::Duration;

use crate::os::{OsStr, OsString, Path};

// x86-64 system call numbers.
const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_POLL: usize = 7;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_NANOSLEEP: usize = 35;
const SYS_GETPID: usize = 39;
const SYS_EXECVE: usize = 59;
const SYS_WAIT4: usize = 61;
const SYS_KILL: usize = 62;
const SYS_FTRUNCATE: usize = 77;
const SYS_RENAME: usize = 82;
const SYS_MKDIR: usize = 83;
const SYS_UNLINK: usize = 87;
const SYS_CHMOD: usize = 90;
const SYS_FCHMOD: usize = 91;
const SYS_SETPGID: usize = 109;
const SYS_PRCTL: usize = 157;
const SYS_CLOCK_GETTIME: usize = 228;
const SYS_EXIT_GROUP: usize = 231;
const SYS_INOTIFY_ADD_WATCH: usize = 254;
const SYS_OPENAT: usize = 257;
const SYS_NEWFSTATAT: usize = 262;
const SYS_SIGNALFD4: usize = 289;
const SYS_INOTIFY_INIT1: usize = 294;
pub const SYS_MMAP: usize = 9;
pub const SYS_MUNMAP: usize = 11;

const AT_FDCWD: isize = -100;
const O_RDONLY: usize = 0;
const O_WRONLY: usize = 1;
const O_CREAT: usize = 0o100;
const O_TRUNC: usize = 0o1000;
const O_NONBLOCK: usize = 0o4000;
const O_CLOEXEC: usize = 0o2000000;

pub const EINTR: i32 = 4;
pub const ENOENT: i32 = 2;
pub const EACCES: i32 = 13;
pub const EPERM: i32 = 1;
pub const ECHILD: i32 = 10;
pub const ENOTDIR: i32 = 20;

pub const SIGINT: i32 = 2;
pub const SIGABRT: i32 = 6;
pub const SIGKILL: i32 = 9;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;

/// Makes a raw system call with up to six arguments.
///
/// # Safety
/// The caller must pass arguments that are valid for system call `n`
/// (pointers to memory of the right size and lifetime).
#[inline(always)]
pub unsafe fn syscall(n: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize, a6: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86-64 Linux system call ABI: number in rax, arguments in
    // rdi, rsi, rdx, r10, r8, r9; rcx and r11 are clobbered. Validity of the
    // arguments is the caller's contract.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn check(ret: isize) -> Result<usize, IoError> {
    if (-4095..0).contains(&ret) {
        Err(IoError::Os(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// An I/O error: an errno, or a fixed message (like std's custom errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoError {
    Os(i32),
    Msg(&'static str),
}

impl IoError {
    pub fn errno(self) -> Option<i32> {
        match self {
            IoError::Os(e) => Some(e),
            IoError::Msg(_) => None,
        }
    }
}

/// glibc's strerror texts, as std printed them.
fn strerror(errno: i32) -> Option<&'static str> {
    Some(match errno {
        1 => "Operation not permitted",
        2 => "No such file or directory",
        3 => "No such process",
        4 => "Interrupted system call",
        5 => "Input/output error",
        6 => "No such device or address",
        7 => "Argument list too long",
        8 => "Exec format error",
        9 => "Bad file descriptor",
        10 => "No child processes",
        11 => "Resource temporarily unavailable",
        12 => "Cannot allocate memory",
        13 => "Permission denied",
        14 => "Bad address",
        16 => "Device or resource busy",
        17 => "File exists",
        18 => "Invalid cross-device link",
        19 => "No such device",
        20 => "Not a directory",
        21 => "Is a directory",
        22 => "Invalid argument",
        23 => "Too many open files in system",
        24 => "Too many open files",
        26 => "Text file busy",
        27 => "File too large",
        28 => "No space left on device",
        29 => "Illegal seek",
        30 => "Read-only file system",
        31 => "Too many links",
        32 => "Broken pipe",
        36 => "File name too long",
        38 => "Function not implemented",
        39 => "Directory not empty",
        40 => "Too many levels of symbolic links",
        95 => "Operation not supported",
        116 => "Stale file handle",
        122 => "Disk quota exceeded",
        _ => return None,
    })
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IoError::Os(e) => match strerror(e) {
                Some(text) => write!(f, "{text} (os error {e})"),
                None => write!(f, "Unknown error {e} (os error {e})"),
            },
            IoError::Msg(m) => f.write_str(m),
        }
    }
}

impl core::error::Error for IoError {}

pub type IoResult<T> = Result<T, IoError>;

/// `bytes` plus a terminating NUL, for the kernel.
pub fn cstring(bytes: &[u8]) -> IoResult<Vec<u8>> {
    if bytes.contains(&0) {
        return Err(IoError::Msg("file name contained an unexpected NUL byte"));
    }
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.extend_from_slice(bytes);
    v.push(0);
    Ok(v)
}

fn cpath(path: &Path) -> IoResult<Vec<u8>> {
    cstring(path.as_bytes())
}

/// An open file descriptor, closed on drop.
pub struct Fd(i32);

impl Fd {
    pub fn raw(&self) -> i32 {
        self.0
    }

    /// Gives up ownership without closing.
    pub fn into_raw(self) -> i32 {
        let fd = self.0;
        core::mem::forget(self);
        fd
    }

    pub fn read(&self, buf: &mut [u8]) -> IoResult<usize> {
        read(self.0, buf)
    }

    pub fn write_all(&self, bytes: &[u8]) -> IoResult<()> {
        write_all(self.0, bytes)
    }

    pub fn read_to_end(&self, out: &mut Vec<u8>) -> IoResult<()> {
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(8192));
            }
            let len = out.len();
            let spare = out.capacity() - len;
            // SAFETY: the kernel writes at most `spare` bytes into the
            // vector's spare capacity; we only extend the length by what
            // read() reports as written.
            let ret = unsafe {
                syscall(
                    SYS_READ,
                    self.0 as usize,
                    out.as_mut_ptr().add(len) as usize,
                    spare,
                    0,
                    0,
                    0,
                )
            };
            match check(ret) {
                Ok(0) => return Ok(()),
                // SAFETY: `n` bytes past `len` were just initialized by read().
                Ok(n) => unsafe { out.set_len(len + n) },
                Err(IoError::Os(EINTR)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn fchmod(&self, mode: u32) -> IoResult<()> {
        // SAFETY: no pointers.
        check(unsafe { syscall(SYS_FCHMOD, self.0 as usize, mode as usize, 0, 0, 0, 0) }).map(drop)
    }

    pub fn set_len(&self, len: u64) -> IoResult<()> {
        // SAFETY: no pointers.
        check(unsafe { syscall(SYS_FTRUNCATE, self.0 as usize, len as usize, 0, 0, 0, 0) }).map(drop)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own this descriptor; closing it once is fine.
        unsafe { syscall(SYS_CLOSE, self.0 as usize, 0, 0, 0, 0, 0) };
    }
}

fn open(path: &Path, flags: usize, mode: u32) -> IoResult<Fd> {
    let c = cpath(path)?;
    loop {
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let ret = unsafe {
            syscall(
                SYS_OPENAT,
                AT_FDCWD as usize,
                c.as_ptr() as usize,
                flags | O_CLOEXEC,
                mode as usize,
                0,
                0,
            )
        };
        match check(ret) {
            Ok(fd) => return Ok(Fd(fd as i32)),
            Err(IoError::Os(EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
}

pub fn open_read(path: &Path) -> IoResult<Fd> {
    open(path, O_RDONLY, 0)
}

/// Write-only, created with `mode` if missing; truncated if `truncate`.
pub fn open_write(path: &Path, truncate: bool, mode: u32) -> IoResult<Fd> {
    open(path, O_WRONLY | O_CREAT | if truncate { O_TRUNC } else { 0 }, mode)
}

pub fn read(fd: i32, buf: &mut [u8]) -> IoResult<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into `buf`.
    check(unsafe { syscall(SYS_READ, fd as usize, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0) })
}

pub fn write_all(fd: i32, mut bytes: &[u8]) -> IoResult<()> {
    while !bytes.is_empty() {
        // SAFETY: the kernel reads at most bytes.len() bytes from `bytes`.
        let ret = unsafe { syscall(SYS_WRITE, fd as usize, bytes.as_ptr() as usize, bytes.len(), 0, 0, 0) };
        match check(ret) {
            Ok(0) => return Err(IoError::Msg("failed to write whole buffer")),
            Ok(n) => bytes = &bytes[n..],
            Err(IoError::Os(EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whole file contents.
pub fn read_file(path: &Path) -> IoResult<Vec<u8>> {
    let fd = open_read(path)?;
    let mut out = Vec::new();
    if let Ok(st) = fstat(&fd)
        && st.is_file()
    {
        out.reserve(usize::try_from(st.size).unwrap_or(0).saturating_add(1));
    }
    fd.read_to_end(&mut out)?;
    Ok(out)
}

/// The parts of `struct stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;

impl Stat {
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }
}

/// x86-64 `struct stat` (144 bytes), as a plain array of words.
fn decode_stat(raw: &[u64; 18]) -> Stat {
    Stat {
        dev: raw[0],
        ino: raw[1],
        // st_nlink is raw[2]; st_mode is the low half of raw[3].
        mode: raw[3] as u32,
        size: raw[6],
        mtime: (raw[11] as i64, raw[12] as i64),
        ctime: (raw[13] as i64, raw[14] as i64),
    }
}

const AT_EMPTY_PATH: usize = 0x1000;

/// Like std's `fs::metadata`: follows symlinks.
pub fn stat(path: &Path) -> IoResult<Stat> {
    let c = cpath(path)?;
    let mut raw = [0u64; 18];
    // SAFETY: `c` is NUL-terminated and `raw` is 144 bytes, the size of the
    // kernel's struct stat on x86-64.
    check(unsafe {
        syscall(
            SYS_NEWFSTATAT,
            AT_FDCWD as usize,
            c.as_ptr() as usize,
            raw.as_mut_ptr() as usize,
            0,
            0,
            0,
        )
    })?;
    Ok(decode_stat(&raw))
}

pub fn fstat(fd: &Fd) -> IoResult<Stat> {
    let mut raw = [0u64; 18];
    let empty = b"\0";
    // SAFETY: an empty NUL-terminated path with AT_EMPTY_PATH stats the fd;
    // `raw` is the size of struct stat.
    check(unsafe {
        syscall(
            SYS_NEWFSTATAT,
            fd.0 as usize,
            empty.as_ptr() as usize,
            raw.as_mut_ptr() as usize,
            AT_EMPTY_PATH,
            0,
            0,
        )
    })?;
    Ok(decode_stat(&raw))
}

fn path_call(n: usize, path: &Path, arg: usize) -> IoResult<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a NUL-terminated path; `arg` is a plain integer.
    check(unsafe { syscall(n, c.as_ptr() as usize, arg, 0, 0, 0, 0) }).map(drop)
}

pub fn mkdir(path: &Path, mode: u32) -> IoResult<()> {
    path_call(SYS_MKDIR, path, mode as usize)
}

pub fn chmod(path: &Path, mode: u32) -> IoResult<()> {
    path_call(SYS_CHMOD, path, mode as usize)
}

pub fn unlink(path: &Path) -> IoResult<()> {
    path_call(SYS_UNLINK, path, 0)
}

pub fn rename(from: &Path, to: &Path) -> IoResult<()> {
    let (a, b) = (cpath(from)?, cpath(to)?);
    // SAFETY: both are NUL-terminated paths.
    check(unsafe { syscall(SYS_RENAME, a.as_ptr() as usize, b.as_ptr() as usize, 0, 0, 0, 0) }).map(drop)
}

/// Like std's `fs::create_dir_all` (mode 0777 before the umask).
pub fn create_dir_all(path: &Path) -> IoResult<()> {
    if path.as_bytes().is_empty() {
        return Ok(());
    }
    match mkdir(path, 0o777) {
        Ok(()) => return Ok(()),
        Err(IoError::Os(ENOENT)) => {}
        Err(_) if stat(path).is_ok_and(|s| s.is_dir()) => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(p) => create_dir_all(p)?,
        None => return Err(IoError::Msg("failed to create whole tree")),
    }
    match mkdir(path, 0o777) {
        Ok(()) => Ok(()),
        Err(_) if stat(path).is_ok_and(|s| s.is_dir()) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn getpid() -> i32 {
    // SAFETY: no arguments.
    unsafe { syscall(SYS_GETPID, 0, 0, 0, 0, 0, 0) as i32 }
}

/// Dies by SIGABRT, like std's abort.
pub fn abort() -> ! {
    set_disposition(SIGABRT, false);
    let _ = kill(getpid(), SIGABRT);
    exit(134)
}

pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group never returns.
        unsafe { syscall(SYS_EXIT_GROUP, code as usize, 0, 0, 0, 0, 0) };
    }
}

fn clock(id: usize) -> Duration {
    let mut ts = [0i64; 2];
    // SAFETY: `ts` is a struct timespec (two 64-bit words).
    unsafe { syscall(SYS_CLOCK_GETTIME, id, ts.as_mut_ptr() as usize, 0, 0, 0, 0) };
    Duration::new(u64::try_from(ts[0]).unwrap_or(0), u32::try_from(ts[1]).unwrap_or(0))
}

/// Wall clock since the Unix epoch.
pub fn realtime() -> Duration {
    clock(0)
}

/// A point on the monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(Duration);

impl Instant {
    pub fn now() -> Instant {
        Instant(clock(1))
    }

    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d))
    }
}

pub fn sleep(d: Duration) {
    let ts = [d.as_secs() as i64, i64::from(d.subsec_nanos())];
    // SAFETY: `ts` is a struct timespec; no remainder is requested.
    unsafe { syscall(SYS_NANOSLEEP, ts.as_ptr() as usize, 0, 0, 0, 0, 0) };
}

/// A set of signals 1..=64 (the kernel's sigset_t is 8 bytes).
#[derive(Debug, Clone, Copy, Default)]
pub struct SigSet(u64);

impl SigSet {
    pub fn add(&mut self, sig: i32) {
        self.0 |= 1 << (sig - 1);
    }
}

const SIG_BLOCK: usize = 0;
const SIG_SETMASK: usize = 2;

fn sigprocmask(how: usize, set: &SigSet) -> IoResult<()> {
    // SAFETY: `set` points to an 8-byte sigset; no old set is requested.
    check(unsafe { syscall(SYS_RT_SIGPROCMASK, how, &set.0 as *const u64 as usize, 0, 8, 0, 0) }).map(drop)
}

pub fn block_signals(set: &SigSet) -> IoResult<()> {
    sigprocmask(SIG_BLOCK, set)
}

/// Sets the disposition of `sig` to SIG_DFL (0) or SIG_IGN (1).
pub fn set_disposition(sig: i32, ignore: bool) {
    // struct kernel_sigaction { handler, flags, restorer, mask }.
    let act: [u64; 4] = [u64::from(ignore), 0, 0, 0];
    // SAFETY: `act` is a kernel sigaction with no handler function to call.
    unsafe { syscall(SYS_RT_SIGACTION, sig as usize, act.as_ptr() as usize, 0, 8, 0, 0) };
}

/// A non-blocking, close-on-exec signalfd for `set`.
pub fn signalfd(set: &SigSet) -> IoResult<Fd> {
    const SFD_NONBLOCK: usize = O_NONBLOCK;
    const SFD_CLOEXEC: usize = O_CLOEXEC;
    // SAFETY: `set` points to an 8-byte sigset.
    let fd = check(unsafe {
        syscall(
            SYS_SIGNALFD4,
            usize::MAX,
            &set.0 as *const u64 as usize,
            8,
            SFD_NONBLOCK | SFD_CLOEXEC,
            0,
            0,
        )
    })?;
    Ok(Fd(fd as i32))
}

/// The next pending signal number from a signalfd, if any.
pub fn read_signal(fd: &Fd) -> Option<i32> {
    // struct signalfd_siginfo is 128 bytes; ssi_signo is the first u32.
    let mut info = [0u8; 128];
    match fd.read(&mut info) {
        Ok(128) => Some(i32::from_ne_bytes([info[0], info[1], info[2], info[3]])),
        _ => None,
    }
}

pub const POLLIN: i16 = 1;

#[repr(C)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// poll(2); `timeout_ms` < 0 waits forever.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> IoResult<usize> {
    // SAFETY: `fds` is an array of struct pollfd of the given length.
    check(unsafe {
        syscall(
            SYS_POLL,
            fds.as_mut_ptr() as usize,
            fds.len(),
            timeout_ms as isize as usize,
            0,
            0,
            0,
        )
    })
}

/// Milliseconds for poll(), capped like nix's PollTimeout (i32::MAX).
pub fn timeout_ms(ms: u128) -> i32 {
    i32::try_from(ms).unwrap_or(i32::MAX)
}

pub const IN_MODIFY: u32 = 0x2;
pub const IN_ATTRIB: u32 = 0x4;
pub const IN_CLOSE_WRITE: u32 = 0x8;
pub const IN_MOVED_TO: u32 = 0x80;
pub const IN_CREATE: u32 = 0x100;

pub fn inotify_init() -> IoResult<Fd> {
    // SAFETY: flags only.
    let fd = check(unsafe { syscall(SYS_INOTIFY_INIT1, O_CLOEXEC | O_NONBLOCK, 0, 0, 0, 0, 0) })?;
    Ok(Fd(fd as i32))
}

pub fn inotify_add_watch(fd: &Fd, dir: &Path, mask: u32) -> IoResult<()> {
    let c = cpath(dir)?;
    // SAFETY: `c` is a NUL-terminated path.
    check(unsafe {
        syscall(
            SYS_INOTIFY_ADD_WATCH,
            fd.0 as usize,
            c.as_ptr() as usize,
            mask as usize,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// What waitpid(-1, WNOHANG) saw.
pub enum Waited {
    StillAlive,
    Exited(i32, i32),
    Signaled(i32, i32),
    Other,
}

pub fn waitpid_any_nohang() -> IoResult<Waited> {
    const WNOHANG: usize = 1;
    let mut status: i32 = 0;
    // SAFETY: `status` is a valid int to write; no rusage.
    let pid = check(unsafe {
        syscall(
            SYS_WAIT4,
            usize::MAX,
            &mut status as *mut i32 as usize,
            WNOHANG,
            0,
            0,
            0,
        )
    })? as i32;
    if pid == 0 {
        return Ok(Waited::StillAlive);
    }
    let sig = status & 0x7f;
    Ok(if sig == 0 {
        Waited::Exited(pid, (status >> 8) & 0xff)
    } else if sig != 0x7f {
        Waited::Signaled(pid, sig)
    } else {
        Waited::Other
    })
}

fn wait_pid_blocking(pid: i32) {
    let mut status: i32 = 0;
    loop {
        // SAFETY: `status` is a valid int to write; no rusage.
        let ret = unsafe { syscall(SYS_WAIT4, pid as usize, &mut status as *mut i32 as usize, 0, 0, 0, 0) };
        if ret != -(EINTR as isize) {
            return;
        }
    }
}

/// kill(2); a negative pid addresses a process group.
pub fn kill(pid: i32, sig: i32) -> IoResult<()> {
    // SAFETY: no pointers.
    check(unsafe { syscall(SYS_KILL, pid as isize as usize, sig as usize, 0, 0, 0, 0) }).map(drop)
}

pub fn set_child_subreaper() {
    const PR_SET_CHILD_SUBREAPER: usize = 36;
    // SAFETY: no pointers.
    unsafe { syscall(SYS_PRCTL, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0) };
}

/// Looks up `name` in `env` (entries `NAME=VALUE`).
pub fn getenv<'a>(env: &'a [OsString], name: &str) -> Option<&'a OsStr> {
    env.iter().find_map(|e| {
        let b = e.as_bytes();
        (b.len() > name.len() && b.starts_with(name.as_bytes()) && b[name.len()] == b'=')
            .then(|| OsStr::from_bytes(&b[name.len() + 1..]))
    })
}

/// Starts `argv` in its own process group with an empty signal mask and
/// default SIGPIPE, searching PATH like execvp when argv[0] has no '/'.
/// The error is the one exec failed with (the child shares our memory until
/// it execs, like glibc's posix_spawn, and leaves it there).
pub fn spawn(argv: &[OsString], env: &[OsString]) -> IoResult<i32> {
    let Some(program) = argv.first() else {
        return Err(IoError::Msg("empty command"));
    };
    // Everything is prepared before fork, so the child only makes syscalls.
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    if program.as_bytes().contains(&b'/') {
        candidates.push(cstring(program.as_bytes())?);
    } else {
        let path = getenv(env, "PATH").map_or(&b"/bin:/usr/bin"[..], OsStr::as_bytes);
        for dir in path.split(|&b| b == b':') {
            let mut full = Vec::with_capacity(dir.len() + program.len() + 2);
            if dir.is_empty() {
                full.extend_from_slice(b".");
            } else {
                full.extend_from_slice(dir);
            }
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            candidates.push(cstring(&full)?);
        }
    }
    let args: Vec<Vec<u8>> = argv.iter().map(|a| cstring(a.as_bytes())).collect::<IoResult<_>>()?;
    let envs: Vec<Vec<u8>> = env.iter().filter_map(|e| cstring(e.as_bytes()).ok()).collect();
    let mut arg_ptrs: Vec<usize> = args.iter().map(|a| a.as_ptr() as usize).collect();
    arg_ptrs.push(0);
    let mut env_ptrs: Vec<usize> = envs.iter().map(|e| e.as_ptr() as usize).collect();
    env_ptrs.push(0);

    let child = ChildArgs {
        candidates: &candidates,
        argv: &arg_ptrs,
        envp: &env_ptrs,
        err: AtomicI32::new(0),
    };
    // The child's own stack (it shares our memory until it execs).
    let mut stack: Vec<u128> = Vec::with_capacity(CHILD_STACK / 16);
    // SAFETY: one past the end of the stack allocation, 16-byte aligned.
    let stack_top = unsafe { stack.as_mut_ptr().add(CHILD_STACK / 16) } as usize;
    const CLONE_VM: usize = 0x100;
    const CLONE_VFORK: usize = 0x4000;
    let ret: isize;
    // SAFETY: clone(CLONE_VM | CLONE_VFORK) like posix_spawn: we are
    // suspended until the child execs or exits, so the memory it reads
    // (`child`, built above) stays valid and unchanged. The child starts on
    // its own stack in `child_entry`, which never returns.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call {entry}",
            "ud2",
            "2:",
            entry = sym child_entry,
            inlateout("rax") SYS_CLONE as isize => ret,
            in("rdi") CLONE_VM | CLONE_VFORK | SIGCHLD as usize,
            in("rsi") stack_top,
            in("rdx") 0usize,
            in("r10") 0usize,
            in("r8") 0usize,
            in("r12") &child as *const ChildArgs as usize,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    drop(stack);
    let pid = check(ret)? as i32;
    match child.err.load(Ordering::Relaxed) {
        0 => Ok(pid),
        errno => {
            // exec failed: collect the child, report its errno.
            wait_pid_blocking(pid);
            Err(IoError::Os(errno))
        }
    }
}

const SYS_CLONE: usize = 56;
const SYS_EXIT: usize = 60;
const CHILD_STACK: usize = 64 * 1024;

/// What the spawned child needs, prepared before the clone.
struct ChildArgs<'a> {
    candidates: &'a [Vec<u8>],
    argv: &'a [usize],
    envp: &'a [usize],
    /// The exec error, written by the child before it exits.
    err: AtomicI32,
}

/// # Safety
/// `args` must point to a live `ChildArgs` (the parent is suspended).
unsafe extern "C" fn child_entry(args: *const ChildArgs<'_>) -> ! {
    // SAFETY: see above; the parent keeps it alive until we exec or exit.
    let args = unsafe { &*args };
    let err = child_exec(args.candidates, args.argv, args.envp);
    args.err.store(err, Ordering::Relaxed);
    loop {
        // SAFETY: exit (this task only) never returns.
        unsafe { syscall(SYS_EXIT, 127, 0, 0, 0, 0, 0) };
    }
}

/// Runs in the child: returns only if every exec failed, with the errno.
fn child_exec(candidates: &[Vec<u8>], argv: &[usize], envp: &[usize]) -> i32 {
    // SAFETY: setpgid(0, 0) has no pointers.
    unsafe { syscall(SYS_SETPGID, 0, 0, 0, 0, 0, 0) };
    let _ = sigprocmask(SIG_SETMASK, &SigSet::default());
    set_disposition(SIGPIPE, false);
    let mut err = ENOENT;
    let mut saw_eacces = false;
    for path in candidates {
        // SAFETY: `path`, `argv` and `envp` are NUL-terminated strings and
        // NULL-terminated pointer arrays built before the fork.
        let ret = unsafe {
            syscall(
                SYS_EXECVE,
                path.as_ptr() as usize,
                argv.as_ptr() as usize,
                envp.as_ptr() as usize,
                0,
                0,
                0,
            )
        };
        err = -(ret as i32);
        match err {
            EACCES => saw_eacces = true,
            ENOENT | ENOTDIR => {}
            _ => {
                saw_eacces = false;
                break;
            }
        }
    }
    if saw_eacces {
        err = EACCES;
    }
    err
}
