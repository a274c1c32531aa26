//! state-stores: fjall vs redb (vs an all-in-memory HashMap) on flow's keyed-state access
//! pattern: a bounded HashMap cache of hot keys in front of an on-disk store, batched
//! write-back on eviction, and periodic checkpoints that flush, snapshot and scan the store on
//! a second thread while updates go on. See README.md for the commands.
//!
//! `state-stores run --store fjall|redb|hashmap [options]` runs one measurement and appends a
//! `key=value` line to the results file; `state-stores summary FILE` prints min/median/max.

use bincode::Options;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// flow's hashing, copied from flow-runtime/src/hash.rs and snapshot/mod.rs

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

#[inline(always)]
fn fx_step(state: u64, word: u64) -> u64 {
    (state.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
}

/// flow's `stable_hash(&k)` for an `i64` key (one word, then the murmur3 finaliser).
#[inline]
fn stable_hash_i64(k: i64) -> u64 {
    let mut h = fx_step(SEED, k as u64);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

const KEY_GROUPS: u64 = 128;

/// flow's `key_group`: the top 7 bits of the stable hash (multiply-shift, not `% 128`).
#[inline]
fn key_group(hash: u64) -> u16 {
    ((hash as u128 * KEY_GROUPS as u128) >> 64) as u16
}

/// flow's `StateHasher` (the hasher of its keyed-state maps), for the cache.
#[derive(Clone, Copy, Default)]
struct StateHasher {
    state: u64,
}

impl Hasher for StateHasher {
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.state = fx_step(self.state, u64::from_le_bytes(b));
        }
    }
    #[inline(always)]
    fn write_i64(&mut self, i: i64) {
        self.state = fx_step(self.state, i as u64);
    }
    #[inline(always)]
    fn finish(&self) -> u64 {
        self.state.rotate_left(26)
    }
}

#[derive(Clone, Copy, Default)]
struct StateBuildHasher;

impl BuildHasher for StateBuildHasher {
    type Hasher = StateHasher;
    fn build_hasher(&self) -> StateHasher {
        StateHasher::default()
    }
}

type FlowHashMap<K, V> = HashMap<K, V, StateBuildHasher>;

// ---------------------------------------------------------------------------------------------
// encoding

fn opts() -> impl Options {
    bincode::DefaultOptions::new() // varint, little endian
}

/// `[key group, 2 bytes BE][bincode varint of k]`
#[inline]
fn encode_key(k: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(&key_group(stable_hash_i64(k)).to_be_bytes());
    opts().serialize_into(&mut *out, &k).expect("encode key");
}

#[inline]
fn encode_value(v: (i64, i64), out: &mut Vec<u8>) {
    opts().serialize_into(&mut *out, &v).expect("encode value");
}

#[inline]
fn decode_value(b: &[u8]) -> (i64, i64) {
    opts().deserialize(b).expect("decode value")
}

/// A write batch as flat bytes, independent of the store.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// (key end, value end) offsets into `data`
    ends: Vec<(u32, u32)>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }
    fn push(&mut self, k: i64, v: (i64, i64)) {
        encode_key(k, &mut self.data);
        let ke = self.data.len() as u32;
        encode_value(v, &mut self.data);
        self.ends.push((ke, self.data.len() as u32));
    }
    fn push_raw(&mut self, k: &[u8], v: &[u8]) {
        self.data.extend_from_slice(k);
        let ke = self.data.len() as u32;
        self.data.extend_from_slice(v);
        self.ends.push((ke, self.data.len() as u32));
    }
    fn len(&self) -> usize {
        self.ends.len()
    }
    fn bytes(&self) -> u64 {
        self.data.len() as u64
    }
    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0usize;
        self.ends.iter().map(move |&(ke, ve)| {
            let (ke, ve) = (ke as usize, ve as usize);
            let kv = (&self.data[start..ke], &self.data[ke..ve]);
            start = ve;
            kv
        })
    }
}

// ---------------------------------------------------------------------------------------------
// the stores

struct StoreCfg {
    cache_bytes: u64,
    /// redb: make the checkpoint's flush commit durable (fsync), which lets redb reuse the
    /// pages freed by the non-durable write-back commits since the last durable one.
    redb_durable_checkpoint: bool,
    /// fjall: memtable size (0 = fjall's default, 64 MiB).
    fjall_memtable_bytes: u64,
}

trait Store: Sized {
    type Snap: Send + 'static;
    fn open(dir: &Path, cfg: &StoreCfg) -> Self;
    /// Point read; `f` sees the value bytes, if any.
    fn get<R>(&mut self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R;
    /// Write-back of evicted entries: one batch, no fsync.
    fn write(&mut self, b: &Batch);
    /// Checkpoint: write the dirty entries, then take a consistent snapshot that a second
    /// thread can scan while writes go on.
    fn flush_and_snapshot(&mut self, b: &Batch) -> Self::Snap;
    /// Full scan of a snapshot, in key order.
    fn scan(snap: Self::Snap, f: &mut dyn FnMut(&[u8], &[u8]));
    /// Scan of the keys starting with `prefix` (a key group): (entries, bytes).
    fn prefix_scan(&mut self, prefix: &[u8]) -> (u64, u64);
    /// After a bulk load: make it durable.
    fn finish_load(&mut self);
}

#[cfg(feature = "fjall")]
mod fjall_store {
    use super::*;
    use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};

    pub struct Fjall {
        pub db: Database,
        pub ks: Keyspace,
    }

    impl Store for Fjall {
        type Snap = (Snapshot, Keyspace);

        fn open(dir: &Path, cfg: &StoreCfg) -> Self {
            let db = Database::builder(dir)
                .cache_size(cfg.cache_bytes)
                .open()
                .expect("open fjall");
            let mt = cfg.fjall_memtable_bytes;
            let ks = db
                .keyspace("state", || {
                    let o = KeyspaceCreateOptions::default();
                    if mt > 0 {
                        o.max_memtable_size(mt)
                    } else {
                        o
                    }
                })
                .expect("keyspace");
            Fjall { db, ks }
        }

        fn get<R>(&mut self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
            let v = self.ks.get(key).expect("fjall get");
            f(v.as_deref())
        }

        fn write(&mut self, b: &Batch) {
            // Database::batch() persists to OS buffers only (PersistMode::Buffer): no fsync.
            let mut wb = self.db.batch();
            for (k, v) in b.iter() {
                wb.insert(&self.ks, k, v);
            }
            wb.commit().expect("fjall commit");
        }

        fn flush_and_snapshot(&mut self, b: &Batch) -> Self::Snap {
            self.write(b);
            (self.db.snapshot(), self.ks.clone())
        }

        fn scan((snap, ks): Self::Snap, f: &mut dyn FnMut(&[u8], &[u8])) {
            for g in snap.iter(&ks) {
                let (k, v) = g.into_inner().expect("fjall scan");
                f(&k, &v);
            }
        }

        fn prefix_scan(&mut self, prefix: &[u8]) -> (u64, u64) {
            let (mut n, mut bytes) = (0, 0);
            for g in self.ks.prefix(prefix) {
                let (k, v) = g.into_inner().expect("fjall prefix");
                n += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            (n, bytes)
        }

        fn finish_load(&mut self) {
            self.db.persist(PersistMode::SyncAll).expect("fjall persist");
        }
    }

    /// Extra: restore through fjall's bulk ingestion (input must be sorted, which a
    /// checkpoint file is: it is a scan in key order). Returns seconds.
    pub fn ingest(file: &Path, dir: &Path, cfg: &StoreCfg) -> f64 {
        let t = Instant::now();
        let s = Fjall::open(dir, cfg);
        {
            let mut ing = s.ks.start_ingestion().expect("ingestion");
            read_checkpoint(file, |k, v| ing.write(k, v).expect("ingest write"));
            ing.finish().expect("ingest finish");
        }
        s.db.persist(PersistMode::SyncAll).expect("persist");
        t.elapsed().as_secs_f64()
    }
}

#[cfg(feature = "redb")]
mod redb_store {
    use super::*;
    use redb::{
        Builder, Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable,
        TableDefinition,
    };

    const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");

    pub struct Redb {
        db: Database,
        /// The read transaction point reads go through, renewed after each commit.
        read: Option<ReadOnlyTable<&'static [u8], &'static [u8]>>,
        durable_checkpoint: bool,
    }

    impl Redb {
        fn commit(&mut self, b: &Batch, durability: Durability) {
            // Drop the reader first so it pins no pages of the old root.
            self.read = None;
            let mut tx = self.db.begin_write().expect("begin_write");
            tx.set_durability(durability).expect("durability");
            {
                let mut t = tx.open_table(TABLE).expect("open_table");
                for (k, v) in b.iter() {
                    t.insert(k, v).expect("insert");
                }
            }
            tx.commit().expect("commit");
            self.renew_reader();
        }

        fn renew_reader(&mut self) {
            let rtx = self.db.begin_read().expect("begin_read");
            self.read = Some(rtx.open_table(TABLE).expect("open_table (read)"));
        }
    }

    impl Store for Redb {
        type Snap = ReadOnlyTable<&'static [u8], &'static [u8]>;

        fn open(dir: &Path, cfg: &StoreCfg) -> Self {
            let db = Builder::new()
                .set_cache_size(cfg.cache_bytes as usize)
                .create(dir.join("state.redb"))
                .expect("open redb");
            let tx = db.begin_write().expect("begin_write");
            tx.open_table(TABLE).expect("create table");
            tx.commit().expect("commit");
            let mut s = Redb {
                db,
                read: None,
                durable_checkpoint: cfg.redb_durable_checkpoint,
            };
            s.renew_reader();
            s
        }

        fn get<R>(&mut self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
            let t = self.read.as_ref().expect("reader");
            let g = t.get(key).expect("redb get");
            f(g.as_ref().map(|g| g.value()))
        }

        fn write(&mut self, b: &Batch) {
            self.commit(b, Durability::None);
        }

        fn flush_and_snapshot(&mut self, b: &Batch) -> Self::Snap {
            let d = if self.durable_checkpoint {
                Durability::Immediate
            } else {
                Durability::None
            };
            self.commit(b, d);
            // A read transaction is redb's snapshot: MVCC, so writers go on while it lives
            // (the pages it sees are not freed until it is dropped).
            let rtx = self.db.begin_read().expect("begin_read");
            rtx.open_table(TABLE).expect("open_table (snapshot)")
        }

        fn scan(snap: Self::Snap, f: &mut dyn FnMut(&[u8], &[u8])) {
            for r in snap.iter().expect("iter") {
                let (k, v) = r.expect("redb scan");
                f(k.value(), v.value());
            }
        }

        fn prefix_scan(&mut self, prefix: &[u8]) -> (u64, u64) {
            let g = u16::from_be_bytes([prefix[0], prefix[1]]);
            let end = (g + 1).to_be_bytes();
            let t = self.read.as_ref().expect("reader");
            let (mut n, mut bytes) = (0, 0);
            for r in t.range::<&[u8]>(prefix..&end[..]).expect("range") {
                let (k, v) = r.expect("redb range");
                n += 1;
                bytes += (k.value().len() + v.value().len()) as u64;
            }
            (n, bytes)
        }

        fn finish_load(&mut self) {
            self.commit(&Batch::default(), Durability::Immediate);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// measurement helpers

/// A field of /proc/self/status, in kB.
fn proc_status_kb(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A field of /proc/self/io.
fn proc_io(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Bytes this process caused to be written to storage, less the ones cancelled by deleting
/// files before writeback.
fn io_written() -> u64 {
    proc_io("write_bytes:").saturating_sub(proc_io("cancelled_write_bytes:"))
}

/// CPU seconds (user + system) of the whole process, all threads.
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the ")" of the command name: state is field 3, utime 14, stime 15
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / 100.0 // CLK_TCK is 100 on Linux
}

/// The 1-minute load average (other processes on the machine skew the numbers).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// `du -s` (allocated blocks) and apparent size of a directory tree, in bytes.
fn du(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut blocks, mut apparent) = (0, 0);
    if let Ok(rd) = std::fs::read_dir(path) {
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                let (b, a) = du(&e.path());
                blocks += b;
                apparent += a;
            } else {
                blocks += m.blocks() * 512;
                apparent += m.len();
            }
        }
    }
    (blocks, apparent)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    percentile(&s, 0.5)
}

/// xorshift64*
struct Rng(u64);

impl Rng {
    #[inline(always)]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The workload's key stream: 80% of updates go to the first 20% of the keys.
struct Keys {
    rng: Rng,
    hot: u64,
    cold: u64,
}

impl Keys {
    fn new(n: u64, seed: u64) -> Self {
        let hot = (n / 5).max(1);
        Keys {
            rng: Rng(seed | 1),
            hot,
            cold: (n - hot).max(1),
        }
    }
    #[inline(always)]
    fn pick(&mut self) -> i64 {
        let r = self.rng.next();
        let x = self.rng.next();
        // r's top bits decide hot/cold; x's high half picks the key (multiply-shift)
        if (r >> 32) % 100 < 80 {
            ((x >> 32) * self.hot >> 32) as i64
        } else {
            (self.hot + ((x >> 32) * self.cold >> 32)) as i64
        }
    }
}

/// Checkpoint file: `[u32 LE key len][key][u32 LE value len][value]`*
fn read_checkpoint(path: &Path, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).expect("open checkpoint"));
    let (mut k, mut v) = (Vec::new(), Vec::new());
    let mut n = 0;
    let mut len = [0u8; 4];
    loop {
        match r.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read checkpoint: {e}"),
        }
        k.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut k).expect("key");
        r.read_exact(&mut len).expect("value len");
        v.resize(u32::from_le_bytes(len) as usize, 0);
        r.read_exact(&mut v).expect("value");
        f(&k, &v);
        n += 1;
    }
    n
}

struct ScanResult {
    entries: u64,
    bytes: u64,
    secs: f64,
    path: PathBuf,
}

/// Scans a snapshot into a checkpoint file on a new thread (fsync at the end).
fn spawn_scan<S: Store>(snap: S::Snap, path: PathBuf) -> JoinHandle<ScanResult> {
    std::thread::spawn(move || {
        let t = Instant::now();
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create"));
        let (mut entries, mut bytes) = (0u64, 0u64);
        S::scan(snap, &mut |k, v| {
            w.write_all(&(k.len() as u32).to_le_bytes()).unwrap();
            w.write_all(k).unwrap();
            w.write_all(&(v.len() as u32).to_le_bytes()).unwrap();
            w.write_all(v).unwrap();
            entries += 1;
            bytes += 8 + (k.len() + v.len()) as u64;
        });
        let f = w.into_inner().expect("flush");
        f.sync_all().expect("fsync checkpoint");
        ScanResult {
            entries,
            bytes,
            secs: t.elapsed().as_secs_f64(),
            path,
        }
    })
}

#[derive(Clone, Copy)]
struct Entry {
    v: (i64, i64),
    dirty: bool,
}

struct Cfg {
    store: String,
    keys: u64,
    updates: u64,
    cache: usize,
    checkpoint_secs: f64,
    dir: PathBuf,
    out: PathBuf,
    tag: String,
    seed: u64,
    store_cfg: StoreCfg,
}

/// Results: an ordered list of `key=value`.
#[derive(Default)]
struct Res(Vec<(String, String)>);

impl Res {
    fn put(&mut self, k: &str, v: impl std::fmt::Display) {
        println!("  {k:<28} {v}");
        self.0.push((k.to_string(), v.to_string()));
    }
    fn putf(&mut self, k: &str, v: f64) {
        self.put(k, format!("{v:.4}"));
    }
}

fn run_store<S: Store>(cfg: &Cfg, res: &mut Res) {
    let root = tempfile::Builder::new()
        .prefix("state-stores-")
        .tempdir_in(&cfg.dir)
        .expect("tempdir");
    let store_dir = root.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let mut store = S::open(&store_dir, &cfg.store_cfg);

    let c = cfg.cache;
    let evict_n = (c / 10).max(1);
    let mut cache: FlowHashMap<i64, Entry> = HashMap::with_capacity_and_hasher(c, StateBuildHasher);
    let mut keys = Keys::new(cfg.keys, cfg.seed);
    let mut batch = Batch::default();
    let mut kbuf = Vec::with_capacity(16);
    let period = Duration::from_secs_f64(cfg.checkpoint_secs);

    let (mut misses, mut store_hits) = (0u64, 0u64);
    let mut wb_secs: Vec<f64> = Vec::new(); // store write of one write-back batch
    let mut evict_secs_total = 0.0; // picking + encoding + store write
    let (mut logical_bytes, mut wb_entries) = (0u64, 0u64);
    let mut stops: Vec<f64> = Vec::new();
    let mut scans: Vec<ScanResult> = Vec::new();
    let mut intervals: Vec<f64> = Vec::new();
    let mut inflight: Option<JoinHandle<ScanResult>> = None;
    let mut ckpt_no = 0u32;

    let io0 = io_written();
    let wchar0 = proc_io("wchar:");
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let mut last_ckpt = t0;

    for i in 0..cfg.updates {
        let k = keys.pick();
        let delta = (i % 1000) as i64;
        if let Some(e) = cache.get_mut(&k) {
            e.v.0 += 1;
            e.v.1 += delta;
            e.dirty = true;
        } else {
            misses += 1;
            if cache.len() >= c {
                let te = Instant::now();
                batch.clear();
                let mut left = evict_n;
                for (k, e) in cache.extract_if(|_, _| {
                    if left > 0 {
                        left -= 1;
                        true
                    } else {
                        false
                    }
                }) {
                    if e.dirty {
                        batch.push(k, e.v);
                    }
                }
                let tw = Instant::now();
                store.write(&batch);
                wb_secs.push(tw.elapsed().as_secs_f64());
                evict_secs_total += te.elapsed().as_secs_f64();
                logical_bytes += batch.bytes();
                wb_entries += batch.len() as u64;
            }
            kbuf.clear();
            encode_key(k, &mut kbuf);
            let old = store.get(&kbuf, |v| v.map(decode_value));
            if old.is_some() {
                store_hits += 1;
            }
            let (a, b) = old.unwrap_or((0, 0));
            cache.insert(
                k,
                Entry {
                    v: (a + 1, b + delta),
                    dirty: true,
                },
            );
        }

        if i & 0x3f_ffff == 0 && i > 0 {
            eprintln!(
                "  progress: {i} updates, {:.1} s, {misses} misses",
                t0.elapsed().as_secs_f64()
            );
        }
        if i & 0x3fff == 0
            && last_ckpt.elapsed() >= period
            && inflight.as_ref().is_none_or(|h| h.is_finished())
        {
            if let Some(h) = inflight.take() {
                let r = h.join().expect("scan thread");
                if let Some(prev) = scans.last() {
                    let _ = std::fs::remove_file(&prev.path);
                }
                scans.push(r);
            }
            intervals.push(last_ckpt.elapsed().as_secs_f64());
            last_ckpt = Instant::now();
            let ts = Instant::now();
            batch.clear();
            for (k, e) in cache.iter_mut() {
                if e.dirty {
                    batch.push(*k, e.v);
                    e.dirty = false;
                }
            }
            let snap = store.flush_and_snapshot(&batch);
            stops.push(ts.elapsed().as_secs_f64());
            logical_bytes += batch.bytes();
            ckpt_no += 1;
            inflight = Some(spawn_scan::<S>(
                snap,
                root.path().join(format!("ckpt-{ckpt_no}.bin")),
            ));
        }
    }
    let total = t0.elapsed().as_secs_f64();
    let hwm_workload = proc_status_kb("VmHWM:");
    if let Some(h) = inflight.take() {
        let r = h.join().expect("scan thread");
        if let Some(prev) = scans.last() {
            let _ = std::fs::remove_file(&prev.path);
        }
        scans.push(r);
    }
    let cpu_workload = cpu_secs() - cpu0;
    let ckpt_file_bytes: u64 = scans.iter().map(|s| s.bytes).sum();
    let store_written = io_written().saturating_sub(io0).saturating_sub(ckpt_file_bytes);
    let store_wchar = proc_io("wchar:")
        .saturating_sub(wchar0)
        .saturating_sub(ckpt_file_bytes);

    res.putf("updates_per_s", cfg.updates as f64 / total);
    res.putf("workload_s", total);
    res.putf("misses_per_s", misses as f64 / total);
    res.put("misses", misses);
    res.put("miss_store_hits", store_hits);
    let mut sorted = wb_secs.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    res.put("writeback_batches", wb_secs.len());
    res.putf("writeback_p50_ms", percentile(&sorted, 0.5) * 1e3);
    res.putf("writeback_p99_ms", percentile(&sorted, 0.99) * 1e3);
    res.putf("writeback_max_ms", sorted.last().copied().unwrap_or(f64::NAN) * 1e3);
    res.putf("evict_total_s", evict_secs_total);
    res.put("writeback_entries", wb_entries);
    res.put("checkpoints", stops.len());
    res.putf("ckpt_interval_med_s", median(&intervals));
    res.putf("ckpt_stop_med_ms", median(&stops) * 1e3);
    res.putf(
        "ckpt_stop_max_ms",
        stops.iter().copied().fold(f64::NAN, f64::max) * 1e3,
    );
    let scan_secs: Vec<f64> = scans.iter().map(|s| s.secs).collect();
    res.putf("ckpt_scan_med_s", median(&scan_secs));
    res.putf("ckpt_scan_max_s", scan_secs.iter().copied().fold(f64::NAN, f64::max));
    if let Some(last) = scans.last() {
        res.put("ckpt_last_entries", last.entries);
        res.putf("ckpt_last_file_mb", last.bytes as f64 / 1e6);
        let _ = std::fs::remove_file(&last.path);
    }
    res.putf("logical_write_mb", logical_bytes as f64 / 1e6);
    // write(2) bytes the store issued vs bytes that reached the block layer (the page cache
    // absorbs rewrites of a page between two writebacks).
    res.putf("store_write_syscall_mb", store_wchar as f64 / 1e6);
    res.putf("write_amp_syscall", store_wchar as f64 / logical_bytes.max(1) as f64);
    res.putf("store_disk_write_mb", store_written as f64 / 1e6);
    res.putf(
        "write_amp_disk",
        store_written as f64 / logical_bytes.max(1) as f64,
    );
    res.putf("cpu_workload_s", cpu_workload);
    res.putf("rss_peak_workload_mb", hwm_workload as f64 / 1024.0);

    // A final checkpoint with no writes going on: its file is what the restore loads.
    batch.clear();
    for (k, e) in cache.iter_mut() {
        if e.dirty {
            batch.push(*k, e.v);
            e.dirty = false;
        }
    }
    let ts = Instant::now();
    let snap = store.flush_and_snapshot(&batch);
    res.putf("final_ckpt_stop_ms", ts.elapsed().as_secs_f64() * 1e3);
    let fin = spawn_scan::<S>(snap, root.path().join("ckpt-final.bin"))
        .join()
        .expect("scan");
    res.putf("final_ckpt_scan_s", fin.secs);
    res.put("final_ckpt_entries", fin.entries);
    res.putf("final_ckpt_file_mb", fin.bytes as f64 / 1e6);

    // Check: the final checkpoint holds every update exactly once.
    let mut counted = 0i64;
    read_checkpoint(&fin.path, |_, v| counted += decode_value(v).0);
    assert_eq!(counted as u64, cfg.updates, "checkpoint lost or doubled updates");

    // Rescaling reads one key group: a prefix scan.
    let group = 42u16.to_be_bytes();
    let tp = Instant::now();
    let (n, bytes) = store.prefix_scan(&group);
    res.putf("prefix_scan_ms", tp.elapsed().as_secs_f64() * 1e3);
    res.put("prefix_scan_entries", n);
    res.put("prefix_scan_bytes", bytes);

    let (blocks, apparent) = du(&store_dir);
    res.putf("disk_du_mb", blocks as f64 / 1e6);
    res.putf("disk_apparent_mb", apparent as f64 / 1e6);
    drop(store);
    drop(cache);

    // Restore: a fresh store bulk-loaded from the checkpoint in batches of 100k.
    let rdir = root.path().join("restore");
    std::fs::create_dir_all(&rdir).unwrap();
    let tr = Instant::now();
    {
        let mut s = S::open(&rdir, &cfg.store_cfg);
        batch.clear();
        let mut sr = std::mem::take(&mut batch);
        read_checkpoint(&fin.path, |k, v| {
            sr.push_raw(k, v);
            if sr.len() == 100_000 {
                s.write(&sr);
                sr.clear();
            }
        });
        s.write(&sr);
        s.finish_load();
    }
    res.putf("restore_s", tr.elapsed().as_secs_f64());
    res.putf("restore_du_mb", du(&rdir).0 as f64 / 1e6);

    #[cfg(feature = "fjall")]
    if cfg.store == "fjall" {
        let idir = root.path().join("ingest");
        std::fs::create_dir_all(&idir).unwrap();
        res.putf(
            "restore_ingest_s",
            fjall_store::ingest(&fin.path, &idir, &cfg.store_cfg),
        );
        res.putf("restore_ingest_du_mb", du(&idir).0 as f64 / 1e6);
    }
    res.putf("rss_peak_total_mb", proc_status_kb("VmHWM:") as f64 / 1024.0);
}

/// Baseline: every key in one HashMap, no store, no eviction, no checkpoint.
fn run_hashmap(cfg: &Cfg, res: &mut Res) {
    let mut map: FlowHashMap<i64, (i64, i64)> =
        HashMap::with_capacity_and_hasher(cfg.keys as usize, StateBuildHasher);
    let mut keys = Keys::new(cfg.keys, cfg.seed);
    let t0 = Instant::now();
    for i in 0..cfg.updates {
        let k = keys.pick();
        let e = map.entry(k).or_insert((0, 0));
        e.0 += 1;
        e.1 += (i % 1000) as i64;
    }
    let total = t0.elapsed().as_secs_f64();
    res.putf("updates_per_s", cfg.updates as f64 / total);
    res.putf("workload_s", total);
    res.put("distinct_keys", map.len());
    res.putf("rss_peak_workload_mb", proc_status_kb("VmHWM:") as f64 / 1024.0);
    std::hint::black_box(&map);
}

fn summary(path: &Path) {
    let f = BufReader::new(File::open(path).expect("results file"));
    // (store, tag) -> key -> values, keys in first-seen order
    let mut groups: BTreeMap<(String, String), (Vec<String>, HashMap<String, Vec<f64>>)> =
        BTreeMap::new();
    for line in f.lines() {
        let line = line.unwrap();
        let kv: Vec<(&str, &str)> = line
            .split_whitespace()
            .filter_map(|p| p.split_once('='))
            .collect();
        let get = |k: &str| kv.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string());
        let key = (get("store").unwrap_or_default(), get("tag").unwrap_or_default());
        let g = groups.entry(key).or_default();
        for (k, v) in &kv {
            if let Ok(x) = v.parse::<f64>() {
                if !g.1.contains_key(*k) {
                    g.0.push(k.to_string());
                }
                g.1.entry(k.to_string()).or_default().push(x);
            }
        }
    }
    for ((store, tag), (order, vals)) in groups {
        let runs = vals.values().map(|v| v.len()).max().unwrap_or(0);
        println!("\n== {store} {tag} ({runs} runs) ==  min / median / max");
        for k in order {
            let mut v = vals[&k].clone();
            v.sort_by(|a, b| a.total_cmp(b));
            println!(
                "  {k:<28} {:>14.3} {:>14.3} {:>14.3}",
                v[0],
                percentile(&v, 0.5),
                v[v.len() - 1]
            );
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: state-stores run --store fjall|redb|hashmap [--keys N] [--updates N] [--cache N]\n\
         \x20        [--checkpoint-secs S] [--store-cache-mb MB] [--redb-durable-checkpoint 0|1]\n\
         \x20        [--fjall-memtable-mb MB]\n\
         \x20        [--dir DIR] [--out FILE] [--tag TAG] [--seed N]\n\
         \x20      state-stores summary FILE"
    );
    std::process::exit(2)
}

fn main() {
    assert_eq!(stable_hash_i64(42), 17805546222819005142, "flow's pinned hash");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("summary") => return summary(Path::new(args.get(1).unwrap_or_else(|| usage()))),
        Some("run") => {}
        _ => usage(),
    }
    let mut cfg = Cfg {
        store: String::new(),
        keys: 10_000_000,
        updates: 50_000_000,
        cache: 1_000_000,
        checkpoint_secs: 5.0,
        dir: std::env::temp_dir(),
        out: PathBuf::from("results.txt"),
        tag: "full".into(),
        seed: 0x9e37_79b9_7f4a_7c15,
        store_cfg: StoreCfg {
            cache_bytes: 256 << 20,
            redb_durable_checkpoint: true,
            fjall_memtable_bytes: 0,
        },
    };
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let num = || v.replace('_', "").parse::<u64>().unwrap_or_else(|_| usage());
        match a.as_str() {
            "--store" => cfg.store = v.clone(),
            "--keys" => cfg.keys = num(),
            "--updates" => cfg.updates = num(),
            "--cache" => cfg.cache = num() as usize,
            "--checkpoint-secs" => cfg.checkpoint_secs = v.parse().unwrap_or_else(|_| usage()),
            "--store-cache-mb" => cfg.store_cfg.cache_bytes = num() << 20,
            "--fjall-memtable-mb" => cfg.store_cfg.fjall_memtable_bytes = num() << 20,
            "--redb-durable-checkpoint" => cfg.store_cfg.redb_durable_checkpoint = num() != 0,
            "--dir" => cfg.dir = PathBuf::from(v),
            "--out" => cfg.out = PathBuf::from(v),
            "--tag" => cfg.tag = v.clone(),
            "--seed" => cfg.seed = num(),
            _ => usage(),
        }
    }
    println!(
        "store={} keys={} updates={} cache={} checkpoint_secs={} store_cache_mb={} tag={}",
        cfg.store,
        cfg.keys,
        cfg.updates,
        cfg.cache,
        cfg.checkpoint_secs,
        cfg.store_cfg.cache_bytes >> 20,
        cfg.tag
    );
    let mut res = Res::default();
    res.put("store", &cfg.store);
    res.put("loadavg_start", loadavg());
    res.put("tag", &cfg.tag);
    res.put("keys", cfg.keys);
    res.put("updates", cfg.updates);
    res.put("cache", cfg.cache);
    match cfg.store.as_str() {
        "hashmap" => run_hashmap(&cfg, &mut res),
        #[cfg(feature = "fjall")]
        "fjall" => run_store::<fjall_store::Fjall>(&cfg, &mut res),
        #[cfg(feature = "redb")]
        "redb" => run_store::<redb_store::Redb>(&cfg, &mut res),
        s => {
            eprintln!("store {s:?} unknown or not compiled in (features: fjall, redb)");
            std::process::exit(2)
        }
    }
    res.put("loadavg_end", loadavg());
    let line: Vec<String> = res.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.out)
        .expect("results file");
    writeln!(f, "{}", line.join(" ")).unwrap();
}
