//! The build-time benchmark's SQL program: the same count per key as `flow_job.rs`, as a query
//! over a table of the numbers. `scripts/build-time` edits the line marked `EDIT` (inside the
//! SQL text) and times the incremental release build.

use flow::prelude::*;

fn main() -> flow::Result<()> {
    let env = StreamEnv::from_args();
    let dir = std::env::temp_dir().join("flow-build-time-sql");
    flow! { env =>
        let t = from_data_stream(source(NumberSequence::new(1, 10_000), Watermarks::monotonous()), "a BIGINT");
        let counts = sql_query("SELECT k, COUNT(*) AS n FROM (SELECT a % 4 AS k FROM t) GROUP BY k"); // EDIT
        counts.to_changelog_stream().sink_to(FileSink::row_format(&dir).part_prefix("pre").part_suffix("suf"));
    }
    env.execute("build_time_sql")?;
    Ok(())
}
