//! Groups Gateway servers into listeners and binds VirtualServices to them as route tables.

use std::collections::BTreeMap;

use super::checks;
use super::gateways::GatewayServer;
use super::routes::BoundService;
use super::scope::Scope;
use crate::config::diag::Reporter;
use crate::config::resolved::{Listener, Route, RouteTable, Server, ServerKind, VirtualHost};

/// A listener being built: its port-0 group (the port name; empty for other ports), and
/// the servers it has so far.
struct Building<'a> {
    group: String,
    listener: Listener,
    members: Vec<&'a GatewayServer>,
}

/// Builds the listeners: one per bound address and port (port-0 servers group by port name).
pub fn build(
    gateways: &BTreeMap<String, Vec<GatewayServer>>,
    services: &[BoundService],
    reporter: &Reporter,
) -> Vec<Listener> {
    let mut listeners: Vec<Building<'_>> = Vec::new();
    for server in gateways.values().flatten() {
        let at = Scope::new(reporter, &server.site, server.path.as_str());
        if let Some(conflict) = bind_conflict(&listeners, server) {
            at.field("bind").error(conflict);
            continue;
        }
        let building = listener_for(&mut listeners, server);
        if !joins(&building.members, server, &at) {
            continue;
        }
        let listener = &mut building.listener;
        // Plain-HTTP and TCP servers share table 0; each TLS or passthrough server has its own.
        let shares = server.tls.is_none() && server.kind != ServerKind::Passthrough;
        let route_table = if shares && !listener.route_tables.is_empty() {
            0
        } else {
            listener.route_tables.push(RouteTable::default());
            listener.route_tables.len() - 1
        };
        bind_routes(&mut listener.route_tables[route_table], server, services);
        listener.servers.push(Server {
            name: server.name.clone(),
            gateway: server.gateway.clone(),
            hosts: server.hosts.iter().map(|(_, h)| h.clone()).collect(),
            tls: server.tls.clone(),
            kind: server.kind,
            route_table,
        });
        building.members.push(server);
    }
    listeners.into_iter().map(|b| finish(b.listener)).collect()
}

/// The listener that `server` belongs to, created when it is the first one there.
fn listener_for<'l, 'a>(
    listeners: &'l mut Vec<Building<'a>>,
    server: &GatewayServer,
) -> &'l mut Building<'a> {
    let group = if server.address.port() == 0 {
        server.port_name.clone()
    } else {
        String::new()
    };
    let existing = listeners
        .iter()
        .position(|b| b.listener.address == server.address && b.group == group);
    let index = existing.unwrap_or_else(|| {
        listeners.push(Building {
            group,
            listener: Listener {
                address: server.address,
                protocol: server.protocol,
                proxy_protocol: server.proxy_protocol,
                trusted_proxies: server.trusted_proxies,
                servers: Vec::new(),
                route_tables: Vec::new(),
            },
            members: Vec::new(),
        });
        listeners.len() - 1
    });
    &mut listeners[index]
}

/// Whether `server` can share its listener with the `members` already there: they
/// must agree on PROXY protocol and TLS, and serve none of its hosts.
fn joins(members: &[&GatewayServer], server: &GatewayServer, at: &Scope<'_>) -> bool {
    let Some(first) = members.first() else {
        return true;
    };
    let port = server.address.port();
    if (first.proxy_protocol, first.trusted_proxies)
        != (server.proxy_protocol, server.trusted_proxies)
    {
        at.field("proxyProtocol").error(format!("port {port} is already used by server {:?} with other proxyProtocol / numTrustedProxies settings; servers sharing a port must agree", first.name));
        return false;
    }
    let speaks_tls = |s: &GatewayServer| s.tls.is_some() || s.kind == ServerKind::Passthrough;
    if (first.kind == ServerKind::Tcp) != (server.kind == ServerKind::Tcp) {
        let other = if first.kind == ServerKind::Tcp {
            "TCP"
        } else {
            "HTTP or TLS"
        };
        at.field("port").field("protocol").warn(format!("port {port} is already used by server {:?} for {other}; one port cannot mix TCP with other protocols: this server is not served", first.name));
        return false;
    }
    if speaks_tls(first) != speaks_tls(server) {
        let mode = if speaks_tls(first) {
            "TLS"
        } else {
            "plain text"
        };
        at.field("port").error(format!("port {port} is already used by server {:?} with {mode}; one port cannot mix TLS and plain text", first.name));
        return false;
    }
    if let Some((other, host)) = duplicate_host(members, server) {
        at.field("hosts").error(format!(
            "host {host:?} on port {port} is already served by server {:?}",
            other.name
        ));
        return false;
    }
    true
}

/// Two servers cannot bind one port on a specific address and on every address.
fn bind_conflict(listeners: &[Building<'_>], server: &GatewayServer) -> Option<String> {
    let port = server.address.port();
    if port == 0 {
        return None;
    }
    listeners.iter().find_map(|b| {
        let l = &b.listener;
        let same_port = l.address.port() == port && l.address.ip() != server.address.ip();
        let overlap = l.address.ip().is_unspecified() || server.address.ip().is_unspecified();
        (same_port && overlap).then(|| {
            format!(
                "port {port} is already bound on {} by server {:?}; it cannot also be bound on {}",
                l.address.ip(),
                b.members[0].name,
                server.address.ip()
            )
        })
    })
}

/// A member of the listener that already serves one of the server's hosts, and the host.
fn duplicate_host<'a>(
    members: &[&'a GatewayServer],
    server: &GatewayServer,
) -> Option<(&'a GatewayServer, String)> {
    members.iter().find_map(|other| {
        server
            .hosts
            .iter()
            .find(|(_, h)| other.hosts.iter().any(|(_, o)| o == h))
            .map(|(_, h)| (*other, h.clone()))
    })
}

/// Adds the routes of every VirtualService bound to the server's Gateway.
fn bind_routes(table: &mut RouteTable, server: &GatewayServer, services: &[BoundService]) {
    for service in services.iter().filter(|s| s.served_on(server)) {
        let routes: Vec<Route> = match server.kind {
            ServerKind::Http => &service.routes,
            ServerKind::Passthrough => &service.tls_routes,
            ServerKind::Tcp => &service.tcp_routes,
        }
        .iter()
        .filter_map(|r| r.through(&server.gateway))
        .collect();
        if routes.is_empty() && server.kind.forwards_bytes() {
            continue;
        }
        let mut bound_tcp = false;
        for host in &service.hosts {
            for (namespace, server_host) in &server.hosts {
                if namespace
                    .as_ref()
                    .is_some_and(|ns| ns != &service.namespace)
                {
                    continue;
                }
                let Some(domain) = checks::host_intersection(server_host, host) else {
                    continue;
                };
                // A TCP connection names no host: a VirtualService whose hosts meet the
                // server's serves every connection to the port, once.
                let domain = match server.kind {
                    ServerKind::Tcp if bound_tcp => continue,
                    ServerKind::Tcp => {
                        bound_tcp = true;
                        String::from("*")
                    }
                    _ => domain,
                };
                let vhost = match table
                    .virtual_hosts
                    .iter_mut()
                    .position(|v| v.domains[0] == domain)
                {
                    Some(i) => &mut table.virtual_hosts[i],
                    None => {
                        table.virtual_hosts.push(VirtualHost {
                            domains: vec![domain],
                            require_tls: server.https_redirect,
                            gateways: Vec::new(),
                            routes: Vec::new(),
                        });
                        table.virtual_hosts.last_mut().expect("just pushed")
                    }
                };
                if !vhost.gateways.contains(&server.gateway) {
                    vhost.gateways.push(server.gateway.clone());
                }
                vhost.routes.extend(routes.iter().cloned());
            }
        }
    }
}

/// Keeps each VirtualService's routes up to its first catch-all, then moves catch-alls
/// to the end of each virtual host, as Istio does when it merges VirtualServices.
fn finish(mut listener: Listener) -> Listener {
    for table in &mut listener.route_tables {
        for vhost in &mut table.virtual_hosts {
            rank_translated(&mut vhost.routes);
            let mut kept: Vec<Route> = Vec::new();
            let mut catch_alls: Vec<Route> = Vec::new();
            let mut closed: Vec<String> = Vec::new();
            for route in vhost.routes.drain(..) {
                if closed.contains(&route.virtual_service) {
                    continue;
                }
                if route.is_catch_all() {
                    closed.push(route.virtual_service.clone());
                    catch_alls.push(route);
                } else {
                    kept.push(route);
                }
            }
            kept.extend(catch_alls);
            vhost.routes = kept;
        }
    }
    listener
}

/// Orders the routes translated from the Gateway API by their precedence across the
/// VirtualServices they became, in the places they hold among the host's routes (the
/// others keep theirs).
fn rank_translated(routes: &mut [Route]) {
    let places: Vec<usize> = (0..routes.len())
        .filter(|&i| routes[i].rank.is_some())
        .collect();
    let mut ranked: Vec<Route> = places.iter().map(|&i| routes[i].clone()).collect();
    ranked.sort_by(|a, b| a.rank.cmp(&b.rank));
    for (place, route) in places.into_iter().zip(ranked) {
        routes[place] = route;
    }
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::config::Diagnostics;
    use crate::config::diag::Reporter;
    use crate::config::model::gateway::GatewaySpec;
    use crate::config::resolve::scope::errors_at;
    use crate::config::resolve::tls::test_files;
    use crate::config::resolve::{Context, Input, gateways};
    use crate::config::resolved::Listener;

    /// The listeners of the Gateway `edge/gw` with these servers, and what was reported.
    fn listeners(servers: &str) -> (Vec<Listener>, Diagnostics) {
        let spec: GatewaySpec = serde_yaml::from_str(&format!("servers:\n{servers}")).unwrap();
        let dir = test_files();
        let ctx = Context {
            base_dir: dir.path(),
        };
        let reporter = Reporter::new("test.yaml", Vec::new());
        let input = Input::test(&spec, "Gateway", "edge", "gw");
        let gateways = gateways::resolve(&[input], &ctx, &reporter);
        let listeners = build(&gateways, &[], &reporter);
        (listeners, reporter.finish())
    }

    fn server_names(listener: &Listener) -> Vec<&str> {
        listener.servers.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn plain_servers_on_one_port_share_a_listener_and_route_table() {
        let (listeners, reported) = listeners(
            "
- {name: a, port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com]}
- {name: b, port: {number: 8080, name: http, protocol: HTTP}, hosts: [b.example.com]}
- {name: c, port: {number: 8081, name: http, protocol: HTTP}, hosts: [a.example.com]}
",
        );
        assert!(!reported.has_errors());
        assert_eq!(listeners.len(), 2);
        assert_eq!(server_names(&listeners[0]), ["a", "b"]);
        assert_eq!(listeners[0].route_tables.len(), 1);
        assert!(listeners[0].servers.iter().all(|s| s.route_table == 0));
        assert_eq!(listeners[1].address.to_string(), "0.0.0.0:8081");
    }

    #[test]
    fn tls_and_plain_text_cannot_share_a_port() {
        let (listeners, reported) = listeners(
            "
- {name: a, port: {number: 8443, name: https, protocol: HTTPS}, hosts: [a.example.com], tls: {mode: SIMPLE, credentialName: cred}}
- {name: b, port: {number: 8443, name: http, protocol: HTTP}, hosts: [b.example.com]}
",
        );
        assert_eq!(errors_at(&reported), ["spec.servers[1].port"]);
        assert_eq!(server_names(&listeners[0]), ["a"]);
    }

    #[test]
    fn a_host_is_served_once_per_port() {
        let (listeners, reported) = listeners(
            "
- {name: a, port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com]}
- {name: b, port: {number: 8080, name: http, protocol: HTTP}, hosts: [b.example.com, a.example.com]}
",
        );
        assert_eq!(errors_at(&reported), ["spec.servers[1].hosts"]);
        assert_eq!(server_names(&listeners[0]), ["a"]);
    }

    #[test]
    fn servers_sharing_a_port_agree_on_proxy_protocol() {
        let (_, reported) = listeners(
            "
- {name: a, port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com], proxyProtocol: true}
- {name: b, port: {number: 8080, name: http, protocol: HTTP}, hosts: [b.example.com]}
",
        );
        assert_eq!(errors_at(&reported), ["spec.servers[1].proxyProtocol"]);
    }

    #[test]
    fn a_port_is_bound_on_one_address_or_on_every_one() {
        let (listeners, reported) = listeners(
            "
- {name: a, bind: 127.0.0.1, port: {number: 8080, name: http, protocol: HTTP}, hosts: [a.example.com]}
- {name: b, port: {number: 8080, name: http, protocol: HTTP}, hosts: [b.example.com]}
- {name: c, bind: 127.0.0.2, port: {number: 8080, name: http, protocol: HTTP}, hosts: [c.example.com]}
",
        );
        assert_eq!(errors_at(&reported), ["spec.servers[1].bind"]);
        let addresses: Vec<String> = listeners.iter().map(|l| l.address.to_string()).collect();
        assert_eq!(addresses, ["127.0.0.1:8080", "127.0.0.2:8080"]);
    }

    #[test]
    fn port_0_servers_group_by_port_name() {
        let (listeners, reported) = listeners(
            "
- {name: a, port: {number: 0, name: web, protocol: HTTP}, hosts: [a.example.com]}
- {name: b, port: {number: 0, name: web, protocol: HTTP}, hosts: [b.example.com]}
- {name: c, port: {number: 0, name: api, protocol: HTTP}, hosts: [a.example.com]}
",
        );
        assert!(!reported.has_errors());
        let groups: Vec<Vec<&str>> = listeners.iter().map(server_names).collect();
        assert_eq!(groups, [vec!["a", "b"], vec!["c"]]);
    }
}
