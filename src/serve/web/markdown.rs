//! Markdown (a `.md` file's preview, a version's description) rendered to HTML that cannot run:
//! CommonMark by `pulldown-cmark`, with every piece of raw HTML turned into text (a raw block
//! shown as code) and every link or image whose address has a scheme other than http, https or
//! mailto pointed nowhere. The page's CSP is the second wall, not the first.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd, html};

/// Schemes a link may keep; an address without a scheme (relative, `#anchor`) is kept too.
const SAFE_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// What an unsafe address becomes.
const NOWHERE: &str = "#";

/// Whether a browser would follow `url` to a safe place. Browsers drop ASCII whitespace and
/// control characters inside a scheme and ignore its case (`java\tSCRIPT:` runs), so the
/// scheme is read the same way.
fn is_safe(url: &str) -> bool {
    let squeezed: String =
        url.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_control()).collect();
    let Some(colon) = squeezed.find(':') else { return true };
    if squeezed[..colon].contains(['/', '?', '#']) {
        // `path/a:b` or `?q=a:b`: the colon is past the scheme's place, so there is none.
        return true;
    }
    SAFE_SCHEMES.iter().any(|s| squeezed[..colon].eq_ignore_ascii_case(s))
}

fn sanitized(url: CowStr<'_>) -> CowStr<'_> {
    if is_safe(&url) { url } else { CowStr::Borrowed(NOWHERE) }
}

/// One event made inert.
fn inert(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::HtmlBlock) => {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(CowStr::Borrowed(""))))
        }
        Event::End(TagEnd::HtmlBlock) => Event::End(TagEnd::CodeBlock),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: sanitized(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: sanitized(dest_url), title, id })
        }
        e => e,
    }
}

/// `text` as HTML that shows what it says and runs nothing.
pub fn to_html(text: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut out = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(text, options).map(inert));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_rendered() {
        let out = to_html(
            "# Title\n\nA *model* with [docs](https://x.org/a) and `code`.\n\n| a |\n|---|\n| 1 |\n",
        );
        assert!(out.contains("<h1>Title</h1>"), "{out}");
        assert!(out.contains("<em>model</em>") && out.contains("<code>code</code>"), "{out}");
        assert!(out.contains(r#"<a href="https://x.org/a">docs</a>"#), "{out}");
        assert!(out.contains("<td>1</td>"), "{out}");
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        let out = to_html(
            "<script>alert(1)</script>\n\nhi <img src=x onerror=\"alert(2)\"> there\n\n<div onclick=\"x()\">\nblock\n</div>\n",
        );
        assert!(
            !out.contains("<script") && !out.contains("<img") && !out.contains("<div"),
            "{out}"
        );
        assert!(out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=\"alert(2)\"&gt;"), "{out}");
    }

    #[test]
    fn links_to_scripts_go_nowhere() {
        for md in [
            "[a](javascript:alert(1))",
            "[a](JaVaScRiPt:alert(1))",
            "[a](java%09script:alert(1))",
            "[a](&#106;avascript:alert(1))",
            "[a](<java\tscript:alert(1)>)",
            "<javascript:alert(1)>",
            "[a](data:text/html;base64,PHNjcmlwdD4=)",
            "[a](vbscript:msgbox)",
            "![i](javascript:alert(1))",
            "[a][r]\n\n[r]: javascript:alert(1)",
        ] {
            let out = to_html(md);
            let addresses: Vec<&str> = [" href=\"", " src=\""]
                .iter()
                .flat_map(|attr| out.split(attr).skip(1))
                .filter_map(|s| s.split('"').next())
                .collect();
            assert!(addresses.iter().all(|a| *a == NOWHERE), "{md}: {out}");
            assert!(!out.contains("<script"), "{md}: {out}");
        }
        for (md, href) in [
            ("[a](https://x.org)", "https://x.org"),
            ("[a](mailto:a@b.c)", "mailto:a@b.c"),
            ("[a](docs/page.md)", "docs/page.md"),
            ("[a](#part)", "#part"),
            ("[a](a/b:c)", "a/b:c"),
        ] {
            assert!(to_html(md).contains(&format!(r#"href="{href}""#)), "{md}: {}", to_html(md));
        }
    }
}
