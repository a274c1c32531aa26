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
