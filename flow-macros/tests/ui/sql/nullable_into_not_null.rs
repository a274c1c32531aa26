use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        execute_sql("CREATE TABLE out (id BIGINT NOT NULL) WITH ('connector' = 'print')");
        execute_sql("INSERT INTO out SELECT id FROM orders");
    }
}
