//! `artfs cache stats|prune|clear`: the local blob cache.

use anyhow::Result;
use serde_json::json;

use super::{App, human_bytes, print_json};
use crate::cache::Layout;
use crate::cli::CacheCommand;
use crate::config::parse_size;

impl App {
    pub(super) fn cache_command(&self, command: CacheCommand) -> Result<()> {
        let cache = self.cache()?;
        match command {
            CacheCommand::Stats { json: json_out } => {
                let s = cache.stats()?;
                if json_out {
                    return print_json(&json!({
                        "dir": s.dir, "layout": s.layout.name(), "max_bytes": s.max_bytes, "entries": s.entries,
                        "bytes": s.bytes, "hits": s.hits, "misses": s.misses, "evictions": s.evictions,
                    }));
                }
                println!("cache:     {}", s.dir.display());
                if s.layout == Layout::Wandb {
                    println!("layout:    shared with the wandb SDK (entries in obj/)");
                }
                println!("entries:   {}", s.entries);
                println!("size:      {} of {}", human_bytes(s.bytes), human_bytes(s.max_bytes));
                println!("hits:      {}", s.hits);
                println!("misses:    {}", s.misses);
                println!("evictions: {}", s.evictions);
            }
            CacheCommand::Prune { to, json } => {
                let r = cache.prune(parse_size(&to)?)?;
                if json {
                    return print_json(&r);
                }
                println!(
                    "evicted {} entries ({}); {} in use; {} entries ({}) remain",
                    r.evicted_entries,
                    human_bytes(r.evicted_bytes),
                    r.in_use_entries,
                    r.remaining_entries,
                    human_bytes(r.remaining_bytes)
                );
            }
            CacheCommand::Clear { json } => {
                let r = cache.clear()?;
                if json {
                    return print_json(&r);
                }
                println!(
                    "removed {} entries ({}); {} in use were kept",
                    r.evicted_entries,
                    human_bytes(r.evicted_bytes),
                    r.in_use_entries
                );
            }
        }
        Ok(())
    }
}
