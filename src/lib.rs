//! # flow
//!
//! Stream processing for Rust with the power of Apache Flink's DataStream API, compiled.
//! Declare a job with [`flow!`]; the macro checks it, plans it into stages and generates fused
//! operator chains; [`StreamEnv::execute`] runs them on worker threads.
//!
//! ```
//! use flow::prelude::*;
//!
//! let env = StreamEnv::new();
//! flow! { env =>
//!     let rows = from_collection(vec![(1, "aaa|bb"), (2, "bb|a")])
//!         .flat_map(|(n, s): (i32, &str)| s.split('|').map(move |w| (n, w.to_string())).collect::<Vec<_>>())
//!         .collect();
//! }
//! env.execute("doc")?;
//! assert_eq!(rows.take().len(), 4);
//! # Ok::<(), flow::Error>(())
//! ```

pub use flow_connectors as connectors;
pub use flow_macros::{
    co_process_function, filter_function, flat_map_function, flow, map_function, process_function,
    reduce_function, timestamp_assigner, KeyedState, Row, StateSchema,
};
pub use flow_runtime::*;

pub use flow_connectors::{
    CollectHandle, DiscardSink, FileSink, FileSource, NumberSequence, PrintSink, StopHandle,
};

/// Everything a job usually needs: `use flow::prelude::*;`.
pub mod prelude {
    pub use crate::connectors::bad_records::BadRecords;
    pub use crate::connectors::datagen::{DataGeneratorSource, FieldGen, RowGenerator};
    pub use crate::connectors::file::RollingPolicy;
    pub use crate::connectors::format::{Csv, Json};
    #[cfg(feature = "postgres")]
    pub use crate::connectors::jdbc::{
        JdbcConnectionOptions, JdbcExactlyOnceOptions, JdbcExecutionOptions, JdbcSink, Params,
    };
    #[cfg(feature = "kafka")]
    pub use crate::connectors::kafka::{KafkaSink, KafkaSource, StartingOffsets};
    pub use crate::{
        co_process_function, filter_function, flat_map_function, flow, map_function,
        process_function, reduce_function, timestamp_assigner, AggregateFunction, AggregatingState,
        CollectHandle, DiscardSink, EventTimeSessionWindows, FileSink, FileSource, JoinContext,
        KeyedProcessFunction, KeyedState, ListState, MapState, NumberSequence, OutputTag,
        PrintSink, ProcessContext, ProcessFunction, ProcessWindowFunction,
        ProcessingTimeSessionWindows, ReducingState, Row, RuntimeContext, RuntimeMode,
        SlidingEventTimeWindows, SlidingProcessingTimeWindows, SmallString, StreamEnv, TimeWindow,
        Ttl, TumblingEventTimeWindows, TumblingProcessingTimeWindows, ValueState,
        WatermarkGenerator, WatermarkOutput, Watermarks, WindowContext,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use flow_connectors::collection::from_collection as collection_source;
    pub use flow_connectors::{CollectHandle, CollectionSource, PrintSink};
    pub use flow_runtime::__private::*;

    /// What moves rows between instances of a job (`--instance-group`).
    #[cfg(feature = "kafka")]
    pub const TRANSPORT: Option<&'static dyn Transport> =
        Some(&flow_connectors::kafka::KafkaTransport);
    /// What moves rows between instances of a job: nothing without the `kafka` feature.
    #[cfg(not(feature = "kafka"))]
    pub const TRANSPORT: Option<&'static dyn Transport> = None;
}
