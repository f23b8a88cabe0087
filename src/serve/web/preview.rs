//! Inline previews of a file, each from at most `PREVIEW_BYTES` of it: text (SVG and HTML among
//! it, shown as text), Markdown rendered (`markdown`: nothing in it runs), JSON pretty-printed,
//! CSV/TSV as a table of its first rows, images by a link to their bytes served as an image type.

use super::html::{esc, table};
use super::markdown;
use super::opened::Opened;
use crate::manifest::Entry;
use crate::serve::ServeError;

/// Bytes of a file read for its preview.
const PREVIEW_BYTES: u64 = 256 << 10;
/// Images up to this size are shown inline (the browser reads them whole).
const IMAGE_PREVIEW_BYTES: u64 = 8 << 20;
/// Rows of a CSV/TSV preview.
const PREVIEW_ROWS: usize = 50;

/// The image types shown inline, by extension; everything else is served as an attachment.
pub fn image_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    })
}

fn extension(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// The preview of a stored entry, as HTML; `raw` is the URL of its bytes.
pub async fn preview(
    o: &Opened,
    path: &str,
    entry: &Entry,
    raw: &str,
) -> Result<String, ServeError> {
    let size = entry.size.unwrap_or(0);
    if image_type(path).is_some() {
        if size > IMAGE_PREVIEW_BYTES {
            return Ok("<p>(image too large to show here; download it)</p>".into());
        }
        let src = format!("{raw}?inline=1");
        return Ok(format!(r#"<img src="{}" alt="{}">"#, esc(&src), esc(path)));
    }
    let want = size.min(PREVIEW_BYTES);
    let bytes = if want == 0 {
        bytes::Bytes::new()
    } else {
        o.blobs.range(path, entry, 0..want).await.map_err(super::opened::source_error)?
    };
    let cut = size > want;
    let Some(text) = text_of(&bytes, cut) else {
        return Ok("<p>(binary file: no preview)</p>".into());
    };
    let note = if cut {
        format!("<p>(the first {} of {})</p>", human(want), human(size))
    } else {
        String::new()
    };
    let shown = match extension(path).as_str() {
        "json" if !cut => pretty_json(text).unwrap_or_else(|| pre(text)),
        "csv" => rows_table(text, b',', cut),
        "tsv" => rows_table(text, b'\t', cut),
        "md" | "markdown" => format!(r#"<div class="markdown">{}</div>"#, markdown::to_html(text)),
        _ => pre(text),
    };
    Ok(format!("{note}{shown}"))
}

fn human(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn pre(text: &str) -> String {
    format!("<pre>{}</pre>", esc(text))
}

/// The bytes as text, if they are: UTF-8 without NULs (a character cut at the end of a
/// partial read is dropped).
fn text_of(bytes: &[u8], cut: bool) -> Option<&str> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()?
        }
        Err(_) => return None,
    };
    (!text.contains('\0')).then_some(text)
}

fn pretty_json(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(pre(&serde_json::to_string_pretty(&v).ok()?))
}

/// The first `PREVIEW_ROWS` records as a table (the first is the header); quoted fields may
/// hold the separator, quotes (doubled) and newlines. A record cut off by the read is left out.
fn rows_table(text: &str, sep: u8, cut: bool) -> String {
    let mut records = split_records(text, sep);
    if cut && records.len() > 1 {
        records.pop();
    }
    records.truncate(PREVIEW_ROWS + 1);
    let mut it = records.into_iter();
    let head: Vec<String> = it.next().unwrap_or_default();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows: Vec<Vec<String>> = it.map(|r| r.iter().map(|c| esc(c)).collect()).collect();
    table(&head, &rows)
}

fn split_records(text: &str, sep: u8) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), Vec::new());
    let mut quoted = false;
    let mut bytes = text.bytes().peekable();
    while let Some(b) = bytes.next() {
        match (quoted, b) {
            (true, b'"') if bytes.peek() == Some(&b'"') => {
                bytes.next();
                field.push(b'"');
            }
            (true, b'"') => quoted = false,
            (false, b'"') if field.is_empty() => quoted = true,
            (false, b'\n') => {
                record.push(finish(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, b'\r') => {}
            (false, b) if b == sep => record.push(finish(&mut field)),
            (_, b) => field.push(b),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(finish(&mut field));
        records.push(record);
    }
    records
}

fn finish(field: &mut Vec<u8>) -> String {
    String::from_utf8_lossy(&std::mem::take(field)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_quoted_separators_quotes_and_newlines() {
        let r = split_records("a,b\n\"x,1\",\"say \"\"hi\"\"\"\n\"two\nlines\",3\r\n", b',');
        assert_eq!(r, [vec!["a", "b"], vec!["x,1", "say \"hi\""], vec!["two\nlines", "3"]]);
    }

    #[test]
    fn text_is_utf8_without_nul_and_a_cut_character_is_dropped() {
        assert_eq!(text_of("héllo".as_bytes(), false), Some("héllo"));
        assert_eq!(text_of(&"hé".as_bytes()[..2], true), Some("h"));
        assert_eq!(text_of(&"hé".as_bytes()[..2], false), None);
        assert_eq!(text_of(b"a\0b", false), None);
    }
}
