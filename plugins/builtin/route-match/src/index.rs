//! Candidate routes by path. A virtual host's routes whose every match block pins the path
//! (a case-sensitive `exact` or `prefix` URI condition) are found by lookup; the others
//! are candidates for every request. Candidates are tried in route order, so the first
//! matching route still wins, and a large route table is not scanned for each request.

use std::collections::HashMap;

/// What a match block says about the path, when that narrows it to a lookup.
pub enum PathKey<'a> {
    /// The path equals this.
    Exact(&'a str),
    /// The path starts with this.
    Prefix(&'a str),
}

/// The routes of one virtual host, indexed by the paths they can match.
#[derive(Default)]
pub struct RouteIndex {
    exact: HashMap<String, Vec<u32>>,
    prefix: HashMap<String, Vec<u32>>,
    /// The lengths of the indexed prefixes, ascending: the only lookups worth making.
    prefix_lengths: Vec<usize>,
    /// Routes that may match any path.
    always: Vec<u32>,
}

impl RouteIndex {
    /// Indexes routes given as each one's blocks' path keys (`None`: a block that does
    /// not narrow the path). A route without blocks matches every request.
    pub fn new<'a>(routes: impl Iterator<Item = Vec<Option<PathKey<'a>>>>) -> Self {
        let mut index = Self::default();
        for (route, keys) in routes.enumerate() {
            let route = route as u32;
            if keys.is_empty() || keys.iter().any(Option::is_none) {
                index.always.push(route);
                continue;
            }
            for key in keys.into_iter().flatten() {
                let (map, path) = match key {
                    PathKey::Exact(path) => (&mut index.exact, path),
                    PathKey::Prefix(path) => (&mut index.prefix, path),
                };
                let routes = map.entry(path.to_string()).or_default();
                if routes.last() != Some(&route) {
                    routes.push(route);
                }
            }
        }
        index.prefix_lengths = index.prefix.keys().map(String::len).collect();
        index.prefix_lengths.sort_unstable();
        index.prefix_lengths.dedup();
        index
    }

    /// The routes that may match `path`, in route order, into `out`.
    pub fn candidates(&self, path: &str, out: &mut Vec<u32>) {
        out.clear();
        if let Some(routes) = self.exact.get(path) {
            out.extend(routes);
        }
        for &length in self.prefix_lengths.iter().take_while(|&&l| l <= path.len()) {
            if let Some(routes) = path.get(..length).and_then(|p| self.prefix.get(p)) {
                out.extend(routes);
            }
        }
        out.extend(&self.always);
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::{PathKey, RouteIndex};

    #[test]
    fn candidates_are_the_routes_a_path_can_match_in_route_order() {
        let index = RouteIndex::new(
            vec![
                vec![Some(PathKey::Exact("/a"))],
                vec![Some(PathKey::Prefix("/a")), Some(PathKey::Exact("/b"))],
                vec![None],
                vec![Some(PathKey::Prefix("/c/"))],
                vec![],
            ]
            .into_iter(),
        );
        let mut out = Vec::new();
        index.candidates("/a", &mut out);
        assert_eq!(out, [0, 1, 2, 4]);
        index.candidates("/ab", &mut out);
        assert_eq!(out, [1, 2, 4]);
        index.candidates("/b", &mut out);
        assert_eq!(out, [1, 2, 4]);
        index.candidates("/c/d", &mut out);
        assert_eq!(out, [2, 3, 4]);
        index.candidates("/", &mut out);
        assert_eq!(out, [2, 4]);
    }
}
