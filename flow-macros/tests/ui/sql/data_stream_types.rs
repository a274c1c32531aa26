use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        // The DataStream's rows are (i64, &str); the column list says (INT, STRING).
        let t = from_data_stream(from_collection(vec![(1_i64, "a")]), "id INT, name STRING");
        sql_query("SELECT id FROM t").to_append_stream().print();
    }
}
