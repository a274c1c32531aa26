//! SIGTERM and SIGINT as a request to stop a streaming job: with a savepoint (Flink's
//! stop-with-savepoint), when the job has a `--savepoint-dir`; in an instance group, by
//! leaving the group ([`crate::instances::leave_requested`]). A second signal exits at once.

use std::sync::atomic::{AtomicUsize, Ordering};
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
            // SAFETY: a plain handler that only touches an atomic; `sigaction` is given a
            // zeroed, then filled, struct of the right type.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut action.sa_mask);
                action.sa_flags = libc::SA_RESTART;
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    tracing::warn!(signal = sig, "cannot install the stop handler");
                }
            }
        }
    });
}
