//! The flow runtime: fused operator chains, workers and channels, keyed state, the
//! environment and its command line.
//!
//! Users depend on the `flow` facade crate, which re-exports this crate with the connectors
//! and the `flow!` macro.

mod chain;
pub mod channel;
pub mod context;
pub mod env;
pub mod error;
pub mod exec;
pub mod function;
pub mod hash;
pub mod operator;
pub mod plan;
pub mod port;
pub mod row;
pub mod state;
pub mod time;

#[doc(hidden)]
pub mod __private;

pub use chain::Snapshot;
pub use clap;
pub use context::RuntimeContext;
pub use env::{ExplainFormat, RuntimeMode, StreamEnv};
pub use error::{Error, Result};
pub use exec::{CheckpointId, JobResult, OperatorMetrics, FINAL_CHECKPOINT};
pub use function::{
    FilterFunction, FlatMapFunction, Key, KeySelector, KeyedFilterFunction, KeyedFlatMapFunction,
    KeyedMapFunction, MapFunction, NotKeyed, ReduceFunction,
};
pub use operator::broadcast_process::BroadcastProcessFunction;
pub use operator::co_process::KeyedCoProcessFunction;
pub use operator::keyed_process::{KeyedProcessFunction, ProcessContext};
pub use operator::process::ProcessFunction;
pub use operator::side_output::OutputTag;
pub use operator::sink::{Sink, SinkWriter};
pub use operator::source::{Poll, Source, SourceOutput, SourceReader};
pub use operator::window::{
    AggregateFunction, EventTimeSessionWindows, ProcessWindowFunction,
    ProcessingTimeSessionWindows, SlidingEventTimeWindows, SlidingProcessingTimeWindows,
    TimeWindow, TumblingEventTimeWindows, TumblingProcessingTimeWindows, Windows,
};
pub use row::{DisplayRow, Field, Row, RowText, Schema};
pub use state::{FunctionState, ListState, MapState, ValueState};
pub use time::{Timestamp, TimestampAssigner, Watermarks, NO_TIMESTAMP};
