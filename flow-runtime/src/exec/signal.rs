//! SIGTERM and SIGINT as a request to stop a streaming job: with a savepoint (Flink's
//! stop-with-savepoint), when the job has a `--savepoint-dir`; in an instance group, by
//! leaving the group ([`crate::instances::leave_requested`]). A second signal exits at once.
//!
//! SIGUSR1 as a request to drain it (Flink's `stop --drain`): every source ends as at the end
//! of its input, where it is, so that the event-time timers and windows fire, the sinks
//! commit and the job ends well.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// How many stop signals arrived.
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Whether a stop was requested (a signal, or [`request_stop`]).
pub(crate) fn stop_requested() -> bool {
    SIGNALS.load(Ordering::Relaxed) > 0
}

/// Asks the running job to stop as SIGTERM does: with a savepoint (`--savepoint-dir`), or, in
/// an instance group, by leaving it.
pub fn request_stop() {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Whether the process was asked to drain its jobs (SIGUSR1, or [`request_drain`]).
static DRAIN: AtomicBool = AtomicBool::new(false);

/// Whether a drain was requested (SIGUSR1, or [`request_drain`]).
pub(crate) fn drain_requested() -> bool {
    DRAIN.load(Ordering::Relaxed)
}

/// Logs, once per process, that the jobs drain.
pub(crate) fn announce_drain() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::info!("drain requested: every source ends where it is"));
}

/// Asks the running jobs of this process to drain, as SIGUSR1 does: every source ends where
/// it is as at the end of its input, so windows and timers fire and the jobs end well. In an
/// instance group, drain every instance: an instance ends once every instance's sources
/// ended.
pub fn request_drain() {
    DRAIN.store(true, Ordering::Relaxed);
}

#[cfg(unix)]
extern "C" fn on_drain(_: libc::c_int) {
    DRAIN.store(true, Ordering::Relaxed);
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
    // SAFETY: the handlers only touch atomics (and `_exit`); `sigaction` is given a zeroed,
    // then filled, struct of the right type.
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
extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: an atomic, and `_exit` on the second signal.
    if SIGNALS.fetch_add(1, Ordering::Relaxed) >= 1 {
        // SAFETY: `_exit` is async-signal-safe and ends the process without unwinding.
        unsafe { libc::_exit(130) };
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
