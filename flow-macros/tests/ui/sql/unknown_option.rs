use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE gen (a INT) WITH ('connector' = 'datagen', 'number-of-row' = '10')");
        execute_sql("CREATE TABLE p (a INT) WITH ('connector' = 'prnt')");
    }
}
