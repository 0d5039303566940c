//! The runtime std would otherwise provide: process entry, a heap, the
//! panic handler and the memory functions the compiler calls.

extern crate alloc;

use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

use cicd_entrypoint::binary::{self, OsString};

// The kernel starts us with rsp pointing at argc, then argv[], NULL,
// envp[], NULL. Pass that pointer to `start` with the stack aligned for a
// call, as the ABI wants.
core::arch::global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {start}",
    "ud2",
    start = sym start,
);

/// Copies the NUL-terminated C string at `p`.
///
/// # Safety
/// `p` must point to a NUL-terminated string.
unsafe fn c_arg(p: *const u8) -> OsString {
    let mut len = 0;
    // SAFETY: the caller guarantees a terminating NUL within the string.
    // (A volatile read, so the loop is not turned into a call to strlen.)
    while unsafe { p.add(len).read_volatile() } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes before the NUL are readable.
    OsString::from(unsafe { core::slice::from_raw_parts(p, len) })
}

/// # Safety
/// `sp` must be the initial stack pointer the kernel gave `_start`.
unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the System V process entry layout: argc, argv pointers, NULL,
    // environment pointers, NULL.
    let (argv, env) = unsafe {
        let argc = *sp;
        let argv_ptr = sp.add(1) as *const *const u8;
        let argv: Vec<OsString> = (0..argc).map(|i| c_arg(*argv_ptr.add(i))).collect();
        let mut envp = argv_ptr.add(argc + 1);
        let mut env = Vec::new();
        while !(*envp).is_null() {
            env.push(c_arg(*envp));
            envp = envp.add(1);
        }
        (argv, env)
    };
    let mut argv = argv.into_iter();
    let argv0 = argv.next();
    let args: Vec<OsString> = argv.collect();
    let code = binary::main(argv0, &args, &env);
    binary::exit(i32::from(code))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // Like std with panic = abort: say where, then die by SIGABRT.
    let text = alloc::format!("cicd-entrypoint: panicked: {info}\n");
    let _ = binary::write_all(2, text.as_bytes());
    binary::abort()
}

/// Never called (panic = abort), but the prebuilt `core` refers to it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// Never called either (nothing unwinds), but the prebuilt `alloc` has
/// landing pads that refer to it.
#[unsafe(no_mangle)]
#[allow(non_snake_case)]
extern "C" fn _Unwind_Resume() -> ! {
    binary::abort()
}

/// A small allocator for a short-lived, single-threaded process: power-of-
/// two size classes with free lists, carved from 64 KiB mmap'd chunks, and
/// a private mapping for anything larger than the largest class.
struct Heap {
    free: [*mut u8; CLASSES],
    next: *mut u8,
    end: *mut u8,
}

const MIN_SHIFT: usize = 4; // 16 bytes
const CLASSES: usize = 12; // up to 32 KiB
const MAX_SMALL: usize = 1 << (MIN_SHIFT + CLASSES - 1);
const CHUNK: usize = 64 * 1024;
const PAGE: usize = 4096;

struct Allocator(UnsafeCell<Heap>);

// SAFETY: the process is single-threaded (fork is only followed by exec),
// so the heap is never touched concurrently.
unsafe impl Sync for Allocator {}

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(UnsafeCell::new(Heap {
    free: [core::ptr::null_mut(); CLASSES],
    next: core::ptr::null_mut(),
    end: core::ptr::null_mut(),
}));

fn map(len: usize) -> *mut u8 {
    const PROT_READ_WRITE: usize = 0x1 | 0x2;
    const MAP_PRIVATE_ANONYMOUS: usize = 0x02 | 0x20;
    // SAFETY: an anonymous private mapping touches no existing memory.
    let ret = unsafe {
        binary::syscall(
            binary::SYS_MMAP,
            0,
            len,
            PROT_READ_WRITE,
            MAP_PRIVATE_ANONYMOUS,
            usize::MAX,
            0,
        )
    };
    if ret < 0 { core::ptr::null_mut() } else { ret as *mut u8 }
}

/// Size class index and block size for a layout, or None if large.
fn class(layout: Layout) -> Option<(usize, usize)> {
    let size = layout.size().max(layout.align()).max(1 << MIN_SHIFT);
    if size > MAX_SMALL {
        return None;
    }
    let block = size.next_power_of_two();
    Some((block.trailing_zeros() as usize - MIN_SHIFT, block))
}

fn large_len(layout: Layout) -> usize {
    layout.size().div_ceil(PAGE) * PAGE
}

unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((idx, block)) = class(layout) else {
            // mmap returns page-aligned memory.
            return if layout.align() > PAGE {
                core::ptr::null_mut()
            } else {
                map(large_len(layout))
            };
        };
        // SAFETY: single-threaded (see `Sync` above), so this is the only
        // live reference to the heap.
        let heap = unsafe { &mut *self.0.get() };
        let head = heap.free[idx];
        if !head.is_null() {
            // SAFETY: a free block stores the next free block in its first
            // word (blocks are at least 16 bytes and 16-byte aligned).
            heap.free[idx] = unsafe { *(head as *mut *mut u8) };
            return head;
        }
        // Blocks are aligned to their size (at most a page), which covers
        // the layout's alignment.
        let align = block.min(PAGE);
        let mut start = (heap.next as usize).next_multiple_of(align);
        if heap.next.is_null() || start + block > heap.end as usize {
            let chunk = map(CHUNK);
            if chunk.is_null() {
                return chunk;
            }
            heap.next = chunk;
            // SAFETY: one past the end of the new mapping.
            heap.end = unsafe { chunk.add(CHUNK) };
            start = chunk as usize;
        }
        heap.next = (start + block) as *mut u8;
        start as *mut u8
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout) {
            None => {
                // SAFETY: large blocks are whole mappings of this length.
                unsafe { binary::syscall(binary::SYS_MUNMAP, ptr as usize, large_len(layout), 0, 0, 0, 0) };
            }
            Some((idx, _)) => {
                // SAFETY: single-threaded; the block is ours again and big
                // enough to hold the free-list link.
                unsafe {
                    let heap = &mut *self.0.get();
                    *(ptr as *mut *mut u8) = heap.free[idx];
                    heap.free[idx] = ptr;
                }
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same alignment as the existing, valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if let (Some((a, _)), Some((b, _))) = (class(layout), class(new_layout))
            && a == b
        {
            return ptr;
        }
        // SAFETY: GlobalAlloc contract: allocate, copy the live bytes, free.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

// The memory functions the compiler emits calls to. `rep movsb`/`rep stosb`
// cannot be turned back into calls to these functions.

/// # Safety
/// `dst` and `src` must be valid for `n` bytes and not overlap.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: copies `n` bytes forward; validity is the caller's contract.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `dst` and `src` must be valid for `n` bytes; they may overlap.
#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: a forward copy is safe when dst is below src or the
        // ranges do not overlap.
        unsafe { memcpy(dst, src, n) };
    } else {
        // SAFETY: copy backwards from the last byte (direction flag set for
        // the copy and cleared again, as the ABI requires).
        unsafe {
            core::arch::asm!(
                "std",
                "rep movsb",
                "cld",
                inout("rcx") n => _,
                inout("rdi") dst.add(n - 1) => _,
                inout("rsi") src.add(n - 1) => _,
                options(nostack),
            );
        }
    }
    dst
}

/// # Safety
/// `dst` must be valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    // SAFETY: stores `n` bytes; validity is the caller's contract.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c as u8, options(nostack, preserves_flags));
    }
    dst
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: i < n; volatile reads keep this a plain loop.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// `a` and `b` must be valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}
