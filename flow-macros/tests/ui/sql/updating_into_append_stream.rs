use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        let counts = sql_query("SELECT product, COUNT(*) FROM orders GROUP BY product");
        counts.to_append_stream().print();
    }
}
