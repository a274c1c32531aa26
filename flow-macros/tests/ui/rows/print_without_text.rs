use flow::prelude::*;

#[derive(Clone, Debug)]
struct Reading {
    sensor: String,
    value: f64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![Reading { sensor: "a".into(), value: 1.5 }]).print();
    }
}
