//! Room taken in advance for small fills: a process claims a block of the cache once (one claim
//! file, `<pid>-<id>-lease`) and hands pieces of it to its small fills in memory.
//!
//! Why: a reservation seen by other processes costs the ledger's flock, a read of the shared
//! record, a listing of the claims and a claim file written and later removed. For a 2 KB image
//! that is most of what its fill costs, and a cold epoch over thousands of them pays it for each.
//! A lease pays it once per block.
//!
//! The block's bytes are counted exactly as claims are: by this process as held room
//! (`free`), by other processes through the lease's claim file, which always says
//! `free + in_flight + unmerged` — bytes not handed out, handed to fills in progress, and taken
//! by entries not yet merged into the shared record. Handing out, finishing or failing a fill
//! only moves bytes between those three, so the file changes only under the ledger's flock:
//! when the lease grows (`Ledger::try_reserve`) and when a merge moves `unmerged` into the
//! shared record or returns an idle lease (`Ledger::update`).

/// The most one lease holds: a fill's worth of room for thousands of small files, and no more
/// than a 64th of the cache, so a small cache is not held up by the lease of another process.
const LEASE_MAX_BYTES: u64 = 16 << 20;

/// Bytes a lease takes at a time for a cache of `max_bytes`.
pub(super) fn lease_bytes(max_bytes: u64) -> u64 {
    LEASE_MAX_BYTES.min(max_bytes / 64)
}

/// Fills of at most this many bytes are served from the lease; larger ones claim their own room.
pub(super) fn leased_fill_max(max_bytes: u64) -> u64 {
    lease_bytes(max_bytes) / 4
}

/// This process's lease (part of the ledger's local state, under its mutex).
#[derive(Debug, Default)]
pub(super) struct Lease {
    /// Leased bytes no fill holds.
    pub(super) free: u64,
    /// Leased bytes held by fills in progress (also in the ledger's `reserved`).
    in_flight: u64,
    /// Leased bytes of fills whose entries are recorded but not yet merged.
    unmerged: u64,
    /// What the claim file says now (0: there is none).
    pub(super) claimed: u64,
    /// Whether a fill drew on the lease since the last merge; an idle lease is given back.
    drawn: bool,
}

impl Lease {
    /// What the claim file should say.
    pub(super) fn claim_bytes(&self) -> u64 {
        self.free + self.in_flight + self.unmerged
    }

    /// Hands `bytes` of the free lease to a fill, if there are that many.
    pub(super) fn draw(&mut self, bytes: u64) -> bool {
        if self.free < bytes {
            return false;
        }
        self.free -= bytes;
        self.in_flight += bytes;
        self.drawn = true;
        true
    }

    /// Grows the lease by `bytes` (already counted against the limit by the caller).
    pub(super) fn grow(&mut self, bytes: u64) {
        self.free += bytes;
    }

    /// A fill holding `bytes` of the lease recorded its entry.
    pub(super) fn filled(&mut self, bytes: u64) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        self.unmerged += bytes;
    }

    /// A fill holding `bytes` of the lease failed: they are free again.
    pub(super) fn failed(&mut self, bytes: u64) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        self.free += bytes;
    }

    /// Gives back the free part; returns how much that was.
    pub(super) fn give_back(&mut self) -> u64 {
        std::mem::take(&mut self.free)
    }

    /// Starts a merge: the unmerged bytes about to go into the shared record.
    pub(super) fn take_unmerged(&mut self) -> u64 {
        std::mem::take(&mut self.unmerged)
    }

    /// A merge failed: its bytes are unmerged still.
    pub(super) fn merge_failed(&mut self, unmerged: u64) {
        self.unmerged += unmerged;
    }

    /// A merge succeeded: a lease nobody drew on since the last one is given back.
    pub(super) fn merged(&mut self) {
        if !std::mem::take(&mut self.drawn) {
            self.free = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_counts_every_leased_byte_until_merged_and_an_idle_lease_goes_back() {
        let mut lease = Lease::default();
        lease.grow(100);
        assert!(lease.draw(30) && lease.draw(30));
        assert!(!lease.draw(50), "only 40 bytes are free");
        assert_eq!(lease.claim_bytes(), 100);
        lease.filled(30);
        lease.failed(30);
        assert_eq!((lease.free, lease.claim_bytes()), (70, 100));
        let merging = lease.take_unmerged();
        assert_eq!((merging, lease.claim_bytes()), (30, 70));
        lease.merged();
        assert_eq!(lease.free, 70, "drawn on since the last merge: kept");
        lease.merged();
        assert_eq!((lease.free, lease.claim_bytes()), (0, 0), "idle: given back");
    }

    #[test]
    fn small_caches_lease_a_64th_and_lease_only_to_fills_of_a_quarter_of_that() {
        assert_eq!(lease_bytes(20 << 30), 16 << 20);
        assert_eq!(lease_bytes(64 << 20), 1 << 20);
        assert_eq!(leased_fill_max(64 << 20), 256 << 10);
        assert_eq!(lease_bytes(100), 1);
        assert_eq!(leased_fill_max(100), 0);
    }
}
