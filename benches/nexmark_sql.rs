//! Nexmark q0-q5, q7, q8 in flow SQL, the same queries in the flow DSL, and as
//! hand-written loops, over pre-generated events (generating them is slower than the queries).
//!
//! Every run starts from its own copy of the events (made before the clock starts); flow
//! reads them with `from_collection` at parallelism 1 into a `DiscardSink`, the loop consumes
//! its copy and `black_box`es each output row. Each SQL and DSL query's output is first
//! checked against the loop's.
//!
//! ```text
//! cargo bench --bench nexmark_sql
//! FLOW_BENCH_SCALE=0.1 FLOW_BENCH_RUNS=1 cargo bench --bench nexmark_sql   # quick check
//! ```

#[path = "../tests/nexmark_common/mod.rs"]
mod nexmark_common;

use flow::prelude::*;
use flow::table::SqlTimestamp;
use flow::Sink;
use nexmark_common::{events, AuctionRow, BidRow, PersonRow};
use std::hint::black_box;
use std::time::{Duration, Instant};

const EVENTS: f64 = 4_000_000.0;

type Q0 = (i64, i64, i64, SqlTimestamp, String);
type Q1 = (i64, i64, f64, SqlTimestamp, String);
type Q3 = (String, String, String, i64);

fn sql_q0<S: Sink<Q0>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bid = from_data_stream(from_collection(bids), "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING");
        sql_query("SELECT auction, bidder, price, dateTime, extra FROM bid").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q1<S: Sink<Q1>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bid = from_data_stream(from_collection(bids), "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING");
        sql_query("SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q2<S: Sink<(i64, i64)>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bid = from_data_stream(from_collection(bids), "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING");
        sql_query("SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q3<S: Sink<Q3>>(people: Vec<PersonRow>, auctions: Vec<AuctionRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let person = from_data_stream(from_collection(people), "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, dateTime TIMESTAMP(3), extra STRING");
        let auction = from_data_stream(from_collection(auctions), "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING");
        sql_query("
            SELECT P.name, P.city, P.state, A.id
            FROM auction AS A INNER JOIN person AS P ON A.seller = P.id
            WHERE A.category = 10 AND (P.state = 'or' OR P.state = 'id' OR P.state = 'ca')
        ").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

type Changes<T> = flow::table::Changelog<T>;

fn sql_q4<S: Sink<Changes<(i64, i64)>>>(
    auctions: Vec<AuctionRow>,
    bids: Vec<BidRow>,
    sink: S,
) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let auction = from_data_stream(from_collection(auctions), "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING");
        let bid = from_data_stream(from_collection(bids), "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime TIMESTAMP(3), extra STRING");
        sql_query("
            SELECT Q.category, AVG(Q.final)
            FROM (
                SELECT MAX(B.price) AS final, A.category
                FROM auction A, bid B
                WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
                GROUP BY A.id, A.category
            ) Q
            GROUP BY Q.category
        ").to_changelog_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q5<S: Sink<Changes<(i64, i64)>>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bid = from_data_stream(
            from_collection(bids, Watermarks::monotonous()).timestamps(|b| b.5.millis()),
            "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime.rowtime TIMESTAMP(3), extra STRING"
        );
        sql_query("
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
        ").to_changelog_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q7<S: Sink<Q0>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bid = from_data_stream(
            from_collection(bids, Watermarks::monotonous()).timestamps(|b| b.5.millis()),
            "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, dateTime.rowtime TIMESTAMP(3), extra STRING"
        );
        sql_query("
            SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra
            FROM bid B
            JOIN (
                SELECT MAX(price) AS maxprice, window_end AS dateTime
                FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
                GROUP BY window_start, window_end
            ) B1
            ON B.price = B1.maxprice
            WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime
        ").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

fn sql_q8<S: Sink<(i64, String, SqlTimestamp)>>(
    people: Vec<PersonRow>,
    auctions: Vec<AuctionRow>,
    sink: S,
) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let person = from_data_stream(
            from_collection(people, Watermarks::monotonous()).timestamps(|p| p.6.millis()),
            "id BIGINT, name STRING, emailAddress STRING, creditCard STRING, city STRING, state STRING, dateTime.rowtime TIMESTAMP(3), extra STRING"
        );
        let auction = from_data_stream(
            from_collection(auctions, Watermarks::monotonous()).timestamps(|a| a.5.millis()),
            "id BIGINT, itemName STRING, description STRING, initialBid BIGINT, reserve BIGINT, dateTime.rowtime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, category BIGINT, extra STRING"
        );
        sql_query("
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
        ").to_append_stream().sink_to(sink);
    }
    timed(&env)
}

/// The final rows of a changelog, as a multiset.
fn final_rows<T: Ord>(changes: Vec<Changes<T>>) -> std::collections::BTreeMap<T, usize> {
    let mut rows = std::collections::BTreeMap::new();
    for c in changes {
        let n = rows.entry(c.row).or_insert(0usize);
        if c.kind.is_accumulate() {
            *n += 1;
        } else {
            *n -= 1;
        }
    }
    rows.retain(|_, n| *n > 0);
    rows
}

fn dsl_q0(bids: Vec<BidRow>) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        from_collection(bids).map(|b: BidRow| (b.0, b.1, b.2, b.5, b.6)).sink_to(DiscardSink);
    }
    timed(&env)
}

fn dsl_q1(bids: Vec<BidRow>) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        from_collection(bids).map(|b: BidRow| (b.0, b.1, 0.908 * b.2 as f64, b.5, b.6)).sink_to(DiscardSink);
    }
    timed(&env)
}

fn dsl_q2(bids: Vec<BidRow>) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        from_collection(bids).filter(|b: &BidRow| b.0 % 123 == 0).map(|b: BidRow| (b.0, b.2)).sink_to(DiscardSink);
    }
    timed(&env)
}

/// q3's join as a flow user writes it: each side kept per key (`ListState`), every new row
/// paired with the other side's rows so far.
#[derive(Clone, Default, KeyedState)]
struct SellerJoin {
    #[state]
    sellers: ListState<(String, String, String)>,
    #[state]
    auctions: ListState<i64>,
}

#[co_process_function]
impl SellerJoin {
    fn process1(&mut self, a: AuctionRow, _ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<Q3>) {
        for (name, city, state) in self.sellers.get() {
            out.push((name.clone(), city.clone(), state.clone(), a.0));
        }
        self.auctions.add(a.0);
    }
    fn process2(&mut self, p: PersonRow, _ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<Q3>) {
        for a in self.auctions.get() {
            out.push((p.1.clone(), p.4.clone(), p.5.clone(), *a));
        }
        self.sellers.add((p.1, p.4, p.5));
    }
}

fn dsl_q3<S: Sink<Q3>>(people: Vec<PersonRow>, auctions: Vec<AuctionRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let auctions = from_collection(auctions).filter(|a: &AuctionRow| a.8 == 10).key_by(|a| a.7);
        let people = from_collection(people)
            .filter(|p: &PersonRow| ["or", "id", "ca"].contains(&p.5.as_str()))
            .key_by(|p| p.0);
        auctions.connect(people).process(SellerJoin::default()).sink_to(sink);
    }
    timed(&env)
}

/// q4's winning bid per auction: the auction's bounds once it is known (bids that come
/// earlier wait for it), and its highest bid in them so far; every new highest bid goes out as
/// `(category, previous highest, new highest)`.
#[derive(Clone, Default, KeyedState)]
struct WinningBid {
    #[state]
    auction: ValueState<(i64, i64, i64)>, // start, end, category
    #[state]
    early: ListState<(i64, i64)>, // bids before their auction: time, price
    #[state]
    best: ValueState<i64>,
}

type Winning = (i64, Option<i64>, i64);

impl WinningBid {
    fn offer(
        &mut self,
        (start, end, category): (i64, i64, i64),
        at: i64,
        price: i64,
    ) -> Option<Winning> {
        let best = self.best.value();
        if start <= at && at <= end && best.is_none_or(|b| price > b) {
            self.best.update(price);
            return Some((category, best, price));
        }
        None
    }
}

#[co_process_function]
impl WinningBid {
    fn process1(
        &mut self,
        a: AuctionRow,
        _ctx: &mut ProcessContext<'_, i64>,
        out: &mut Vec<Winning>,
    ) {
        let bounds = (a.5 .0, a.6 .0, a.8);
        self.auction.update(bounds);
        let early = std::mem::take(&mut self.early);
        for (at, price) in early.get() {
            out.extend(self.offer(bounds, *at, *price));
        }
    }
    fn process2(&mut self, b: BidRow, _ctx: &mut ProcessContext<'_, i64>, out: &mut Vec<Winning>) {
        match self.auction.value() {
            Some(bounds) => out.extend(self.offer(bounds, b.5 .0, b.2)),
            None => self.early.add((b.5 .0, b.2)),
        }
    }
}

/// q4 in the DSL: the winning bids, then per category a rolling sum and count of them (a new
/// highest bid replaces its auction's previous one), as `(category, average)` after each.
fn dsl_q4<S: Sink<(i64, i64)>>(auctions: Vec<AuctionRow>, bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let auctions = from_collection(auctions).key_by(|a: &AuctionRow| a.0);
        let bids = from_collection(bids).key_by(|b: &BidRow| b.0);
        auctions
            .connect(bids)
            .process(WinningBid::default())
            .map(|(category, previous, price): Winning| (category, price - previous.unwrap_or(0), i64::from(previous.is_none())))
            .key_by(|w| w.0)
            .reduce(|a, b| (a.0, a.1 + b.1, a.2 + b.2))
            .map(|(category, sum, n)| (category, sum / n))
            .sink_to(sink);
    }
    timed(&env)
}

/// Counts rows.
#[derive(Clone)]
struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = i64;
    type Out = i64;
    fn create_accumulator(&mut self) -> i64 {
        0
    }
    fn add(&mut self, _: T, acc: &mut i64) {
        *acc += 1;
    }
    fn get_result(&mut self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&mut self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// q5 in the DSL: bids per auction and sliding window, then per window (its results share a
/// timestamp, its last millisecond, so a 2-second tumbling window holds them all) the auctions
/// with the most.
fn dsl_q5<S: Sink<(i64, i64)>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        from_collection(bids, Watermarks::monotonous())
            .timestamps(|b: &BidRow| b.5.millis())
            .key_by(|b| b.0)
            .window(SlidingEventTimeWindows::of(Duration::from_secs(10), Duration::from_secs(2)))
            .aggregate(Count, |auction, window, n, out| out.push((window.start, *auction, n)))
            .key_by(|c: &(i64, i64, i64)| c.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(2)))
            .process(|_start, _window, counts, out| {
                let max = counts.iter().map(|c| c.2).max().unwrap_or(0);
                out.extend(counts.iter().filter(|c| c.2 == max).map(|c| (c.1, c.2)));
            })
            .sink_to(sink);
    }
    timed(&env)
}

/// The highest price.
#[derive(Clone)]
struct MaxPrice;

impl AggregateFunction<BidRow> for MaxPrice {
    type Acc = i64;
    type Out = i64;
    fn create_accumulator(&mut self) -> i64 {
        i64::MIN
    }
    fn add(&mut self, b: BidRow, acc: &mut i64) {
        *acc = (*acc).max(b.2);
    }
    fn get_result(&mut self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&mut self, a: i64, b: i64) -> i64 {
        a.max(b)
    }
}

/// q7 in the DSL: each 10-second window's highest price, stamped with the window's last
/// millisecond, interval-joined back to the bids of that price from `end - 10 s` to `end`.
fn dsl_q7<S: Sink<Q0>>(bids: Vec<BidRow>, sink: S) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    flow! { env =>
        let bids = from_collection(bids, Watermarks::monotonous()).timestamps(|b: &BidRow| b.5.millis());
        let highest = bids
            .window_all(TumblingEventTimeWindows::of(Duration::from_secs(10)))
            .aggregate(MaxPrice, |window, price, out| out.push((window.end, price)));
        bids.key_by(|b| b.2)
            .interval_join(highest.key_by(|h: &(i64, i64)| h.1))
            .between(-1, 9_999)
            .process(|b, _, out| out.push((b.0, b.2, b.1, b.5, b.6.clone())))
            .sink_to(sink);
    }
    timed(&env)
}

/// q8 in the DSL: each person once per 10-second window, each seller once per window, the two
/// window-joined by id.
fn dsl_q8<S: Sink<(i64, String, SqlTimestamp)>>(
    people: Vec<PersonRow>,
    auctions: Vec<AuctionRow>,
    sink: S,
) -> Duration {
    let env = StreamEnv::new().with_parallelism(1);
    let window = TumblingEventTimeWindows::of(Duration::from_secs(10));
    flow! { env =>
        let people = from_collection(people, Watermarks::monotonous())
            .timestamps(|p: &PersonRow| p.6.millis())
            .map(|p: PersonRow| (p.0, p.1))
            .key_by(|p| p.0)
            .window(window.clone())
            .reduce(|first, _| first);
        let sellers = from_collection(auctions, Watermarks::monotonous())
            .timestamps(|a: &AuctionRow| a.5.millis())
            .map(|a: AuctionRow| a.7)
            .key_by(|s| *s)
            .window(window.clone())
            .reduce(|first, _| first);
        people.key_by(|p: &(i64, String)| p.0)
            .window_join(sellers.key_by(|s: &i64| *s), window)
            .process(|p, _, ctx, out| out.push((p.0, p.1.clone(), SqlTimestamp(ctx.timestamp() + 1 - 10_000))))
            .sink_to(sink);
    }
    timed(&env)
}

fn timed(env: &StreamEnv) -> Duration {
    let start = Instant::now();
    env.execute("nexmark").expect("the query runs");
    start.elapsed()
}

/// The loops, each on a new thread as flow runs a job (see `stateless_chain`).
fn on_thread(f: impl FnOnce() + Send) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| s.spawn(f).join().expect("the loop runs"));
    start.elapsed()
}

#[inline(never)]
fn loop_q0(bids: Vec<BidRow>) {
    for b in bids {
        black_box((b.0, b.1, b.2, b.5, b.6));
    }
}

#[inline(never)]
fn loop_q1(bids: Vec<BidRow>) {
    for b in bids {
        black_box((b.0, b.1, 0.908 * b.2 as f64, b.5, b.6));
    }
}

#[inline(never)]
fn loop_q2(bids: Vec<BidRow>) {
    for b in bids {
        if b.0 % 123 == 0 {
            black_box((b.0, b.2));
        }
    }
}

/// q3 as a streaming loop: the events in their order, each side kept by key as the join
/// keeps it.
#[inline(never)]
fn loop_q3(people: Vec<PersonRow>, auctions: Vec<AuctionRow>) {
    use std::collections::HashMap;
    let mut sellers: HashMap<i64, Vec<(String, String, String)>> = HashMap::new();
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    for p in people {
        if ["or", "id", "ca"].contains(&p.5.as_str()) {
            for a in pending.get(&p.0).into_iter().flatten() {
                black_box((p.1.clone(), p.4.clone(), p.5.clone(), *a));
            }
            sellers.entry(p.0).or_default().push((p.1, p.4, p.5));
        }
    }
    for a in auctions {
        if a.8 == 10 {
            for (name, city, state) in sellers.get(&a.7).into_iter().flatten() {
                black_box((name.clone(), city.clone(), state.clone(), a.0));
            }
            pending.entry(a.7).or_default().push(a.0);
        }
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn sorted<T: PartialOrd>(mut v: Vec<T>) -> Vec<T> {
    v.sort_by(|a, b| a.partial_cmp(b).expect("comparable"));
    v
}

fn main() {
    let scale = env_f64("FLOW_BENCH_SCALE", 1.0);
    let runs = env_f64("FLOW_BENCH_RUNS", 3.0).max(1.0) as usize;
    let n = ((EVENTS * scale) as usize).max(1000);
    let start = Instant::now();
    let (people, auctions, bids) = events(n);
    println!(
        "nexmark_sql: {n} events ({} people, {} auctions, {} bids) generated in {:.1} s",
        people.len(),
        auctions.len(),
        bids.len(),
        start.elapsed().as_secs_f64()
    );

    // Each SQL query computes what its loop computes before its speed means anything.
    let check = |name: &str, ok: bool| {
        assert!(ok, "{name}: the SQL query's output differs from the loop's")
    };
    let c = CollectHandle::new();
    sql_q0(bids.clone(), c.sink());
    check("q0", sorted(c.take()) == sorted(nexmark_common::q0(&bids)));
    let c = CollectHandle::new();
    sql_q1(bids.clone(), c.sink());
    check("q1", sorted(c.take()) == sorted(nexmark_common::q1(&bids)));
    let c = CollectHandle::new();
    sql_q2(bids.clone(), c.sink());
    check("q2", sorted(c.take()) == sorted(nexmark_common::q2(&bids)));
    let c = CollectHandle::new();
    sql_q3(people.clone(), auctions.clone(), c.sink());
    check(
        "q3",
        sorted(c.take()) == sorted(nexmark_common::q3(&people, &auctions)),
    );
    let c = CollectHandle::new();
    sql_q4(auctions.clone(), bids.clone(), c.sink());
    let q4: std::collections::BTreeMap<(i64, i64), usize> = nexmark_common::q4(&auctions, &bids)
        .into_iter()
        .map(|r| (r, 1))
        .collect();
    check("q4", final_rows(c.take()) == q4);
    let c = CollectHandle::new();
    sql_q5(bids.clone(), c.sink());
    check("q5", final_rows(c.take()) == nexmark_common::q5(&bids));
    let c = CollectHandle::new();
    sql_q7(bids.clone(), c.sink());
    check("q7", sorted(c.take()) == sorted(nexmark_common::q7(&bids)));
    let c = CollectHandle::new();
    sql_q8(people.clone(), auctions.clone(), c.sink());
    check(
        "q8",
        sorted(c.take()) == sorted(nexmark_common::q8(&people, &auctions)),
    );
    let c = CollectHandle::new();
    dsl_q3(people.clone(), auctions.clone(), c.sink());
    check(
        "DSL q3",
        sorted(c.take()) == sorted(nexmark_common::q3(&people, &auctions)),
    );
    let c = CollectHandle::new();
    dsl_q4(auctions.clone(), bids.clone(), c.sink());
    // The last average of each category (one subtask: in order).
    let last: std::collections::BTreeMap<i64, i64> = c.take().into_iter().collect();
    check("DSL q4", last == nexmark_common::q4(&auctions, &bids));
    let c = CollectHandle::new();
    dsl_q5(bids.clone(), c.sink());
    let mut q5 = std::collections::BTreeMap::new();
    for r in c.take() {
        *q5.entry(r).or_insert(0usize) += 1;
    }
    check("DSL q5", q5 == nexmark_common::q5(&bids));
    let c = CollectHandle::new();
    dsl_q7(bids.clone(), c.sink());
    check(
        "DSL q7",
        sorted(c.take()) == sorted(nexmark_common::q7(&bids)),
    );
    let c = CollectHandle::new();
    dsl_q8(people.clone(), auctions.clone(), c.sink());
    check(
        "DSL q8",
        sorted(c.take()) == sorted(nexmark_common::q8(&people, &auctions)),
    );
    println!(
        "nexmark_sql: q0-q5, q7, q8 in SQL and in the DSL checked against the loops; \
         parallelism 1, best of {runs} runs"
    );

    println!(
        "{:<6} {:>10} {:>14} {:>14} {:>14} {:>9} {:>9}",
        "query", "events", "SQL Mev/s", "DSL Mev/s", "loop Mev/s", "SQL/loop", "DSL/loop"
    );
    let best = |f: &mut dyn FnMut() -> Duration| (0..runs).map(|_| f()).min().expect("a run");
    let report = |q: &str, events: usize, sql: Duration, dsl: Duration, hand: Duration| {
        let rate = |d: Duration| events as f64 / d.as_secs_f64() / 1e6;
        let ratio = |d: Duration| hand.as_secs_f64() / d.as_secs_f64();
        println!(
            "{:<6} {:>10} {:>14.2} {:>14.2} {:>14.2} {:>8.2}x {:>8.2}x",
            q,
            events,
            rate(sql),
            rate(dsl),
            rate(hand),
            ratio(sql),
            ratio(dsl),
        );
    };
    let nb = bids.len();
    let sql = best(&mut || sql_q0(bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q0(bids.clone()));
    let hand = best(&mut || {
        let b = bids.clone();
        on_thread(move || loop_q0(b))
    });
    report("q0", nb, sql, dsl, hand);
    let sql = best(&mut || sql_q1(bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q1(bids.clone()));
    let hand = best(&mut || {
        let b = bids.clone();
        on_thread(move || loop_q1(b))
    });
    report("q1", nb, sql, dsl, hand);
    let sql = best(&mut || sql_q2(bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q2(bids.clone()));
    let hand = best(&mut || {
        let b = bids.clone();
        on_thread(move || loop_q2(b))
    });
    report("q2", nb, sql, dsl, hand);
    let n3 = people.len() + auctions.len();
    let sql = best(&mut || sql_q3(people.clone(), auctions.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q3(people.clone(), auctions.clone(), DiscardSink));
    let hand = best(&mut || {
        let (p, a) = (people.clone(), auctions.clone());
        on_thread(move || loop_q3(p, a))
    });
    report("q3", n3, sql, dsl, hand);
    // q4, q5, q7, q8: the loops compute the final result in one pass over all events (no
    // changelog, no retractions), the SQL the changelog that ends in it.
    let na = auctions.len() + bids.len();
    let sql = best(&mut || sql_q4(auctions.clone(), bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q4(auctions.clone(), bids.clone(), DiscardSink));
    let hand = best(&mut || {
        let (a, b) = (auctions.clone(), bids.clone());
        on_thread(move || {
            black_box(nexmark_common::q4(&a, &b));
        })
    });
    report("q4", na, sql, dsl, hand);
    let sql = best(&mut || sql_q5(bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q5(bids.clone(), DiscardSink));
    let hand = best(&mut || {
        let b = bids.clone();
        on_thread(move || {
            black_box(nexmark_common::q5(&b));
        })
    });
    report("q5", nb, sql, dsl, hand);
    let sql = best(&mut || sql_q7(bids.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q7(bids.clone(), DiscardSink));
    let hand = best(&mut || {
        let b = bids.clone();
        on_thread(move || {
            black_box(nexmark_common::q7(&b));
        })
    });
    report("q7", nb, sql, dsl, hand);
    let sql = best(&mut || sql_q8(people.clone(), auctions.clone(), DiscardSink));
    let dsl = best(&mut || dsl_q8(people.clone(), auctions.clone(), DiscardSink));
    let hand = best(&mut || {
        let (p, a) = (people.clone(), auctions.clone());
        on_thread(move || {
            black_box(nexmark_common::q8(&p, &a));
        })
    });
    report("q8", n3, sql, dsl, hand);
}
