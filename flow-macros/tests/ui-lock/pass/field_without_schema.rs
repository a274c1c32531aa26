// A row kept in state whose field's type has no state schema (as a type of another crate,
// which cannot implement `StateSchema`): the row still builds, the field counting by its
// type's name in the row's fingerprint.
use flow::prelude::*;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Meta {
    source: String,
}

#[derive(Row, Clone, Debug)]
#[row(no_display)]
struct Event {
    key: i64,
    count: i64,
    meta: Meta,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.key, self.count, self.meta.source)
    }
}

fn main() {
    let env = StreamEnv::new();
    flow! { env =>
        let rows = source(NumberSequence::new(1, 10), Watermarks::no_watermarks())
            .map(|n| Event { key: n % 2, count: 1, meta: Meta { source: "seq".into() } })
            .key_by(|e| e.key)
            .reduce(|a, b| Event { key: a.key, count: a.count + b.count, meta: b.meta })
            .uid("events")
            .collect();
    }
}
