use flow::prelude::*;

#[filter_function]
fn is_long(word: &String) -> bool {
    word.len() > 3
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![(1_i64, "hello".to_string())])
            .filter(is_long)
            .print();
    }
}
