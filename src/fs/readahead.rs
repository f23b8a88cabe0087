//! Sibling readahead: when the files of one directory are opened in name order, the next few
//! are fetched before they are asked for.
//!
//! Why: a reader that opens one file at a time (`cp -r`, `tar`, `xargs cat`, a data loader
//! walking a folder) has one download in flight, so small files run at the speed of one round
//! trip each. Following such a walk keeps up to `window` downloads in flight per reader. Random
//! or shuffled opens never match the pattern, so they cost nothing extra.
//!
//! The same bookkeeping tells a shuffled reader (a data loader's first epoch in random order):
//! when most of a version's recent opens continue no walk, [`Readahead::take_shuffled`] says so,
//! once per version, and the caller may warm the whole version up (see `prefetch`).
//!
//! A directory whose files are opened in scattered order (a shuffled loader's folder of
//! images: class folders are read in random order, but every file of them in the end) is
//! reported by [`Readahead::take_scattered`], once, after [`SCATTERED_OPENS`] opens that
//! continued no walk; the caller may then fetch the whole directory's small files.
//!
//! Detection only: the caller decides which of the returned siblings are worth fetching (files,
//! small, not cached) and fetches them. Siblings of a directory are consecutive node ids in name
//! order (see `tree`), so "the next file" is the next node id within the directory.

use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::sync::{Mutex, PoisonError};

/// Walks remembered for detection: enough for dozens of readers at once.
const STREAMS: usize = 64;

/// Opens of a version before its order is judged, and the share of them (in quarters) that must
/// continue no walk for it to count as shuffled. A name-order walk of folders of two files jumps
/// at every other open (half), a shuffled loader at nearly every open.
const SHUFFLE_MIN_OPENS: u32 = 16;
const SHUFFLE_JUMP_QUARTERS: u32 = 3;

/// Past this many opens, the counts of a version are halved, so its recent opens decide.
const SHUFFLE_HISTORY_OPENS: u32 = 64;

/// Opens of one directory that continue no walk before it counts as read in scattered order.
const SCATTERED_OPENS: u32 = 3;

/// Directories whose scattered opens are remembered; past it the counts start over.
const DIRS: usize = 65_536;

/// Recognises directory walks and says which siblings to fetch ahead.
#[derive(Debug)]
pub struct Readahead {
    /// Siblings kept ahead of a walk; 0 turns readahead off.
    window: u32,
    /// Most recently advanced first.
    streams: Mutex<VecDeque<Stream>>,
    /// Open order per version slot, for shuffle detection.
    orders: Mutex<HashMap<u64, Order>>,
    /// Scattered opens per directory (version slot, first child); `None` once reported.
    dirs: Mutex<HashMap<(u64, u32), Option<u32>>>,
}

/// Recent opens of one version: how many, how many continued no walk, and whether it was
/// reported shuffled already.
#[derive(Clone, Copy, Debug, Default)]
struct Order {
    opens: u32,
    jumps: u32,
    reported: bool,
    pending: bool,
}

/// One walk through one directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stream {
    slot: u64,
    /// Node last opened.
    last: u32,
    /// Highest node already handed out for fetching.
    ahead: u32,
}

impl Readahead {
    pub fn new(window: u32) -> Readahead {
        Readahead {
            window,
            streams: Mutex::default(),
            orders: Mutex::default(),
            dirs: Mutex::default(),
        }
    }

    /// Whether version `slot` is being read in shuffled order: true once, the first time its
    /// recent opens mostly continued no walk.
    pub fn take_shuffled(&self, slot: u64) -> bool {
        let mut orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        orders.get_mut(&slot).is_some_and(|o| std::mem::take(&mut o.pending))
    }

    /// Whether the directory whose children are `siblings` in version `slot` is being read in
    /// scattered order: true once, at its [`SCATTERED_OPENS`]th open that continued no walk.
    pub fn take_scattered(&self, slot: u64, siblings: &RangeInclusive<u32>) -> bool {
        if self.window == 0 {
            return false;
        }
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        dirs.get_mut(&(slot, *siblings.start())).is_some_and(|count| match count {
            Some(n) if *n >= SCATTERED_OPENS => {
                *count = None;
                true
            }
            _ => false,
        })
    }

    fn count_scattered(&self, slot: u64, siblings: &RangeInclusive<u32>) {
        let mut dirs = self.dirs.lock().unwrap_or_else(PoisonError::into_inner);
        if dirs.len() >= DIRS {
            dirs.clear();
        }
        if let Some(n) = dirs.entry((slot, *siblings.start())).or_insert(Some(0)) {
            *n += 1;
        }
    }

    fn count_open(&self, slot: u64, jumped: bool) {
        let mut orders = self.orders.lock().unwrap_or_else(PoisonError::into_inner);
        let o = orders.entry(slot).or_default();
        o.opens += 1;
        o.jumps += u32::from(jumped);
        if !o.reported
            && o.opens >= SHUFFLE_MIN_OPENS
            && o.jumps * 4 >= o.opens * SHUFFLE_JUMP_QUARTERS
        {
            o.reported = true;
            o.pending = true;
        }
        if o.opens >= SHUFFLE_HISTORY_OPENS {
            o.opens /= 2;
            o.jumps /= 2;
        }
    }

    /// Records an open of `node` in version `slot`, whose directory's children are the nodes
    /// `siblings`. Returns the siblings to fetch now: none unless this open continues a walk
    /// (the previous sibling was opened recently), and never one handed out before for the
    /// same walk.
    pub fn opened(
        &self,
        slot: u64,
        node: u32,
        siblings: RangeInclusive<u32>,
    ) -> RangeInclusive<u32> {
        let none = RangeInclusive::new(1, 0);
        if !siblings.contains(&node) {
            return none;
        }
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let continues = match node > *siblings.start() {
            true => streams.iter().position(|s| s.slot == slot && s.last + 1 == node),
            false => None,
        };
        let Some(i) = continues else {
            // A new walk, or the same file opened again: remember it, fetch nothing yet.
            match streams.iter().position(|s| s.slot == slot && s.last == node) {
                Some(i) => {
                    streams.remove(i);
                }
                None => {
                    self.count_open(slot, true);
                    self.count_scattered(slot, &siblings);
                }
            }
            streams.push_front(Stream { slot, last: node, ahead: node });
            streams.truncate(STREAMS);
            return none;
        };
        // Exists: `position` found it.
        let Some(stream) = streams.remove(i) else { return none };
        self.count_open(slot, false);
        let end = node.saturating_add(self.window).min(*siblings.end());
        let start = stream.ahead.max(node) + 1;
        streams.push_front(Stream { slot, last: node, ahead: stream.ahead.max(end) });
        start..=end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: RangeInclusive<u32>) -> Vec<u32> {
        r.collect()
    }

    #[test]
    fn a_walk_gets_its_window_ahead_once() {
        let ra = Readahead::new(4);
        let dir = 10..=30;
        assert_eq!(collect(ra.opened(1, 10, dir.clone())), Vec::<u32>::new());
        assert_eq!(collect(ra.opened(1, 11, dir.clone())), [12, 13, 14, 15]);
        // Each further step hands out one new sibling only.
        assert_eq!(collect(ra.opened(1, 12, dir.clone())), [16]);
        assert_eq!(collect(ra.opened(1, 13, dir.clone())), [17]);
    }

    #[test]
    fn the_window_stops_at_the_last_sibling() {
        let ra = Readahead::new(8);
        let dir = 10..=14;
        ra.opened(1, 11, dir.clone());
        assert_eq!(collect(ra.opened(1, 12, dir.clone())), [13, 14]);
        assert_eq!(collect(ra.opened(1, 13, dir.clone())), Vec::<u32>::new());
        assert_eq!(collect(ra.opened(1, 14, dir)), Vec::<u32>::new());
    }

    #[test]
    fn a_directory_opened_in_scattered_order_is_reported_once_and_a_walk_never() {
        let ra = Readahead::new(4);
        let (dir, other) = (100..=300, 301..=400);
        for node in [250, 107, 199] {
            assert!(!ra.take_scattered(1, &dir), "before the third scattered open of {node}");
            ra.opened(1, node, dir.clone());
        }
        assert!(ra.take_scattered(1, &dir));
        ra.opened(1, 120, dir.clone());
        assert!(!ra.take_scattered(1, &dir), "reported twice");
        for node in 301..=340 {
            ra.opened(1, node, other.clone());
        }
        assert!(!ra.take_scattered(1, &other), "a walk is not scattered");
        assert!(!Readahead::new(0).take_scattered(1, &dir), "readahead off");
    }

    #[test]
    fn random_opens_fetch_nothing() {
        let ra = Readahead::new(8);
        let dir = 0..=1000;
        let mut fetched = 0;
        for node in [500, 17, 900, 3, 640, 641 - 100, 77, 78 + 5] {
            fetched += ra.opened(1, node, dir.clone()).count();
        }
        assert_eq!(fetched, 0);
    }

    #[test]
    fn interleaved_readers_each_keep_their_walk() {
        let ra = Readahead::new(2);
        let dir = 0..=10_000;
        // As many readers as are told apart, each walking its own stretch, opens interleaved.
        let starts: Vec<u32> = (0..STREAMS as u32).map(|r| r * 100).collect();
        for s in &starts {
            ra.opened(1, *s, dir.clone());
        }
        for s in &starts {
            assert_eq!(collect(ra.opened(1, s + 1, dir.clone())), [s + 2, s + 3]);
        }
        for s in &starts {
            assert_eq!(collect(ra.opened(1, s + 2, dir.clone())), [s + 4]);
        }
    }

    #[test]
    fn walks_do_not_cross_directories_or_versions() {
        let ra = Readahead::new(4);
        ra.opened(1, 9, 0..=9);
        // Node 10 is the first child of the next directory: not a continuation.
        assert_eq!(ra.opened(1, 10, 10..=20).count(), 0);
        // Same node ids in another version: a different walk.
        ra.opened(1, 11, 10..=20);
        assert_eq!(ra.opened(2, 12, 10..=20).count(), 0);
    }

    #[test]
    fn a_shuffled_reader_is_told_once_and_walks_never() {
        let ra = Readahead::new(4);
        let dir = 0..=9999;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut told = 0;
        for _ in 0..200 {
            ra.opened(1, rng.u32(0..10_000), dir.clone());
            told += usize::from(ra.take_shuffled(1));
        }
        assert_eq!(told, 1);
        // Four readers walking in name order, interleaved: not shuffled.
        for i in 0..500 {
            ra.opened(2, (i % 4) * 2000 + i / 4, dir.clone());
            assert!(!ra.take_shuffled(2), "at open {i}");
        }
        // A walk over folders of two files each jumps at every other open: not shuffled.
        for d in 0..300u32 {
            ra.opened(3, d * 2, d * 2..=d * 2 + 1);
            ra.opened(3, d * 2 + 1, d * 2..=d * 2 + 1);
            assert!(!ra.take_shuffled(3), "at folder {d}");
        }
        // With readahead off, shuffles are still told.
        let off = Readahead::new(0);
        for _ in 0..100 {
            off.opened(1, rng.u32(0..10_000), dir.clone());
        }
        assert!(off.take_shuffled(1));
    }

    #[test]
    fn zero_window_is_off() {
        let ra = Readahead::new(0);
        ra.opened(1, 1, 0..=9);
        assert_eq!(ra.opened(1, 2, 0..=9).count(), 0);
    }
}
