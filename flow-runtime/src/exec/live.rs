//! A running job's counters, as its tasks publish them: what `--metrics-addr` serves while the
//! job runs, and (summed the same way) the [`JobResult`](super::JobResult) at its end.
//!
//! Operators count rows in plain fields of their own (no atomic or lock per row). A task hands
//! a copy of its chain's counters to its slot here at most every [`PUBLISH_EVERY`], between
//! batches, and only while somebody watches the job (a metrics endpoint is open); readers sum
//! the slots per operator when asked.

use super::job::OperatorMetrics;
use super::task::TaskMetrics;
use crate::operator::source::PartitionLag;
use crate::plan::Plan;
use crate::time::{Timestamp, MIN_WATERMARK};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a task publishes its counters while the job is watched.
pub(crate) const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// The published state of one job.
#[derive(Debug)]
pub(crate) struct Live {
    job_name: String,
    start: Instant,
    /// Whether tasks publish (somebody reads): otherwise only the final counters are summed.
    watched: bool,
    plans: Vec<&'static Plan>,
    /// Each block's stages' parallelism.
    parallelism: Vec<Vec<usize>>,
    /// Where each block's operators start in the job's list of operators.
    first_operator: Vec<usize>,
    tasks: Vec<TaskSlot>,
    /// The counters a second or more ago, for the rates.
    sample: Mutex<Option<Sample>>,
}

/// Each subtask's operators' rows in and out at one moment, and the rates measured up to it.
#[derive(Debug)]
struct Sample {
    at: Instant,
    /// Per operator, summed over its subtasks (as the job's counts).
    totals: Vec<(u64, u64)>,
    total_rates: Vec<(f64, f64)>,
    /// Per task, per operator it runs.
    rows: Vec<Vec<(u64, u64)>>,
    rates: Vec<Vec<(f64, f64)>>,
    /// Per task: the time it was idle and backpressured so far.
    times: Vec<(Duration, Duration)>,
    /// Per task: idle and backpressured ms per second.
    time_rates: Vec<(f64, f64)>,
}

/// How long the rates are measured over (at least).
const RATE_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct TaskSlot {
    graph: usize,
    stage: usize,
    subtask: usize,
    /// The plan nodes it runs.
    runs: Vec<bool>,
    published: Mutex<Published>,
}

#[derive(Debug, Default)]
struct Published {
    metrics: TaskMetrics,
    /// The newest watermark the task's inputs passed to its chain (none for a source).
    input_watermark: Option<Timestamp>,
    /// The newest watermark it passed downstream.
    output_watermark: Option<Timestamp>,
    finished: bool,
    /// A source task's reader's progress, `(done, total)` (`Some(None)`: it cannot tell);
    /// `None` for other tasks.
    progress: Option<Option<(u64, u64)>>,
    /// A source task's reader's partitions and their lag.
    lag: Vec<PartitionLag>,
}

impl Published {
    /// Records the task's counters; `input` is the watermark its inputs gave its chain (none
    /// for a source), `generated` the one a source generated.
    fn record(&mut self, metrics: TaskMetrics, input: Timestamp, generated: Timestamp) {
        let seen = |w: Timestamp| (w > MIN_WATERMARK).then_some(w);
        self.input_watermark = seen(input).or(self.input_watermark);
        self.output_watermark = metrics
            .output_watermark
            .or(seen(generated))
            .or(seen(input))
            .or(self.output_watermark);
        self.metrics = metrics;
    }
}

/// How far a bounded job's sources are.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(feature = "progress"), allow(dead_code))]
pub(crate) struct Progress {
    /// Of 1.0: the sources' readers' done over their total, summed.
    pub(crate) fraction: f64,
    /// Rows the sources emitted.
    pub(crate) rows: u64,
}

/// One operator's share in one subtask.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "web"), allow(dead_code))]
pub(crate) struct SubtaskOperator {
    /// Its index in [`JobMetrics::operators`].
    pub operator: usize,
    /// Its counters in this subtask: rows in are what this subtask's operator received (for
    /// the first operator of a stage: what its input gates delivered).
    pub metrics: OperatorMetrics,
    /// Rows in and out per second over the last second or so.
    pub rates: (f64, f64),
}

/// One subtask as the job's live metrics show it.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "web"), allow(dead_code))]
pub(crate) struct SubtaskMetrics {
    /// The `flow!` block (0 for the first).
    pub graph: usize,
    /// The stage it runs (the first stage of its source when the job is fused).
    pub stage: usize,
    /// Its index among the stage's subtasks.
    pub subtask: usize,
    /// The newest watermark its inputs gave its chain, the lowest over its inputs (`None`: a
    /// source, none yet, or no event time).
    pub input_watermark: Option<Timestamp>,
    /// The newest watermark it passed on (`None`: none yet, or no event time).
    pub output_watermark: Option<Timestamp>,
    /// Whether it ended.
    pub finished: bool,
    /// Milliseconds per second it waited for input, over the last second or so (Flink's
    /// `idleTimeMsPerSecond`).
    pub idle_ms_per_s: f64,
    /// Milliseconds per second its output waited for room downstream (Flink's
    /// `backPressuredTimeMsPerSecond`).
    pub backpressured_ms_per_s: f64,
    /// The rest of each second (Flink's `busyTimeMsPerSecond`).
    pub busy_ms_per_s: f64,
    /// The operators it runs.
    pub operators: Vec<SubtaskOperator>,
    /// A source subtask's progress, `(done, total)`, when its reader can tell.
    pub progress: Option<(u64, u64)>,
    /// A source subtask's partitions and how far behind their ends it is.
    pub lag: Vec<PartitionLag>,
}

/// A running job's metrics at one moment (what `/metrics` and `/api/metrics` serve).
#[derive(Clone, Debug)]
#[cfg_attr(not(feature = "web"), allow(dead_code))]
pub(crate) struct JobMetrics {
    /// The name passed to `execute`.
    pub job_name: String,
    /// Since the job started.
    pub uptime: Duration,
    /// Per operator, summed over its subtasks, in plan order (as in the `JobResult`): the
    /// counters as of each subtask's last publication (at most 100 ms old).
    pub operators: Vec<OperatorMetrics>,
    /// Per subtask.
    pub subtasks: Vec<SubtaskMetrics>,
    /// The job's checkpoints so far.
    pub checkpoints: super::CheckpointStats,
    /// The plan of each `flow!` block: `operators` are their nodes, block after block.
    pub plans: Vec<&'static Plan>,
    /// Each block's stages' parallelism.
    pub parallelism: Vec<Vec<usize>>,
    /// Per operator (as `operators`), rows in and out per second over the last second or so
    /// (zero until a second passed), from the same counts as `operators`.
    pub rates: Vec<(f64, f64)>,
}

impl Live {
    /// The slots of a job whose blocks are `(plan, stage parallelism, fused)` and whose tasks
    /// are `(graph, stage, subtask)`, in task order.
    pub(crate) fn new(
        job_name: &str,
        plans: Vec<(&'static Plan, Vec<usize>, bool)>,
        tasks: impl IntoIterator<Item = (usize, usize, usize)>,
        watched: bool,
    ) -> Self {
        let mut first_operator = Vec::with_capacity(plans.len());
        let mut operators = 0;
        for (plan, _, _) in &plans {
            first_operator.push(operators);
            operators += plan.nodes.len();
        }
        let tasks = tasks
            .into_iter()
            .map(|(graph, stage, subtask)| TaskSlot {
                graph,
                stage,
                subtask,
                runs: plans
                    .get(graph)
                    .map_or_else(Vec::new, |(plan, _, fused)| plan.task_nodes(stage, *fused)),
                published: Mutex::default(),
            })
            .collect();
        let (plans, parallelism) = plans.into_iter().map(|(p, par, _)| (p, par)).unzip();
        Live {
            job_name: job_name.to_string(),
            start: Instant::now(),
            watched,
            plans,
            parallelism,
            first_operator,
            sample: Mutex::new(None),
            tasks,
        }
    }

    /// A job of one task outside any plan (a standalone context).
    pub(crate) fn unwatched() -> Self {
        Live::new("standalone", Vec::new(), [(0, 0, 0)], false)
    }

    /// Whether tasks should publish.
    pub(crate) fn watched(&self) -> bool {
        self.watched
    }

    /// Task `task`'s counters so far, and the newest watermark its inputs gave its chain.
    pub(crate) fn publish(&self, task: usize, metrics: TaskMetrics, watermark: Timestamp) {
        if let Some(slot) = self.tasks.get(task) {
            let mut p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
            p.record(metrics, watermark, MIN_WATERMARK);
        }
    }

    /// Source task `task`'s counters so far, the newest watermark it generated, its reader's
    /// progress and its partitions' lag.
    pub(crate) fn publish_source(
        &self,
        task: usize,
        metrics: TaskMetrics,
        watermark: Timestamp,
        progress: Option<(u64, u64)>,
        lag: Vec<PartitionLag>,
    ) {
        if let Some(slot) = self.tasks.get(task) {
            let mut p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
            p.record(metrics, MIN_WATERMARK, watermark);
            p.progress = Some(progress);
            p.lag = lag;
        }
    }

    /// How far the sources are: `None` until every source task published a progress it can
    /// tell (an unbounded Kafka reader, say, cannot).
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub(crate) fn progress(&self) -> Option<Progress> {
        let (mut done, mut total, mut sources) = (0u64, 0u64, 0);
        for slot in &self.tasks {
            let p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
            match p.progress {
                None => {}
                Some(None) => return None,
                Some(Some((d, t))) => {
                    sources += 1;
                    (done, total) = (done + if p.finished { t } else { d }, total + t);
                }
            }
        }
        if sources == 0 {
            return None;
        }
        let fraction = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        // The sources' rows: the output of the plan nodes without inputs.
        let rows = self
            .plans
            .iter()
            .flat_map(|p| p.nodes.iter())
            .zip(self.operators())
            .filter(|(n, _)| n.inputs.is_empty())
            .map(|(_, m)| m.rows_out)
            .sum();
        Some(Progress { fraction, rows })
    }

    /// Task `task` ended with `metrics`.
    pub(crate) fn finish(&self, task: usize, metrics: &TaskMetrics) {
        if let Some(slot) = self.tasks.get(task) {
            let mut p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
            p.record(metrics.clone(), MIN_WATERMARK, MIN_WATERMARK);
            p.finished = true;
        }
    }

    /// The operators' counters summed over the tasks' latest publications.
    pub(crate) fn operators(&self) -> Vec<OperatorMetrics> {
        let mut totals = Totals::new(&self.plans);
        for slot in &self.tasks {
            let p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
            totals.add(slot.graph, &p.metrics);
        }
        totals.operators(&self.plans)
    }

    /// The operators one task runs, with their counters in it.
    fn task_operators(&self, slot: &TaskSlot, m: &TaskMetrics) -> Vec<SubtaskOperator> {
        let Some(plan) = self.plans.get(slot.graph) else {
            return Vec::new();
        };
        let mut counts = Totals::new(&[plan]);
        counts.add(0, m);
        let first = self.first_operator[slot.graph];
        plan.subtask_metrics(
            &slot.runs,
            &counts.out[0],
            &counts.reported[0],
            &counts.late[0],
            m.received,
        )
        .into_iter()
        .map(|(node, mut metrics)| {
            metrics.skipped_records = counts.skipped[0][node as usize];
            metrics.dead_lettered_records = counts.dead_lettered[0][node as usize];
            SubtaskOperator {
                operator: first + node as usize,
                metrics,
                rates: (0.0, 0.0),
            }
        })
        .collect()
    }

    /// Everything, now.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub(crate) fn snapshot(&self, checkpoints: super::CheckpointStats) -> JobMetrics {
        let mut times = Vec::with_capacity(self.tasks.len());
        let mut subtasks: Vec<SubtaskMetrics> = self
            .tasks
            .iter()
            .map(|slot| {
                let p = slot.published.lock().unwrap_or_else(|e| e.into_inner());
                times.push((p.metrics.idle, p.metrics.backpressured));
                SubtaskMetrics {
                    graph: slot.graph,
                    stage: slot.stage,
                    subtask: slot.subtask,
                    input_watermark: p.input_watermark,
                    output_watermark: p.output_watermark,
                    finished: p.finished,
                    idle_ms_per_s: 0.0,
                    backpressured_ms_per_s: 0.0,
                    busy_ms_per_s: 0.0,
                    operators: self.task_operators(slot, &p.metrics),
                    progress: p.progress.flatten(),
                    lag: p.lag.clone(),
                }
            })
            .collect();
        let operators = self.operators();
        let (rates, time_rates) = self.rates(&operators, &mut subtasks, times);
        for (s, (idle, bp)) in subtasks.iter_mut().zip(time_rates) {
            s.idle_ms_per_s = idle;
            s.backpressured_ms_per_s = bp;
            s.busy_ms_per_s = if s.finished {
                0.0
            } else {
                (1000.0 - idle - bp).clamp(0.0, 1000.0)
            };
        }
        JobMetrics {
            job_name: self.job_name.clone(),
            uptime: self.start.elapsed(),
            operators,
            subtasks,
            checkpoints,
            plans: self.plans.clone(),
            parallelism: self.parallelism.clone(),
            rates,
        }
    }

    /// Sets each subtask operator's rows in and out per second, and returns each operator's
    /// (from the job's counts: a broadcast input counts each row once, not once per subtask)
    /// and each task's idle and backpressured ms per second (from its cumulative `times`):
    /// measured against the sample a second or more old, which is then replaced (readers
    /// polling more often see the same rates).
    #[allow(clippy::type_complexity)]
    fn rates(
        &self,
        operators: &[OperatorMetrics],
        subtasks: &mut [SubtaskMetrics],
        times: Vec<(Duration, Duration)>,
    ) -> (Vec<(f64, f64)>, Vec<(f64, f64)>) {
        let now = Instant::now();
        let totals: Vec<(u64, u64)> = operators.iter().map(|o| (o.rows_in, o.rows_out)).collect();
        let rows: Vec<Vec<(u64, u64)>> = subtasks
            .iter()
            .map(|s| {
                s.operators
                    .iter()
                    .map(|o| (o.metrics.rows_in, o.metrics.rows_out))
                    .collect()
            })
            .collect();
        let mut sample = self.sample.lock().unwrap_or_else(|e| e.into_inner());
        let s = match sample.as_mut() {
            Some(s) if now.duration_since(s.at) < RATE_WINDOW => s,
            Some(s) => {
                let secs = now.duration_since(s.at).as_secs_f64();
                let per_sec = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                let ms_per_sec =
                    |a: Duration, b: Duration| a.saturating_sub(b).as_secs_f64() * 1000.0 / secs;
                s.total_rates = totals
                    .iter()
                    .zip(&s.totals)
                    .map(|(n, o)| (per_sec(n.0, o.0), per_sec(n.1, o.1)))
                    .collect();
                s.totals = totals;
                s.rates = rows
                    .iter()
                    .zip(&s.rows)
                    .map(|(new, old)| {
                        new.iter()
                            .zip(old)
                            .map(|(n, o)| (per_sec(n.0, o.0), per_sec(n.1, o.1)))
                            .collect()
                    })
                    .collect();
                s.time_rates = times
                    .iter()
                    .zip(&s.times)
                    .map(|(n, o)| {
                        (
                            ms_per_sec(n.0, o.0).min(1000.0),
                            ms_per_sec(n.1, o.1).min(1000.0),
                        )
                    })
                    .collect();
                s.rows = rows;
                s.times = times;
                s.at = now;
                s
            }
            None => sample.insert(Sample {
                at: now,
                total_rates: vec![(0.0, 0.0); totals.len()],
                totals,
                rates: rows.iter().map(|r| vec![(0.0, 0.0); r.len()]).collect(),
                rows,
                time_rates: vec![(0.0, 0.0); times.len()],
                times,
            }),
        };
        for (sub, rates) in subtasks.iter_mut().zip(&s.rates) {
            for (o, r) in sub.operators.iter_mut().zip(rates) {
                o.rates = *r;
            }
        }
        (s.total_rates.clone(), s.time_rates.clone())
    }
}

/// Tasks' counters summed per `flow!` block and plan node.
pub(crate) struct Totals {
    out: Vec<Vec<u64>>,
    reported: Vec<Vec<bool>>,
    late: Vec<Vec<u64>>,
    skipped: Vec<Vec<u64>>,
    dead_lettered: Vec<Vec<u64>>,
}

impl Totals {
    pub(crate) fn new(plans: &[&'static Plan]) -> Self {
        let zeros: Vec<Vec<u64>> = plans.iter().map(|p| vec![0; p.nodes.len()]).collect();
        Totals {
            out: zeros.clone(),
            reported: plans.iter().map(|p| vec![false; p.nodes.len()]).collect(),
            late: zeros.clone(),
            skipped: zeros.clone(),
            dead_lettered: zeros,
        }
    }

    /// Adds one task's counters (of block `graph`).
    pub(crate) fn add(&mut self, graph: usize, m: &TaskMetrics) {
        let Some(out) = self.out.get_mut(graph) else {
            return;
        };
        for &(node, rows) in &m.out {
            out[node as usize] += rows;
            self.reported[graph][node as usize] = true;
        }
        for &(node, rows) in &m.late {
            self.late[graph][node as usize] += rows;
        }
        for &(node, n) in &m.skipped {
            self.skipped[graph][node as usize] += n;
        }
        for &(node, n) in &m.dead_lettered {
            self.dead_lettered[graph][node as usize] += n;
        }
    }

    /// Per operator of every block, in plan order.
    pub(crate) fn operators(&self, plans: &[&'static Plan]) -> Vec<OperatorMetrics> {
        let mut operators = Vec::new();
        for (g, plan) in plans.iter().enumerate() {
            let mut ms = plan.metrics(&self.out[g], &self.reported[g], &self.late[g]);
            for (i, m) in ms.iter_mut().enumerate() {
                m.skipped_records = self.skipped[g][i];
                m.dead_lettered_records = self.dead_lettered[g][i];
            }
            operators.extend(ms);
        }
        operators
    }
}

/// When a task next publishes.
pub(crate) struct Publisher {
    next: Option<Instant>,
}

impl Publisher {
    /// Publishes only when the job is watched.
    pub(crate) fn new(live: &Live) -> Self {
        Publisher {
            next: live.watched().then(Instant::now),
        }
    }

    /// Whether it is time to publish again (at most every [`PUBLISH_EVERY`]).
    #[inline]
    pub(crate) fn due(&mut self) -> bool {
        match &mut self.next {
            None => false,
            Some(next) => {
                let now = Instant::now();
                if now >= *next {
                    *next = now + PUBLISH_EVERY;
                    true
                } else {
                    false
                }
            }
        }
    }
}
