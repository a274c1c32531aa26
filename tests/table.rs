//! Tables and SQL inside `flow!`: DDL connectors, queries planned at build time, conversions
//! between DataStreams and tables, inserts, NULL semantics, and errors at run time.

use flow::prelude::*;
use flow::table::{Changelog, RowKind, SqlTimestamp};

#[derive(Row, Clone, Debug, PartialEq)]
struct Order {
    id: i64,
    product: String,
    amount: i32,
    note: Option<String>,
}

fn orders() -> Vec<Order> {
    vec![
        Order {
            id: 1,
            product: "apple".into(),
            amount: 3,
            note: None,
        },
        Order {
            id: 2,
            product: "banana".into(),
            amount: 0,
            note: Some("ripe".into()),
        },
        Order {
            id: 3,
            product: "cherry".into(),
            amount: 12,
            note: Some("".into()),
        },
        Order {
            id: 4,
            product: "avocado".into(),
            amount: 7,
            note: None,
        },
    ]
}

#[test]
fn projection_and_where_over_named_columns() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(orders()), "id BIGINT, product STRING, amount INT, note STRING NULL");
        let out = sql_query("
            SELECT id * 2 + 1 AS x, UPPER(product) AS p, amount / 2 AS half, amount % 5 AS m,
                   CHAR_LENGTH(product) AS len, product || '!' AS bang,
                   CAST(amount AS DOUBLE) / 4 AS quarter, CAST(id AS STRING) AS s
            FROM t
            WHERE amount > 0 AND product LIKE 'a%'
        ").to_append_stream().collect();
    }
    env.execute("projection").unwrap();
    assert_eq!(
        out.take(),
        vec![
            (
                3i64,
                "APPLE".to_string(),
                1i32,
                3i32,
                5i32,
                "apple!".to_string(),
                0.75f64,
                "1".to_string()
            ),
            (
                9,
                "AVOCADO".into(),
                3,
                2,
                7,
                "avocado!".into(),
                1.75,
                "4".into()
            ),
        ]
    );
}

#[test]
fn nulls_follow_three_valued_logic() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(orders()), "id BIGINT, product STRING, amount INT, note STRING NULL");
        let out = sql_query("
            SELECT id,
                   note IS NULL AS missing,
                   CHAR_LENGTH(note) AS len,
                   COALESCE(note, 'none') AS note,
                   note = 'ripe' OR amount > 10 AS flag,
                   note = 'ripe' AND amount > 10 AS both,
                   CASE WHEN amount > 5 THEN 'big' WHEN amount > 0 THEN 'small' END AS size
            FROM t
        ").to_append_stream().collect();
        // NULL is not true: a row whose condition is NULL is dropped.
        let kept = sql_query("SELECT id FROM t WHERE note <> 'ripe'").to_append_stream().collect();
    }
    env.execute("nulls").unwrap();
    assert_eq!(
        out.take(),
        vec![
            (
                1i64,
                true,
                None,
                "none".to_string(),
                None,
                Some(false),
                Some("small".to_string())
            ),
            (
                2,
                false,
                Some(4i32),
                "ripe".into(),
                Some(true),
                Some(false),
                None
            ),
            (
                3,
                false,
                Some(0),
                "".into(),
                Some(true),
                Some(false),
                Some("big".into())
            ),
            (
                4,
                true,
                None,
                "none".into(),
                None,
                Some(false),
                Some("big".into())
            ),
        ]
    );
    assert_eq!(kept.take(), vec![(3i64,)]);
}

#[test]
fn in_between_substring_cast_and_math() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(orders()), "id BIGINT, product STRING, amount INT, note STRING NULL");
        let out = sql_query("
            SELECT SUBSTRING(product FROM 2 FOR 3), TRIM(LEADING FROM CONCAT('  ', product)),
                   REPLACE(product, 'a', 'A'), POSITION('an' IN product), ABS(amount - 10),
                   MOD(amount, 4), POWER(amount, 2), CAST('42' AS INT) + amount,
                   TRY_CAST(product AS INT), -amount
            FROM t
            WHERE id IN (1, 3) OR amount BETWEEN 5 AND 8
        ").to_append_stream().collect();
    }
    env.execute("functions").unwrap();
    let rows = out.take();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        (
            "ppl".to_string(),
            "apple".to_string(),
            "Apple".to_string(),
            0i32,
            7i32,
            3i32,
            9.0f64,
            45i32,
            None::<i32>,
            -3i32
        )
    );
    assert_eq!(rows[1].0, "her");
    assert_eq!(rows[1].4, 2);
    assert_eq!(rows[2].2, "AvocAdo");
    assert_eq!(rows[2].3, 0);
}

#[test]
fn data_stream_rows_by_field_name_and_star() {
    let env = StreamEnv::new();
    flow! { env =>
        let ds = from_collection(orders());
        let t = from_data_stream(ds);
        // Without column names the row's own fields are read by name; `*` keeps the rows.
        let cheap = sql_query("SELECT product, amount * 2 AS twice FROM t WHERE amount < 5").to_append_stream().collect();
        let all = sql_query("SELECT * FROM t WHERE id > 2").to_append_stream().collect();
        let tuples = from_data_stream(from_collection(vec![(1, "a"), (2, "b")]));
        let firsts = sql_query("SELECT f1, f0 + 1 FROM tuples").to_append_stream().collect();
    }
    env.execute("fields").unwrap();
    assert_eq!(
        cheap.take(),
        vec![("apple".to_string(), 6), ("banana".to_string(), 0)]
    );
    assert_eq!(all.take(), orders()[2..].to_vec());
    assert_eq!(firsts.take(), vec![("a", 2), ("b", 3)]);
}

#[derive(Row, Clone, Debug, PartialEq)]
struct Sale {
    product: String,
    total: i64,
}

#[test]
fn views_union_all_and_conversions() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(orders()), "id, product, amount, note");
        execute_sql("CREATE VIEW big AS SELECT product, amount FROM t WHERE amount > 5");
        execute_sql("CREATE VIEW small AS SELECT product, amount FROM t WHERE amount <= 5");
        let both = sql_query("SELECT product, CAST(amount AS BIGINT) AS total FROM big UNION ALL SELECT product, CAST(amount AS BIGINT) AS total FROM small");
        let sales = both.to_append_stream::<Sale>().collect();
        let retract = both.to_retract_stream().collect();
        let changes = both.to_changelog_stream().collect();
    }
    env.execute("views").unwrap();
    let mut sales = sales.take();
    sales.sort_by_key(|s| s.total);
    assert_eq!(
        sales.iter().map(|s| s.total).collect::<Vec<_>>(),
        vec![0, 3, 7, 12]
    );
    assert_eq!(
        sales[2],
        Sale {
            product: "avocado".into(),
            total: 7
        }
    );
    let retract = retract.take();
    assert_eq!(retract.len(), 4);
    assert!(retract.iter().all(|(add, _)| *add));
    let changes = changes.take();
    assert!(changes.iter().all(|c| c.kind == RowKind::Insert));
    let mut text: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
    text.sort();
    assert_eq!(
        text,
        vec![
            "+I[apple, 3]",
            "+I[avocado, 7]",
            "+I[banana, 0]",
            "+I[cherry, 12]"
        ]
    );
}

#[test]
fn datagen_tables_follow_their_options() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        execute_sql("
            CREATE TABLE gen (
              id BIGINT NOT NULL,
              score INT,
              name STRING,
              ratio DOUBLE
            ) WITH (
              'connector' = 'datagen',
              'rows-per-second' = '100000',
              'fields.id.kind' = 'sequence',
              'fields.id.start' = '1',
              'fields.id.end' = '500',
              'fields.score.min' = '-5',
              'fields.score.max' = '5',
              'fields.name.length' = '6',
              'fields.ratio.min' = '10',
              'fields.ratio.max' = '20'
            )
        ");
        let rows = sql_query("SELECT id, score, name, ratio FROM gen").to_append_stream().collect();
        execute_sql("CREATE TABLE limited (a INT) WITH ('connector' = 'datagen', 'number-of-rows' = '7')");
        let limited = sql_query("SELECT a FROM limited").to_append_stream().collect();
    }
    env.execute("datagen").unwrap();
    let mut rows = rows.take();
    rows.sort_by_key(|r| r.0);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<i64>>(),
        (1..=500).collect::<Vec<_>>()
    );
    for (_, score, name, ratio) in &rows {
        assert!((-5..=5).contains(&score.unwrap()));
        assert_eq!(name.as_ref().unwrap().len(), 6);
        assert!((10.0..=20.0).contains(&ratio.unwrap()));
    }
    assert_eq!(limited.take().len(), 7);
}

#[test]
fn insert_into_fills_columns_by_name_and_widens() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE src (a INT NOT NULL, b STRING) WITH ('connector' = 'datagen', 'number-of-rows' = '3', 'fields.a.kind' = 'sequence', 'fields.a.start' = '1', 'fields.a.end' = '3')");
        execute_sql("CREATE TABLE out (x BIGINT, label STRING, extra INT) WITH ('connector' = 'print', 'print-identifier' = 'sql')");
        execute_sql("INSERT INTO out (label, x) SELECT 'row', a * 100 FROM src WHERE a <> 2");
    }
    let result = env.execute("insert").unwrap();
    assert_eq!(
        result
            .operator("insert into out")
            .expect("the sink")
            .rows_in,
        2
    );
}

#[test]
fn a_bad_cast_fails_the_job_naming_the_value() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(vec!["1".to_string(), "x".to_string()]), "s STRING");
        let out = sql_query("SELECT CAST(s AS INT) FROM t").to_append_stream().collect();
    }
    let err = env.execute("bad cast").unwrap_err().to_string();
    assert!(err.contains("CAST('x' AS INT)"), "{err}");
    let _ = out;
}

#[test]
fn changelog_rows_print_as_flink_prints_them() {
    let row = Changelog {
        kind: RowKind::UpdateAfter,
        row: (Some(1.0f64), "a".to_string(), None::<i32>),
    };
    assert_eq!(row.to_string(), "+U[1.0, a, null]");
}

#[test]
fn group_by_emits_a_changelog_with_retractions() {
    let env = StreamEnv::new();
    flow! { env =>
        let words = from_data_stream(from_collection(vec!["a", "b", "a", "c", "a", "b"]), "w STRING");
        let counts = sql_query("SELECT w, COUNT(*) AS n FROM words GROUP BY w");
        let changes = counts.to_changelog_stream().collect();
        let retract = counts.to_retract_stream().collect();
    }
    env.execute("group by").unwrap();
    let text: Vec<String> = changes.take().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "+I[a, 1]", "+I[b, 1]", "-U[a, 1]", "+U[a, 2]", "+I[c, 1]", "-U[a, 2]", "+U[a, 3]",
            "-U[b, 1]", "+U[b, 2]",
        ]
    );
    let retract = retract.take();
    assert_eq!(retract.len(), 9);
    assert_eq!(retract[2], (false, ("a".to_string(), 1i64)));
    assert_eq!(retract[3], (true, ("a".to_string(), 2i64)));
}

#[test]
fn aggregates_having_and_a_global_group() {
    let env = StreamEnv::new();
    flow! { env =>
        let t = from_data_stream(from_collection(orders()), "id BIGINT, product STRING, amount INT, note STRING NULL");
        execute_sql("
            CREATE VIEW by_letter AS
            SELECT SUBSTRING(product FROM 1 FOR 1) AS letter, COUNT(*) AS n, SUM(amount) AS total,
                   MIN(amount) AS lo, MAX(product) AS last, AVG(amount) AS mean,
                   COUNT(note) AS notes, COUNT(DISTINCT amount % 2) AS parities
            FROM t
            GROUP BY SUBSTRING(product FROM 1 FOR 1)
        ");
        let all = sql_query("SELECT * FROM by_letter").to_changelog_stream().collect();
        // HAVING drops a group that stops passing: -D.
        let small = sql_query("SELECT letter, total FROM by_letter WHERE letter <> 'b'").to_changelog_stream().collect();
        let having = sql_query("SELECT product, SUM(amount) AS s FROM t GROUP BY product HAVING SUM(amount) < 10").to_changelog_stream().collect();
        let global = sql_query("SELECT COUNT(*), MAX(amount) + 1 FROM t WHERE amount > 0").to_retract_stream().collect();
    }
    env.execute("aggregates").unwrap();
    let all: Vec<String> = all.take().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        all,
        vec![
            "+I[a, 1, 3, 3, apple, 3, 0, 1]",
            "+I[b, 1, 0, 0, banana, 0, 1, 1]",
            "+I[c, 1, 12, 12, cherry, 12, 1, 1]",
            "-U[a, 1, 3, 3, apple, 3, 0, 1]",
            "+U[a, 2, 10, 3, avocado, 5, 0, 1]",
        ]
    );
    let small: Vec<String> = small.take().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        small,
        vec!["+I[a, 3]", "+I[c, 12]", "-U[a, 3]", "+U[a, 10]"]
    );
    let having: Vec<String> = having.take().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        having,
        vec!["+I[apple, 3]", "+I[banana, 0]", "+I[avocado, 7]"]
    );
    let global = global.take();
    assert_eq!(global.last(), Some(&(true, (3i64, 13i32))));
    assert_eq!(global.len(), 5); // +I, then -U/+U twice
}

#[test]
fn an_updating_table_prints_its_changes() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE src (k INT NOT NULL) WITH ('connector' = 'datagen', 'number-of-rows' = '4', 'fields.k.kind' = 'sequence', 'fields.k.start' = '1', 'fields.k.end' = '4')");
        execute_sql("CREATE TABLE out (parity INT, n BIGINT) WITH ('connector' = 'print')");
        execute_sql("INSERT INTO out SELECT k % 2, COUNT(*) FROM src GROUP BY k % 2");
    }
    let result = env.execute("updating insert").unwrap();
    // +I, +I, -U, +U, -U, +U
    assert_eq!(
        result
            .operator("insert into out")
            .expect("the sink")
            .rows_in,
        6
    );
}

/// (auction, price, time in ms): bids in event time.
fn bids() -> Vec<(i64, i64, i64)> {
    vec![
        (1, 10, 1_000),
        (2, 20, 1_500),
        (1, 5, 4_000),
        (1, 7, 11_000),
        (2, 1, 12_000),
    ]
}

fn ts(ms: i64) -> SqlTimestamp {
    SqlTimestamp(ms)
}

#[test]
fn window_functions_aggregate_each_window_once() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        let stream = from_collection(bids(), Watermarks::monotonous()).timestamps(|b| b.2);
        let t = from_data_stream(stream, "auction BIGINT, price BIGINT, ts.rowtime");
        let tumble = sql_query("
            SELECT window_start, window_end, auction, COUNT(*) AS n, SUM(price) AS total
            FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))
            GROUP BY window_start, window_end, auction
        ").to_append_stream().collect();
        let hop = sql_query("
            SELECT window_start, window_end, MAX(price) AS top
            FROM TABLE(HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND))
            GROUP BY window_start, window_end
        ").to_append_stream().collect();
        let session = sql_query("
            SELECT auction, window_start, window_end, COUNT(*) AS n
            FROM TABLE(SESSION(TABLE t, DESCRIPTOR(ts), INTERVAL '2' SECOND))
            GROUP BY auction, window_start, window_end
            HAVING COUNT(*) >= 1
        ").to_append_stream().collect();
    }
    env.execute("windows").unwrap();
    let mut tumble = tumble.take();
    tumble.sort_by_key(|r| (r.0, r.2));
    assert_eq!(
        tumble,
        vec![
            (ts(0), ts(10_000), 1i64, 2i64, 15i64),
            (ts(0), ts(10_000), 2, 1, 20),
            (ts(10_000), ts(20_000), 1, 1, 7),
            (ts(10_000), ts(20_000), 2, 1, 1),
        ]
    );
    let mut hop = hop.take();
    hop.sort();
    assert_eq!(
        hop,
        vec![
            (ts(-5_000), ts(5_000), 20i64),
            (ts(0), ts(10_000), 20),
            (ts(5_000), ts(15_000), 7),
            (ts(10_000), ts(20_000), 7),
        ]
    );
    let mut session = session.take();
    session.sort();
    assert_eq!(
        session,
        vec![
            (1i64, ts(1_000), ts(3_000), 1i64),
            (1, ts(4_000), ts(6_000), 1),
            (1, ts(11_000), ts(13_000), 1),
            (2, ts(1_500), ts(3_500), 1),
            (2, ts(12_000), ts(14_000), 1),
        ]
    );
}

#[test]
fn a_watermarked_datagen_table_is_windowed_to_the_last_row() {
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("
            CREATE TABLE events (
              id BIGINT NOT NULL,
              ts TIMESTAMP(3) NOT NULL,
              WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
            ) WITH (
              'connector' = 'datagen',
              'number-of-rows' = '2000',
              'rows-per-second' = '20000',
              'fields.id.kind' = 'sequence',
              'fields.id.start' = '1',
              'fields.id.end' = '2000'
            )
        ");
        let counts = sql_query("
            SELECT window_start, COUNT(*) AS n, COUNT(DISTINCT id) AS ids
            FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '20' MILLISECOND))
            GROUP BY window_start, window_end
        ").to_append_stream().collect();
    }
    env.execute("datagen windows").unwrap();
    let counts = counts.take();
    // Every row is in one window, each window is emitted once, at its end or the input's.
    assert_eq!(counts.iter().map(|r| r.1).sum::<i64>(), 2000);
    assert_eq!(counts.iter().map(|r| r.2).sum::<i64>(), 2000);
    let mut starts: Vec<SqlTimestamp> = counts.iter().map(|r| r.0).collect();
    starts.sort();
    starts.dedup();
    assert_eq!(starts.len(), counts.len());
    assert!(
        counts.len() > 1,
        "2000 rows at 20000 per second span more than one 20 ms window"
    );
}

#[test]
fn filesystem_tables_read_csv_and_json_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("csv")).unwrap();
    std::fs::create_dir(dir.path().join("json")).unwrap();
    std::fs::write(
        dir.path().join("csv/a.csv"),
        "1,apple,2026-12-02 07:30:00.000\n2,banana,2026-12-02 07:30:05.500\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("json/a.json"),
        "{\"id\": 1, \"name\": \"apple\"}\n{\"id\": 2}\nnot json\n{\"id\": 3, \"name\": \"cherry\", \"x\": 1}\n",
    )
    .unwrap();
    // The paths are SQL text fixed when the program is built: the test runs in this directory.
    std::env::set_current_dir(dir.path()).unwrap();
    let env = StreamEnv::new();
    flow! { env =>
        execute_sql("CREATE TABLE fruit (id INT NOT NULL, name STRING, at TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = 'csv', 'format' = 'csv')");
        execute_sql("CREATE TABLE things (id INT NOT NULL, name STRING) WITH ('connector' = 'filesystem', 'path' = 'json', 'format' = 'json', 'json.ignore-parse-errors' = 'true')");
        let fruit = sql_query("SELECT id, name, CAST(at AS STRING) FROM fruit").to_append_stream().collect();
        let things = sql_query("SELECT id, COALESCE(name, '?') FROM things").to_append_stream().collect();
        // Writing: each row a line of the table's format, in FileSink's part files.
        execute_sql("CREATE TABLE out_json (id INT NOT NULL, name STRING, at TIMESTAMP(3)) WITH ('connector' = 'filesystem', 'path' = 'out_json', 'format' = 'json')");
        execute_sql("CREATE TABLE out_csv (name STRING, id BIGINT) WITH ('connector' = 'filesystem', 'path' = 'out_csv', 'format' = 'csv')");
        execute_sql("INSERT INTO out_json SELECT id, UPPER(name), at FROM fruit");
        execute_sql("INSERT INTO out_csv SELECT name, id FROM things");
    }
    env.execute("filesystem").unwrap();
    let lines = |dir: &str| {
        let mut lines: Vec<String> = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{name} left in progress");
            lines.extend(
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
        lines.sort();
        lines
    };
    assert_eq!(
        lines("out_json"),
        vec![
            r#"{"id":1,"name":"APPLE","at":"2026-12-02 07:30:00.000"}"#,
            r#"{"id":2,"name":"BANANA","at":"2026-12-02 07:30:05.500"}"#,
        ]
    );
    assert_eq!(lines("out_csv"), vec![",2", "apple,1", "cherry,3"]);
    assert_eq!(
        fruit.take(),
        vec![
            (
                1,
                Some("apple".to_string()),
                Some("2026-12-02 07:30:00.000".to_string())
            ),
            (
                2,
                Some("banana".to_string()),
                Some("2026-12-02 07:30:05.500".to_string())
            ),
        ]
    );
    assert_eq!(
        things.take(),
        vec![
            (1, "apple".to_string()),
            (2, "?".to_string()),
            (3, "cherry".to_string())
        ]
    );
}

#[test]
fn inner_joins_pair_rows_with_equal_keys() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        let people = from_data_stream(
            from_collection(vec![(1i64, "ann".to_string(), "NY".to_string()), (2, "bob".into(), "SF".into()), (3, "cy".into(), "NY".into())]),
            "id BIGINT, name STRING, city STRING",
        );
        let auctions = from_data_stream(
            from_collection(vec![(10i64, 1i32, "lamp".to_string()), (11, 3, "desk".into()), (12, 1, "pen".into()), (13, 9, "cup".into())]),
            "id BIGINT, seller INT, item STRING",
        );
        // The seller (an INT) is compared with the person's id (a BIGINT): both join as BIGINT.
        let joined = sql_query("
            SELECT p.name, a.item, a.id AS auction
            FROM auctions AS a JOIN people AS p ON a.seller = p.id
            WHERE p.city = 'NY' AND a.id <> 12
        ").to_append_stream().collect();
        let comma = sql_query("SELECT people.name, COUNT(*) AS n FROM people, auctions WHERE people.id = auctions.seller GROUP BY people.name")
            .to_changelog_stream()
            .collect();
    }
    env.execute("joins").unwrap();
    let mut joined = joined.take();
    joined.sort();
    assert_eq!(
        joined,
        vec![
            ("ann".to_string(), "lamp".to_string(), 10i64),
            ("cy".to_string(), "desk".to_string(), 11)
        ]
    );
    let mut last: std::collections::BTreeMap<String, i64> = Default::default();
    for c in comma.take() {
        if c.kind.is_accumulate() {
            last.insert(c.row.0.clone(), c.row.1);
        }
    }
    assert_eq!(
        last,
        [("ann".to_string(), 2i64), ("cy".to_string(), 1)]
            .into_iter()
            .collect()
    );
}

#[test]
fn an_aggregate_of_an_aggregate_takes_its_retractions() {
    let env = StreamEnv::new();
    flow! { env =>
        let words = from_data_stream(from_collection(vec!["a", "b", "a", "b"]), "w STRING");
        // How many words were seen n times, and the greatest of them: its input is updated.
        let by_count = sql_query("
            SELECT n, COUNT(*) AS words, MAX(w) AS top
            FROM (SELECT w, COUNT(*) AS n FROM words GROUP BY w)
            GROUP BY n
        ").to_changelog_stream().collect();
    }
    env.execute("retractions").unwrap();
    let text: Vec<String> = by_count.take().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        text,
        vec![
            "+I[1, 1, a]",
            "-U[1, 1, a]",
            "+U[1, 2, b]", // a once, then b once
            "-U[1, 2, b]",
            "+U[1, 1, b]",
            "+I[2, 1, a]", // a twice
            "-D[1, 1, b]",
            "-U[2, 1, a]",
            "+U[2, 2, b]", // b twice: nothing is seen once
        ]
    );
}

#[test]
fn a_join_bounded_by_event_times_is_an_interval_join() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        // (user, ms): clicks and buys, each in time order.
        let clicks = from_collection(vec![(1i64, 1_000i64), (2, 2_000), (1, 10_000), (3, 20_000)], Watermarks::monotonous()).timestamps(|c| c.1);
        let buys = from_collection(vec![(1i64, 1_500i64), (2, 9_000), (1, 10_200), (3, 19_000)], Watermarks::monotonous()).timestamps(|b| b.1);
        let c = from_data_stream(clicks, "user BIGINT, ts.rowtime");
        let b = from_data_stream(buys, "user BIGINT, ts.rowtime");
        // A buy within a second after a click of the same user.
        let converted = sql_query("
            SELECT c.user, c.ts AS clicked, b.ts AS bought
            FROM c JOIN b ON c.user = b.user
            WHERE b.ts BETWEEN c.ts AND c.ts + INTERVAL '1' SECOND
        ").to_append_stream().collect();
    }
    let result = env.execute("interval join").unwrap();
    let mut converted = converted.take();
    converted.sort();
    assert_eq!(
        converted,
        vec![
            (1i64, SqlTimestamp(1_000), SqlTimestamp(1_500)),
            (1, SqlTimestamp(10_000), SqlTimestamp(10_200)),
        ]
    );
    assert!(
        result
            .operators
            .iter()
            .any(|o| o.name.starts_with("interval join")),
        "planned as an interval join: {:?}",
        result.operators.iter().map(|o| o.name).collect::<Vec<_>>()
    );
}

#[test]
fn views_and_subqueries_keep_the_time_attribute_they_select() {
    let env = StreamEnv::new().with_parallelism(2);
    flow! { env =>
        // (visitor, url, ms), in time order.
        let clicks = from_collection(vec![
            (1i64, "/shop/a", 100i64), (2, "/home", 200), (1, "/shop/b", 900),
            (2, "/shop/c", 1_100), (1, "/home", 1_200), (1, "/shop/d", 2_500),
        ], Watermarks::monotonous()).timestamps(|c| c.2);
        let c = from_data_stream(clicks, "visitor BIGINT, url STRING, ts.rowtime");
        // The view selects `ts` as it is: still the time attribute, so a window function reads
        // the view.
        execute_sql("CREATE VIEW shop AS SELECT visitor, ts FROM c WHERE url LIKE '/shop%'");
        let per_second = sql_query("
            SELECT visitor, window_start, COUNT(*) AS n
            FROM TABLE(TUMBLE(TABLE shop, DESCRIPTOR(ts), INTERVAL '1' SECOND))
            GROUP BY visitor, window_start, window_end
        ").to_append_stream().collect();
        // A window aggregation's `window_time` is a time attribute too: the shop clicks of
        // users who made more than one in a 1-second window, joined back to the window on
        // time (an interval join).
        let busiest = sql_query("
            SELECT s.visitor, s.ts
            FROM shop s
            JOIN (
                SELECT visitor, COUNT(*) AS n, window_time AS wt
                FROM TABLE(TUMBLE(TABLE shop, DESCRIPTOR(ts), INTERVAL '1' SECOND))
                GROUP BY visitor, window_start, window_end, window_time
            ) w
            ON s.visitor = w.visitor
            WHERE s.ts BETWEEN w.wt - INTERVAL '999' MILLISECOND AND w.wt AND w.n > 1
        ").to_append_stream().collect();
    }
    let result = env.execute("time attributes").unwrap();
    let mut per_second = per_second.take();
    per_second.sort();
    assert_eq!(
        per_second,
        vec![
            (1i64, SqlTimestamp(0), 2i64),
            (1, SqlTimestamp(2_000), 1),
            (2, SqlTimestamp(1_000), 1),
        ]
    );
    let mut busiest = busiest.take();
    busiest.sort();
    assert_eq!(
        busiest,
        vec![(1i64, SqlTimestamp(100)), (1, SqlTimestamp(900))]
    );
    assert!(
        result
            .operators
            .iter()
            .any(|o| o.name.starts_with("interval join")),
        "planned as an interval join: {:?}",
        result.operators.iter().map(|o| o.name).collect::<Vec<_>>()
    );
}
