//! `--web-ui`: the dashboard of a running job, opened in headless Chromium (Debian's
//! `chromium`; `scripts/chromium install` installs it, as CI does). The test reads the page as
//! the browser rendered it, twice, and keeps a screenshot under `target/`.
#![cfg(feature = "web")]

use flow::prelude::*;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The browser `scripts/chromium path` finds; none fails the test, saying how to get one.
fn chromium() -> PathBuf {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/chromium"))
        .arg("path")
        .output()
        .expect("scripts/chromium runs");
    assert!(
        out.status.success(),
        "no headless browser for the dashboard test: run `scripts/chromium install` ({})",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Chromium, headless, on `url`, with `args`; gives what it printed.
fn browse(browser: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `data-out` (rows out) and `data-out-rate` of the operator box with uid `uid`.
fn box_of(dom: &str, uid: &str) -> (u64, f64) {
    let at = dom
        .find(&format!("data-uid=\"{uid}\""))
        .unwrap_or_else(|| panic!("no box for {uid} in the graph:\n{dom}"));
    let attr = |name: &str| -> String {
        let rest = &dom[at..];
        let i = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        rest[i..].split('"').next().unwrap().to_string()
    };
    (
        attr("data-out").parse().unwrap(),
        attr("data-out-rate").parse().unwrap(),
    )
}

#[test]
fn the_dashboard_draws_every_operator_and_its_rates_move() {
    let browser = chromium();
    let addr = free_addr();
    let env = StreamEnv::new().with_parallelism(2).with_web_ui(addr);
    // About 8 s of rows at 10,000 rows/s, 10 ms of event time apart from 2026-01-01 on.
    let numbers = DataGeneratorSource::new(|i: u64| i as i64, 80_000).rows_per_second(10_000.0);
    flow! { env =>
        source(numbers, Watermarks::no_watermarks())
            .name("numbers")
            .assign_timestamps_and_watermarks(Watermarks::monotonous(), |n| 1_767_225_600_000 + n * 10)
            .name("event time")
            .map(|n: i64| (n % 10, 1i64))
            .name("pair")
            .key_by(|p| p.0)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .name("count per digit")
            .sink_to(DiscardSink)
            .name("discard");
    }
    let job = std::thread::spawn(move || env.execute("dashboard"));
    std::thread::sleep(Duration::from_millis(300));
    let url = format!("http://{addr}/");

    let first = browse(&browser, &url, &["--dump-dom"]);
    std::thread::sleep(Duration::from_millis(1500));
    let second = browse(&browser, &url, &["--dump-dom"]);
    let svg = &second[second.find("<svg").expect("the graph")..];
    for name in [
        "numbers",
        "event time",
        "pair",
        "count per digit",
        "discard",
    ] {
        assert!(
            svg.contains(&format!(">{name}</text>")),
            "`{name}` is drawn in the graph:\n{second}"
        );
    }
    assert!(second.contains("stage 1"), "the keyed stage is shown");
    // Each operator's rows per subtask, each subtask's watermarks in and out.
    let table = &second[second
        .find("id=\"operators\"")
        .expect("the operators table")..];
    let row = &table[table.find(">count per digit<").expect("its row")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">0: ") && row.contains(" · 1: "), "{row}");
    assert!(second.contains("input watermark") && second.contains("output watermark"));
    assert!(second.contains(">2026-01-01 "), "a watermark is shown");
    assert!(
        second.contains("href=\"/api/plan.dot\""),
        "links the plan as DOT"
    );
    let (out1, _) = box_of(&first, "source-0");
    let (out2, rate2) = box_of(&second, "source-0");
    assert!(out2 > out1, "the source's rows grow: {out1} then {out2}");
    assert!(rate2 > 0.0, "the source's rate is shown: {rate2}");

    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &browser,
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
        ],
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "a screenshot at {}",
        shot.display()
    );
    job.join().unwrap().unwrap();
}
