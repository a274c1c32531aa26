use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("
            CREATE TABLE bids (auction BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
            WITH ('connector' = 'datagen')
        ");
        // `ts + INTERVAL ..` is a new value, not the table's time attribute.
        execute_sql("CREATE VIEW later AS SELECT auction, ts + INTERVAL '1' SECOND AS ts FROM bids");
        sql_query("
            SELECT window_start, window_end, COUNT(*)
            FROM TABLE(TUMBLE(TABLE later, DESCRIPTOR(ts), INTERVAL '10' SECOND))
            GROUP BY window_start, window_end
        ").to_append_stream().print();
    }
}
