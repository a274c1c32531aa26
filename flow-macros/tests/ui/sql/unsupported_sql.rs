use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        sql_query("SELECT product FROM orders ORDER BY product").to_append_stream().print();
        sql_query("SELECT a.id FROM orders a LEFT JOIN orders b ON a.id = b.id").to_append_stream().print();
        sql_query("SELECT DISTINCT product FROM orders").to_append_stream().print();
    }
}
