//! Azure blob references: tracked without checksums only (reading them needs the Azure API).

use super::*;

pub(super) fn expand_azure(
    uri: &str,
    name: Option<&str>,
    checksum: bool,
) -> Result<Vec<(String, Entry)>, RefError> {
    if checksum {
        return Err(RefError::Unsupported {
            uri: uri.to_owned(),
            reason: "Azure blob references are only supported without checksums (they need the \
                     Azure API); add it with checksum disabled"
                .into(),
        });
    }
    let parts = UriParts::split(uri);
    let mut path = parts.path.splitn(3, '/').skip(1);
    let (Some(container), Some(blob)) = (path.next(), path.next()) else {
        return Err(RefError::InvalidUri {
            uri: uri.to_owned(),
            reason: "expected https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB".into(),
        });
    };
    let reference = format!("{}://{}/{container}/{blob}", parts.scheme, parts.netloc);
    Ok(vec![(name.unwrap_or(blob).to_owned(), unchecked(reference))])
}
