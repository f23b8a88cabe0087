//! The manifest encoder that reproduces wandb-core's `json.Marshal` output byte for byte.
//!
//! Go's encoder writes struct fields in declaration order, omits empty `omitempty` fields, sorts map
//! keys by byte order and escapes `<`, `>`, `&`, U+2028 and U+2029 (HTML-safe mode). Entry fields:
//! digest, ref?, size, local_path?, birthArtifactID?, skip_cache, extra?.

use serde_json::Value;

use super::Manifest;

pub(super) fn encode_manifest(m: &Manifest) -> Vec<u8> {
    let mut out = String::with_capacity(160 + m.contents.len() * 96);
    out.push_str(r#"{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{"storageLayout":"#);
    push_str(&mut out, &m.storage_policy_config.storage_layout);
    if let Some(region) = &m.storage_policy_config.storage_region {
        out.push_str(r#","storageRegion":"#);
        push_str(&mut out, region);
    }
    out.push_str(r#"},"contents":{"#);
    for (i, (path, e)) in m.contents.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(&mut out, path);
        out.push_str(r#":{"digest":"#);
        push_str(&mut out, &e.digest);
        if let Some(r) = &e.reference {
            out.push_str(r#","ref":"#);
            push_str(&mut out, r);
        }
        out.push_str(r#","size":"#);
        out.push_str(&e.size.unwrap_or(0).to_string());
        if let Some(p) = &e.local_path {
            out.push_str(r#","local_path":"#);
            push_str(&mut out, p);
        }
        if let Some(b) = &e.birth_artifact_id {
            out.push_str(r#","birthArtifactID":"#);
            push_str(&mut out, b);
        }
        out.push_str(if e.skip_cache { r#","skip_cache":true"# } else { r#","skip_cache":false"# });
        if !e.extra.is_empty() {
            out.push_str(r#","extra":{"#);
            for (j, (k, v)) in e.extra.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                push_str(&mut out, k);
                out.push(':');
                push_value(&mut out, v);
            }
            out.push('}');
        }
        out.push('}');
    }
    out.push_str("}}");
    out.into_bytes()
}

fn push_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's Map is a BTreeMap (no `preserve_order`): keys come out sorted, as in Go.
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, k);
                out.push(':');
                push_value(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Go's `encoding/json` writes it.
fn push_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                let code = c as u32;
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((code >> shift) & 0xf) as usize] as char);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::push_str;

    #[test]
    fn escapes_like_go() {
        let mut out = String::new();
        push_str(&mut out, "a<b>&\"\\\n\u{1}\u{2028}é");
        assert_eq!(out, r#""a\u003cb\u003e\u0026\"\\\n\u0001\u2028é""#);
    }
}
