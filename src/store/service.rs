//! What a cloud's error answer says. S3 (and GCS's XML API, which `object_store` speaks) answers
//! a failed request with `<Error><Code>NoSuchBucket</Code><Message>…</Message>…</Error>`, and
//! `object_store` hands that body on verbatim inside its error text. Users should read
//! `NoSuchBucket: The specified bucket does not exist`, not a page of XML with escaped newlines.

use std::error::Error;

/// A cloud's own code and message for a refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: String,
    pub message: String,
}

impl ServiceError {
    /// The bucket named by the request does not exist.
    pub fn is_missing_bucket(&self) -> bool {
        self.code == "NoSuchBucket"
    }

    /// The credentials were refused or lack a permission: the fix is on the caller's side.
    pub fn is_denied(&self) -> bool {
        matches!(
            self.code.as_str(),
            "AccessDenied"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "InvalidToken"
                | "AllAccessDisabled"
                | "AccountProblem"
        )
    }
}

/// The service error somewhere in `err`'s chain of causes, if the service sent one.
pub fn find(err: &(dyn Error + 'static)) -> Option<ServiceError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = parse(&e.to_string()) {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// The first `<Code>` of an XML error body in `text`, with its `<Message>` (empty if none).
pub fn parse(text: &str) -> Option<ServiceError> {
    let code = element(text, "Code")?;
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return None;
    }
    let message = element(text, "Message").unwrap_or_default();
    // A message is one line for a terminal; whatever the server put there, it gets no say
    // over the user's screen.
    let message: String = message
        .split(|c: char| c.is_control())
        .filter(|w| !w.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    Some(ServiceError { code: code.to_owned(), message })
}

fn element<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{name}>"))?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_error_body_becomes_code_and_message() {
        let text = "Generic S3 error: Error performing list request: … 404 Not Found: \
            <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>\
            <Message>The specified bucket\ndoes not exist</Message><Resource>/b</Resource></Error>";
        let e = parse(text).unwrap();
        assert_eq!(e.code, "NoSuchBucket");
        assert_eq!(e.message, "The specified bucket does not exist");
        assert!(e.is_missing_bucket() && !e.is_denied());
        assert!(parse("<Error><Code>AccessDenied</Code></Error>").unwrap().is_denied());
    }

    #[test]
    fn text_without_an_error_body_is_left_alone() {
        assert_eq!(parse("connection refused (os error 111)"), None);
        assert_eq!(parse("<Code></Code>"), None);
        assert_eq!(parse("<Code>no spaces <b>allowed</Code>"), None);
        assert_eq!(parse("<Code>Unclosed"), None);
    }
}
