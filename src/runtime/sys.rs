//! The operating-system edge: poll(2) with EINTR retry, signal masking for worker threads,
//! flock(2) on known_hosts files,
//! and the OS random generator. The only `unsafe` outside `ffi/` lives here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::random::Random;

/// Readiness of one descriptor.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub read: bool,
    pub write: bool,
    /// Error or hang-up.
    pub hup: bool,
}

/// Wait until one of `fds` (descriptor, want-read, want-write) is ready or `deadline` passes.
/// Returns the readiness of each, in order. EINTR is retried with the remaining time.
pub fn poll(fds: &[(RawFd, bool, bool)], deadline: Option<Instant>) -> io::Result<Vec<Ready>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, r, w)| libc::pollfd {
            fd,
            events: (if r { libc::POLLIN } else { 0 }) | (if w { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    loop {
        let timeout_ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so we do not wake just before the deadline and spin.
                let ms = left.as_millis().saturating_add(u128::from(left.subsec_nanos() % 1_000_000 != 0));
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `pfds` is a valid, exclusively borrowed array of `pfds.len()` pollfd structs
        // for the duration of the call.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(pfds
            .iter()
            .map(|p| Ready {
                read: p.revents & libc::POLLIN != 0,
                write: p.revents & libc::POLLOUT != 0,
                hup: p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0,
            })
            .collect());
    }
}

/// Ask for `bytes` of kernel send buffer on a socket (best effort: the kernel caps it at
/// net.core.wmem_max). A larger socketpair buffer lets the application and the worker each
/// move more per wake-up; the memory is used only while data is queued.
pub fn set_send_buffer(fd: &impl std::os::fd::AsRawFd, bytes: usize) {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `v` is a live c_int for the duration of the call and its size is passed with it;
    // setsockopt does not keep the pointer.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Turn on TCP keepalive (SO_KEEPALIVE) so the kernel notices a peer that vanished.
pub fn set_tcp_keepalive(fd: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int for the duration of the call and its size is passed with it;
    // setsockopt does not keep the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether SO_KEEPALIVE is on (for tests).
pub fn tcp_keepalive(fd: &impl std::os::fd::AsRawFd) -> io::Result<bool> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live locals; getsockopt writes at most `len` bytes into `v`.
    let rc = unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE, (&mut v as *mut libc::c_int).cast(), &mut len)
    };
    if rc == 0 {
        Ok(v != 0)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Block asynchronous signals in the calling (worker) thread so the application's handlers run
/// on its own threads, and SIGPIPE can never be delivered here.
pub fn block_signals_in_this_thread() {
    // SAFETY: `set` is a local sigset_t initialised by sigfillset before use; pthread_sigmask
    // only changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for s in [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT] {
            libc::sigdelset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Randomness from the kernel (getrandom(2)): fork-safe, no user-space state.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        // The kernel's generator does not fail once seeded; retry rather than hand out zeros.
        while getrandom::fill(buf).is_err() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Hold an exclusive flock(2) on `file` until it is closed, waiting for other holders (threads
/// and processes). EINTR is retried.
pub fn lock_exclusive(file: &std::fs::File) -> io::Result<()> {
    loop {
        match file.lock() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Hand the kernel back the pages of the calling thread's stack that lie more than `margin`
/// bytes below the current frame: memory a deeper call (a key exchange's big crypto frames)
/// once touched and the thread's loop does not use. They read as zeros if touched again. An
/// idle connection's driver thread then keeps a few pages of stack resident instead of the
/// deepest the handshake went (issue 16: 64 KiB of RSS per idle session before).
/// Not inlined: the local whose address stands for the stack pointer must sit in this small
/// frame, not somewhere in a large caller's. Only on threads the library spawned (never the
/// main thread, whose stack bounds glibc derives from /proc/self/maps).
#[inline(never)]
pub(crate) fn release_unused_stack(margin: usize) {
    // SAFETY: getpid/gettid have no preconditions.
    if unsafe { libc::getpid() == libc::gettid() } {
        return;
    }
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    let mut base: *mut libc::c_void = std::ptr::null_mut();
    let mut size: libc::size_t = 0;
    // SAFETY: `attr` is initialised by pthread_getattr_np before it is read and destroyed once;
    // base/size are live locals it writes.
    let ok = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return;
        }
        let rc = libc::pthread_attr_getstack(&attr, &mut base, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        rc == 0
    };
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(4096);
    let low = (base as usize).saturating_add(page - 1) & !(page - 1);
    let high = sp.saturating_sub(margin) & !(page - 1);
    if !ok || base.is_null() || sp < low || sp > (base as usize).saturating_add(size) || high <= low {
        return;
    }
    // SAFETY: [low, high) lies inside this thread's own stack mapping, below the current stack
    // pointer by at least `margin` (far beyond the red zone); nothing lives there once the calls
    // that used it returned, and MADV_DONTNEED only makes those pages zero-filled on next use.
    unsafe {
        libc::madvise(low as *mut libc::c_void, high - low, libc::MADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    /// Resident KiB of the mapping that holds `addr`, from /proc/self/smaps.
    fn rss_of_mapping(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                    inside = a <= addr && addr < b;
                    continue;
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("Rss:") {
                    return kb.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[inline(never)]
    fn deep(depth: u32) -> u8 {
        let mut buf = [0u8; 4096];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = std::hint::black_box(i as u8 ^ depth as u8);
        }
        let below = if depth > 0 { deep(depth - 1) } else { 0 };
        std::hint::black_box(buf[(depth as usize * 7) % 4096]).wrapping_add(below)
    }

    #[test]
    fn release_unused_stack_gives_back_what_a_deep_call_touched() {
        let t = std::thread::Builder::new().stack_size(1 << 20);
        let (before, after) = t
            .spawn(|| {
                std::hint::black_box(deep(64)); // 64 frames of 4 KiB: over 256 KiB touched
                let here = 0u8;
                let addr = std::ptr::addr_of!(here) as usize;
                let before = rss_of_mapping(addr).unwrap_or(0);
                super::release_unused_stack(16 * 1024);
                let after = rss_of_mapping(addr).unwrap_or(u64::MAX);
                // The thread still works on its stack afterwards.
                std::hint::black_box(deep(8));
                (before, after)
            })
            .map(|h| h.join())
            .ok()
            .and_then(Result::ok)
            .unwrap_or((0, u64::MAX));
        assert!(before >= 256, "the deep call left only {before} KiB resident");
        assert!(after <= 64, "{after} KiB of stack still resident after the release ({before} before)");
    }
}
