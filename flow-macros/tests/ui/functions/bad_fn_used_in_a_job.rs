use flow::prelude::*;

// The mistake is reported where the function is declared; the job that uses it still finds
// its name (no "cannot find value `is_even`").
#[filter_function]
fn is_even(row: i64) -> bool {
    row % 2 == 0
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        from_collection(vec![1i64, 2]).filter(is_even).print();
    }
}
