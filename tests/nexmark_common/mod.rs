//! Nexmark's events (the `nexmark` crate, deterministic with a fixed `base_time`) as the rows
//! of the `person`, `auction` and `bid` tables, shared by the SQL tests and benchmark.
#![allow(dead_code)]

use flow::table::SqlTimestamp;
use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use nexmark::EventGenerator;

/// `id, name, emailAddress, creditCard, city, state, dateTime, extra`
pub type PersonRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    SqlTimestamp,
    String,
);
/// `id, itemName, description, initialBid, reserve, dateTime, expires, seller, category, extra`
pub type AuctionRow = (
    i64,
    String,
    String,
    i64,
    i64,
    SqlTimestamp,
    SqlTimestamp,
    i64,
    i64,
    String,
);
/// `auction, bidder, price, channel, url, dateTime, extra`
pub type BidRow = (i64, i64, i64, String, String, SqlTimestamp, String);

/// The first `n` events, split by kind, each kind in event order.
pub fn events(n: usize) -> (Vec<PersonRow>, Vec<AuctionRow>, Vec<BidRow>) {
    let config = NexmarkConfig {
        base_time: 1_700_000_000_000,
        ..Default::default()
    };
    let (mut people, mut auctions, mut bids) = (Vec::new(), Vec::new(), Vec::new());
    for e in EventGenerator::new(config).take(n) {
        match e {
            Event::Person(p) => people.push((
                p.id as i64,
                p.name,
                p.email_address,
                p.credit_card,
                p.city,
                p.state,
                SqlTimestamp(p.date_time as i64),
                p.extra,
            )),
            Event::Auction(a) => auctions.push((
                a.id as i64,
                a.item_name,
                a.description,
                a.initial_bid as i64,
                a.reserve as i64,
                SqlTimestamp(a.date_time as i64),
                SqlTimestamp(a.expires as i64),
                a.seller as i64,
                a.category as i64,
                a.extra,
            )),
            Event::Bid(b) => bids.push((
                b.auction as i64,
                b.bidder as i64,
                b.price as i64,
                b.channel,
                b.url,
                SqlTimestamp(b.date_time as i64),
                b.extra,
            )),
        }
    }
    (people, auctions, bids)
}

/// q0, by hand: every bid.
pub fn q0(bids: &[BidRow]) -> Vec<(i64, i64, i64, SqlTimestamp, String)> {
    bids.iter()
        .map(|b| (b.0, b.1, b.2, b.5, b.6.clone()))
        .collect()
}

/// q1, by hand: prices in euros.
pub fn q1(bids: &[BidRow]) -> Vec<(i64, i64, f64, SqlTimestamp, String)> {
    bids.iter()
        .map(|b| (b.0, b.1, 0.908 * b.2 as f64, b.5, b.6.clone()))
        .collect()
}

/// q2, by hand: the bids of every 123rd auction.
pub fn q2(bids: &[BidRow]) -> Vec<(i64, i64)> {
    bids.iter()
        .filter(|b| b.0 % 123 == 0)
        .map(|b| (b.0, b.2))
        .collect()
}

/// q3, by hand: who sells in category 10 in Oregon, Idaho or California (the `nexmark` crate
/// writes states in lower case; every matching pair
/// of the whole input, as a regular join gives in the end).
pub fn q3(people: &[PersonRow], auctions: &[AuctionRow]) -> Vec<(String, String, String, i64)> {
    let by_id: std::collections::HashMap<i64, &PersonRow> =
        people.iter().map(|p| (p.0, p)).collect();
    let mut out = Vec::new();
    for a in auctions.iter().filter(|a| a.8 == 10) {
        if let Some(p) = by_id.get(&a.7) {
            if ["or", "id", "ca"].contains(&p.5.as_str()) {
                out.push((p.1.clone(), p.4.clone(), p.5.clone(), a.0));
            }
        }
    }
    out
}

/// q4, by hand: per category, the average of the auctions' winning bids (each auction's
/// highest bid between its start and its end), as the final state of the query's changelog.
pub fn q4(auctions: &[AuctionRow], bids: &[BidRow]) -> std::collections::BTreeMap<i64, i64> {
    use std::collections::{BTreeMap, HashMap};
    let mut best: HashMap<i64, (i64, i64)> = HashMap::new(); // auction -> (category, max price)
    let by_id: HashMap<i64, &AuctionRow> = auctions.iter().map(|a| (a.0, a)).collect();
    for b in bids {
        if let Some(a) = by_id.get(&b.0) {
            if a.5 <= b.5 && b.5 <= a.6 {
                let e = best.entry(a.0).or_insert((a.8, b.2));
                e.1 = e.1.max(b.2);
            }
        }
    }
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for (category, price) in best.values() {
        let s = sums.entry(*category).or_insert((0, 0));
        s.0 += price;
        s.1 += 1;
    }
    sums.into_iter().map(|(c, (sum, n))| (c, sum / n)).collect()
}

/// q7, by hand: the bids whose price is the highest of a 10-second tumbling window, paired
/// with every window they fall in by `dateTime BETWEEN window_end - 10 s AND window_end`.
pub fn q7(bids: &[BidRow]) -> Vec<(i64, i64, i64, SqlTimestamp, String)> {
    use std::collections::BTreeMap;
    let mut max: BTreeMap<i64, i64> = BTreeMap::new(); // window end -> max price
    for b in bids {
        let end = b.5 .0.div_euclid(10_000) * 10_000 + 10_000;
        let m = max.entry(end).or_insert(b.2);
        *m = (*m).max(b.2);
    }
    let mut out = Vec::new();
    for (end, price) in &max {
        for b in bids {
            if b.2 == *price && end - 10_000 <= b.5 .0 && b.5 .0 <= *end {
                out.push((b.0, b.2, b.1, b.5, b.6.clone()));
            }
        }
    }
    out
}

/// q8, by hand: the people who opened an auction in the 10-second window they registered in.
pub fn q8(people: &[PersonRow], auctions: &[AuctionRow]) -> Vec<(i64, String, SqlTimestamp)> {
    use std::collections::BTreeSet;
    let start = |t: SqlTimestamp| t.0.div_euclid(10_000) * 10_000;
    let people: BTreeSet<(i64, String, i64)> = people
        .iter()
        .map(|p| (p.0, p.1.clone(), start(p.6)))
        .collect();
    let sellers: BTreeSet<(i64, i64)> = auctions.iter().map(|a| (a.7, start(a.5))).collect();
    people
        .into_iter()
        .filter(|(id, _, s)| sellers.contains(&(*id, *s)))
        .map(|(id, name, s)| (id, name, SqlTimestamp(s)))
        .collect()
}

/// q5, by hand: per 10-second window sliding by 2 seconds, the auctions with the most bids, as
/// the multiset of (auction, bids) the query's changelog ends with.
pub fn q5(bids: &[BidRow]) -> std::collections::BTreeMap<(i64, i64), usize> {
    use std::collections::{BTreeMap, HashMap};
    let mut counts: HashMap<(i64, i64), i64> = HashMap::new(); // (window start, auction) -> bids
    for b in bids {
        let last = b.5 .0.div_euclid(2_000) * 2_000;
        for k in 0..5 {
            *counts.entry((last - k * 2_000, b.0)).or_insert(0) += 1;
        }
    }
    let mut max: HashMap<i64, i64> = HashMap::new();
    for ((start, _), n) in &counts {
        let m = max.entry(*start).or_insert(*n);
        *m = (*m).max(*n);
    }
    let mut out = BTreeMap::new();
    for ((start, auction), n) in &counts {
        if *n >= max[start] {
            *out.entry((*auction, *n)).or_insert(0) += 1;
        }
    }
    out
}
