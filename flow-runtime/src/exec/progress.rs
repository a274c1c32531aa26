//! The progress bar of a bounded job on a terminal (feature `progress`): `indicatif`, drawn on
//! stderr from a thread of its own that reads the sources' published progress every 100 ms.

use super::live::Live;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The bar's resolution: its length in steps.
const STEPS: u64 = 10_000;

/// A drawn bar; dropping it clears it (and waits for its thread).
pub(crate) struct Bar {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bar {
    /// Draws `live`'s progress on stderr until dropped.
    pub(crate) fn start(live: Arc<Live>) -> Option<Bar> {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::Builder::new()
            .name("flow-progress".into())
            .spawn(move || draw(&live, &stop))
            .ok()?;
        Some(Bar {
            done,
            thread: Some(thread),
        })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw(live: &Live, done: &AtomicBool) {
    let bar = ProgressBar::with_draw_target(Some(STEPS), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {percent:>3}% {msg} (ETA {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let start = Instant::now();
    while !done.load(Ordering::Relaxed) {
        if let Some(p) = live.progress() {
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{} rows, {} rows/s",
                human(p.rows as f64),
                human(p.rows as f64 / secs)
            ));
            bar.set_position((p.fraction * STEPS as f64) as u64);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

/// `1234567` as `1.23M`.
fn human(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.2}G", n / 1e9),
        n if n >= 1e6 => format!("{:.2}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}k", n / 1e3),
        n => format!("{n:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn counts_read_as_people_write_them() {
        assert_eq!(human(12.0), "12");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(3_456_789.0), "3.46M");
        assert_eq!(human(2.5e9), "2.50G");
    }
}
