//! The flow runtime: fused operator chains, workers and channels, keyed state, the
//! environment and its command line.
//!
//! Users depend on the `flow` facade crate, which re-exports this crate with the connectors
//! and the `flow!` macro. What a program names is re-exported at the root (`flow::StreamEnv`,
//! `flow::MapFunction`, ...) and grouped in the public modules below; the operators, channels
//! and task loops are internal: the code `flow!` generates reaches them through `__private`.
//!
//! - [`function`]: the traits a user function implements (`#[map_function]` & co. implement
//!   them), [`process`] the process functions and their context, [`window`] the window
//!   assigners and window functions;
//! - [`source`] and [`sink`]: what a connector implements;
//! - [`state`]: keyed state; [`time`]: timestamps and watermark strategies; [`row`]: row
//!   schemas and text forms;
//! - [`port`]: how `flow!` type-checks a pipeline; [`plan`]: the static plan `explain` shows.

mod chain;
mod channel;
mod context;
mod env;
mod error;
mod exec;
pub mod function;
pub mod hash;
pub mod instances;
mod operator;
pub mod plan;
pub mod port;
pub mod row;
mod small_string;
pub mod snapshot;
pub mod sort_key;
pub mod state;
pub mod table;
pub mod time;
#[cfg(feature = "web")]
mod web;

/// Process functions (Flink's `ProcessFunction`, `KeyedProcessFunction`,
/// `KeyedCoProcessFunction`, `BroadcastProcessFunction`), their context and side outputs.
pub mod process {
    pub use crate::operator::broadcast_process::BroadcastProcessFunction;
    pub use crate::operator::co_process::KeyedCoProcessFunction;
    pub use crate::operator::interval_join::JoinContext;
    pub use crate::operator::keyed_process::{KeyedProcessFunction, ProcessContext};
    pub use crate::operator::process::ProcessFunction;
    pub use crate::operator::side_output::OutputTag;
}

/// Windows: the assigners (named as Flink's), the window a result belongs to, and the
/// functions that compute a window's result.
pub mod window {
    pub use crate::operator::window::{
        AggregateFunction, EventTimeSessionWindows, GlobalWindow, ProcessWindowFunction,
        ProcessingTimeSessionWindows, SlidingEventTimeWindows, SlidingProcessingTimeWindows,
        TimeWindow, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowContext,
        WindowState, Windows, WithWindowContext,
    };
}

/// What a source connector implements: a [`Source`] splits into one [`SourceReader`] per
/// subtask, which pushes rows into a [`SourceOutput`].
pub mod source {
    pub use crate::operator::source::{PartitionLag, Poll, Source, SourceOutput, SourceReader};
}

/// What a sink connector implements: a [`Sink`] creates one [`SinkWriter`] per subtask.
pub mod sink {
    pub use crate::chain::Snapshot;
    pub use crate::operator::sink::{GroupCommits, Sink, SinkWriter};
}

#[doc(hidden)]
pub mod __private;

pub use chain::Snapshot;
pub use clap;
pub use context::{RuntimeContext, SubtaskKey};
pub use env::{ExplainFormat, RuntimeMode, StreamEnv};
pub use error::{Error, Result};
pub use exec::worker::sleep;
pub use exec::{
    request_drain, request_stop, CheckpointConfig, CheckpointId, CheckpointStats,
    CheckpointingMode, JobResult, OperatorMetrics, Scheduling, TaskMetrics, FINAL_CHECKPOINT,
};
pub use function::{
    FilterFunction, FlatMapFunction, Key, KeySelector, KeyedFilterFunction, KeyedFlatMapFunction,
    KeyedMapFunction, MapFunction, NotKeyed, ReduceFunction,
};
pub use operator::assign_timestamps_and_watermarks::{
    WatermarkGenerator, WatermarkOutput, WatermarkStrategy,
};
pub use process::{
    BroadcastProcessFunction, JoinContext, KeyedCoProcessFunction, KeyedProcessFunction, OutputTag,
    ProcessContext, ProcessFunction,
};
pub use row::{DisplayRow, Field, Row, RowText, Schema};
pub use sink::{GroupCommits, Sink, SinkWriter};
pub use small_string::SmallString;
pub use snapshot::StateSchema;
pub use source::{PartitionLag, Poll, Source, SourceOutput, SourceReader};
pub use state::{
    AggregatingState, Expirable, FunctionState, ListState, MapState, OnCreateAndWrite,
    OnReadAndWrite, ReducingState, Ttl, ValueState,
};
pub use time::{Timestamp, TimestampAssigner, Watermarks, NO_TIMESTAMP};
pub use window::{
    AggregateFunction, EventTimeSessionWindows, GlobalWindow, ProcessWindowFunction,
    ProcessingTimeSessionWindows, SlidingEventTimeWindows, SlidingProcessingTimeWindows,
    TimeWindow, TumblingEventTimeWindows, TumblingProcessingTimeWindows, WindowContext, Windows,
};
