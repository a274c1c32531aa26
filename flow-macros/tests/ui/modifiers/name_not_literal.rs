use flow::prelude::*;

fn main() {
    let env = StreamEnv::new();
    let name = String::from("doubler");
    flow! { env =>
        from_collection(vec![1, 2, 3]).map(|x| x * 2).name(name).print();
    }
}
