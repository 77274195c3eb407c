//! Groups Gateway servers into listeners and binds VirtualServices to them as route tables.

use std::collections::BTreeMap;

use super::checks;
use super::gateways::GatewayServer;
use super::routes::BoundService;
use crate::config::diag::Reporter;
use crate::config::resolved::{Listener, Route, RouteTable, Server, VirtualHost};

/// Builds the listeners: one per bound address and port (port-0 servers group by port name).
pub fn build(
    gateways: &BTreeMap<String, Vec<GatewayServer>>,
    services: &[BoundService],
    reporter: &mut Reporter,
) -> Vec<Listener> {
    let mut listeners: Vec<(String, Listener, Vec<&GatewayServer>)> = Vec::new();
    for server in gateways.values().flatten() {
        let group = if server.address.port() == 0 {
            server.port_name.clone()
        } else {
            String::new()
        };
        if let Some(conflict) = bind_conflict(&listeners, server) {
            reporter.error(&server.site, format!("{}.bind", server.path), conflict);
            continue;
        }
        let existing = listeners
            .iter_mut()
            .find(|(g, l, _)| l.address == server.address && *g == group);
        let (listener, members) = match existing {
            Some((_, listener, members)) => (listener, members),
            None => {
                listeners.push((
                    group,
                    Listener {
                        address: server.address,
                        protocol: server.protocol,
                        proxy_protocol: server.proxy_protocol,
                        trusted_proxies: server.trusted_proxies,
                        servers: Vec::new(),
                        route_tables: Vec::new(),
                    },
                    Vec::new(),
                ));
                let (_, l, m) = listeners.last_mut().expect("just pushed");
                (l, m)
            }
        };
        if let Some(first) = members.first()
            && (first.proxy_protocol, first.trusted_proxies)
                != (server.proxy_protocol, server.trusted_proxies)
        {
            reporter.error(
                &server.site,
                format!("{}.proxyProtocol", server.path),
                format!("port {} is already used by server {:?} with other proxyProtocol / numTrustedProxies settings; servers sharing a port must agree", server.address.port(), first.name),
            );
            continue;
        }
        if let Some(first) = members.first()
            && first.tls.is_some() != server.tls.is_some()
        {
            reporter.error(&server.site, format!("{}.port", server.path), format!("port {} is already used by server {:?} with {}; one port cannot mix TLS and plain text", server.address.port(), first.name, if first.tls.is_some() { "TLS" } else { "plain text" }));
            continue;
        }
        if let Some((other, host)) = duplicate_host(members, server) {
            reporter.error(
                &server.site,
                format!("{}.hosts", server.path),
                format!(
                    "host {host:?} on port {} is already served by server {:?}",
                    server.address.port(),
                    other.name
                ),
            );
            continue;
        }
        let route_table = if server.tls.is_none() && !listener.route_tables.is_empty() {
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
            route_table,
        });
        members.push(server);
    }
    listeners.into_iter().map(|(_, l, _)| finish(l)).collect()
}

/// Two servers cannot bind one port on a specific address and on every address.
fn bind_conflict(
    listeners: &[(String, Listener, Vec<&GatewayServer>)],
    server: &GatewayServer,
) -> Option<String> {
    let port = server.address.port();
    if port == 0 {
        return None;
    }
    listeners.iter().find_map(|(_, l, members)| {
        let same_port = l.address.port() == port && l.address.ip() != server.address.ip();
        let overlap = l.address.ip().is_unspecified() || server.address.ip().is_unspecified();
        (same_port && overlap).then(|| {
            format!(
                "port {port} is already bound on {} by server {:?}; it cannot also be bound on {}",
                l.address.ip(),
                members[0].name,
                server.address.ip()
            )
        })
    })
}

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
    for service in services
        .iter()
        .filter(|s| s.gateways.contains(&server.gateway))
    {
        let routes: Vec<Route> = service
            .routes
            .iter()
            .filter_map(|r| r.through(&server.gateway))
            .collect();
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
                            routes: Vec::new(),
                        });
                        table.virtual_hosts.last_mut().expect("just pushed")
                    }
                };
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
