use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        sql_query("SELECT id FROM WHERE id > 1").to_append_stream().print();
    }
}
