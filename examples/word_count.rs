//! The seed's "option 1" pipeline: a collection of `(id, "w1|w2")` rows -> map `(id + 1, s)`
//! -> flat_map split on `|` -> key_by the word -> rolling reduce summing the ids -> print.
//!
//! ```text
//! cargo run --release --example word_count -- --mode streaming   # every update
//! cargo run --release --example word_count -- --mode batch       # the final row per word
//! ```

use flow::prelude::*;
use std::process::ExitCode;

/// The seed's `Row(i0, i1)`; its text form is `count word`.
#[derive(Row, Clone, Debug)]
struct WordCount {
    count: i32,
    word: String,
}

fn main() -> ExitCode {
    let env = StreamEnv::from_args();
    flow! { env =>
        from_collection(vec![(1, "aaa|bb"), (2, "bb|a"), (3, "aaa|a")])
            .map(|i| (i.0 + 1, i.1))
            .flat_map(|s| s.1.split('|').map(move |w| WordCount { count: s.0, word: w.to_string() }))
            .key_by(|r| r.word.clone())
            .reduce(|i, j| WordCount { count: i.count + j.count, word: i.word })
            .print();
    }
    match env.execute("word_count") {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
