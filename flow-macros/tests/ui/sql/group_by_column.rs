use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE orders (id BIGINT, product STRING) WITH ('connector' = 'datagen')");
        sql_query("SELECT product, id, COUNT(*) FROM orders GROUP BY product").to_changelog_stream().print();
    }
}
