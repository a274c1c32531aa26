use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let words = from_collection(vec!["a", "bb"]).flatmap(|s| s.chars());
        words.print();
    }
}
