//! SIGTERM and SIGINT as a request to stop a streaming job: with a savepoint (Flink's
//! stop-with-savepoint), when the job has a `--savepoint-dir`; in an instance group, by
//! leaving the group ([`crate::instances::leave_requested`]). A second signal exits at once.
//!
//! SIGUSR1 as a request to drain it (like Flink's `stop --drain`, without a savepoint): every
//! source ends as at the end of its input, where it is, so that the event-time timers and
//! windows fire, the sinks commit and the job ends well.
//!
//! The first of the two requests wins: a drain asked while the job stops (its savepoint
//! under way, or its instance leaving its group) is ignored, and so is a stop asked while it
//! drains (a second stop signal still exits at once). A signal so ignored says so on stderr.
//! Both are for the whole process, and stay asked until it exits.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

/// How many stop signals arrived (a second one exits at once).
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// What the process was asked first: nothing yet, a stop, or a drain.
struct First(AtomicU8);

const NOTHING: u8 = 0;
const STOP: u8 = 1;
const DRAIN: u8 = 2;

impl First {
    const fn new() -> Self {
        First(AtomicU8::new(NOTHING))
    }

    /// Records that `what` was asked, unless something was asked before (an atomic only:
    /// async-signal-safe); whether it is ignored, something else having been asked first.
    fn ask(&self, what: u8) -> bool {
        match (self.0).compare_exchange(NOTHING, what, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => false,
            Err(first) => first != what,
        }
    }

    fn is(&self, what: u8) -> bool {
        self.0.load(Ordering::Relaxed) == what
    }
}

static FIRST: First = First::new();

/// Whether a stop was requested (a signal, or [`request_stop`]) before any drain.
pub(crate) fn stop_requested() -> bool {
    FIRST.is(STOP)
}

/// Asks the running job to stop as SIGTERM does: with a savepoint (`--savepoint-dir`), or, in
/// an instance group, by leaving it. Ignored once the job drains. (Not a signal: a first
/// SIGTERM after it does not exit at once.)
pub fn request_stop() {
    if FIRST.ask(STOP) {
        tracing::warn!("stop requested while the job drains: ignored");
    }
}

/// Whether a drain was requested (SIGUSR1, or [`request_drain`]) before any stop.
pub(crate) fn drain_requested() -> bool {
    FIRST.is(DRAIN)
}

/// Logs, once per process, that the jobs drain.
pub(crate) fn announce_drain() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::info!("drain requested: every source ends where it is"));
}

/// Asks the running jobs of this process to drain, as SIGUSR1 does: every source ends where
/// it is as at the end of its input, so windows and timers fire and the jobs end well. In an
/// instance group, drain every instance: an instance ends once every instance's sources
/// ended. Ignored once a job stops (see the module's doc); a job started later in the
/// process drains at once.
pub fn request_drain() {
    if FIRST.ask(DRAIN) {
        tracing::warn!("drain requested while the job stops: ignored");
    }
}

#[cfg(unix)]
extern "C" fn on_drain(_: libc::c_int) {
    if FIRST.ask(DRAIN) {
        say(b"flow: SIGUSR1 ignored: the job is stopping\n");
    }
}

/// Writes `line` to stderr from a signal handler (`write` is async-signal-safe; a logger
/// is not).
#[cfg(unix)]
fn say(line: &[u8]) {
    // SAFETY: a plain write of a valid buffer to fd 2; a failed write is of no consequence,
    // and `errno`, which it may set, is the interrupted code's: put back (on Linux, where
    // the thread's `errno` is at `__errno_location`).
    unsafe {
        #[cfg(target_os = "linux")]
        let errno = *libc::__errno_location();
        let _ = libc::write(2, line.as_ptr().cast(), line.len());
        #[cfg(target_os = "linux")]
        {
            *libc::__errno_location() = errno;
        }
    }
}

/// Routes SIGUSR1 to [`drain_requested`] (once per process).
pub(crate) fn install_drain() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        #[cfg(unix)]
        handle(libc::SIGUSR1, on_drain);
    });
}

/// Makes `handler` the handler of `sig`.
#[cfg(unix)]
fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: the handlers only touch atomics, `write` and `_exit` (async-signal-safe);
    // `sigaction` is given a zeroed, then filled, struct of the right type.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut action.sa_mask);
        action.sa_flags = libc::SA_RESTART;
        if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
            tracing::warn!(signal = sig, "cannot install a signal handler");
        }
    }
}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    // Only async-signal-safe calls here: an atomic, `write`, and `_exit` on the second signal.
    if SIGNALS.fetch_add(1, Ordering::Relaxed) >= 1 {
        // SAFETY: `_exit` is async-signal-safe and ends the process without unwinding.
        unsafe { libc::_exit(130) };
    }
    if FIRST.ask(STOP) {
        say(match sig {
            libc::SIGINT => {
                b"flow: SIGINT ignored: the job drains (send it again to exit at once)\n"
            }
            _ => b"flow: SIGTERM ignored: the job drains (send it again to exit at once)\n",
        });
    }
}

/// Routes SIGTERM and SIGINT to [`stop_requested`] (once per process).
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        #[cfg(unix)]
        for sig in [libc::SIGTERM, libc::SIGINT] {
            handle(sig, on_signal);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_of_a_stop_and_a_drain_wins() {
        let first = First::new();
        assert!(!first.is(STOP) && !first.is(DRAIN));
        assert!(!first.ask(DRAIN), "the first request is not ignored");
        assert!(first.ask(STOP), "a stop after a drain is ignored");
        assert!(first.is(DRAIN) && !first.is(STOP));
        let first = First::new();
        assert!(!first.ask(STOP));
        assert!(first.ask(DRAIN), "a drain after a stop is ignored");
        assert!(
            !first.ask(STOP),
            "the same request again is not ignored: it is asked"
        );
        assert!(first.is(STOP) && !first.is(DRAIN));
    }
}
