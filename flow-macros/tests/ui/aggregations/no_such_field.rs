use flow::prelude::*;

#[derive(Row, Clone)]
struct Reading {
    sensor: String,
    value: f64,
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![Reading { sensor: "s".into(), value: 1.0 }])
            .key_by(|r| r.sensor.clone())
            .sum(valeu)
            .print();
    }
}
