//! Small HTML building blocks for the web pages: escaping, links, the page frame, tables.

use crate::svg::xml_escape;

/// Text made safe for HTML content and attributes.
pub fn esc(s: &str) -> String {
    xml_escape(s)
}

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One path segment, percent-encoded (`.` and `..` too, which browsers would resolve away).
pub fn seg(s: &str) -> String {
    match s {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        s => percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string(),
    }
}

/// `/ui/a/<segments…>`.
pub fn artifact_href(parts: &[&str]) -> String {
    let mut out = String::from("/ui/a");
    for p in parts {
        out.push('/');
        out.push_str(&seg(p));
    }
    out
}

pub fn run_href(entity: &str, project: &str, run: &str) -> String {
    format!("/ui/r/{}/{}/{}", seg(entity), seg(project), seg(run))
}

/// The one way pages write a time.
pub fn when(t: &chrono::DateTime<chrono::Utc>) -> String {
    esc(&t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

/// A duration as a person reads it (`1h 2m 3s`), to the second.
pub fn took(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, m, s) => format!("{h}h {m}m {s}s"),
    }
}

pub fn link(href: &str, text: &str) -> String {
    format!(r#"<a href="{}">{}</a>"#, esc(href), esc(text))
}

/// A whole page: title, breadcrumbs (already HTML) and body (already HTML).
pub fn page(title: &str, crumbs: &[(String, String)], body: &str) -> String {
    let mut nav = vec![link("/ui/", "artfs")];
    for (href, text) in crumbs {
        nav.push(link(href, text));
    }
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{} · artfs</title>
<style>
body{{font-family:sans-serif;margin:1.5em;color:#222}} nav{{margin-bottom:1em}} nav a{{margin-right:.3em}}
table{{border-collapse:collapse;margin:.5em 0}} td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}}
th{{background:#f4f4f4}} code,pre{{font-size:.9em}} pre{{background:#f8f8f8;padding:.5em;overflow:auto}}
.lineage-box{{overflow:auto;max-height:85vh;border:1px solid #ddd;padding:.5em}}
.snippet pre{{margin:.2em 0}} .added{{color:#176f2c}} .removed{{color:#a31515}} .changed{{color:#8a5a00}}
.preview img{{max-width:100%;max-height:40em}} .pager a,.pager span{{margin-right:1em}} .error{{color:#a31515}}
</style></head>
<body><nav>{}</nav><h1>{}</h1>
{body}
</body></html>
"#,
        esc(title),
        nav.join(" / "),
        esc(title)
    )
}

/// A table; cells are HTML already.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from("<table><tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            out.push_str(&format!("<td>{c}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "<p>(none)</p>".into();
    }
    let mut out = String::from("<ul>");
    for i in items {
        out.push_str(&format!("<li>{i}</li>"));
    }
    out.push_str("</ul>");
    out
}
