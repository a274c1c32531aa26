//! Workers: one thread per core, each running its share of a job's tasks as coroutines, as
//! timely's workers run their share of every operator.
//!
//! With a thread per task, a job at parallelism 2 on two cores runs four busy threads (two
//! source subtasks, two keyed subtasks), and a batch crossing an exchange often wakes a
//! sleeping thread: measured on W3 at parallelism 2, 45-52k context switches for 200M rows,
//! and parallelism 2 slower than parallelism 1 (`BENCHMARKS.md`). With [`Scheduling::Workers`]
//! subtask `i` of every stage runs on worker `i % workers`: the stages of one subtask take
//! turns on one core, a switch between them costs nanoseconds where a thread switch costs
//! microseconds, and a batch is mostly read on the core that wrote it.
//!
//! The coroutines are stackful (`corosensei`), so a task's loop stays the plain blocking loop
//! it is on a thread of its own. It blocks only through this module: where it would wait for
//! room in a channel or for a channel's next message it calls [`wait`], where it would sleep
//! [`sleep`]; on a worker these suspend its coroutine and the worker runs the others. A worker
//! whose tasks all wait parks, woken by another thread's progress on a channel
//! ([`progress`]), or after at most [`PARK`] to look at what wakes nobody (a checkpoint
//! triggered, a broker's next message, the end of the job). On a thread of its own the same
//! calls block the thread, as before.
//!
//! What a task's code does between those points runs to its end: a user function that sleeps
//! with `std::thread::sleep` or blocks on a lock holds its worker, and every task on it,
//! meanwhile. A function that has to wait sleeps with [`sleep`] instead, which gives the worker
//! away; one that waits for another task of its job some other way (a blocking channel, a
//! barrier) must run with [`Scheduling::Threads`].

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How a job's tasks get threads (`--scheduling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheduling {
    /// One thread per core (at most one per task), each running subtask `i % threads` of
    /// every stage as coroutines, switching between them where a task would wait.
    #[default]
    Workers,
    /// A thread per task (stage subtask), blocking where it waits: for jobs whose functions
    /// block until another task of the job progressed.
    Threads,
}

impl std::str::FromStr for Scheduling {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "workers" => Ok(Scheduling::Workers),
            "threads" => Ok(Scheduling::Threads),
            other => Err(format!(
                "unknown scheduling `{other}`: expected `workers` or `threads`"
            )),
        }
    }
}

/// The longest a worker whose tasks all wait parks before it looks again.
pub(crate) const PARK: Duration = Duration::from_millis(1);

/// How long a task that need not wait runs before the other tasks of its worker get a turn
/// (looked at between batches: a batch is not cut short).
const SLICE: Duration = Duration::from_micros(500);

/// The stack of a task's coroutine: as a thread's default (only the pages used are backed).
const STACK_BYTES: usize = 2 << 20;

/// Why a coroutine gave its worker back.
enum Suspend {
    /// It waits for a channel: resume it on the next round.
    Blocked,
    /// It could go on: others get a turn first.
    Turn,
    /// It sleeps until then.
    Until(Instant),
}

type Yielder = corosensei::Yielder<(), Suspend>;

thread_local! {
    /// The coroutine running on this thread, if it is a worker running one.
    static CURRENT: Cell<*const Yielder> = const { Cell::new(std::ptr::null()) };
    /// The workers of the job this thread runs a task of (to wake on progress).
    static POOL: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
    /// Whether a task of this worker moved a message since its worker last looked.
    static PROGRESSED: Cell<bool> = const { Cell::new(false) };
    /// When the running task's turn started (when its worker last resumed it).
    static TURN: Cell<Instant> = Cell::new(Instant::now());
}

/// Whether the calling task runs as a worker's coroutine (else on a thread of its own).
#[inline]
pub(crate) fn cooperative() -> bool {
    !CURRENT.with(Cell::get).is_null()
}

/// Gives the worker back until the next round: the calling task waits for a channel. Only
/// for a worker's coroutine ([`cooperative`]); a task on its own thread blocks on the channel.
pub(crate) fn wait() {
    suspend(Suspend::Blocked);
}

/// Sleeps `d`, as [`std::thread::sleep`] does; but called by a task on a worker
/// ([`Scheduling::Workers`], the default), the worker runs its other tasks meanwhile (so the
/// task may sleep longer than `d`: it is resumed between their turns).
///
/// For functions and connectors that wait: a user function that paces its rows, backs off
/// before a retry, or polls until another task of the job has done something. With
/// `std::thread::sleep` such a function holds its worker, and every other task on it, until
/// it returns; one that polls for a task on its own worker that way never returns. Only
/// another task's progress can be waited for, and only progress that needs nothing from the
/// waiting task: the rows it emitted before sit in its output batch until its function
/// returns, and the operators chained with it run in its task.
///
/// The other tasks run on the same thread meanwhile, so hold nothing across the call that one
/// of them may want: a lock (another task locking it blocks the worker for good), a borrow of
/// a thread-local `RefCell`, an entered async runtime (a tokio `block_on`). Not from `Drop`
/// while unwinding. Anywhere else (a thread of the job's own with [`Scheduling::Threads`], a
/// thread the program started) it is `std::thread::sleep`.
///
/// # Examples
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
///
/// static READY: AtomicBool = AtomicBool::new(false);
///
/// /// A map that waits until `READY` is set (by another pipeline of the job, say).
/// fn wait_until_ready(n: i64) -> i64 {
///     while !READY.load(Ordering::Acquire) {
///         flow_runtime::sleep(Duration::from_millis(1));
///     }
///     n
/// }
/// let setter = std::thread::spawn(|| {
///     std::thread::sleep(Duration::from_millis(20));
///     READY.store(true, Ordering::Release);
/// });
/// assert_eq!(wait_until_ready(7), 7);
/// setter.join().unwrap();
/// ```
pub fn sleep(d: Duration) {
    if cooperative() {
        match Instant::now().checked_add(d) {
            Some(until) => suspend(Suspend::Until(until)),
            // Past the clock's range: as good as forever, a year at a time.
            None => loop {
                suspend(Suspend::Until(
                    Instant::now() + Duration::from_secs(365 * 24 * 3600),
                ));
            },
        }
    } else {
        std::thread::sleep(d);
    }
}

/// A step of a task that need not wait (a batch done): on a worker, once the task ran for
/// [`SLICE`], the other tasks of the worker get a turn (a source that never waits, or a slow
/// function, would starve them).
#[inline]
pub(crate) fn tick() {
    if !cooperative() {
        return;
    }
    if TURN.with(Cell::get).elapsed() >= SLICE {
        suspend(Suspend::Turn);
    }
}

/// The calling task moved a message through a channel: wakes the parked workers of its job,
/// one of which may hold the task at the other end.
#[inline]
pub(crate) fn progress() {
    let pool = POOL.with(Cell::get);
    if !pool.is_null() {
        PROGRESSED.with(|p| p.set(true));
        // SAFETY: `POOL` is set only while the thread holds the `Arc` (see `enter`).
        unsafe { &*pool }.wake();
    }
}

fn suspend(why: Suspend) {
    let current = CURRENT.with(Cell::get);
    if current.is_null() {
        return;
    }
    // SAFETY: `CURRENT` is the yielder of the coroutine running now, set when it started or
    // was resumed, and it lives as long as the coroutine.
    unsafe { &*current }.suspend(why);
    CURRENT.with(|c| c.set(current));
}

/// What the workers of one job share: who is parked, to wake it.
pub(crate) struct Shared {
    /// Workers parked or about to park.
    sleepers: AtomicUsize,
    parked: Vec<AtomicBool>,
    threads: Vec<OnceLock<Thread>>,
}

impl Shared {
    /// Workers for a job, `workers` of them.
    pub(crate) fn new(workers: usize) -> Arc<Self> {
        Arc::new(Shared {
            sleepers: AtomicUsize::new(0),
            parked: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            threads: (0..workers).map(|_| OnceLock::new()).collect(),
        })
    }

    #[inline]
    fn wake(&self) {
        // Pairs with the fence in `Worker::arm`: either the parking worker's next round
        // sees this thread's progress, or this thread sees the worker parking.
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake_parked();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_parked(&self) {
        for (parked, thread) in self.parked.iter().zip(&self.threads) {
            if parked.load(Ordering::Relaxed) {
                if let Some(t) = thread.get() {
                    t.unpark();
                }
            }
        }
    }
}

/// Runs `f` with the calling thread counted among `shared`'s job's threads: its progress on a
/// channel wakes the job's parked workers (a task on a thread of its own that feeds a worker's
/// task, or is fed by one).
pub(crate) fn enter<R>(shared: &Arc<Shared>, f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            POOL.with(|p| p.set(std::ptr::null()));
        }
    }
    POOL.with(|p| p.set(Arc::as_ptr(shared)));
    let _leave = Leave;
    f()
}

/// A task for a worker: runs to its end, reporting its outcome itself.
pub(crate) type Work = Box<dyn FnOnce() + Send>;

/// Worker `me` of `shared`: runs `tasks` as coroutines until every one ended. A task whose
/// stack cannot be allocated runs on a thread of its own.
pub(crate) fn run_worker(shared: Arc<Shared>, me: usize, tasks: Vec<(String, Work)>) {
    let _ = shared.threads[me].set(std::thread::current());
    enter(&shared, || Worker::new(&shared, me, tasks).run());
}

struct Slot {
    coroutine: corosensei::Coroutine<(), Suspend, ()>,
    /// Not resumed before then (it sleeps).
    until: Option<Instant>,
}

struct Worker<'a> {
    shared: &'a Shared,
    me: usize,
    slots: Vec<Slot>,
    /// Whether this worker counts itself among the sleepers: it parks after one more round
    /// in which nothing moved.
    armed: bool,
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Arc<Shared>, me: usize, tasks: Vec<(String, Work)>) -> Self {
        let mut slots = Vec::with_capacity(tasks.len());
        for (name, work) in tasks {
            match corosensei::stack::DefaultStack::new(STACK_BYTES) {
                Ok(stack) => slots.push(Slot {
                    coroutine: corosensei::Coroutine::with_stack(stack, move |y: &Yielder, ()| {
                        CURRENT.with(|c| c.set(y));
                        work();
                    }),
                    until: None,
                }),
                Err(e) => {
                    tracing::warn!(task = %name, error = %e, "no stack for a coroutine: the task runs on a thread of its own");
                    let shared = shared.clone();
                    let spawned = std::thread::Builder::new()
                        .name(name)
                        .spawn(move || enter(&shared, work));
                    if let Err(e) = spawned {
                        // The job's driver sees the task's outcome never come: the worker's
                        // thread is the last resort.
                        tracing::error!(error = %e, "no thread for a task either");
                    }
                }
            }
        }
        Worker {
            shared,
            me,
            slots,
            armed: false,
        }
    }

    fn run(mut self) {
        while !self.slots.is_empty() {
            let moved = self.round();
            if moved {
                self.disarm();
            } else if !self.armed {
                self.arm();
            } else {
                let now = Instant::now();
                let timeout = self
                    .slots
                    .iter()
                    .filter_map(|s| s.until)
                    .map(|t| t.saturating_duration_since(now))
                    .fold(PARK, Duration::min);
                std::thread::park_timeout(timeout);
                self.disarm();
            }
        }
        self.disarm();
    }

    /// Resumes every task that is not asleep once; returns whether anything moved.
    fn round(&mut self) -> bool {
        let mut moved = false;
        let start = Instant::now();
        let mut i = 0;
        while i < self.slots.len() {
            let slot = &mut self.slots[i];
            if let Some(until) = slot.until {
                if start < until {
                    i += 1;
                    continue;
                }
                slot.until = None;
            }
            // From its resume, not the round's start: a task resumed after another ran long
            // (a slow function's batch) gets its slice too, instead of giving the worker back
            // at its first tick.
            TURN.with(|t| t.set(Instant::now()));
            let result = slot.coroutine.resume(());
            CURRENT.with(|c| c.set(std::ptr::null()));
            match result {
                corosensei::CoroutineResult::Yield(Suspend::Blocked) => {}
                corosensei::CoroutineResult::Yield(Suspend::Turn) => moved = true,
                corosensei::CoroutineResult::Yield(Suspend::Until(t)) => slot.until = Some(t),
                corosensei::CoroutineResult::Return(()) => {
                    self.slots.swap_remove(i);
                    moved = true;
                    continue;
                }
            }
            i += 1;
        }
        moved | PROGRESSED.with(|p| p.replace(false))
    }

    fn arm(&mut self) {
        self.armed = true;
        self.shared.parked[self.me].store(true, Ordering::Relaxed);
        self.shared.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    fn disarm(&mut self) {
        if self.armed {
            self.armed = false;
            self.shared.parked[self.me].store(false, Ordering::Relaxed);
            self.shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The worker each task runs on: subtask `i` of every stage on worker `i % workers`, as
/// timely does, when some stage has more than one subtask; else (every stage one subtask, in
/// a job that is not fused) round robin over the tasks.
pub(crate) fn assign(tasks: &[(usize, usize)], workers: usize) -> Vec<usize> {
    let parallel = tasks.iter().any(|&(_, subtask)| subtask > 0);
    tasks
        .iter()
        .enumerate()
        .map(|(i, &(_, subtask))| if parallel { subtask } else { i } % workers.max(1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Runs `tasks` on `workers` workers; returns when every one ended.
    fn run(workers: usize, tasks: Vec<Work>) {
        let shared = Shared::new(workers);
        let mut per: Vec<Vec<(String, Work)>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            per[i % workers].push((format!("t{i}"), t));
        }
        let threads: Vec<_> = per
            .into_iter()
            .enumerate()
            .map(|(me, tasks)| {
                let shared = shared.clone();
                std::thread::spawn(move || run_worker(shared, me, tasks))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    /// A task sending 0..10,000 through a channel of one slot, one waiting for each number
    /// and sending their sum on the receiver, as a worker's tasks wait: through [`wait`].
    fn producer_and_consumer() -> (Work, Work, mpsc::Receiver<u64>) {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(1);
        let (done, sum) = mpsc::channel();
        let producer: Work = Box::new(move || {
            for i in 0..10_000u64 {
                let mut m = i;
                loop {
                    match tx.try_send(m) {
                        Ok(()) => break,
                        Err(crossbeam_channel::TrySendError::Full(back)) => {
                            m = back;
                            wait();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                progress();
            }
        });
        let consumer: Work = Box::new(move || {
            let mut total = 0;
            loop {
                match rx.try_recv() {
                    Ok(v) => {
                        total += v;
                        progress();
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => wait(),
                    Err(crossbeam_channel::TryRecvError::Disconnected) => break,
                }
            }
            done.send(total).unwrap();
        });
        (producer, consumer, sum)
    }

    /// A producer and a consumer on one worker through a channel of one slot: each waits for
    /// the other, which only the switch between them resolves.
    #[test]
    fn tasks_on_one_worker_take_turns_where_they_wait() {
        let (producer, consumer, sum) = producer_and_consumer();
        run(1, vec![producer, consumer]);
        assert_eq!(sum.recv().unwrap(), (0..10_000u64).sum::<u64>());
    }

    /// The same across two workers: a parked worker is woken by the other's progress (else
    /// each message would wait a whole `PARK`: 10,000 of them, ten seconds).
    #[test]
    fn a_parked_worker_wakes_when_another_moves_a_message() {
        let (producer, consumer, sum) = producer_and_consumer();
        let start = Instant::now();
        run(2, vec![producer, consumer]);
        assert_eq!(sum.recv().unwrap(), (0..10_000u64).sum::<u64>());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    /// A repartition reader on a thread of its own wakes the parked worker its messages are
    /// for: 2,000 messages one at a time, each waiting a whole `PARK` unless woken, would
    /// take two seconds and more.
    #[test]
    fn a_reader_on_its_own_thread_wakes_the_worker_it_feeds() {
        use crate::channel::Message;
        let (tx, rx) = crossbeam_channel::bounded::<Message>(1);
        let (echo, answers) = crossbeam_channel::bounded::<()>(1);
        let inbox = crate::instances::Inbox::new(tx);
        let shared = Shared::new(1);
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                enter(&shared, || {
                    for i in 0..2_000 {
                        inbox.send(Message::Watermark(i)).unwrap();
                        // The next only once the worker took this one: it parks in between.
                        answers.recv().unwrap();
                    }
                })
            })
        };
        let consumer: Work = Box::new(move || loop {
            match rx.try_recv() {
                Ok(_) => echo.send(()).unwrap(),
                Err(crossbeam_channel::TryRecvError::Empty) => wait(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        });
        let start = Instant::now();
        let worker =
            std::thread::spawn(move || run_worker(shared, 0, vec![("c".into(), consumer)]));
        reader.join().unwrap();
        worker.join().unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            start.elapsed()
        );
    }

    /// A sleeping task lets the others of its worker run; a busy one gives them turns.
    #[test]
    fn sleeping_and_busy_tasks_let_the_others_run() {
        let (log, order) = mpsc::channel();
        let log2 = log.clone();
        let sleeper: Work = Box::new(move || {
            log.send("sleep").unwrap();
            sleep(Duration::from_millis(20));
            log.send("woke").unwrap();
        });
        let busy: Work = Box::new(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(50) {
                tick();
            }
            log2.send("busy done").unwrap();
        });
        run(1, vec![sleeper, busy]);
        let seen: Vec<_> = order.try_iter().collect();
        assert_eq!(seen, ["sleep", "woke", "busy done"]);
    }

    /// A stage held for a repartition reader's commit (exactly-once) lets the other tasks of
    /// its worker run: here the one that ends the hold (on one worker, a hold that blocked the
    /// thread would wait for good; `cancelled` ends it after 5 s).
    #[test]
    fn a_held_stage_lets_the_other_tasks_of_its_worker_run() {
        let (handover, _answer, resume) = crate::instances::Handover::held(None);
        let crate::instances::Handover::Flush(_, Some(hold)) = handover else {
            panic!("a flush");
        };
        let (log, order) = mpsc::channel();
        let log2 = log.clone();
        let held: Work = Box::new(move || {
            let start = Instant::now();
            let resumed = hold.wait(|| start.elapsed() > Duration::from_secs(5));
            log.send(if resumed { "resumed" } else { "gave up" })
                .unwrap();
        });
        let committer: Work = Box::new(move || {
            log2.send("committed").unwrap();
            drop(resume);
        });
        run(1, vec![held, committer]);
        let seen: Vec<_> = order.try_iter().collect();
        assert_eq!(seen, ["committed", "resumed"]);
    }

    /// Off a worker the same calls block the thread and do nothing else.
    #[test]
    fn off_a_worker_the_calls_block_the_thread() {
        assert!(!cooperative());
        wait();
        tick();
        progress();
        let start = Instant::now();
        sleep(Duration::from_millis(5));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn subtask_i_of_every_stage_on_worker_i() {
        assert_eq!(
            assign(&[(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)], 2),
            [0, 1, 0, 1, 0]
        );
        assert_eq!(assign(&[(0, 0), (1, 0), (2, 0)], 2), [0, 1, 0]);
        assert_eq!(assign(&[(0, 0), (0, 1), (0, 2)], 1), [0, 0, 0]);
    }
}
