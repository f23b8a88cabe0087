//! Parsed manifests kept between page requests. A registry stores a manifest under the MD5 of
//! its bytes, so what a locator names never changes (on any server over the same bucket) and a
//! kept parse is never stale: browsing a version of 100,000 entries parses its manifest once,
//! not on every page. Bounded by the entries kept, the least recently used dropped first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::manifest::Manifest;

/// Entries of all kept manifests together (a parsed entry is a few hundred bytes).
const KEPT_ENTRIES: usize = 1_000_000;

/// The kept manifests by locator, most recently used last.
#[derive(Debug)]
pub struct Manifests {
    kept: Mutex<VecDeque<(String, Arc<Manifest>)>>,
    /// At most this many entries in all.
    entries: usize,
}

impl Default for Manifests {
    fn default() -> Manifests {
        Manifests::with_entries(KEPT_ENTRIES)
    }
}

impl Manifests {
    pub fn with_entries(entries: usize) -> Manifests {
        Manifests { kept: Mutex::default(), entries }
    }

    /// The manifest kept for `locator`, now the most recently used.
    pub fn get(&self, locator: &str) -> Option<Arc<Manifest>> {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        let at = kept.iter().position(|(l, _)| l == locator)?;
        let hit = kept.remove(at)?;
        let m = hit.1.clone();
        kept.push_back(hit);
        Some(m)
    }

    /// Keeps `m` for `locator`, dropping the least recently used past the bound (a manifest
    /// larger than that alone is not kept).
    pub fn keep(&self, locator: &str, m: Arc<Manifest>) {
        if m.contents.len() > self.entries {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.retain(|(l, _)| l != locator);
        kept.push_back((locator.to_owned(), m));
        let mut total: usize = kept.iter().map(|(_, m)| m.contents.len()).sum();
        while total > self.entries {
            let Some((_, old)) = kept.pop_front() else { break };
            total -= old.contents.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Entry;

    fn manifest(entries: usize) -> Arc<Manifest> {
        let mut m = Manifest::default();
        for i in 0..entries {
            m.contents.insert(format!("f{i}"), Entry::stored("x".into(), 1));
        }
        Arc::new(m)
    }

    #[test]
    fn the_least_recently_used_goes_first_past_the_entry_bound() {
        let kept = Manifests::with_entries(10);
        kept.keep("a", manifest(5));
        kept.keep("b", manifest(5));
        assert!(kept.get("a").is_some(), "a is now the most recently used");
        kept.keep("c", manifest(1));
        assert!(kept.get("b").is_none(), "b was the least recently used");
        assert!(kept.get("a").is_some() && kept.get("c").is_some());
        kept.keep("huge", manifest(11));
        assert!(kept.get("huge").is_none() && kept.get("a").is_some());
    }
}
