use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, amount INT) WITH ('connector' = 'datagen')");
        sql_query("SELECT id FROM order").to_append_stream().print();
    }
}
