//! Bounds on a GraphQL document, checked on the parsed document before the engine validates or
//! runs it: the engine's own checks (complexity, depth, overlapping fields) walk every fragment
//! spread inline, so a few hundred bytes of nested spreads are expanded millions of times before
//! any limit is compared. Here each fragment is counted once and its count reused at every
//! spread, so the work is linear in the document's size however much it would expand.
//!
//! The bounds sit far above what the `wandb` SDK 0.31 sends: its largest document is about
//! 2 KB with a few hundred fields once expanded, a handful of aliases, and about 10 levels.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use super::MAX_DEPTH;
use crate::serve::ServeError;

/// Largest `query` string (the SDK's largest is about 2 KB; its file lists travel as variables).
pub const MAX_DOCUMENT_BYTES: usize = 128 << 10;
/// Most fields a document may select with its fragments expanded, over all its operations.
pub const MAX_FIELDS: usize = 5_000;
/// Most aliased fields a document may select with its fragments expanded.
pub const MAX_ALIASES: usize = 256;
/// Deepest recursion of the count itself: selection sets plus fragments entered, which bounds
/// its stack however the document nests.
const MAX_NESTING: usize = 2 * MAX_DEPTH;

/// What one selection set selects, with its fragments expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Count {
    fields: usize,
    aliases: usize,
    depth: usize,
}

impl Count {
    fn add(&mut self, other: Count) {
        self.fields = self.fields.saturating_add(other.fields);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.depth = self.depth.max(other.depth);
    }

    fn check(&self) -> Result<(), ServeError> {
        if self.fields > MAX_FIELDS {
            return Err(refuse(format!("selects more than {MAX_FIELDS} fields")));
        }
        if self.aliases > MAX_ALIASES {
            return Err(refuse(format!("has more than {MAX_ALIASES} aliases")));
        }
        if self.depth > MAX_DEPTH {
            return Err(refuse(format!("is nested more than {MAX_DEPTH} levels deep")));
        }
        Ok(())
    }
}

fn refuse(what: String) -> ServeError {
    ServeError::Invalid(format!("query refused: the document {what} (fragments expanded)"))
}

/// Refuses a request whose document is too large or would expand past the bounds above. A
/// document that does not parse passes: the engine reports its syntax error.
pub fn check(req: &mut async_graphql::Request) -> Result<(), ServeError> {
    let bytes = req.query.len();
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(ServeError::Invalid(format!(
            "query refused: the document has {bytes} bytes, more than {MAX_DOCUMENT_BYTES}"
        )));
    }
    match req.parsed_query() {
        Ok(doc) => check_document(doc),
        Err(_) => Ok(()),
    }
}

fn check_document(doc: &ExecutableDocument) -> Result<(), ServeError> {
    let mut counter = Counter { doc, fragments: HashMap::new() };
    let mut total = Count::default();
    for (_, op) in doc.operations.iter() {
        total.add(counter.selection_set(&op.node.selection_set.node, 0)?);
        total.check()?;
    }
    Ok(())
}

struct Counter<'a> {
    doc: &'a ExecutableDocument,
    /// Each fragment's count once known; `None` while it is being counted, so a cycle counts as
    /// nothing here (the engine refuses it).
    fragments: HashMap<&'a str, Option<Count>>,
}

impl<'a> Counter<'a> {
    fn selection_set(
        &mut self,
        set: &'a SelectionSet,
        nesting: usize,
    ) -> Result<Count, ServeError> {
        if nesting > MAX_NESTING {
            return Err(refuse(format!("is nested more than {MAX_NESTING} levels deep")));
        }
        let mut count = Count::default();
        for item in &set.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let mut inner = self.selection_set(&field.selection_set.node, nesting + 1)?;
                    inner.fields = inner.fields.saturating_add(1);
                    inner.aliases =
                        inner.aliases.saturating_add(usize::from(field.alias.is_some()));
                    inner.depth += 1;
                    inner
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, nesting + 1)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), nesting + 1)?
                }
            };
            count.add(inner);
            count.check()?;
        }
        Ok(count)
    }

    fn fragment(&mut self, name: &'a str, nesting: usize) -> Result<Count, ServeError> {
        if let Some(known) = self.fragments.get(name) {
            return Ok(known.unwrap_or_default());
        }
        let Some(def) = self.doc.fragments.get(name) else {
            return Ok(Count::default()); // the engine reports the unknown fragment
        };
        self.fragments.insert(name, None);
        let count = self.selection_set(&def.node.selection_set.node, nesting)?;
        self.fragments.insert(name, Some(count));
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(query: &str) -> Result<(), ServeError> {
        check(&mut async_graphql::Request::new(query))
    }

    /// `fragment F0 on Query { ...F1 ...F1 }` … down to `F{levels}`, which selects one field.
    pub fn fragment_bomb(levels: usize) -> String {
        let mut q = String::from("query Q { ...F0 }\n");
        for i in 0..levels {
            q += &format!("fragment F{i} on Query {{ ...F{n} ...F{n} }}\n", n = i + 1);
        }
        q + &format!("fragment F{levels} on Query {{ viewer {{ id }} }}\n")
    }

    #[test]
    fn a_fragment_bomb_is_refused_without_expanding_it() {
        let started = std::time::Instant::now();
        let e = checked(&fragment_bomb(60)).unwrap_err();
        assert!(e.to_string().contains("more than 5000 fields"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Small fan-outs of fragments are fine.
        checked(&fragment_bomb(5)).unwrap();
    }

    #[test]
    fn aliases_size_and_depth_are_bounded() {
        let aliases: String = (0..300).map(|i| format!("a{i}: viewer {{ id }} ")).collect();
        let e = checked(&format!("{{ {aliases} }}")).unwrap_err();
        assert!(e.to_string().contains("more than 256 aliases"), "{e}");
        let huge = format!("{{ {} }}", "viewer { id } ".repeat(20_000));
        assert!(checked(&huge).unwrap_err().to_string().contains("bytes"));
        // Depth counts through spreads, which the engine's own depth limit does not see.
        let mut deep = String::from("{ ...D0 }\n");
        for i in 0..40 {
            deep += &format!("fragment D{i} on Query {{ project {{ ...D{} }} }}\n", i + 1);
        }
        deep += "fragment D40 on Query { viewer { id } }\n";
        let e = checked(&deep).unwrap_err();
        assert!(e.to_string().contains("levels deep"), "{e}");
    }

    #[test]
    fn cycles_unknown_fragments_and_syntax_errors_are_left_to_the_engine() {
        checked("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }").unwrap();
        checked("{ ...Missing }").unwrap();
        checked("{ viewer { ").unwrap();
        checked("query Q($a: Int = 1) { a: viewer { id } b: viewer { id } }").unwrap();
    }
}
