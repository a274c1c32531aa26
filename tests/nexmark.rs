//! Nexmark q0-q3 in flow SQL over the `nexmark` crate's events, each checked against the same
//! query written as a loop, at parallelism 1 and 2.

mod nexmark_common;

use flow::prelude::*;
use nexmark_common::events;

const EVENTS: usize = 20_000;

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v
}

fn queries(p: usize) {
    let (people, auctions, bids) = events(EVENTS);
    let env = StreamEnv::new().with_parallelism(p);
    flow! { env =>
        let person = from_data_stream(
            from_collection(people.clone()),
            "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, dateTime TIMESTAMP(3), extra STRING"
        );
        let auction = from_data_stream(
            from_collection(auctions.clone()),
            "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING"
        );
        let bid = from_data_stream(
            from_collection(bids.clone()),
            "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING"
        );
        let q0 = sql_query("SELECT auction, bidder, price, dateTime, extra FROM bid").to_append_stream().collect();
        let q1 = sql_query("SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid").to_append_stream().collect();
        let q2 = sql_query("SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0").to_append_stream().collect();
        let q3 = sql_query("
            SELECT P.name, P.city, P.state, A.id
            FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
            WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')
        ").to_append_stream().collect();
    }
    env.execute("nexmark").unwrap();
    assert!(!bids.is_empty() && !auctions.is_empty() && !people.is_empty());
    assert_eq!(sorted(q0.take()), sorted(nexmark_common::q0(&bids)));
    assert_eq!(sorted(q1.take()), sorted(nexmark_common::q1(&bids)));
    let q2_expected = nexmark_common::q2(&bids);
    assert!(!q2_expected.is_empty(), "q2 selects some bids");
    assert_eq!(sorted(q2.take()), sorted(q2_expected));
    let q3_expected = nexmark_common::q3(&people, &auctions);
    assert!(!q3_expected.is_empty(), "q3 joins some auctions");
    assert_eq!(sorted(q3.take()), sorted(q3_expected));
}

#[test]
fn q0_to_q3_equal_hand_written_loops_p1() {
    queries(1);
}

#[test]
fn q0_to_q3_equal_hand_written_loops_p2() {
    queries(2);
}
