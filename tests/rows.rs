//! `#[derive(Row)]`: the static schema, the text form `print` and `FileSink` write, and serde.

use flow::prelude::*;
use flow::Field;

#[derive(Row, Clone, Debug, PartialEq)]
struct Order {
    id: i32,
    customer: String,
    amount: f64,
    tags: Vec<String>,
}

#[derive(Row, Clone, Debug, PartialEq)]
#[row(no_display)]
struct Custom {
    a: i64,
}

impl std::fmt::Display for Custom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "custom<{}>", self.a)
    }
}

fn order() -> Order {
    Order {
        id: 7,
        customer: "ada".into(),
        amount: 12.5,
        tags: vec!["new".into(), "eu".into()],
    }
}

#[test]
fn schema_lists_fields_in_order_with_types() {
    let s = Order::SCHEMA;
    assert_eq!(s.name, "Order");
    assert_eq!(
        s.fields,
        &[
            Field {
                name: "id",
                type_name: "i32"
            },
            Field {
                name: "customer",
                type_name: "String"
            },
            Field {
                name: "amount",
                type_name: "f64"
            },
            Field {
                name: "tags",
                type_name: "Vec<String>"
            },
        ]
    );
}

#[test]
fn text_form_is_the_fields_separated_by_a_space() {
    assert_eq!(order().to_string(), "7 ada 12.5 [new, eu]");
    assert_eq!(
        flow::DisplayRow(&(1, order())).to_string(),
        "(1, 7 ada 12.5 [new, eu])"
    );
    assert_eq!(Custom { a: 3 }.to_string(), "custom<3>");
    assert_eq!(
        flow::DisplayRow(&Custom { a: 3 }).to_string(),
        "custom<3>",
        "own Display is the text form"
    );
}

#[test]
fn serde_round_trip_uses_field_names() {
    let json = serde_json::to_string(&order()).unwrap();
    assert_eq!(
        json,
        r#"{"id":7,"customer":"ada","amount":12.5,"tags":["new","eu"]}"#
    );
    let back: Order = serde_json::from_str(&json).unwrap();
    assert_eq!(back, order());
    let err = serde_json::from_str::<Order>(r#"{"id":"seven"}"#).unwrap_err();
    assert!(err.to_string().contains("invalid type"), "{err}");
}

#[test]
fn derived_rows_flow_through_a_job_and_print() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        let out = from_collection(vec![order(), Order { id: 8, ..order() }])
            .key_by(|o| o.customer.clone())
            .reduce(|a, b| Order { amount: a.amount + b.amount, ..b })
            .map(|o| o.to_string())
            .collect();
    }
    env.execute("orders").unwrap();
    let mut rows = out.take();
    rows.sort();
    assert_eq!(rows, vec!["7 ada 12.5 [new, eu]", "8 ada 25 [new, eu]"]);
}

/// A word and its count, the word kept inline when short.
#[derive(Row, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct WordCount {
    word: SmallString,
    count: i64,
}

#[test]
fn small_string_rows_count_words_as_string_rows_do() {
    let lines: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "to be or not to be word{} a-word-far-longer-than-twenty-two-bytes-{}",
                i % 7,
                i % 3
            )
        })
        .collect();
    let env = StreamEnv::new().with_parallelism(2);
    let small_lines = lines.clone();
    flow! { env =>
        let small = from_collection(small_lines)
            .flat_map(|line: String, out: &mut Vec<WordCount>| {
                for w in line.split(' ') {
                    out.push(WordCount { word: SmallString::from(w), count: 1 });
                }
            })
            .key_by(|w| w.word.clone())
            .reduce(|a, b| WordCount { count: a.count + b.count, ..a })
            .map(|w| w.to_string())
            .collect();
        let owned = from_collection(lines)
            .flat_map(|line: String, out: &mut Vec<(String, i64)>| {
                for w in line.split(' ') {
                    out.push((w.to_string(), 1));
                }
            })
            .key_by(|w| w.0.clone())
            .reduce(|a, b| (a.0, a.1 + b.1))
            .map(|(w, n)| format!("{w} {n}"))
            .collect();
    }
    env.execute("small strings").unwrap();
    let (mut small, mut owned) = (small.take(), owned.take());
    small.sort();
    owned.sort();
    assert_eq!(small.len(), 200 * 8);
    assert_eq!(small, owned);
    assert!(small.contains(&"a-word-far-longer-than-twenty-two-bytes-2 66".to_string()));

    // Serialized as a string: JSON (and state) of one reads as the other.
    let row = WordCount {
        word: "stream".into(),
        count: 3,
    };
    let json = serde_json::to_string(&row).unwrap();
    assert_eq!(json, r#"{"word":"stream","count":3}"#);
    assert_eq!(serde_json::from_str::<WordCount>(&json).unwrap(), row);
}
