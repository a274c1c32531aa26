use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE bids (auction BIGINT, ts TIMESTAMP(3)) WITH ('connector' = 'datagen')");
        sql_query("
            SELECT window_start, window_end, COUNT(*)
            FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' SECOND))
            GROUP BY window_start, window_end
        ").to_append_stream().print();
    }
}
