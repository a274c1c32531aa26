use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(vec![(1, "a")]), "id, name");
        t.map(|r| r).print();
        from_path("t").to_apend_stream().print();
    }
}
