//! Request paths normalized before routing, as Istio's `pathNormalization` has Envoy do
//! it, so that a route guarding a prefix cannot be passed by spelling the path otherwise.
//! The normalized path is what the route matchers, the plugins and the upstream see.

use std::fmt::Write as _;

/// Istio's `meshConfig.pathNormalization.normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathNormalization {
    /// Paths are routed and forwarded as sent.
    None,
    /// RFC 3986: `.` and `..` segments resolved (`%2e` too), `\` read as `/`, unreserved
    /// characters percent-decoded, other escapes in upper case.
    #[default]
    Base,
    /// `Base`, then runs of `/` merged.
    MergeSlashes,
    /// `%2F` and `%5C` decoded to `/` and `\` first, then `MergeSlashes`.
    DecodeAndMergeSlashes,
}

impl std::str::FromStr for PathNormalization {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().replace('-', "_").as_str() {
            "NONE" => Ok(Self::None),
            "BASE" | "DEFAULT" => Ok(Self::Base),
            "MERGE_SLASHES" => Ok(Self::MergeSlashes),
            "DECODE_AND_MERGE_SLASHES" => Ok(Self::DecodeAndMergeSlashes),
            _ => Err(format!(
                "`{text}` is not a path normalization (NONE, BASE, MERGE_SLASHES, DECODE_AND_MERGE_SLASHES)"
            )),
        }
    }
}

impl PathNormalization {
    /// The normalized form of `path_and_query` (the query is kept as sent), or `None` when
    /// it is already normal.
    pub fn apply(self, path_and_query: &str) -> Option<String> {
        if self == Self::None || !path_and_query.starts_with('/') {
            return None;
        }
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        if self.already_normal(path) {
            return None;
        }
        let mut normal = match self {
            Self::DecodeAndMergeSlashes => canonical(&decode_slashes(path)),
            _ => canonical(path),
        };
        if matches!(self, Self::MergeSlashes | Self::DecodeAndMergeSlashes) {
            normal = merge_slashes(&normal);
        }
        if normal == path {
            return None;
        }
        if let Some(query) = query {
            normal.push('?');
            normal.push_str(query);
        }
        Some(normal)
    }
}

impl PathNormalization {
    /// Whether `path` has nothing to normalize: no escapes, backslashes or dot segments,
    /// only characters a URL parser keeps as they are, and (when merging) no doubled
    /// slash. Most paths are, and skip the parser.
    fn already_normal(self, path: &str) -> bool {
        let plain = path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                )
        });
        plain
            && !path
                .split('/')
                .any(|segment| segment == "." || segment == "..")
            && (self == Self::Base || !path.contains("//"))
    }
}

/// The path as a WHATWG/Chromium URL parser writes it (dot segments resolved, `\` as
/// `/`, invalid characters escaped), with unreserved characters decoded and the hex of
/// the other escapes in upper case, as Envoy's canonicalizer does.
fn canonical(path: &str) -> String {
    let mut url = url::Url::parse("http://n/").expect("a constant URL parses");
    url.set_path(path);
    let resolved = url.path();
    let mut out = String::with_capacity(resolved.len());
    let mut rest = resolved;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest
            .get(at + 1..at + 3)
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
        match escape.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if is_unreserved(byte) => out.push(char::from(byte)),
            Some(byte) => {
                let _ = write!(out, "%{byte:02X}");
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    // A decoded `.` can form a new dot segment (`/%2E%2E/` is resolved above; `/.%2E/` too),
    // so resolve once more when one appeared.
    if out != resolved
        && (out.contains("/./")
            || out.contains("/../")
            || out.ends_with("/.")
            || out.ends_with("/.."))
    {
        return canonical(&out);
    }
    out
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// `%2F` and `%5C`, in either case, decoded.
fn decode_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        match rest
            .get(at + 1..at + 3)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("2F") => out.push('/'),
            Some("5C") => out.push('\\'),
            _ => {
                out.push('%');
                rest = &rest[at + 1..];
                continue;
            }
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    out
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(path: &str) -> String {
        PathNormalization::Base
            .apply(path)
            .unwrap_or_else(|| path.to_string())
    }

    #[test]
    fn resolves_dot_segments_however_spelled() {
        assert_eq!(base("/api/../admin"), "/admin");
        assert_eq!(base("/api/./x"), "/api/x");
        assert_eq!(base("/api/%2e%2e/admin"), "/admin");
        assert_eq!(base("/api/%2E./admin"), "/admin");
        assert_eq!(base("/api/.%2e/admin"), "/admin");
        assert_eq!(base("/../../etc"), "/etc");
        assert_eq!(base("/a/.."), "/");
        assert_eq!(base("/a\\..\\admin"), "/admin");
    }

    #[test]
    fn decodes_unreserved_and_uppercases_other_escapes() {
        assert_eq!(base("/%61dmin"), "/admin");
        assert_eq!(base("/a%7e%2d"), "/a~-");
        assert_eq!(base("/a%2fb"), "/a%2Fb");
        assert_eq!(base("/a%3bb"), "/a%3Bb");
        assert_eq!(base("/a;b=c"), "/a;b=c");
        assert_eq!(base("/a b"), "/a%20b");
        assert_eq!(base("/100%"), "/100%");
        assert_eq!(PathNormalization::Base.apply("/plain?x=/../y"), None);
        assert_eq!(base("/a/../b?x=/../y"), "/b?x=/../y");
    }

    #[test]
    fn merges_and_decodes_slashes_by_mode() {
        let apply = |mode: PathNormalization, path: &str| {
            mode.apply(path).unwrap_or_else(|| path.to_string())
        };
        assert_eq!(base("//a//b"), "//a//b");
        assert_eq!(apply(PathNormalization::MergeSlashes, "//a//b/"), "/a/b/");
        assert_eq!(
            apply(PathNormalization::MergeSlashes, "/a%2F%2Fb"),
            "/a%2F%2Fb"
        );
        assert_eq!(
            apply(PathNormalization::DecodeAndMergeSlashes, "/a%2F%2fb"),
            "/a/b"
        );
        assert_eq!(
            apply(
                PathNormalization::DecodeAndMergeSlashes,
                "/api%2F..%2Fadmin"
            ),
            "/admin"
        );
        assert_eq!(
            apply(PathNormalization::DecodeAndMergeSlashes, "/a%5C..%5Cb"),
            "/b"
        );
        assert_eq!(apply(PathNormalization::None, "/a/../b"), "/a/../b");
        assert_eq!(PathNormalization::Base.apply("*"), None);
    }

    #[test]
    fn plain_paths_skip_the_parser_and_stay_as_they_are() {
        let base = PathNormalization::Base;
        for path in [
            "/api/v1/items",
            "/static/app.css",
            "/a;b=c/d@e",
            "/.well-known/x",
            "//a",
        ] {
            assert!(base.already_normal(path), "{path}");
            assert_eq!(base.apply(path), None, "{path}");
        }
        for path in ["/a/./b", "/a/../b", "/a%2e", "/a\\b", "/a b", "/a\"b"] {
            assert!(!base.already_normal(path), "{path}");
        }
        assert!(!PathNormalization::MergeSlashes.already_normal("//a"));
    }
}
