use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, amount INT) WITH ('connector' = 'datagen')");
        sql_query("SELECT id, amout FROM orders").to_append_stream().print();
    }
}
