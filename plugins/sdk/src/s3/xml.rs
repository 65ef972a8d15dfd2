//! Just enough XML for S3's answers: the text of elements by name (list results, error
//! codes), with the five predefined entities and numeric references decoded. S3's
//! answers are flat and namespaced by default, never CDATA.

/// The text of every `<tag>…</tag>`, in order.
pub fn all(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

/// The text of the first `<tag>…</tag>`.
pub fn first(body: &str, tag: &str) -> Option<String> {
    all(body, tag).into_iter().next()
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let Some(semi) = after.find(';') else {
            out.push_str(after);
            return out;
        };
        let entity = &after[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&after[..=semi]),
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keys_and_errors() {
        let body = "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Name>vb</Name><IsTruncated>true</IsTruncated><Contents><Key>a/b&amp;c-00001</Key></Contents>\
            <Contents><Key>a/b&#x26;c_metadata</Key></Contents><NextContinuationToken>t+1</NextContinuationToken>\
            </ListBucketResult>";
        assert_eq!(all(body, "Key"), ["a/b&c-00001", "a/b&c_metadata"]);
        assert_eq!(first(body, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(first(body, "NextContinuationToken").as_deref(), Some("t+1"));
        assert_eq!(first("<Error><Code>NoSuchBucket</Code></Error>", "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(first("", "Code"), None);
    }
}
