use flow::prelude::*;

#[flat_map_function]
fn split(line: String) -> Vec<String> {
    line.split(' ').map(str::to_string).collect()
}

fn main() {}
