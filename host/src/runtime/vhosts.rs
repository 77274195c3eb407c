//! Finding a route table's virtual host from the request's Host: exact names first, then
//! the longest `*.suffix` wildcard, then `*`, as Envoy selects virtual hosts.

use std::collections::HashMap;

use crate::config::resolved::RouteTable;
use crate::wire::host::strip_port;

/// A route table's domains, indexed.
#[derive(Debug, Default)]
pub struct DomainIndex {
    exact: HashMap<String, usize>,
    /// `(".suffix", index)`, longest suffix first.
    wildcards: Vec<(String, usize)>,
    any: Option<usize>,
}

impl DomainIndex {
    /// Indexes the domains of every virtual host of `table`.
    pub fn new(table: &RouteTable) -> Self {
        let mut index = Self::default();
        for (i, vhost) in table.virtual_hosts.iter().enumerate() {
            for domain in &vhost.domains {
                if domain == "*" {
                    index.any.get_or_insert(i);
                } else if let Some(suffix) = domain.strip_prefix('*') {
                    index.wildcards.push((suffix.to_ascii_lowercase(), i));
                } else {
                    index.exact.entry(domain.to_ascii_lowercase()).or_insert(i);
                }
            }
        }
        index
            .wildcards
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        index
    }

    /// The virtual host serving `host` (a Host header, with or without port).
    pub fn find(&self, host: &str) -> Option<usize> {
        let name = strip_port(host).to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name);
        if let Some(i) = self.exact.get(name) {
            return Some(*i);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix.as_str()))
            .map(|(_, i)| *i)
            .or(self.any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::resolved::VirtualHost;

    fn table(domains: &[&[&str]]) -> RouteTable {
        RouteTable {
            virtual_hosts: domains
                .iter()
                .map(|d| VirtualHost {
                    domains: d.iter().map(ToString::to_string).collect(),
                    require_tls: false,
                    gateways: Vec::new(),
                    routes: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn exact_beats_longest_wildcard_beats_any() {
        let index = DomainIndex::new(&table(&[
            &["*"],
            &["*.example.com"],
            &["*.api.example.com"],
            &["www.example.com"],
        ]));
        assert_eq!(index.find("www.example.com:8080"), Some(3));
        assert_eq!(index.find("v1.api.example.com"), Some(2));
        assert_eq!(index.find("shop.example.com"), Some(1));
        assert_eq!(index.find("example.com"), Some(0));
        assert_eq!(index.find("WWW.Example.COM"), Some(3));
    }
}
