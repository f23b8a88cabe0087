//! `artfs tag` and `artfs ttl`: tags and time-to-live of a version or of its collection.

use anyhow::Result;

use serde::Serialize;

use super::{App, print_json};

/// `artfs tag --json` and `artfs ttl --json`: what the version (or collection) has now.
#[derive(Debug, Serialize)]
struct Tagged {
    /// `entity/project/name` (a collection) or `entity/project/name:vN`.
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<TtlOut>,
}

/// `"never"`, `"inherit"` or seconds from the version's creation.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum TtlOut {
    Named(&'static str),
    Seconds(u64),
}

impl Tagged {
    fn tags(name: String, tags: Vec<String>) -> Tagged {
        Tagged { name, tags: Some(tags), ttl: None }
    }

    fn ttl(name: String, ttl: Ttl) -> Tagged {
        let ttl = match ttl {
            Ttl::Never => TtlOut::Named("never"),
            Ttl::Inherit => TtlOut::Named("inherit"),
            Ttl::Seconds(s) => TtlOut::Seconds(s),
        };
        Tagged { name, tags: None, ttl: Some(ttl) }
    }
}
use crate::registry::{CollectionEdit, Ttl};
use crate::terminal::printable;

/// `never`, `inherit`, or a duration (`90s`, `30m`, `12h`, `30d`).
fn parse_ttl(s: &str) -> Result<Ttl> {
    Ok(match s {
        "never" | "none" => Ttl::Never,
        "inherit" => Ttl::Inherit,
        d => match crate::config::parse_duration(d)?.as_secs() {
            0 => usage!("a TTL must be positive; use `never` for none"),
            secs => Ttl::Seconds(secs),
        },
    })
}

impl App {
    pub(super) async fn tag(
        &self,
        artifact: &str,
        add: &[String],
        remove: &[String],
        collection: bool,
        json: bool,
    ) -> Result<()> {
        if add.is_empty() && remove.is_empty() {
            usage!("nothing to do: pass --add TAG and/or --remove TAG");
        }
        let registry = self.registry_to_change().await?;
        if collection {
            let c = self.artifact(artifact)?.collection;
            let edit = CollectionEdit {
                add_tags: add.to_vec(),
                remove_tags: remove.to_vec(),
                ..CollectionEdit::default()
            };
            let state = registry.edit_collection(&c, edit).await?;
            if json {
                let tags = state.tags.iter().cloned().collect();
                return print_json(&Tagged::tags(c.to_string(), tags));
            }
            let tags: Vec<&str> = state.tags.iter().map(String::as_str).collect();
            println!("{c} tags: {}", printable(&tags.join(", ")));
            return Ok(());
        }
        let (target, version) = self.version_of(&registry, artifact).await?;
        let tags = registry.set_tags(&target.collection, version, add, remove).await?;
        if json {
            let name = format!("{}:v{version}", target.collection);
            return print_json(&Tagged::tags(name, tags.iter().cloned().collect()));
        }
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        println!("{}:v{version} tags: {}", target.collection, printable(&tags.join(", ")));
        Ok(())
    }

    pub(super) async fn ttl(
        &self,
        artifact: &str,
        ttl: &str,
        collection: bool,
        json: bool,
    ) -> Result<()> {
        let ttl = parse_ttl(ttl)?;
        let registry = self.registry_to_change().await?;
        if collection {
            if ttl == Ttl::Inherit {
                usage!("a collection's default TTL is a duration or `never`");
            }
            let c = self.artifact(artifact)?.collection;
            let edit = CollectionEdit { default_ttl: Some(ttl), ..CollectionEdit::default() };
            registry.edit_collection(&c, edit).await?;
            if json {
                return print_json(&Tagged::ttl(c.to_string(), ttl));
            }
            println!("{c} default TTL: {}", describe(ttl));
            return Ok(());
        }
        let (target, version) = self.version_of(&registry, artifact).await?;
        registry.set_ttl(&target.collection, version, ttl).await?;
        if json {
            return print_json(&Tagged::ttl(format!("{}:v{version}", target.collection), ttl));
        }
        println!("{}:v{version} TTL: {}", target.collection, describe(ttl));
        Ok(())
    }
}

fn describe(ttl: Ttl) -> String {
    match ttl {
        Ttl::Inherit => "inherited from the collection".into(),
        Ttl::Never => "never expires".into(),
        Ttl::Seconds(s) => format!("{s}s from its creation"),
    }
}
