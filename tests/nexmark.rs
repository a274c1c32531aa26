//! Nexmark q0-q5, q7 and q8 in flow SQL over the `nexmark` crate's events, each checked against the same
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
        // Each kind of event in its own time order, its `dateTime` the table's event time.
        let person = from_data_stream(
            from_collection(people.clone(), Watermarks::monotonous()).timestamps(|p| p.6.millis()),
            "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, dateTime.rowtime TIMESTAMP(3), extra STRING"
        );
        let auction = from_data_stream(
            from_collection(auctions.clone(), Watermarks::monotonous()).timestamps(|a| a.5.millis()),
            "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime.rowtime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING"
        );
        let bid = from_data_stream(
            from_collection(bids.clone(), Watermarks::monotonous()).timestamps(|b| b.5.millis()),
            "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime.rowtime TIMESTAMP(3), extra STRING"
        );
        let q0 = sql_query("SELECT auction, bidder, price, dateTime, extra FROM bid").to_append_stream().collect();
        let q1 = sql_query("SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid").to_append_stream().collect();
        let q2 = sql_query("SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0").to_append_stream().collect();
        let q3 = sql_query("
            SELECT P.name, P.city, P.state, A.id
            FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
            WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')
        ").to_append_stream().collect();
        // An aggregate over another aggregate's changelog: the average winning bid.
        let q4 = sql_query("
            SELECT Q.category, AVG(Q.final)
            FROM (
                SELECT MAX(B.price) AS final, A.category
                FROM auction A, bid B
                WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
                GROUP BY A.id, A.category
            ) Q
            GROUP BY Q.category
        ").to_changelog_stream().collect();
        // The auctions with the most bids of each sliding window: a join with an updating table.
        let q5 = sql_query("
            SELECT AuctionBids.auction, AuctionBids.num
            FROM (
                SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime
                FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
                GROUP BY auction, window_start, window_end
            ) AS AuctionBids
            JOIN (
                SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
                FROM (
                    SELECT count(*) AS num, window_start AS starttime, window_end AS endtime
                    FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
                    GROUP BY auction, window_start, window_end
                ) AS CountBids
                GROUP BY CountBids.starttime, CountBids.endtime
            ) AS MaxBids
            ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime
               AND AuctionBids.num >= MaxBids.maxn
        ").to_changelog_stream().collect();
        // The highest bids of each 10-second window.
        let q7 = sql_query("
            SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
            FROM bid B
            JOIN (
                SELECT MAX(price) AS maxprice, window_end AS dateTime
                FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
                GROUP BY window_start, window_end
            ) B1
            ON B.price = B1.maxprice
            WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime
        ").to_append_stream().collect();
        // New users who open an auction in the window they registered in.
        let q8 = sql_query("
            SELECT P.id, P.name, P.starttime
            FROM (
                SELECT id, name, window_start AS starttime, window_end AS endtime
                FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
                GROUP BY id, name, window_start, window_end
            ) P
            JOIN (
                SELECT seller, window_start AS starttime, window_end AS endtime
                FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
                GROUP BY seller, window_start, window_end
            ) A
            ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime
        ").to_append_stream().collect();
    }
    let result = env.execute("nexmark").unwrap();
    // q8 joins two window aggregations of one size on their windows: a window join.
    assert!(
        result
            .operators
            .iter()
            .any(|o| o.name.starts_with("window join")),
        "{:?}",
        result.operators.iter().map(|o| o.name).collect::<Vec<_>>()
    );
    assert!(!bids.is_empty() && !auctions.is_empty() && !people.is_empty());
    assert_eq!(sorted(q0.take()), sorted(nexmark_common::q0(&bids)));
    assert_eq!(sorted(q1.take()), sorted(nexmark_common::q1(&bids)));
    let q2_expected = nexmark_common::q2(&bids);
    assert!(!q2_expected.is_empty(), "q2 selects some bids");
    assert_eq!(sorted(q2.take()), sorted(q2_expected));
    let q3_expected = nexmark_common::q3(&people, &auctions);
    assert!(!q3_expected.is_empty(), "q3 joins some auctions");
    assert_eq!(sorted(q3.take()), sorted(q3_expected));
    // The changelog applied in order ends in the loop's result.
    let mut q4_state = std::collections::BTreeMap::new();
    for c in q4.take() {
        if c.kind.is_accumulate() {
            q4_state.insert(c.row.0, c.row.1);
        } else {
            assert_eq!(
                q4_state.remove(&c.row.0),
                Some(c.row.1),
                "a retraction retracts the row before it"
            );
        }
    }
    let q4_expected = nexmark_common::q4(&auctions, &bids);
    assert!(!q4_expected.is_empty(), "q4 averages some categories");
    assert_eq!(q4_state, q4_expected);
    let mut q5_state: std::collections::BTreeMap<(i64, i64), usize> = Default::default();
    for c in q5.take() {
        let n = q5_state.entry(c.row).or_insert(0);
        if c.kind.is_accumulate() {
            *n += 1;
        } else {
            assert!(*n > 0, "a retraction retracts a row emitted before");
            *n -= 1;
        }
    }
    q5_state.retain(|_, n| *n > 0);
    let q5_expected = nexmark_common::q5(&bids);
    assert!(!q5_expected.is_empty());
    assert_eq!(q5_state, q5_expected);
    let q7_expected = nexmark_common::q7(&bids);
    assert!(!q7_expected.is_empty());
    assert_eq!(sorted(q7.take()), sorted(q7_expected));
    let q8_expected = nexmark_common::q8(&people, &auctions);
    assert!(!q8_expected.is_empty(), "q8 finds some new sellers");
    assert_eq!(sorted(q8.take()), sorted(q8_expected));
}

#[test]
fn queries_equal_hand_written_loops_p1() {
    queries(1);
}

#[test]
fn queries_equal_hand_written_loops_p2() {
    queries(2);
}
