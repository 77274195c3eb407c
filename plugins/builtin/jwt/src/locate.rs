//! Finding a token where a provider says it travels.

use portcullis_sdk::request;

use crate::config::Location;

/// The token at `location` in the request in progress, if one is there.
pub fn token(location: &Location) -> Option<String> {
    let token = match location {
        Location::Header(name, prefix) => strip_prefix(&request::header(name)?, prefix)?,
        Location::Param(name) => param(&request::path(), name)?,
        Location::Cookie(name) => cookie(&request::header("cookie")?, name)?,
    };
    (!token.is_empty()).then_some(token)
}

/// `value` after `prefix` (compared ignoring ASCII case, as `Bearer` is), trimmed.
fn strip_prefix(value: &str, prefix: &str) -> Option<String> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| value[prefix.len()..].trim().to_string())
}

/// The query parameter `name` of `path_and_query`.
fn param(path_and_query: &str, name: &str) -> Option<String> {
    let (_, query) = path_and_query.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_string())
    })
}

/// The cookie `name` of a `Cookie` header.
fn cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then(|| value.trim_matches('"').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_after_their_prefix_in_params_and_in_cookies() {
        assert_eq!(
            strip_prefix("Bearer abc", "Bearer ").as_deref(),
            Some("abc")
        );
        assert_eq!(
            strip_prefix("bearer  abc ", "Bearer ").as_deref(),
            Some("abc")
        );
        assert_eq!(strip_prefix("Basic abc", "Bearer "), None);
        assert_eq!(strip_prefix("abc", "").as_deref(), Some("abc"));
        assert_eq!(
            param("/a?x=1&access_token=t.o.k", "access_token").as_deref(),
            Some("t.o.k")
        );
        assert_eq!(param("/a?access_token_x=1", "access_token"), None);
        assert_eq!(param("/a", "access_token"), None);
        assert_eq!(
            cookie("a=1; session=t.o.k", "session").as_deref(),
            Some("t.o.k")
        );
        assert_eq!(cookie("a=1", "session"), None);
    }
}
