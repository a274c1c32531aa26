//! The seed's "Create using Table & SQL connectors": a `datagen` table declared in SQL, read
//! as an append stream of `MySource` rows (the seed's `Types.ROW([INT, STRING])`), printed.
//!
//! ```text
//! cargo run --release --example table_source
//! ```

use flow::prelude::*;
use std::process::ExitCode;

/// A row of `my_source`: its columns by name. SQL columns are nullable unless `NOT NULL`, so
/// each is an `Option`; the text form prints NULL as `None`.
#[derive(Row, Clone, Debug)]
struct MySource {
    a: Option<i32>,
    b: Option<String>,
}

fn main() -> ExitCode {
    let env = StreamEnv::from_args();
    flow! { env =>
        execute_sql("
            CREATE TABLE my_source (
              a INT,
              b VARCHAR
            ) WITH (
              'connector' = 'datagen',
              'number-of-rows' = '10'
            )
        ");
        // Without a type, rows are tuples of the columns: `(Option<i32>, Option<String>)`.
        let ds = from_path("my_source").to_append_stream::<MySource>();
        ds.print();
    }
    match env.execute("table_source") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
