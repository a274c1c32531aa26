use flow::prelude::*;

#[derive(Clone, Default, KeyedState)]
struct Tagger;

#[flat_map_function(fast)]
impl Tagger {
    fn flat_map(&self, row: i64) -> Vec<i64> {
        vec![row]
    }
}

fn main() {}
