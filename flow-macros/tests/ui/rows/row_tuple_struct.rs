use flow::prelude::*;

#[derive(Row, Clone, Debug)]
struct WordCount(String, i64);

fn main() {}
