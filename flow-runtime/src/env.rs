//! The job's environment: the standard command-line flags, the registered `flow!` blocks, and
//! `execute`.

use crate::exec::{CheckpointConfig, CheckpointingMode, JobGraph, JobResult, Observe};
use crate::{Error, Result};
use clap::{value_parser, Arg, ArgAction, ArgMatches, Command};
use std::sync::Mutex;
use std::time::Duration;

/// Flink's default `pipeline.auto-watermark-interval`.
const DEFAULT_WATERMARK_INTERVAL: Duration = Duration::from_millis(200);

/// How often a streaming job takes a checkpoint unless told otherwise: Kafka's default
/// `auto.commit.interval.ms`, since a checkpoint is also what commits source offsets.
const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// Flink's `execution.runtime-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeMode {
    /// Every update is emitted as it happens.
    Streaming,
    /// Bounded input only; keyed aggregations emit their final result at the end.
    Batch,
    /// Batch when every source is bounded, streaming otherwise.
    Auto,
}

impl std::str::FromStr for RuntimeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "streaming" => Ok(RuntimeMode::Streaming),
            "batch" => Ok(RuntimeMode::Batch),
            "auto" | "automatic" => Ok(RuntimeMode::Auto),
            _ => Err(format!(
                "unknown mode `{s}`: expected streaming, batch or auto"
            )),
        }
    }
}

/// What `--explain` prints instead of running the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainFormat {
    /// Stages and operators as text.
    Text,
    /// A Graphviz digraph.
    Dot,
}

/// The environment a job is declared in and executed by (Flink's
/// `StreamExecutionEnvironment`).
///
/// # Examples
/// ```
/// use flow_runtime::StreamEnv;
/// let env = StreamEnv::new().with_parallelism(2);
/// assert_eq!(env.parallelism(), 2);
/// ```
pub struct StreamEnv {
    parallelism: usize,
    mode: RuntimeMode,
    explain: Option<ExplainFormat>,
    watermark_interval: Duration,
    checkpoint_interval: Option<Duration>,
    checkpointing: CheckpointConfig,
    observe: Observe,
    state_backend: crate::state::StateBackendConfig,
    instances: Option<crate::instances::InstanceConfig>,
    scheduling: crate::exec::Scheduling,
    graphs: Mutex<Vec<JobGraph>>,
}

impl Default for StreamEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamEnv {
    /// An environment with parallelism 1 and streaming mode, ignoring the command line.
    pub fn new() -> Self {
        StreamEnv {
            parallelism: 1,
            mode: RuntimeMode::Streaming,
            explain: None,
            watermark_interval: DEFAULT_WATERMARK_INTERVAL,
            checkpoint_interval: Some(DEFAULT_CHECKPOINT_INTERVAL),
            checkpointing: CheckpointConfig::default(),
            observe: Observe::default(),
            state_backend: Default::default(),
            instances: None,
            scheduling: crate::exec::Scheduling::default(),
            graphs: Mutex::new(Vec::new()),
        }
    }

    /// The standard flags as a clap command, to add a job's own flags to:
    ///
    /// ```
    /// use flow_runtime::{clap::Arg, StreamEnv};
    /// let cmd = StreamEnv::command("my_job").arg(Arg::new("output").long("output"));
    /// let m = cmd.try_get_matches_from(["my_job", "--parallelism", "2", "--output", "o"]).unwrap();
    /// let env = StreamEnv::from_matches(&m);
    /// assert_eq!(env.parallelism(), 2);
    /// ```
    pub fn command(name: &'static str) -> Command {
        Command::new(name)
            .about("A flow job. Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=info) to see more.")
            .after_help("Signals: with --savepoint-dir, SIGTERM or SIGINT (Ctrl-C) stops the job with a savepoint; with --instance-group, it makes the instance leave its group; a second one exits at once (without either flag they end the process). SIGUSR1 drains the job: every source ends where it is, as at the end of its input, so windows and timers fire, the sinks commit and the job ends well (in an instance group, send it to every instance). The first of a stop and a drain wins.")
            .arg(
                Arg::new("parallelism")
                    .long("parallelism")
                    .short('p')
                    .value_name("N")
                    .value_parser(value_parser!(u32).range(1..=crate::snapshot::KEY_GROUPS as i64))
                    .default_value("1")
                    .help("Parallel instances of each operator (workers per stage); at most 128, the key groups keyed state is split into"),
            )
            .arg(
                Arg::new("mode")
                    .long("mode")
                    .value_name("MODE")
                    .value_parser(["streaming", "batch", "auto"])
                    .default_value("streaming")
                    .help("Runtime mode: streaming emits every update; batch only final results (bounded sources only); auto picks batch when every source is bounded"),
            )
            .arg(
                Arg::new("scheduling")
                    .long("scheduling")
                    .value_name("HOW")
                    .value_parser(["workers", "threads"])
                    .default_value("workers")
                    .help("How tasks (stage subtasks) get threads: workers runs one thread per core, each running subtask i of every stage and switching between them where one waits for input or room (fastest with parallelism); threads gives every task a thread of its own (for user functions that block until another task of the job progressed)"),
            )
            .arg(
                Arg::new("auto-watermark-interval")
                    .long("auto-watermark-interval")
                    .value_name("MS")
                    .value_parser(value_parser!(u64))
                    .default_value("200")
                    .help("How often sources emit watermarks, in milliseconds of processing time (0: after every row)"),
            )
            .arg(
                Arg::new("checkpoint-interval")
                    .long("checkpoint-interval")
                    .value_name("MS")
                    .value_parser(value_parser!(u64))
                    .default_value("5000")
                    .help("How often a streaming job takes a checkpoint, in milliseconds (0: never). A completed checkpoint lets sources commit their positions (Kafka offsets) and sinks commit their output. Without --checkpoint-dir, a job whose operators keep state (windows, keyed state, timers) takes none and commits at a successful end only"),
            )
            .arg(
                Arg::new("checkpoint-dir")
                    .long("checkpoint-dir")
                    .value_name("DIR")
                    .value_parser(value_parser!(std::path::PathBuf))
                    .help("Where checkpoints are written: DIR/chk-N/, one file per operator instance and a _metadata file written last. With it, a job keeps its state (keyed state, windows, timers, source positions) across a crash: restart it with --restore latest. With --instance-group: a directory every instance reaches, where the state of partitions moving between instances is kept (README, \"Scaling out\")"),
            )
            .arg(
                Arg::new("checkpoints-retained")
                    .long("checkpoints-retained")
                    .value_name("N")
                    .value_parser(value_parser!(u32).range(1..))
                    .default_value("1")
                    .help("How many completed checkpoints to keep in --checkpoint-dir (older ones are removed)"),
            )
            .arg(
                Arg::new("restore")
                    .long("restore")
                    .value_name("PATH|latest")
                    .help("Start from a checkpoint or savepoint: its folder (DIR/chk-N), its _metadata file, or `latest` (the newest completed checkpoint in --checkpoint-dir). Operator state, source positions and sinks' pending output are restored; the parallelism may differ"),
            )
            .arg(
                Arg::new("allow-non-restored-state")
                    .long("allow-non-restored-state")
                    .action(ArgAction::SetTrue)
                    .help("With --restore: start even when the checkpoint holds state for operators this job no longer has, dropping that state (without it, that is an error naming the operator)"),
            )
            .arg(
                Arg::new("savepoint-dir")
                    .long("savepoint-dir")
                    .value_name("DIR")
                    .value_parser(value_parser!(std::path::PathBuf))
                    .help("Stop a streaming job on SIGTERM or SIGINT (Ctrl-C) with a savepoint written to DIR/savepoint-N-TIME/, and print its path: restart from it with --restore PATH. Output up to the savepoint is committed; open windows stay in it. A second signal exits at once"),
            )
            .arg(
                Arg::new("checkpointing-mode")
                    .long("checkpointing-mode")
                    .value_name("MODE")
                    .value_parser(["exactly-once", "at-least-once"])
                    .default_value("exactly-once")
                    .help("exactly-once: an operator with several inputs aligns the checkpoint barriers (holds back an input that delivered one until all did), so state reflects each row exactly once; at-least-once: no alignment (no stall), and after a restore some rows may count twice"),
            )
            .arg(
                Arg::new("state-backend")
                    .long("state-backend")
                    .value_name("BACKEND")
                    .value_parser(["memory", "disk"])
                    .default_value("memory")
                    .help("Where keyed state lives (the per-key state of functions, reduce values, windows, join buffers): memory, in hash maps (fastest; state must fit in memory); disk, in an embedded store under --state-dir behind a cache of hot keys (state larger than memory, slower). Checkpoints and --restore work the same with both, and a checkpoint of one restores into the other"),
            )
            .arg(
                Arg::new("state-dir")
                    .long("state-dir")
                    .value_name("DIR")
                    .value_parser(value_parser!(std::path::PathBuf))
                    .help("With --state-backend disk: where the store lives while the job runs (DIR/flow-JOB-PID/, removed when the job ends). Default: the system's temporary directory. Put it on a local disk with room for the job's state"),
            )
            .arg(
                Arg::new("state-cache-mb")
                    .long("state-cache-mb")
                    .value_name("MB")
                    .value_parser(value_parser!(u64).range(1..))
                    .default_value("64")
                    .help("With --state-backend disk: the memory, in MiB, that the cache of hot keys of each keyed structure of each subtask may hold (an operator's per-key state, a window operator's sessions)"),
            )
            .arg(
                Arg::new("metrics-addr")
                    .long("metrics-addr")
                    .value_name("HOST:PORT")
                    .value_parser(crate::exec::parse_addr)
                    .help("Serve the running job's metrics at http://HOST:PORT/metrics (Prometheus text format) and /api/metrics (JSON), e.g. 127.0.0.1:9249; a port alone listens on 127.0.0.1. A non-loopback host (0.0.0.0) needs --web-public. An address in use fails the job at start"),
            )
            .arg(
                Arg::new("web-ui")
                    .long("web-ui")
                    .value_name("HOST:PORT")
                    .value_parser(crate::exec::parse_addr)
                    .help("Serve a dashboard of the running job at http://HOST:PORT/ (the job graph with live rates, watermarks and checkpoints; /metrics and /api/metrics too), e.g. 127.0.0.1:8081; a port alone listens on 127.0.0.1. A non-loopback host (0.0.0.0) needs --web-public. An address in use fails the job at start"),
            )
            .arg(
                Arg::new("web-public")
                    .long("web-public")
                    .action(ArgAction::SetTrue)
                    .help("Let --metrics-addr and --web-ui listen on an address other than loopback (127.0.0.1, ::1), which exposes them to the network: they have no authentication, so without this flag such an address fails the job at start"),
            )
            .arg(
                Arg::new("no-progress")
                    .long("no-progress")
                    .action(ArgAction::SetTrue)
                    .help("Draw no progress bar. A bounded job whose sources know their size (sequences, collections, generated data, files, bounded Kafka topics) draws one on stderr when stderr is a terminal, never into a pipe or file"),
            )
            .arg(
                Arg::new("instance-group")
                    .long("instance-group")
                    .value_name("NAME")
                    .requires("instance-brokers")
                    .help("Run as one instance of a group of processes sharing the job through Kafka (README, \"Scaling out\"): Kafka sources split their partitions among the instances (consumer group NAME unless the source names one), and every key_by crosses instances through the topic NAME-<uid>-repartition. Start the same binary with the same NAME on every machine. SIGTERM or SIGINT makes an instance leave the group, handing its partitions over to the others; a second signal exits at once")
            )
            .arg(
                Arg::new("instance-id")
                    .long("instance-id")
                    .value_name("ID")
                    .requires("instance-group")
                    .value_parser(parse_instance_id)
                    .help("With --instance-group: this instance's id, the same across its restarts and different from every other instance's (letters, digits, '.', '_', '-'). Its Kafka consumers join their groups as static members (group.instance.id ID-...): an instance that crashed and starts again with its id within the session timeout (30 s with an id, --session-timeout) gets its partitions back without a rebalance of the group; SIGTERM still makes it leave the group (README, \"Scaling out\")"),
            )
            .arg(
                Arg::new("session-timeout")
                    .long("session-timeout")
                    .value_name("SECS")
                    .requires("instance-group")
                    .value_parser(value_parser!(u64).range(crate::instances::SESSION_TIMEOUT_SECS))
                    .help("With --instance-group: how long the group waits for a silent (crashed) instance before it deals its partitions to the others (the Kafka consumers' session.timeout.ms; the broker must allow it). Default 10 s; 30 s with --instance-id, the time a crashed instance has to start again and get its partitions back"),
            )
            .arg(
                Arg::new("max-broker-downtime")
                    .long("max-broker-downtime")
                    .value_name("SECS")
                    .requires("instance-group")
                    .value_parser(value_parser!(u64).range(crate::instances::MAX_BROKER_DOWNTIME_SECS))
                    .help("With --instance-group: how long the instance rides out Kafka brokers that do not answer (librdkafka retries meanwhile) before it stops with an error: the limit of its repartition readers and of Kafka sources that set none themselves, and the delivery timeout of its repartition records and exactly-once transactions (whose transaction.timeout.ms is this plus 5.5 s, at least 60 s; a Kafka broker allows at most 15 min by default). Started again once the brokers are back, it resumes from its last commits. Default 60 s"),
            )
            .arg(
                Arg::new("processing-guarantee")
                    .long("processing-guarantee")
                    .value_name("GUARANTEE")
                    .requires("instance-id")
                    .value_parser(["at-least-once", "exactly-once"])
                    .help("With --instance-group and --instance-id: exactly-once makes every Kafka source subtask and repartition reader commit what it read together with what came of it (repartition records, the rows of exactly-once KafkaSinks, with --checkpoint-dir the keyed state) in one Kafka transaction (Kafka Streams' exactly_once_v2), so the repartition topics and the output hold each row once, crash or rebalance; the instance restarted with its id fences its dead self's open transactions. Other sinks are not covered (README, \"Scaling out\"). Default: at-least-once"),
            )
            .arg(
                Arg::new("instance-brokers")
                    .long("instance-brokers")
                    .value_name("HOST:PORT[,..]")
                    .help("With --instance-group: the Kafka brokers that hold the repartition topics"),
            )
            .arg(
                Arg::new("repartition-partitions")
                    .long("repartition-partitions")
                    .value_name("N")
                    .value_parser(value_parser!(u32).range(1..=crate::snapshot::KEY_GROUPS as i64))
                    .default_value("128")
                    .help("With --instance-group: partitions of a repartition topic the job creates (one that exists keeps its own); at most 128, the key groups. Every instance of a group must use the same number"),
            )
            .arg(
                Arg::new("explain")
                    .long("explain")
                    .value_name("FORMAT")
                    .num_args(0..=1)
                    .default_missing_value("text")
                    .value_parser(["text", "dot"])
                    .action(ArgAction::Set)
                    .help("Print the job's plan (stages, operators, partitioning) instead of running it"),
            )
    }

    /// Parses the process's arguments with [`StreamEnv::command`]; on a bad flag prints the
    /// error with usage and exits with status 2, on `--help` prints help and exits 0.
    pub fn from_args() -> Self {
        let name = std::env::args()
            .next()
            .and_then(|a| {
                std::path::Path::new(&a)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "flow-job".into());
        let name: &'static str = Box::leak(name.into_boxed_str());
        Self::from_matches(&Self::command(name).get_matches())
    }

    /// An environment from flags parsed with (an extension of) [`StreamEnv::command`].
    pub fn from_matches(m: &ArgMatches) -> Self {
        init_logging();
        let parallelism = m.get_one::<u32>("parallelism").copied().unwrap_or(1) as usize;
        let mode = m
            .get_one::<String>("mode")
            .map(|s| s.parse().expect("validated by clap"))
            .unwrap_or(RuntimeMode::Streaming);
        let explain = m.get_one::<String>("explain").map(|s| {
            if s == "dot" {
                ExplainFormat::Dot
            } else {
                ExplainFormat::Text
            }
        });
        let watermark_interval = m
            .get_one::<u64>("auto-watermark-interval")
            .map_or(DEFAULT_WATERMARK_INTERVAL, |ms| Duration::from_millis(*ms));
        let checkpoint_interval = m
            .get_one::<u64>("checkpoint-interval")
            .map_or(Some(DEFAULT_CHECKPOINT_INTERVAL), |ms| {
                (*ms > 0).then(|| Duration::from_millis(*ms))
            });
        let checkpointing = CheckpointConfig {
            dir: m.get_one::<std::path::PathBuf>("checkpoint-dir").cloned(),
            retained: m
                .get_one::<u32>("checkpoints-retained")
                .map_or(1, |n| *n as usize),
            restore: m.get_one::<String>("restore").cloned(),
            mode: match m
                .get_one::<String>("checkpointing-mode")
                .map(String::as_str)
            {
                Some("at-least-once") => CheckpointingMode::AtLeastOnce,
                _ => CheckpointingMode::ExactlyOnce,
            },
            savepoint_dir: m.get_one::<std::path::PathBuf>("savepoint-dir").cloned(),
            allow_non_restored_state: m.get_flag("allow-non-restored-state"),
        };
        let observe = Observe {
            metrics_addr: m.get_one::<std::net::SocketAddr>("metrics-addr").copied(),
            web_ui: m.get_one::<std::net::SocketAddr>("web-ui").copied(),
            public: m.get_flag("web-public"),
            progress: !m.get_flag("no-progress"),
        };
        let state_backend = crate::state::StateBackendConfig {
            kind: match m.get_one::<String>("state-backend").map(String::as_str) {
                Some("disk") => crate::state::StateBackendKind::Disk,
                _ => crate::state::StateBackendKind::Memory,
            },
            dir: m.get_one::<std::path::PathBuf>("state-dir").cloned(),
            cache_bytes: m
                .get_one::<u64>("state-cache-mb")
                .map_or(crate::state::DEFAULT_STATE_CACHE_MB, |mb| *mb)
                .saturating_mul(1 << 20),
        };
        let instances =
            m.get_one::<String>("instance-group")
                .map(|group| crate::instances::InstanceConfig {
                    group: group.clone(),
                    brokers: m
                        .get_one::<String>("instance-brokers")
                        .cloned()
                        .unwrap_or_default(),
                    partitions: m
                        .get_one::<u32>("repartition-partitions")
                        .map_or(crate::instances::DEFAULT_REPARTITION_PARTITIONS, |n| {
                            *n as usize
                        }),
                    id: m.get_one::<String>("instance-id").cloned(),
                    session_timeout: m
                        .get_one::<u64>("session-timeout")
                        .map(|s| std::time::Duration::from_secs(*s)),
                    exactly_once: m
                        .get_one::<String>("processing-guarantee")
                        .is_some_and(|g| g == "exactly-once"),
                    max_broker_downtime: m
                        .get_one::<u64>("max-broker-downtime")
                        .map(|s| std::time::Duration::from_secs(*s)),
                });
        StreamEnv {
            parallelism,
            mode,
            explain,
            watermark_interval,
            checkpoint_interval,
            checkpointing,
            observe,
            state_backend,
            instances,
            scheduling: m
                .get_one::<String>("scheduling")
                .map(|s| s.parse().expect("validated by clap"))
                .unwrap_or_default(),
            graphs: Mutex::new(Vec::new()),
        }
    }

    /// Runs this process as one instance of `config.group` (`--instance-group`): see
    /// [`crate::instances`].
    pub fn with_instance_group(mut self, config: crate::instances::InstanceConfig) -> Self {
        self.instances = Some(config);
        self
    }

    /// The instance group this process belongs to, if any.
    pub fn instances(&self) -> Option<&crate::instances::InstanceConfig> {
        self.instances.as_ref()
    }

    /// Where checkpoints are written (`--checkpoint-dir`), if anywhere.
    pub fn checkpoint_dir(&self) -> Option<&std::path::Path> {
        self.checkpointing.dir.as_deref()
    }

    /// Where a stop request writes its savepoint (`--savepoint-dir`), if anywhere.
    pub(crate) fn savepoint_dir(&self) -> Option<&std::path::Path> {
        self.checkpointing.savepoint_dir.as_deref()
    }

    /// Keeps keyed state in `backend` (`--state-backend`, `--state-dir`, `--state-cache-mb`).
    ///
    /// # Examples
    /// ```
    /// use flow_runtime::state::{StateBackendConfig, StateBackendKind};
    /// let env = flow_runtime::StreamEnv::new().with_state_backend(StateBackendConfig {
    ///     kind: StateBackendKind::Disk,
    ///     dir: Some(std::env::temp_dir()),
    ///     cache_bytes: 16 << 20,
    /// });
    /// ```
    pub fn with_state_backend(mut self, backend: crate::state::StateBackendConfig) -> Self {
        self.state_backend = backend;
        self
    }

    /// Sets the default parallelism.
    ///
    /// # Panics
    /// If `parallelism` is 0 (use [`StreamEnv::try_with_parallelism`] for untrusted values).
    pub fn with_parallelism(self, parallelism: usize) -> Self {
        match self.try_with_parallelism(parallelism) {
            Ok(env) => env,
            Err(e) => zero_parallelism(e),
        }
    }

    /// Sets the default parallelism.
    ///
    /// # Errors
    /// If `parallelism` is 0.
    pub fn try_with_parallelism(mut self, parallelism: usize) -> Result<Self> {
        if parallelism == 0 {
            return Err(Error::Config("parallelism must be at least 1".into()));
        }
        if parallelism > crate::snapshot::KEY_GROUPS {
            return Err(Error::Config(format!(
                "parallelism {parallelism} is above {}, the key groups keyed state is split into",
                crate::snapshot::KEY_GROUPS
            )));
        }
        self.parallelism = parallelism;
        Ok(self)
    }

    /// Sets how tasks get threads (`--scheduling`): see [`Scheduling`](crate::exec::Scheduling).
    ///
    /// # Default
    /// [`Scheduling::Workers`](crate::exec::Scheduling::Workers): one thread per core.
    pub fn with_scheduling(mut self, scheduling: crate::exec::Scheduling) -> Self {
        self.scheduling = scheduling;
        self
    }

    /// Sets the runtime mode.
    pub fn with_mode(mut self, mode: RuntimeMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets how often sources emit watermarks (Flink's `pipeline.auto-watermark-interval`).
    ///
    /// # Default
    /// 200 ms. Zero emits a watermark after every row, which makes small tests deterministic.
    pub fn with_auto_watermark_interval(mut self, interval: Duration) -> Self {
        self.watermark_interval = interval;
        self
    }

    /// Sets how often a streaming job takes a checkpoint (Flink's `enable_checkpointing`);
    /// `None` takes none. Batch jobs take none: they commit at their end.
    ///
    /// A checkpoint is what lets sources commit their positions (Kafka offsets to the group):
    /// it completes when every row before its barrier reached the sinks' durable output.
    /// Operator state is saved only with a checkpoint directory
    /// ([`StreamEnv::with_checkpoint_dir`]); without one, a job with stateful operators
    /// (windows, keyed state, timers) declines its first checkpoint and takes no more.
    ///
    /// # Default
    /// Every 5 s (Kafka's `auto.commit.interval.ms`).
    pub fn with_checkpoint_interval(mut self, interval: Option<Duration>) -> Self {
        self.checkpoint_interval = interval.filter(|i| !i.is_zero());
        self
    }

    /// Writes checkpoints under `dir` (`--checkpoint-dir`), keeping the newest `retained`.
    pub fn with_checkpoint_dir(
        mut self,
        dir: impl Into<std::path::PathBuf>,
        retained: usize,
    ) -> Self {
        self.checkpointing.dir = Some(dir.into());
        self.checkpointing.retained = retained.max(1);
        self
    }

    /// Starts from the checkpoint or savepoint at `path`, or `"latest"` (`--restore`).
    pub fn with_restore(mut self, path: impl Into<String>) -> Self {
        self.checkpointing.restore = Some(path.into());
        self
    }

    /// Restores even when the checkpoint holds state for operators the job no longer has,
    /// dropping it (`--allow-non-restored-state`).
    pub fn with_allow_non_restored_state(mut self, allow: bool) -> Self {
        self.checkpointing.allow_non_restored_state = allow;
        self
    }

    /// Stops the job with a savepoint under `dir` on SIGTERM or SIGINT (`--savepoint-dir`).
    pub fn with_savepoint_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.checkpointing.savepoint_dir = Some(dir.into());
        self
    }

    /// Exactly-once (aligned barriers, the default) or at-least-once checkpoints.
    pub fn with_checkpointing_mode(mut self, mode: CheckpointingMode) -> Self {
        self.checkpointing.mode = mode;
        self
    }

    /// Serves the running job's metrics at `http://addr/metrics` (Prometheus) and
    /// `/api/metrics` (JSON) while it runs (`--metrics-addr`; needs the `web` feature).
    pub fn with_metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.observe.metrics_addr = Some(addr);
        self
    }

    /// Serves a dashboard of the running job at `http://addr/` (`--web-ui`; needs the `web`
    /// feature): the job graph with live rates, watermarks and checkpoints.
    pub fn with_web_ui(mut self, addr: std::net::SocketAddr) -> Self {
        self.observe.web_ui = Some(addr);
        self
    }

    /// Lets [`with_metrics_addr`](Self::with_metrics_addr) and [`with_web_ui`](Self::with_web_ui)
    /// listen on an address other than loopback (`--web-public`): they have no
    /// authentication, so otherwise such an address fails the job at start.
    pub fn with_web_public(mut self, public: bool) -> Self {
        self.observe.public = public;
        self
    }

    /// Whether a bounded job draws a progress bar on stderr when stderr is a terminal (needs
    /// the `progress` feature). Off for an environment made with [`StreamEnv::new`]; on with
    /// the command line unless `--no-progress`.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.observe.progress = progress;
        self
    }

    /// The default parallelism of every operator.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The configured runtime mode (`Auto` is resolved at `execute`).
    pub fn mode(&self) -> RuntimeMode {
        self.mode
    }

    /// Registers a job graph; the code `flow!` generates calls this.
    #[doc(hidden)]
    pub fn register(&self, graph: JobGraph) {
        self.graphs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(graph);
    }

    /// The plan of every registered `flow!` block, as text (or DOT).
    pub fn explain(&self, format: ExplainFormat) -> String {
        let graphs = self.graphs.lock().unwrap_or_else(|e| e.into_inner());
        graphs
            .iter()
            .map(|g| match format {
                ExplainFormat::Text => {
                    let remote: Vec<(u32, &str)> = g
                        .remote
                        .iter()
                        .map(|(n, e)| (*n, e.topic.as_str()))
                        .collect();
                    let mut text = g.plan.explain_remote(&g.stage_parallelism, g.fused, &remote);
                    if let Some(i) = &self.instances {
                        // Both inputs of a two-input operator share its topic.
                        let edges: usize = (remote.iter())
                            .map(|(n, _)| g.plan.nodes[*n as usize].inputs.len())
                            .sum();
                        text = format!(
                            "instance group `{}` (plan fingerprint {:016x}): {edges} edge(s) cross instances, through {} repartition topic(s)\n{text}",
                            i.group,
                            g.plan.fingerprint(),
                            remote.len()
                        );
                    }
                    text
                }
                ExplainFormat::Dot => g.plan.explain_dot(&g.stage_parallelism),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs every registered `flow!` block as one job named `name` and waits for it to end.
    ///
    /// With `--explain`, prints the plan instead and returns an empty result.
    ///
    /// # Errors
    /// The first failure of any task: a source or sink error, a user function's panic (naming
    /// the operator), or batch mode with an unbounded source.
    pub fn execute(&self, name: &str) -> Result<JobResult> {
        if let Some(format) = self.explain {
            print!("{}", self.explain(format));
            let graphs =
                std::mem::take(&mut *self.graphs.lock().unwrap_or_else(|e| e.into_inner()));
            drop(graphs);
            return Ok(JobResult {
                job_name: name.to_string(),
                wall_time: Default::default(),
                mode: self.mode,
                operators: Vec::new(),
                last_checkpoint: None,
                savepoint: None,
                checkpoints: Default::default(),
            });
        }
        let mut graphs =
            std::mem::take(&mut *self.graphs.lock().unwrap_or_else(|e| e.into_inner()));
        if graphs.is_empty() {
            return Err(Error::Config(
                "no job declared: `flow!` was not called on this environment".into(),
            ));
        }
        // A graph that could not be built (a source that cannot be split, an instance group
        // out of bounds, ...): the job fails before it joins a group or starts a task.
        if let Some(e) = graphs.iter_mut().find_map(|g| g.errors.drain(..).next()) {
            return Err(e);
        }
        // SIGUSR1 drains the job from here on (an instance group's join takes broker round
        // trips before the job runs).
        crate::exec::install_drain();
        let bounded = graphs.iter().all(|g| g.bounded);
        let mode = match self.mode {
            RuntimeMode::Auto if bounded => RuntimeMode::Batch,
            RuntimeMode::Auto => RuntimeMode::Streaming,
            RuntimeMode::Batch if !bounded => {
                return Err(Error::Config(
                    "batch mode needs bounded sources, and this job has an unbounded one: use --mode streaming".into(),
                ))
            }
            m => m,
        };
        tracing::info!(
            job = name,
            ?mode,
            parallelism = self.parallelism,
            "job starting"
        );
        // Held while the job runs: this process's membership of its instance group.
        let mut memberships = Vec::new();
        // What its connectors of one subtask find each other by ([`crate::SubtaskKey`]).
        let run = crate::context::next_run();
        // What the group's transport keeps for this run, forgotten when it ends (or fails to
        // start).
        let mut origins = RunEnd(None, run);
        let mut checkpoints = match mode {
            RuntimeMode::Batch => None,
            _ => self.checkpoint_interval,
        };
        let mut checkpointing = std::borrow::Cow::Borrowed(&self.checkpointing);
        if let Some(group) = &self.instances {
            // Not yet: checkpoints of instances, which must commit their consumed offsets,
            // repartition writes and state together (README, "Scaling out"). The checkpoint
            // directory keeps the state of partitions that move between instances instead.
            if self.checkpointing.restore.is_some() || self.checkpointing.savepoint_dir.is_some() {
                return Err(Error::Config(format!(
                    "--instance-group `{}`: checkpoints of an instance group (--restore, --savepoint-dir) are not supported yet; --checkpoint-dir alone keeps the state of partitions that move between instances",
                    group.group
                )));
            }
            checkpoints = None;
            checkpointing.to_mut().dir = None;
            // SIGTERM and SIGINT make the instance leave the group, handing its partitions
            // over (`instances::leave_requested`), rather than end it as a crash.
            crate::exec::install_stop_signals();
            let (mut sources, mut readers) = (Vec::new(), Vec::new());
            for (i, g) in graphs.iter().enumerate() {
                if let Some(transport) = g.transport {
                    memberships.push(transport.join(
                        group,
                        g.plan.fingerprint(),
                        &g.plan.describe(),
                    )?);
                    for (_, edge) in &g.remote {
                        transport.prepare(edge)?;
                    }
                    let subtasks = |stage: usize| {
                        let p = g.stage_parallelism.get(stage).copied().unwrap_or(1);
                        (0..p).map(move |s| (i, stage, s))
                    };
                    sources.extend(
                        (g.plan.nodes.iter())
                            .filter(|n| n.inputs.is_empty())
                            .flat_map(|n| subtasks(n.stage as usize)),
                    );
                    readers.extend((g.remote.iter()).flat_map(|(node, _)| {
                        subtasks(g.plan.nodes[*node as usize].stage as usize)
                    }));
                    origins.0 = Some(transport);
                }
            }
            readers.sort_unstable();
            readers.dedup();
            // Once for the whole job: a restart fences every id of this instance's earlier
            // runs, which must not hit this run's.
            if let Some(transport) = origins.0 {
                transport.prepare_origins(group, run, &sources, &readers)?;
            }
        }
        let result = crate::exec::run_job_entry(
            name,
            mode,
            self.scheduling,
            self.watermark_interval,
            checkpoints,
            &checkpointing,
            &self.observe,
            &self.state_backend,
            graphs,
            run,
        );
        drop(origins);
        drop(memberships);
        let result = result?;
        if let Some(path) = &result.savepoint {
            eprintln!(
                "flow: job `{name}` stopped with a savepoint: {}\nflow: restart it with --restore {}",
                path.display(),
                path.display()
            );
        }
        Ok(result)
    }
}

/// The transport of job run `.1`'s instance group: forgets what it kept for the run when
/// dropped ([`crate::instances::Transport::end_run`]).
struct RunEnd(Option<&'static dyn crate::instances::Transport>, u64);

impl Drop for RunEnd {
    fn drop(&mut self) {
        if let Some(transport) = self.0 {
            transport.end_run(self.1);
        }
    }
}

#[cold]
#[inline(never)]
fn zero_parallelism(e: Error) -> ! {
    panic!("{e}")
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// `--instance-id`: one to 100 letters, digits, `.`, `_` or `-` (it names Kafka group
/// members, whose names take those characters).
fn parse_instance_id(s: &str) -> std::result::Result<String, String> {
    crate::instances::check_instance_id(s)?;
    Ok(s.to_owned())
}
