use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct Keyed<K> {
    key: K,
    count: i64,
}

fn main() {}
