//! The seed's "Emit results to a Table & SQL sink connector": the "option 1" word split and
//! rolling reduce, turned into a table and written to a `print` table with `execute_insert`,
//! which prints rows as Flink does (`+I[2, aaa]`, with `N> ` in front when the sink is
//! parallel).
//!
//! ```text
//! cargo run --release --example table_sink
//! ```

use flow::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = StreamEnv::from_args();
    flow! { env =>
        execute_sql("
            CREATE TABLE my_sink (
              a INT,
              b VARCHAR
            ) WITH (
              'connector' = 'print'
            )
        ");
        let ds = from_collection(vec![(1, "aaa|bb"), (2, "bb|a"), (3, "aaa|a")])
            .map(|i| (i.0 + 1, i.1))
            .flat_map(|s| s.1.split('|').map(move |w| (s.0, w.to_string())))
            .key_by(|i| i.1.clone())
            .reduce(|i, j| (i.0 + j.0, i.1));
        from_data_stream(ds).execute_insert("my_sink");
    }
    match env.execute("table_sink") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
