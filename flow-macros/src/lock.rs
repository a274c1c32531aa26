//! `flow.lock` as `flow!` reads it: the state schema fingerprint recorded for each operator
//! with a `.uid(..)`, checked by the compiler (the runtime's `snapshot::lock` writes the file;
//! the format is its).
//!
//! The lock is `$CARGO_MANIFEST_DIR/flow.lock`, or the file `FLOW_LOCK_FILE` names. An
//! operator with an entry gets its chain link wrapped in a function whose `const` block
//! compares the operator's `STATE_SCHEMA` (or the schema its `.migrate_state(..)` reads,
//! `MIGRATES_FROM`) with the entry: evaluated when the job's code is
//! compiled to machine code (`cargo build`, `cargo test`, `cargo run`; `cargo check` does not
//! reach it), a mismatch is an error on the operator's tokens.

use crate::graph::Node;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use syn::Expr;

pub struct Lock {
    path: PathBuf,
    exists: bool,
    /// `(file, uid) -> fingerprint`; `None` for `*` (not checked).
    entries: BTreeMap<(String, String), Option<u64>>,
}

impl Lock {
    pub fn read() -> Lock {
        let path = match std::env::var_os("FLOW_LOCK_FILE") {
            Some(p) => PathBuf::from(p),
            None => {
                let dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
                Path::new(&dir).join("flow.lock")
            }
        };
        let text = std::fs::read_to_string(&path).ok();
        let mut entries = BTreeMap::new();
        for line in text.as_deref().unwrap_or("").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let [file, uid, fp] = parts[..] {
                let fp = if fp == "*" {
                    None
                } else if let Ok(v) = u64::from_str_radix(fp, 16) {
                    Some(v)
                } else {
                    continue;
                };
                entries.insert((file.to_string(), uid.to_string()), fp);
            }
        }
        Lock {
            exists: text.is_some(),
            path,
            entries,
        }
    }

    /// The lock file's path, for the plan (a debug build's run adds what it lacks).
    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Makes cargo rebuild the block when the lock changes (a proc macro's reads are not
    /// tracked).
    pub fn track(&self) -> TokenStream {
        if !self.exists {
            return quote!();
        }
        let path = self.path();
        quote!(
            const _: &[u8] = ::core::include_bytes!(#path);
        )
    }

    /// The fingerprint locked for `n`: its `.uid(..)` literal in its source file.
    fn locked(&self, n: &Node) -> Option<(String, u64)> {
        let Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(uid),
            ..
        })) = &n.uid
        else {
            return None;
        };
        let file = n.span.file();
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let path = Path::new(&file);
        let key = match path.strip_prefix(dir) {
            Ok(rel) if path.is_absolute() => rel.to_string_lossy().into_owned(),
            _ => file.clone(),
        };
        let uid = uid.value();
        let fp = (*self.entries.get(&(key, uid.clone()))?)?;
        Some((uid, fp))
    }

    /// `chained` (node `n`'s chain link), checked against the lock when it has an entry.
    pub fn check(&self, n: &Node, chained: TokenStream) -> TokenStream {
        let Some((uid, fp)) = self.locked(n) else {
            return chained;
        };
        let lock = self
            .path
            .file_name()
            .map_or_else(|| "flow.lock".into(), |f| f.to_string_lossy().into_owned());
        let message = if n.migrate.is_some() {
            format!(
                "the state of `{}` (uid `{uid}`) is not what {lock} recorded for it, and its `.migrate_state(..)` does not read that either: the closure's argument must have the layout the state had (the same field types in the same order)",
                n.word
            )
        } else {
            format!(
                "the state of `{}` (uid `{uid}`) is not what {lock} recorded for it, so a checkpoint taken before cannot be restored into it: read the old state with `.migrate_state(|old: OldType| ..)` after the operator, or give the operator a new `.uid(..)` (then restore with --allow-non-restored-state)",
                n.word
            )
        };
        // The check is in a function of the operator's type only, so that an error names
        // that type, not the whole chain after it.
        quote_spanned! {n.span=>
            {
                fn __flow_lock<In, Op: ::flow::__private::Operator<In>>() {
                    const {
                        // An operator without state (a sink given the uid another block of the
                        // file gave a stateful one) has nothing to restore.
                        let schema = <Op as ::flow::__private::Operator<In>>::STATE_SCHEMA;
                        let from = <Op as ::flow::__private::Operator<In>>::MIGRATES_FROM;
                        if schema != 0 && schema != #fp && from != #fp {
                            ::core::panic!(#message)
                        }
                    }
                }
                #[inline(always)]
                fn __flow_locked<In, Op, N, S>(
                    link: ::flow::__private::Chained<In, Op, N, S>,
                ) -> ::flow::__private::Chained<In, Op, N, S>
                where
                    Op: ::flow::__private::Operator<In>,
                {
                    __flow_lock::<In, Op>();
                    link
                }
                __flow_locked(#chained)
            }
        }
    }
}
