use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let words = from_collection(vec!["a", "b"]);
        wrods.print();
    }
}
