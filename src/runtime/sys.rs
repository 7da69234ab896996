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
