//! A job: the tasks the `flow!` macro built, their threads, and what the run produced.

use super::checkpoint::{CheckpointConfig, CheckpointingMode, Coordinator};
use super::live::Live;
use super::observe::Observe;
use super::task::{Task, TaskFn, TaskMetrics};
use super::worker::{self, Scheduling};
use crate::channel::{EdgeChannels, Outlets};
use crate::context::RuntimeContext;
use crate::env::RuntimeMode;
use crate::instances::{InstanceConfig, RemoteEdge, RowCodec, Transport};
use crate::operator::take_panicked_operator;
use crate::plan::Plan;
use crate::snapshot::{CheckpointStorage, Restore};
use crate::StreamEnv;
use crate::{Error, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The runnable form of one `flow!` block: its static plan, the parallelism each stage got,
/// and one task per stage subtask.
pub struct JobGraph {
    pub(crate) plan: &'static Plan,
    pub(crate) stage_parallelism: Vec<usize>,
    pub(crate) fused: bool,
    pub(crate) bounded: bool,
    pub(crate) tasks: Vec<Task>,
    pub(crate) errors: Vec<Error>,
    /// In an instance group: the edges that cross instances, by the node they lead into.
    pub(crate) remote: Vec<(u32, RemoteEdge)>,
    /// In an instance group: the transport every remote edge goes through.
    pub(crate) transport: Option<&'static dyn Transport>,
}

/// Assembles a `JobGraph`; used by the code `flow!` generates.
pub struct JobBuilder {
    graph: JobGraph,
    instances: Option<InstanceConfig>,
    /// In an instance group with `--checkpoint-dir`: where the state of repartition
    /// partitions moving between instances is kept.
    partition_state: Option<std::path::PathBuf>,
    /// In an instance group: the first input of a two-input operator whose second input's
    /// edge is not built yet.
    pending: Vec<PendingEdge>,
}

/// The repartition topic of a two-input operator's first input, waiting for its second's.
struct PendingEdge {
    node: u32,
    edge: RemoteEdge,
    /// Where each downstream subtask's reader sends.
    to_readers: Vec<crate::instances::Inbox>,
}

/// The error of a two-input operator in an instance group with only one keyed input.
fn one_keyed_input(operator: &str) -> Error {
    Error::Config(format!(
        "`{operator}` reads one keyed stream and one that is not: in an instance group both inputs of a two-input operator must be keyed (key_by), or it must run in one process (without --instance-group)"
    ))
}

impl JobBuilder {
    /// A job for `plan` with the given per-stage parallelism.
    pub fn new(plan: &'static Plan, stage_parallelism: Vec<usize>, bounded: bool) -> Self {
        let fused = fuses(plan, &stage_parallelism);
        JobBuilder {
            graph: JobGraph {
                plan,
                stage_parallelism,
                fused,
                bounded,
                tasks: Vec::new(),
                errors: Vec::new(),
                remote: Vec::new(),
                transport: None,
            },
            instances: None,
            partition_state: None,
            pending: Vec::new(),
        }
    }
    /// Joins the instance group `env` names (`--instance-group`), if any: every hash edge
    /// then crosses instances through `transport` (Kafka's; `None` when flow was built
    /// without the `kafka` feature), and no stage is fused.
    ///
    /// Also settles whether the job runs fused above parallelism 1 (see [`fuses`]): not in
    /// batch mode, where a `reduce` after a `key_by` combines before the exchange, and with
    /// saved checkpoints only when nothing ends before a `key_by` ([`ends_after_key_bys`]).
    pub fn join_instances(&mut self, env: &StreamEnv, transport: Option<&'static dyn Transport>) {
        let batch = match env.mode() {
            RuntimeMode::Batch => true,
            RuntimeMode::Auto => self.graph.bounded,
            RuntimeMode::Streaming => false,
        };
        // A fused subtask whose source ended takes its part of later checkpoints with the
        // source's final position and its keyed chain's state: a sink or a side branch that
        // ends before the `key_by` (in a staged job, part of the finished source task) would
        // be left out of it, so with saved checkpoints such a job keeps a task per stage.
        let saved = env.checkpoint_dir().is_some() || env.savepoint_dir().is_some();
        let unsaved_branch = saved && !ends_after_key_bys(self.graph.plan);
        if (batch || unsaved_branch) && self.graph.stage_parallelism.iter().any(|&p| p > 1) {
            self.graph.fused = false;
        }
        let Some(config) = env.instances() else {
            return;
        };
        match transport {
            Some(t) => self.graph.transport = Some(t),
            None => self.fail(Error::Config(
                "--instance-group needs Kafka, and this binary was built without flow's `kafka` feature".into(),
            )),
        }
        if let Err(e) = config.check() {
            self.fail(Error::Config(e));
        }
        self.graph.fused = false;
        self.instances = Some(config.clone());
        self.partition_state = env.checkpoint_dir().map(|d| d.join("instances"));
    }
    /// The configuration of the instance group the job runs in, if any.
    pub fn instances(&self) -> Option<&crate::instances::InstanceConfig> {
        self.instances.as_ref()
    }
    /// The channels of the hash edge into input `input` of node `node` (rows of type
    /// `row_type`, encoded by `codec`): in-process, or in an instance group through the
    /// edge's repartition topic. Both inputs of a two-input operator share one topic and
    /// one reader per subtask, which feeds both through the first input's channel: the
    /// second's channels stay idle until they end with the first.
    pub fn hash_channels<T>(
        &mut self,
        node: u32,
        input: usize,
        codec: Option<RowCodec>,
        row_type: &'static str,
        up: usize,
        down: usize,
    ) -> EdgeChannels<T> {
        let Some(config) = self.instances.clone() else {
            return EdgeChannels::new(up, down, false);
        };
        let plan = self.graph.plan;
        let operator = plan.nodes[node as usize].name;
        let Some(codec) = codec else {
            self.fail(crate::instances::no_codec(operator, row_type));
            return EdgeChannels::new(up, down, false);
        };
        let two_inputs = plan.nodes[node as usize].inputs.len() == 2;
        // The second input of a two-input operator joins the first's edge and readers.
        let (mut edge, firsts) = if input == 0 {
            (self.remote_edge(config, node, codec), None)
        } else {
            match self.pending.iter().position(|p| p.node == node) {
                Some(i) if two_inputs && input == 1 => {
                    let PendingEdge {
                        mut edge,
                        to_readers,
                        ..
                    } = self.pending.swap_remove(i);
                    edge.codecs.push(codec);
                    edge.input = input;
                    (edge, Some(to_readers))
                }
                _ => {
                    // (Unless the first input failed already: its rows cannot cross.)
                    if self.graph.errors.is_empty() {
                        self.fail(one_keyed_input(operator));
                    }
                    return EdgeChannels::new(up, down, false);
                }
            }
        };
        edge.writers += up;
        let senders = (0..up).map(|_| Outlets::default()).collect();
        // Each downstream subtask reads one channel, fed by its reader task; the second input
        // of a two-input operator comes through the first's (its own channel is idle, and
        // ends with the first: `Inbox::with_second`).
        let (to_readers, receivers): (Vec<_>, Vec<_>) = (0..down)
            .map(|_| {
                let (s, r) = crossbeam_channel::bounded(crate::channel::CHANNEL_CAPACITY);
                (crate::instances::Inbox::new(s), vec![r])
            })
            .unzip();
        let mut channels = EdgeChannels::<T>::from_parts(senders, receivers);
        let Some(transport) = self.graph.transport else {
            return channels;
        };
        for (u, outlets) in channels.senders.iter_mut().enumerate() {
            match transport.output(&edge, u) {
                Ok(out) => {
                    outlets.remote = Some(out);
                    outlets.partitions = edge.config.partitions;
                }
                Err(e) => self.fail(e),
            }
        }
        if two_inputs && input == 0 {
            // The readers start with the second input's codec.
            self.pending.push(PendingEdge {
                node,
                edge,
                to_readers,
            });
            return channels;
        }
        let to_readers = match firsts {
            Some(firsts) => (firsts.into_iter().zip(to_readers))
                .map(|(first, second)| first.with_second(second))
                .collect(),
            None => to_readers,
        };
        edge.input = 0;
        let stage = plan.nodes[node as usize].stage as usize;
        for (d, to) in to_readers.into_iter().enumerate() {
            let edge = edge.clone();
            // The reader blocks on the broker and on its channel: a thread of its own.
            self.task(stage, d, move |ctx: &RuntimeContext| {
                transport.read(&edge, d, ctx, to)
            });
            if let Some(t) = self.graph.tasks.last_mut() {
                t.dedicated = true;
            }
        }
        self.graph.remote.push((node, edge));
        channels
    }
    /// The repartition topic of the hash edge(s) into node `node`, as its first input's
    /// writers see it (rows encoded by `codec`).
    fn remote_edge(&self, config: InstanceConfig, node: u32, codec: RowCodec) -> RemoteEdge {
        let plan = self.graph.plan;
        let topic = config.topic(&plan.uid(0, node));
        let partition_state = self.partition_state.as_ref().map(|dir| {
            crate::snapshot::PartitionStore::new(
                dir.join(&topic),
                config.partitions,
                plan.fingerprint(),
            )
        });
        RemoteEdge {
            partition_state,
            consumer_group: topic.clone(),
            topic,
            operator: plan.nodes[node as usize].name,
            codecs: vec![codec],
            input: 0,
            fingerprint: plan.fingerprint(),
            plan: plan.describe(),
            config,
            writers: 0,
        }
    }
    /// Whether each subtask of the job is one task running every stage ([`fuses`]).
    pub fn fused(&self) -> bool {
        self.graph.fused
    }
    /// The parallelism of stage `stage`.
    pub fn parallelism(&self, stage: usize) -> usize {
        self.graph.stage_parallelism[stage]
    }
    /// Adds the task of `stage`'s subtask `subtask`.
    pub fn task(
        &mut self,
        stage: usize,
        subtask: usize,
        run: impl FnOnce(&RuntimeContext) -> Result<TaskMetrics> + Send + 'static,
    ) {
        let parallelism = self.graph.stage_parallelism[stage];
        let run: TaskFn = Box::new(run);
        self.graph.tasks.push(Task {
            stage,
            subtask,
            parallelism,
            run,
            dedicated: false,
        });
    }
    /// Records an error found while building (a source that cannot be split); `execute`
    /// returns it.
    pub fn fail(&mut self, error: Error) {
        self.graph.errors.push(error);
    }
    /// The finished graph.
    pub fn build(mut self) -> JobGraph {
        // A two-input operator with one keyed input (the other broadcast, say): its keyed
        // input's topic got no readers.
        for p in std::mem::take(&mut self.pending) {
            if self.graph.errors.is_empty() {
                let operator = self.graph.plan.nodes[p.node as usize].name;
                self.fail(one_keyed_input(operator));
            }
        }
        self.graph
    }
}

/// Whether the job runs fused, each subtask `i` one task that reads its source's split and
/// runs subtask `i` of every stage after it: no multi-input operator (`plan.fusable`), every
/// stage at one parallelism, and, above 1, every edge between stages a `key_by` (hash), the
/// `key_by`s after each source on one path (see [`key_bys_in_a_row`]), streaming mode, and
/// with saved checkpoints no sink or branch that ends before a `key_by`
/// ([`JobBuilder::join_instances`]). At parallelism 1 nothing crosses
/// between tasks; above, a `key_by` keeps the rows of the subtask's own keys and sends only
/// the others ([`FusedExchange`](crate::channel::FusedExchange)). Otherwise a task per stage
/// subtask.
pub(crate) fn fuses(plan: &Plan, stage_parallelism: &[usize]) -> bool {
    use crate::plan::Partitioning::{Forward, Hash, Source};
    let Some(&p) = stage_parallelism.first() else {
        return false;
    };
    plan.fusable
        && stage_parallelism.iter().all(|&q| q == p)
        && (p == 1
            || (plan
                .nodes
                .iter()
                .all(|n| matches!(n.partitioning, Source | Forward | Hash))
                && key_bys_in_a_row(plan)))
}

/// Whether no operator's output forks into two branches that each lead to a `key_by`: the
/// `key_by`s after each source lie on one path. A fused `key_by` that waits (for room in a
/// channel, for the others' barrier or end) handles what arrives for itself and for the
/// `key_by`s after it, not for one on another branch: two subtasks waiting in the two
/// branches' `key_by`s would wait for each other.
fn key_bys_in_a_row(plan: &Plan) -> bool {
    let (outputs, leads_to_key_by) = leads_to_key_by(plan);
    outputs
        .iter()
        .all(|outs| outs.iter().filter(|&&o| leads_to_key_by[o]).count() <= 1)
}

/// Whether the job has a `key_by` and every operator before one leads to one: no sink, and no
/// branch or side output that ends, before a `key_by`. Then, between a source and its first
/// `key_by`, only the source keeps state (the operators there cannot: keyed state needs a
/// `key_by`).
fn ends_after_key_bys(plan: &Plan) -> bool {
    use crate::plan::Partitioning::Hash;
    let (_, leads_to_key_by) = leads_to_key_by(plan);
    let mut after_key_by = vec![false; plan.nodes.len()];
    for (v, node) in plan.nodes.iter().enumerate() {
        after_key_by[v] =
            node.partitioning == Hash || node.inputs.iter().any(|&i| after_key_by[i as usize]);
    }
    after_key_by.iter().any(|&a| a)
        && (0..plan.nodes.len()).all(|v| after_key_by[v] || leads_to_key_by[v])
}

/// Each operator's outputs, and whether it or one after it is a `key_by` (nodes are in
/// topological order).
fn leads_to_key_by(plan: &Plan) -> (Vec<Vec<usize>>, Vec<bool>) {
    use crate::plan::Partitioning::Hash;
    let n = plan.nodes.len();
    let mut outputs: Vec<Vec<usize>> = vec![Vec::new(); n];
    for node in plan.nodes {
        for &i in node.inputs {
            outputs[i as usize].push(node.id as usize);
        }
    }
    let mut leads = vec![false; n];
    for v in (0..n).rev() {
        leads[v] = plan.nodes[v].partitioning == Hash || outputs[v].iter().any(|&o| leads[o]);
    }
    (outputs, leads)
}

/// Rows in and out of one operator, summed over its subtasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorMetrics {
    /// The operator's name.
    pub name: &'static str,
    /// Rows it received.
    pub rows_in: u64,
    /// Rows it emitted (for a sink: rows written).
    pub rows_out: u64,
    /// Rows a window dropped because they came after their window closed (plus the allowed
    /// lateness); rows sent to a late-data side output are not counted here.
    pub late_rows: u64,
    /// Bad records a source skipped under its `skip` policy.
    pub skipped_records: u64,
    /// Bad records a source sent to its dead-letter sink.
    pub dead_lettered_records: u64,
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct JobResult {
    /// The name passed to `execute`.
    pub job_name: String,
    /// Wall-clock time from start to the last task's end.
    pub wall_time: Duration,
    /// Streaming or batch, as resolved.
    pub mode: RuntimeMode,
    /// Per operator, in plan order.
    pub operators: Vec<OperatorMetrics>,
    /// The folder of the last checkpoint the job completed (with `--checkpoint-dir`): after
    /// a successful end, its final checkpoint.
    pub last_checkpoint: Option<std::path::PathBuf>,
    /// The savepoint the job stopped with (SIGTERM or SIGINT with `--savepoint-dir`): start
    /// it again with `--restore` and this path.
    pub savepoint: Option<std::path::PathBuf>,
    /// What its checkpoints cost.
    pub checkpoints: super::CheckpointStats,
}

impl JobResult {
    /// The metrics of the operator named `name`.
    pub fn operator(&self, name: &str) -> Option<&OperatorMetrics> {
        self.operators.iter().find(|m| m.name == name)
    }
}

/// How often a job with a savepoint directory looks for a stop request.
const STOP_POLL: Duration = Duration::from_millis(50);

struct TaskOutcome {
    task: usize,
    result: Result<TaskMetrics>,
}

/// A task as the work its thread or worker runs.
struct TaskWork {
    /// Its stage and subtask: which worker runs it.
    place: (usize, usize),
    /// Its thread's name, when it gets one.
    name: String,
    /// Whether it needs a thread of its own ([`Task::dedicated`]).
    dedicated: bool,
    work: worker::Work,
}

/// Runs every task of `graphs` as `scheduling` says (on workers, one thread per core, or on a
/// thread each) and waits for all of them, triggering a checkpoint every
/// `checkpoint_interval` meanwhile (never with `None`).
#[allow(clippy::too_many_arguments)] // each is one of the env's settings, passed once
pub(crate) fn run_job(
    job_name: &str,
    mode: RuntimeMode,
    scheduling: Scheduling,
    watermark_interval: Duration,
    checkpoint_interval: Option<Duration>,
    config: &CheckpointConfig,
    observe: &Observe,
    backend: &crate::state::StateBackendConfig,
    graphs: Vec<JobGraph>,
    run: u64,
) -> Result<JobResult> {
    let start = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let task_count = graphs.iter().map(|g| g.tasks.len()).sum();
    check_unique_uids(&graphs)?;
    debug_assert!(
        graphs.iter().all(|g| g.errors.is_empty()),
        "checked by execute"
    );
    let restore = match &config.restore {
        Some(path) => {
            let r = Restore::load(path, config.dir.as_deref(), job_name)?;
            check_restore_fits(&r, &graphs, config.allow_non_restored_state)?;
            Some(Arc::new(r))
        }
        None => None,
    };
    let savepoint_dir = config
        .savepoint_dir
        .as_deref()
        .filter(|_| mode == RuntimeMode::Streaming);
    let (storage, last) = match CheckpointStorage::open(
        config.dir.as_deref(),
        savepoint_dir,
        config.retained,
        job_name,
    )? {
        Some((storage, last)) => {
            let restored = restore.as_ref().map_or(0, |r| r.checkpoint());
            (Some(storage), last.max(restored))
        }
        None => (None, 0),
    };
    let state_backend = crate::state::DiskBackend::for_job(backend, job_name)?.map(Arc::new);
    let stoppable = savepoint_dir.is_some();
    if stoppable {
        super::signal::install();
    }
    let checkpoints = Arc::new(Coordinator::with_storage(task_count, storage, last));
    let bounded = graphs.iter().all(|g| g.bounded);
    let live = Arc::new(Live::new(
        job_name,
        graphs
            .iter()
            .map(|g| (g.plan, g.stage_parallelism.clone(), g.fused))
            .collect(),
        graphs
            .iter()
            .enumerate()
            .flat_map(|(g, graph)| graph.tasks.iter().map(move |t| (g, t.stage, t.subtask))),
        observe.watched(bounded),
    ));
    // Bound before any task starts: an address in use fails the job here, naming it.
    let watching = observe.start(&live, &checkpoints, bounded)?;
    let writer = checkpoints.start_writer();
    let aligned = config.mode == CheckpointingMode::ExactlyOnce;
    let mut task_index = 0;
    let (tx, rx) = mpsc::channel::<TaskOutcome>();
    let mut plans = Vec::new();
    let mut threads = Vec::new();
    let mut spawn_errors = Vec::new();
    let mut works: Vec<TaskWork> = Vec::new();
    for (g, graph) in graphs.into_iter().enumerate() {
        plans.push(graph.plan);
        let fed_by_readers: Vec<usize> = (graph.remote.iter())
            .map(|(node, _)| graph.plan.nodes[*node as usize].stage as usize)
            .collect();
        for task in graph.tasks {
            let ctx = RuntimeContext {
                job_name: job_name.to_string(),
                operator: "",
                subtask: task.subtask,
                parallelism: task.parallelism,
                mode,
                stage: task.stage,
                cancel: cancel.clone(),
                watermark_interval,
                checkpoints: checkpoints.clone(),
                task: task_index,
                plan: Some(graph.plan),
                graph: g,
                restore: restore.clone(),
                aligned,
                live: live.clone(),
                state_backend: state_backend.clone(),
                run,
                instance_group: graph.transport.is_some(),
                // (Its readers' tasks are of the stage too, and run no gate.)
                fed_by_reader: fed_by_readers.contains(&task.stage),
            };
            let this_task = task_index;
            task_index += 1;
            let tx = tx.clone();
            let cancel_on_error = cancel.clone();
            let task_checkpoints = checkpoints.clone();
            let thread_name = format!("flow-s{}-{}", task.stage, task.subtask);
            let (place, dedicated) = ((task.stage, task.subtask), task.dedicated);
            let work: worker::Work = Box::new(move || {
                tracing::debug!(task = %ctx.task_name(), "task started");
                let result = match catch_unwind(AssertUnwindSafe(|| (task.run)(&ctx))) {
                    Ok(r) => r,
                    Err(payload) => Err(Error::UserPanic {
                        operator: take_panicked_operator()
                            .map(str::to_string)
                            .unwrap_or_else(|| ctx.task_name()),
                        subtask: ctx.subtask,
                        message: panic_message(&*payload),
                    }),
                };
                if result.is_ok() {
                    // A task built by hand may not have said so itself.
                    task_checkpoints.finished(this_task, None);
                }
                if let Err(e) = &result {
                    if !e.is_secondary() {
                        tracing::error!(task = %ctx.task_name(), error = %e, "task failed");
                    }
                    cancel_on_error.store(true, Ordering::Relaxed);
                    task_checkpoints.failed();
                }
                let _ = tx.send(TaskOutcome {
                    task: this_task,
                    result,
                });
            });
            works.push(TaskWork {
                place,
                name: thread_name,
                dedicated,
                work,
            });
        }
    }
    drop(tx);
    let mut spawn = |name: String, f: Box<dyn FnOnce() + Send>| match std::thread::Builder::new()
        .name(name.clone())
        .spawn(f)
    {
        Ok(h) => threads.push(h),
        Err(e) => {
            cancel.store(true, Ordering::Relaxed);
            checkpoints.failed();
            spawn_errors.push(Error::Worker {
                task: name,
                message: e.to_string(),
            });
        }
    };
    match scheduling {
        Scheduling::Threads => {
            for w in works {
                spawn(w.name, w.work);
            }
        }
        Scheduling::Workers => {
            let (dedicated, shared_work): (Vec<_>, Vec<_>) =
                works.into_iter().partition(|w| w.dedicated);
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let workers = cores.min(shared_work.len()).max(1);
            let pool = worker::Shared::new(workers);
            for w in dedicated {
                let (pool, work) = (pool.clone(), w.work);
                spawn(w.name, Box::new(move || worker::enter(&pool, work)));
            }
            let places: Vec<_> = shared_work.iter().map(|w| w.place).collect();
            let mut per_worker: Vec<Vec<(String, worker::Work)>> =
                (0..workers).map(|_| Vec::new()).collect();
            for (me, w) in worker::assign(&places, workers)
                .into_iter()
                .zip(shared_work)
            {
                per_worker[me].push((w.name, w.work));
            }
            for (me, tasks) in per_worker.into_iter().enumerate() {
                if tasks.is_empty() {
                    continue;
                }
                let pool = pool.clone();
                spawn(
                    format!("flow-w{me}"),
                    Box::new(move || worker::run_worker(pool, me, tasks)),
                );
            }
        }
    }
    if !spawn_errors.is_empty() {
        cancel.store(true, Ordering::Relaxed);
        checkpoints.failed();
    }
    let mut first_error: Option<Error> = spawn_errors.into_iter().next();
    let mut secondary: Option<Error> = None;
    // With a savepoint directory the loop also wakes to look for a stop request.
    let tick = match (checkpoint_interval, stoppable) {
        (Some(i), true) => Some(i.min(STOP_POLL)),
        (None, true) => Some(STOP_POLL),
        (i, false) => i,
    };
    let mut next_checkpoint = checkpoint_interval.map(|i| Instant::now() + i);
    let mut next_tick = tick.map(|i| Instant::now() + i);
    let mut stopping = false;
    loop {
        let outcome = match next_tick {
            None => match rx.recv() {
                Ok(o) => o,
                Err(_) => break,
            },
            Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(o) => o,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(e) = checkpoints.take_error() {
                        cancel.store(true, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                    if stoppable && super::signal::stop_requested() {
                        if !stopping {
                            tracing::info!(job = job_name, "stop requested: taking a savepoint");
                            stopping = true;
                        }
                        if checkpoints.stop_at() == 0 {
                            checkpoints.trigger_savepoint();
                        }
                    } else if next_checkpoint.is_some_and(|c| Instant::now() >= c) {
                        checkpoints.trigger();
                        next_checkpoint = checkpoint_interval.map(|i| Instant::now() + i);
                    }
                    next_tick = tick.map(|i| Instant::now() + i);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
        };
        match outcome.result {
            Ok(m) => live.finish(outcome.task, &m),
            Err(e) if e.is_secondary() => {
                secondary.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    for t in threads {
        let _ = t.join();
    }
    // The bar is cleared (and the endpoint closed) before anything is printed about the end.
    #[allow(clippy::drop_non_drop)] // empty without the `web` and `progress` features
    drop(watching);
    crate::snapshot::lock::record(&plans, &checkpoints.schemas());
    checkpoints.stop_writer();
    if let Some(w) = writer {
        let _ = w.join();
    }
    if let Some(e) = checkpoints.take_error() {
        first_error.get_or_insert(e);
    }
    if let Some(e) = first_error.or(secondary) {
        return Err(e);
    }
    // Every task ended well and left its final counters.
    let operators = live.operators();
    let result = JobResult {
        job_name: job_name.to_string(),
        wall_time: start.elapsed(),
        mode,
        operators,
        last_checkpoint: checkpoints.last_checkpoint(),
        checkpoints: checkpoints.stats(),
        savepoint: checkpoints
            .stopped()
            .then(|| checkpoints.last_checkpoint())
            .flatten(),
    };
    if let Some(path) = &result.savepoint {
        tracing::info!(job = job_name, path = %path.display(), "job stopped with a savepoint");
    }
    tracing::info!(
        job = job_name,
        wall_ms = result.wall_time.as_millis() as u64,
        "job finished"
    );
    Ok(result)
}

/// Refuses two operators of one job with the same uid (in two `flow!` blocks: the macro
/// refuses it within one): they would restore each other's state.
fn check_unique_uids(graphs: &[JobGraph]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for (g, graph) in graphs.iter().enumerate() {
        for n in graph.plan.nodes {
            let uid = graph.plan.uid(g, n.id);
            if !seen.insert(uid.clone()) {
                return Err(Error::Config(format!(
                    "two operators of the job have the uid `{uid}` (`{}` at {}): each \
                     operator's state needs its own",
                    n.name, n.location
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a checkpoint holding state for an operator this job does not have: its state
/// would be dropped without a word (give the operator its old uid back, or remove the state).
fn check_restore_fits(restore: &Restore, graphs: &[JobGraph], allow_dropping: bool) -> Result<()> {
    let mut uids = std::collections::HashSet::new();
    for (g, graph) in graphs.iter().enumerate() {
        for n in graph.plan.nodes {
            uids.insert(graph.plan.uid(g, n.id));
        }
    }
    if allow_dropping {
        let mut dropped: Vec<&str> = restore.uids().filter(|u| !uids.contains(*u)).collect();
        dropped.dedup();
        if !dropped.is_empty() {
            tracing::warn!(operators = ?dropped, "--allow-non-restored-state: the state of operators this job does not have is dropped");
        }
        return Ok(());
    }
    if let Some(unknown) = restore.uids().find(|u| !uids.contains(*u)) {
        let mut known: Vec<_> = uids.into_iter().collect();
        known.sort();
        return Err(Error::State {
            operator: unknown.to_string(),
            file: Some(restore.dir().join("_metadata")),
            message: format!(
                "the checkpoint holds state for this operator, and the job has no operator \
                 with that uid (its operators: {}); restoring would drop that state (give the \
                 operator its uid back, or pass --allow-non-restored-state to drop it)",
                known.join(", ")
            ),
        });
    }
    Ok(())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
