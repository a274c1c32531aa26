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
