//! The seed's "Conversion between DataStream and Table": a DataStream becomes a table with
//! named columns, SQL queries it, and the result comes back as an append stream, a retract
//! stream (Flink's `(true, row)` pairs) and a changelog stream (`+I[..]` rows).
//!
//! ```text
//! cargo run --release --example table_conversion
//! ```

use flow::prelude::*;
use std::process::ExitCode;

fn main() -> ExitCode {
    let env = StreamEnv::from_args();
    flow! { env =>
        let ds = from_collection(vec![(1, "hi", 1.5), (2, "hello", 2.5), (3, "hey", -1.0)]);
        // `from_data_stream(ds, 'a, b, c')`: the tuple's fields in order get these names.
        let t = from_data_stream(ds, "a, b, c");
        let r = sql_query("SELECT a * 10 AS a, UPPER(b) AS b FROM t WHERE c > 0");
        r.to_append_stream().map(|(a, b)| format!("append: {a} {b}")).print();
        r.to_retract_stream().map(|(add, (a, b))| format!("retract: {add} {a} {b}")).print();
        r.to_changelog_stream().print();
    }
    match env.execute("table_conversion") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
