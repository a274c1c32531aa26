use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        sql_query("SELECT id FROM orders WHERE product = 5").to_append_stream().print();
    }
}
