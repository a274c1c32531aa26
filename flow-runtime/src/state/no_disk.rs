//! Without the cargo feature `disk`, only the memory backend: the disk backend's types, with
//! no values, so that `KeyedState` needs no `cfg` of its own.

use super::backend::{StateBackendConfig, StateBackendKind};
use crate::{Error, Result};
use std::convert::Infallible;
use std::marker::PhantomData;

/// Never built: `--state-backend disk` is refused at start.
#[derive(Debug)]
pub(crate) enum DiskBackend {}

impl DiskBackend {
    pub(crate) fn for_job(config: &StateBackendConfig, _job: &str) -> Result<Option<Self>> {
        match config.kind {
            StateBackendKind::Memory => Ok(None),
            StateBackendKind::Disk => Err(Error::Config(
                "--state-backend disk needs flow built with its cargo feature `disk` (on by default)".into(),
            )),
        }
    }

    pub(crate) fn cached<K, S>(&self, _task: usize, _operator: &str) -> Result<Cached<K, S>> {
        match *self {}
    }

    pub(crate) fn pane_store<K, A>(&self, _: usize, _: &str) -> Result<PaneStore<K, A>> {
        match *self {}
    }
}

/// Never built.
#[allow(dead_code)] // never built
pub(crate) enum Cached<K, S> {
    Never(Infallible, PhantomData<fn() -> (K, S)>),
}

/// Never built.
#[allow(dead_code)] // never built
pub(crate) enum StoreView<K, S> {
    Never(Infallible, PhantomData<fn() -> (K, S)>),
}

macro_rules! never {
    ($s:expr) => {
        match $s {
            Self::Never(n, _) => match *n {},
        }
    };
}

impl<K, S> Cached<K, S> {
    pub(crate) fn check(&mut self) -> Result<()> {
        never!(self)
    }
    pub(crate) fn get_mut(&mut self, _: &K) -> Option<&mut S> {
        never!(self)
    }
    pub(crate) fn get(&mut self, _: &K) -> Option<&S> {
        never!(self)
    }
    pub(crate) fn get_or_insert_with(&mut self, _: K, _: impl FnOnce() -> S) -> &mut S {
        never!(self)
    }
    pub(crate) fn insert_new(&mut self, _: K, _: S) -> bool {
        never!(self)
    }
    pub(crate) fn insert(&mut self, _: K, _: S) {
        never!(self)
    }
    pub(crate) fn remove(&mut self, _: &K) -> bool {
        never!(self)
    }
    pub(crate) fn snapshot(&mut self) -> std::result::Result<StoreView<K, S>, String> {
        never!(self)
    }
    pub(crate) fn drain(&mut self) -> Vec<(K, S)> {
        never!(self)
    }
    pub(crate) fn clear(&mut self) -> Result<()> {
        never!(self)
    }
}

impl<K, S> StoreView<K, S> {
    pub(crate) fn try_for_each(&self, _: impl FnMut(&K, &S) -> Result<()>) -> Result<()> {
        never!(self)
    }
}

/// Never built.
#[allow(dead_code)] // never built
pub(crate) enum PaneStore<K, A> {
    Never(Infallible, PhantomData<fn() -> (K, A)>),
}

/// Never built.
#[allow(dead_code)] // never built
pub(crate) enum PaneStoreView<K, A> {
    Never(Infallible, PhantomData<fn() -> (K, A)>),
}

impl<K, A> PaneStore<K, A> {
    pub(crate) fn check(&mut self) -> Result<()> {
        never!(self)
    }
    pub(crate) fn clear(&mut self) -> Result<()> {
        never!(self)
    }
    pub(crate) fn cache_bytes(&self) -> u64 {
        never!(self)
    }
    pub(crate) fn heap_per_entry(&self, _: usize) -> u64 {
        never!(self)
    }
    pub(crate) fn move_out<'a>(&mut self, _: i64, _: i64, _: impl IntoIterator<Item = &'a (K, A)>)
    where
        K: 'a,
        A: 'a,
    {
        never!(self)
    }
    pub(crate) fn get(&mut self, _: i64, _: i64, _: &K) -> Option<A> {
        never!(self)
    }
    pub(crate) fn put(&mut self, _: i64, _: i64, _: &K, _: &A) {
        never!(self)
    }
    pub(crate) fn read(
        &mut self,
        _: i64,
        _: i64,
        _: &mut Vec<u8>,
        _: usize,
        _: &mut Vec<(K, A)>,
    ) -> bool {
        never!(self)
    }
    pub(crate) fn remove(&mut self, _: i64, _: i64) {
        never!(self)
    }
    pub(crate) fn remove_entry(&mut self, _: i64, _: i64, _: &K) {
        never!(self)
    }
    #[allow(clippy::type_complexity)]
    pub(crate) fn take_first(
        &mut self,
        _: i64,
        _: usize,
        _: &mut Vec<(i64, i64, K, A)>,
    ) -> Option<i64> {
        never!(self)
    }
    pub(crate) fn snapshot(&self) -> PaneStoreView<K, A> {
        never!(self)
    }
}

impl<K, A> PaneStoreView<K, A> {
    pub(crate) fn try_for_each(&self, _: impl FnMut(i64, i64, K, A) -> Result<()>) -> Result<()> {
        never!(self)
    }
}
