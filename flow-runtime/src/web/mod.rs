//! The HTTP side of a watched job (feature `web`): axum on a current-thread tokio runtime in a
//! thread of its own, serving
//!
//! - `GET /metrics`: the job's metrics in the Prometheus (OpenMetrics) text format, encoded by
//!   the `prometheus-client` crate, with Flink's metric names;
//! - `GET /api/metrics`: the same as JSON, with each operator's plan node, for scripts and the
//!   dashboard;
//! - `GET /api/plan.dot`: the job's plan as Graphviz DOT (what `--explain dot` prints);
//! - `GET /` (with `--web-ui`): the dashboard, `dashboard.html`, built into the binary (no
//!   CDN): the job graph drawn as SVG from the plan, with live rates, watermarks and
//!   checkpoints, polling `/api/metrics`.
//!
//! Each request reads the counters the tasks last published (at most 100 ms old); nothing is
//! kept between requests, so a client that disconnects mid-request costs the job nothing.

use crate::exec::JobMetrics;
use crate::{Error, Result};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Reads the job's metrics now.
pub(crate) type Snapshot = Arc<dyn Fn() -> JobMetrics + Send + Sync>;

/// A running server; dropping it stops it (and waits for its thread).
pub(crate) struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` now (an address in use is an error naming it and `flag`) and serves from a
    /// thread; with `dashboard`, the dashboard at `/` too.
    pub(crate) fn start(
        addr: SocketAddr,
        flag: &'static str,
        snapshot: Snapshot,
        dashboard: bool,
    ) -> Result<Server> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            Error::Config(format!(
                "{flag} {addr}: cannot serve the job's metrics there: {e}"
            ))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Config(format!("{flag} {addr}: {e}")))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| Error::Config(format!("{flag} {addr}: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut app = Router::new();
        if dashboard {
            app = app.route(
                "/",
                get(|| async {
                    (
                        [(CONTENT_TYPE, "text/html; charset=utf-8")],
                        include_str!("dashboard.html"),
                    )
                }),
            );
        }
        let app = app
            .route(
                "/metrics",
                get({
                    let snapshot = snapshot.clone();
                    move || async move { prometheus(&snapshot()) }
                }),
            )
            .route(
                "/api/plan.dot",
                get({
                    let snapshot = snapshot.clone();
                    move || async move { dot(&snapshot()) }
                }),
            )
            .route(
                "/api/metrics",
                get(move || async move { json(&snapshot()) }),
            );
        let thread = std::thread::Builder::new()
            .name("flow-web".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(%addr, error = %e, "metrics endpoint failed");
                            return;
                        }
                    };
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await;
                    if let Err(e) = served {
                        tracing::error!(%addr, error = %e, "metrics endpoint failed");
                    }
                })
            })
            .map_err(|e| Error::Config(format!("{flag} {addr}: {e}")))?;
        if dashboard {
            tracing::info!(%addr, "serving the job's dashboard at http://{addr}/");
        } else {
            tracing::info!(%addr, "serving the job's metrics at /metrics and /api/metrics");
        }
        Ok(Server {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Labels = Vec<(&'static str, String)>;
type Gauge64 = Gauge<f64, AtomicU64>;

/// The job's metrics in the Prometheus text format (OpenMetrics), named as Flink names them:
/// operators and tasks per subtask (label `subtask_index`; sum them for an operator's total),
/// the job's uptime and checkpoints.
fn prometheus(m: &JobMetrics) -> impl IntoResponse {
    let mut registry = Registry::with_prefix("flow");
    let job = || vec![("job", m.job_name.clone())];

    let uptime = Family::<Labels, Gauge64>::default();
    uptime.get_or_create(&job()).set(m.uptime.as_secs_f64());
    registry.register("uptime_seconds", "Time since the job started", uptime);

    let records_in = Family::<Labels, Counter>::default();
    let records_out = Family::<Labels, Counter>::default();
    let late = Family::<Labels, Counter>::default();
    let skipped = Family::<Labels, Counter>::default();
    let dead_lettered = Family::<Labels, Counter>::default();
    let in_rate = Family::<Labels, Gauge64>::default();
    let out_rate = Family::<Labels, Gauge64>::default();
    let input_watermark = Family::<Labels, Gauge>::default();
    let output_watermark = Family::<Labels, Gauge>::default();
    let idle = Family::<Labels, Gauge64>::default();
    let backpressured = Family::<Labels, Gauge64>::default();
    let busy = Family::<Labels, Gauge64>::default();
    let pending = Family::<Labels, Gauge>::default();
    let offset = Family::<Labels, Gauge>::default();
    let nodes: Vec<_> = nodes(m).collect();
    for s in &m.subtasks {
        let subtask = s.subtask.to_string();
        for o in &s.operators {
            let (graph, node) = nodes[o.operator];
            let labels = vec![
                ("job", m.job_name.clone()),
                ("operator", o.metrics.name.to_string()),
                ("uid", m.plans[graph].uid(graph, node.id)),
                ("subtask_index", subtask.clone()),
            ];
            records_in.get_or_create(&labels).inc_by(o.metrics.rows_in);
            records_out
                .get_or_create(&labels)
                .inc_by(o.metrics.rows_out);
            in_rate.get_or_create(&labels).set(o.rates.0);
            out_rate.get_or_create(&labels).set(o.rates.1);
            let counters = [
                (&late, o.metrics.late_rows),
                (&skipped, o.metrics.skipped_records),
                (&dead_lettered, o.metrics.dead_lettered_records),
            ];
            for (family, n) in counters {
                if n > 0 {
                    family.get_or_create(&labels).inc_by(n);
                }
            }
            if node.inputs.is_empty() {
                for p in &s.lag {
                    let mut labels = labels.clone();
                    labels.push(("topic", p.topic.clone()));
                    labels.push(("partition", p.partition.to_string()));
                    pending.get_or_create(&labels).set(p.lag);
                    offset.get_or_create(&labels).set(p.offset);
                }
            }
        }
        let labels = vec![
            ("job", m.job_name.clone()),
            ("stage", format!("{}.{}", s.graph, s.stage)),
            ("subtask_index", subtask),
        ];
        if let Some(w) = s.input_watermark {
            input_watermark.get_or_create(&labels).set(w);
        }
        if let Some(w) = s.output_watermark {
            output_watermark.get_or_create(&labels).set(w);
        }
        idle.get_or_create(&labels).set(s.idle_ms_per_s);
        backpressured
            .get_or_create(&labels)
            .set(s.backpressured_ms_per_s);
        busy.get_or_create(&labels).set(s.busy_ms_per_s);
    }
    registry.register(
        "operator_numRecordsIn",
        "Rows the operator's subtask received",
        records_in,
    );
    registry.register(
        "operator_numRecordsOut",
        "Rows the operator's subtask emitted (a sink: wrote)",
        records_out,
    );
    registry.register(
        "operator_numRecordsInPerSecond",
        "Rows in per second over the last second or so",
        in_rate,
    );
    registry.register(
        "operator_numRecordsOutPerSecond",
        "Rows out per second over the last second or so",
        out_rate,
    );
    registry.register(
        "operator_numLateRecordsDropped",
        "Rows a window dropped as late",
        late,
    );
    registry.register(
        "operator_numRecordsSkipped",
        "Bad records a source skipped (skip policy)",
        skipped,
    );
    registry.register(
        "operator_numRecordsDeadLettered",
        "Bad records a source sent to its dead-letter sink",
        dead_lettered,
    );
    registry.register(
        "source_pendingRecords",
        "Records after the source's position in a partition, up to the partition's end \
         (Kafka: the consumer lag)",
        pending,
    );
    registry.register(
        "source_currentOffset",
        "The offset of the next record the source hands to the job, per partition",
        offset,
    );
    registry.register(
        "task_currentInputWatermark",
        "The newest watermark the subtask's inputs gave it (the lowest over its inputs), in \
         ms since 1970",
        input_watermark,
    );
    registry.register(
        "task_currentOutputWatermark",
        "The newest watermark the subtask passed on, in ms since 1970",
        output_watermark,
    );
    registry.register(
        "task_idleTimeMsPerSecond",
        "Milliseconds per second the subtask waited for input",
        idle,
    );
    registry.register(
        "task_backPressuredTimeMsPerSecond",
        "Milliseconds per second the subtask's output waited for room downstream",
        backpressured,
    );
    registry.register(
        "task_busyTimeMsPerSecond",
        "Milliseconds per second the subtask worked",
        busy,
    );

    let c = &m.checkpoints;
    let counter = |n: u64| {
        let f = Family::<Labels, Counter>::default();
        f.get_or_create(&job()).inc_by(n);
        f
    };
    let gauge = |n: i64| {
        let f = Family::<Labels, Gauge>::default();
        f.get_or_create(&job()).set(n);
        f
    };
    registry.register(
        "job_numberOfCompletedCheckpoints",
        "Checkpoints completed",
        counter(c.completed),
    );
    registry.register(
        "job_numberOfFailedCheckpoints",
        "Checkpoints that failed (declined, or not written)",
        counter(c.failed),
    );
    registry.register(
        "job_numberOfInProgressCheckpoints",
        "Checkpoints being taken now",
        gauge(i64::from(c.in_progress)),
    );
    registry.register(
        "job_lastCheckpointDuration",
        "The last completed checkpoint's duration, in ms",
        gauge(c.last_duration.as_millis() as i64),
    );
    registry.register(
        "job_lastCheckpointSize",
        "The last completed checkpoint's state files, in bytes",
        gauge(c.last_bytes as i64),
    );

    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        body = format!("# encoding failed: {e}\n");
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}

/// Each operator's block and plan node, in the order of `m.operators`.
fn nodes(m: &JobMetrics) -> impl Iterator<Item = (usize, &'static crate::plan::PlanNode)> + '_ {
    m.plans
        .iter()
        .enumerate()
        .flat_map(|(g, p)| p.nodes.iter().map(move |n| (g, n)))
}

/// The job's plan as Graphviz DOT, as `--explain dot` prints it.
fn dot(m: &JobMetrics) -> impl IntoResponse {
    let body: Vec<String> = m
        .plans
        .iter()
        .zip(&m.parallelism)
        .map(|(plan, parallelism)| plan.explain_dot(parallelism))
        .collect();
    (
        [(CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
        body.join("\n"),
    )
}

/// The job's metrics as JSON.
fn json(m: &JobMetrics) -> impl IntoResponse {
    let operators: Vec<serde_json::Value> = nodes(m)
        .zip(&m.operators)
        .zip(&m.rates)
        .map(|(((graph, node), op), (in_rate, out_rate))| {
            serde_json::json!({
                "graph": graph,
                "node": node.id,
                "uid": m.plans[graph].uid(graph, node.id),
                "name": op.name,
                "op": node.op,
                "stage": node.stage,
                "parallelism": m.parallelism[graph].get(node.stage as usize),
                "partitioning": node.partitioning.label(),
                "location": node.location,
                "inputs": node.inputs,
                "numRecordsIn": op.rows_in,
                "numRecordsOut": op.rows_out,
                "numRecordsInPerSecond": in_rate,
                "numRecordsOutPerSecond": out_rate,
                "numLateRecordsDropped": op.late_rows,
                "numRecordsSkipped": op.skipped_records,
                "numRecordsDeadLettered": op.dead_lettered_records,
            })
        })
        .collect();
    let subtasks: Vec<serde_json::Value> = m
        .subtasks
        .iter()
        .map(|s| {
            let operators: Vec<serde_json::Value> = s
                .operators
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "operator": o.operator,
                        "name": o.metrics.name,
                        "numRecordsIn": o.metrics.rows_in,
                        "numRecordsOut": o.metrics.rows_out,
                        "numRecordsInPerSecond": o.rates.0,
                        "numRecordsOutPerSecond": o.rates.1,
                        "numLateRecordsDropped": o.metrics.late_rows,
                        "numRecordsSkipped": o.metrics.skipped_records,
                        "numRecordsDeadLettered": o.metrics.dead_lettered_records,
                    })
                })
                .collect();
            let partitions: Vec<serde_json::Value> = s
                .lag
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "topic": p.topic,
                        "partition": p.partition,
                        "currentOffset": p.offset,
                        "pendingRecords": p.lag,
                    })
                })
                .collect();
            serde_json::json!({
                "graph": s.graph,
                "stage": s.stage,
                "subtask": s.subtask,
                "currentInputWatermark": s.input_watermark,
                "currentOutputWatermark": s.output_watermark,
                "finished": s.finished,
                "idleTimeMsPerSecond": s.idle_ms_per_s,
                "backPressuredTimeMsPerSecond": s.backpressured_ms_per_s,
                "busyTimeMsPerSecond": s.busy_ms_per_s,
                "operators": operators,
                "progress": s.progress.map(|(done, total)| serde_json::json!({
                    "done": done,
                    "total": total,
                })),
                "partitions": partitions,
            })
        })
        .collect();
    let c = &m.checkpoints;
    let body = serde_json::json!({
        "job": m.job_name,
        "uptimeMs": m.uptime.as_millis() as u64,
        "operators": operators,
        "subtasks": subtasks,
        "checkpoints": {
            "numberOfCompletedCheckpoints": c.completed,
            "numberOfFailedCheckpoints": c.failed,
            "numberOfInProgressCheckpoints": u64::from(c.in_progress),
            "declinedBy": c.declined_by,
            "lastCheckpointDurationMs": c.last_duration.as_millis() as u64,
            "lastCheckpointSize": c.last_bytes,
        },
    });
    ([(CONTENT_TYPE, "application/json")], body.to_string())
}
