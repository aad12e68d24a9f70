//! Endpoint URLs can carry credentials (`https://user:pass@host`, `?api-key=`). Whatever the
//! runtime logs or serves shows them as `scheme://host[:port]/path` only.

use reqwest::Url;

/// `raw` as `scheme://host[:port]/path`: no user, password, query or fragment. Text that is not
/// a URL with a host is not shown at all, since it could be anything.
pub fn url(raw: &str) -> String {
    let Some(parsed) = Url::parse(raw.trim()).ok().filter(|u| u.has_host()) else {
        return "(not a URL)".into();
    };
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    format!("{}://{host}{port}{path}", parsed.scheme())
}

/// `text` (an error message, say) with every `scheme://…` in it redacted as [`url`] does.
pub fn urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let before = rest[..at]
            .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | '<' | '>'))
            .map_or(rest.len(), |i| at + i);
        // Punctuation closing a sentence or a `url: reason` is not part of the URL.
        let found = rest[before.len()..end].trim_end_matches([':', ',', '.', ';']);
        out.push_str(before);
        out.push_str(&url(found));
        rest = &rest[before.len() + found.len()..];
    }
    out.push_str(rest);
    out
}

/// An upstream provider's error for the server log: its URLs redacted, and never the API key
/// read from `key_env`.
pub fn upstream_error(err: impl std::fmt::Display, key_env: &str) -> String {
    without_key(&err.to_string(), std::env::var(key_env).ok().as_deref())
}

fn without_key(text: &str, key: Option<&str>) -> String {
    let text = urls_in(text);
    match key {
        Some(key) if !key.trim().is_empty() => text.replace(key, "[redacted]"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_query_strings() {
        assert_eq!(
            url("https://user:secret@llm.example:8443/v1/?api-key=secret#frag"),
            "https://llm.example:8443/v1"
        );
        assert_eq!(url("http://vllm:8000/v1"), "http://vllm:8000/v1");
        assert_eq!(
            url("https://api.openai.com:443/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(url("http://[::1]:6334"), "http://[::1]:6334");
        assert_eq!(url("secret"), "(not a URL)");
        assert_eq!(url("mailto:user:secret"), "(not a URL)");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let text =
            "error sending request for url (http://u:secret@h:1/v1?key=secret/chat): refused";
        assert_eq!(
            urls_in(text),
            "error sending request for url (http://h:1/v1): refused"
        );
        assert_eq!(urls_in("no url here"), "no url here");
        assert_eq!(
            urls_in("connect to http://u:p@h:1/?k=s: refused."),
            "connect to http://h:1: refused."
        );
        assert_eq!(
            urls_in("a http://x/?k=s b https://y"),
            "a http://x b https://y"
        );
    }

    #[test]
    fn upstream_errors_lose_credentials_and_the_key() {
        let text = "401 from https://u:p@h/v1?k=s (bad key sk-123)";
        assert_eq!(
            without_key(text, Some("sk-123")),
            "401 from https://h/v1 (bad key [redacted])"
        );
        assert_eq!(without_key("no key", Some(" ")), "no key");
    }
}
