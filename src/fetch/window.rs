//! The bounded window of chunks a streamed entry (`stream`) keeps in memory: at most `capacity`
//! chunks, being fetched or fetched, the least recently used fetched one leaving first.
//!
//! Pure bookkeeping, no I/O: the caller fetches what [`Window::begin`] admits and reports it with
//! [`Window::complete`]. A chunk being fetched holds its slot until it completes, so the window
//! never holds more than `capacity` chunks; when every slot is being fetched nothing more is
//! admitted and the caller waits for a completion. Evicting a chunk a reader is still copying
//! is harmless: the reader holds its own reference (`T` is an `Arc`), and the next reader of
//! that chunk fetches it again.

use std::collections::HashMap;

#[derive(Debug)]
enum Slot<T, E> {
    Fetching,
    Ready { data: T, used: u64 },
    Failed(E),
}

/// What the window holds for one chunk.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup<T, E> {
    Ready(T),
    Fetching,
    /// The fetch failed; the failure is taken out, so the next lookup finds the chunk absent.
    Failed(E),
    Absent,
}

#[derive(Debug)]
pub(super) struct Window<T, E> {
    capacity: usize,
    slots: HashMap<usize, Slot<T, E>>,
    /// Ticks on every use; the fetched chunk with the oldest use leaves first.
    clock: u64,
}

impl<T: Clone, E: Clone> Window<T, E> {
    pub(super) fn new(capacity: usize) -> Self {
        Window { capacity: capacity.max(1), slots: HashMap::new(), clock: 0 }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The chunk at `index`; a fetched one counts as used now.
    pub(super) fn lookup(&mut self, index: usize) -> Lookup<T, E> {
        let now = self.tick();
        match self.slots.get_mut(&index) {
            None => Lookup::Absent,
            Some(Slot::Fetching) => Lookup::Fetching,
            Some(Slot::Ready { data, used }) => {
                *used = now;
                Lookup::Ready(data.clone())
            }
            Some(Slot::Failed(_)) => match self.slots.remove(&index) {
                Some(Slot::Failed(err)) => Lookup::Failed(err),
                _ => Lookup::Absent,
            },
        }
    }

    /// A fetched chunk without counting it as used (tests look without changing the order).
    #[cfg(test)]
    fn peek(&self, index: usize) -> Option<&T> {
        match self.slots.get(&index) {
            Some(Slot::Ready { data, .. }) => Some(data),
            _ => None,
        }
    }

    /// Admits a fetch of `index`: true if the caller is to fetch it now. False when it is
    /// already held (or being fetched), or when every slot is being fetched.
    pub(super) fn begin(&mut self, index: usize) -> bool {
        if matches!(self.slots.get(&index), Some(Slot::Fetching | Slot::Ready { .. })) {
            return false;
        }
        self.slots.remove(&index);
        if self.slots.len() >= self.capacity && !self.evict_one() {
            return false;
        }
        self.slots.insert(index, Slot::Fetching);
        true
    }

    /// Frees one slot: a failure first, else the least recently used fetched chunk.
    fn evict_one(&mut self) -> bool {
        let failed = self.slots.iter().find(|(_, s)| matches!(s, Slot::Failed(_))).map(|(i, _)| *i);
        let victim = failed.or_else(|| {
            self.slots
                .iter()
                .filter_map(|(i, s)| match s {
                    Slot::Ready { used, .. } => Some((*used, *i)),
                    _ => None,
                })
                .min()
                .map(|(_, i)| i)
        });
        victim.is_some_and(|i| self.slots.remove(&i).is_some())
    }

    /// Ends the fetch of `index` that [`Self::begin`] admitted.
    pub(super) fn complete(&mut self, index: usize, result: Result<T, E>) {
        let used = self.tick();
        if !matches!(self.slots.get(&index), Some(Slot::Fetching)) {
            return;
        }
        let slot = match result {
            Ok(data) => Slot::Ready { data, used },
            Err(err) => Slot::Failed(err),
        };
        self.slots.insert(index, slot);
    }

    /// Chunks held, being fetched or fetched (failures included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type W = Window<u32, &'static str>;

    #[test]
    fn the_window_never_holds_more_than_its_capacity() {
        let mut w = W::new(3);
        assert!(w.begin(0) && w.begin(1) && w.begin(2));
        assert!(!w.begin(3), "every slot is being fetched: nothing more is admitted");
        assert!(!w.begin(1), "already being fetched");
        assert_eq!(w.lookup(1), Lookup::Fetching);
        w.complete(0, Ok(100));
        assert!(w.begin(3), "a fetched chunk makes room");
        assert_eq!(w.lookup(0), Lookup::Absent, "and left");
        assert_eq!(w.len(), 3);
        for i in 4..100 {
            w.complete(i - 3, Ok(i as u32));
            assert!(w.begin(i));
            assert!(w.len() <= 3);
        }
    }

    #[test]
    fn the_least_recently_used_chunk_leaves_first() {
        let mut w = W::new(3);
        for i in 0..3 {
            assert!(w.begin(i));
            w.complete(i, Ok(i as u32 * 10));
        }
        // A random reader went back to chunk 0: chunk 1 is now the oldest.
        assert_eq!(w.lookup(0), Lookup::Ready(0));
        assert!(w.begin(7));
        assert_eq!(w.lookup(1), Lookup::Absent);
        assert_eq!(w.peek(0), Some(&0));
        assert_eq!(w.peek(2), Some(&20));
        // A chunk that left is fetched again (a random read behind the window).
        w.complete(7, Ok(70));
        assert!(w.begin(1));
        assert_eq!(w.lookup(2), Lookup::Absent, "2 was the oldest use");
    }

    #[test]
    fn a_failure_is_reported_once_and_leaves_first() {
        let mut w = W::new(2);
        assert!(w.begin(0) && w.begin(1));
        w.complete(0, Err("mismatch"));
        w.complete(1, Ok(1));
        assert!(w.begin(2), "the failure's slot is taken before the fetched chunk's");
        assert_eq!(w.lookup(1), Lookup::Ready(1));
        assert!(w.begin(0) || w.lookup(0) == Lookup::Fetching);
        w.complete(0, Err("mismatch"));
        assert_eq!(w.lookup(0), Lookup::Failed("mismatch"));
        assert_eq!(w.lookup(0), Lookup::Absent, "taken out: the next reader retries");
        // A completion nobody admitted changes nothing.
        w.complete(9, Ok(9));
        assert_eq!(w.lookup(9), Lookup::Absent);
    }
}
