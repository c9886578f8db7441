//! The Kubernetes client's configuration, with the proxy decided the way `kubectl` and curl decide it.
//!
//! kube-rs reads `HTTPS_PROXY` for a kubeconfig, but (5.0) matches `NO_PROXY` against the proxy's own address
//! rather than the API server's, and needs its `http-proxy` feature to use an `http://` proxy at all (without it
//! `run --kubeconfig` refused to start whenever `HTTPS_PROXY` was set). Here the proxy of a kubeconfig is the
//! cluster's `proxy-url` when it has one, else `HTTPS_PROXY` (`https_proxy`) unless `NO_PROXY` (`no_proxy`) names
//! the API server — by host name or a parent domain, IP address, CIDR range, optional port, or `*`.
//!
//! In a pod (the in-cluster configuration) the API server is reached directly, as kube-rs does: `HTTPS_PROXY`
//! there is for the ZIM client, and a Service IP is rarely reachable through a corporate proxy.

use std::net::IpAddr;
use std::path::Path;

/// Where the configuration came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A kubeconfig file.
    Kubeconfig,
    /// The pod's service account.
    InCluster,
}

/// Loads the configuration from `path`, or (without one) from `KUBECONFIG` / `~/.kube/config`, else the pod's
/// service account; then decides its proxy (see the module documentation).
pub async fn load(path: Option<&Path>) -> Result<(kube::Config, Source), String> {
    let (kubeconfig, unread) = match path {
        Some(path) => (
            Some(kube::config::Kubeconfig::read_from(path).map_err(|e| match e {
                kube::config::KubeconfigError::ReadConfig(e, _) => {
                    format!("cannot read the kubeconfig {}: {e}", path.display())
                }
                e => format!("kubeconfig {}: {e}", path.display()),
            })?),
            None,
        ),
        None => match kube::config::Kubeconfig::read() {
            Ok(kc) => (Some(kc), None),
            Err(e) => (None, Some(e)),
        },
    };
    let where_ =
        || path.map_or_else(|| "the kubeconfig".to_owned(), |p| format!("kubeconfig {}", p.display()));
    match kubeconfig {
        Some(kc) => {
            let explicit = cluster_proxy_url(&kc);
            let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| format!("{}: {e}", where_()))?;
            config.proxy_url = match explicit {
                // The URL may carry credentials: never echoed.
                Some(url) => {
                    Some(url.parse().map_err(|e| format!("{}: proxy-url is not a URL: {e}", where_()))?)
                }
                None => env_proxy_for(&config.cluster_url, |k| std::env::var(k).ok())
                    .map(|url| url.parse().map_err(|e| format!("HTTPS_PROXY is not a URL: {e}")))
                    .transpose()?,
            };
            Ok((config, Source::Kubeconfig))
        }
        None => kube::Config::incluster()
            .map(|c| (c, Source::InCluster))
            .map_err(|e| no_configuration(&e, unread.as_ref())),
    }
}

/// One line saying why there is no Kubernetes configuration: what the in-cluster attempt and the kubeconfig
/// attempt found, in words (kube's own messages quote a path as `'"/path"'`), and what to do.
fn no_configuration(
    incluster: &kube::config::InClusterError,
    kubeconfig: Option<&kube::config::KubeconfigError>,
) -> String {
    use kube::config::{InClusterError, KubeconfigError};
    let pod = match incluster {
        InClusterError::ReadEnvironmentVariable(_) => {
            "not in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset)".to_owned()
        }
        e => format!("the pod's service account is unusable ({e})"),
    };
    let file = match kubeconfig {
        Some(KubeconfigError::ReadConfig(e, path)) => {
            format!("cannot read the kubeconfig {}: {e}", path.display())
        }
        Some(KubeconfigError::FindPath) => {
            "no kubeconfig (KUBECONFIG is unset and there is no home directory)".into()
        }
        Some(e) => format!("the kubeconfig is unusable: {e}"),
        None => "no kubeconfig".into(),
    };
    format!("no Kubernetes configuration: {pod}, and {file}; pass --kubeconfig or set KUBECONFIG")
}

/// The `proxy-url` of the current context's cluster, if it sets one.
fn cluster_proxy_url(kc: &kube::config::Kubeconfig) -> Option<String> {
    let context = kc.current_context.as_ref()?;
    let cluster = kc.contexts.iter().find(|c| &c.name == context)?.context.as_ref()?.cluster.clone();
    kc.clusters
        .iter()
        .find(|c| c.name == cluster)?
        .cluster
        .as_ref()?
        .proxy_url
        .clone()
        .filter(|u| !u.is_empty())
}

/// The proxy the environment names for `target`: `HTTPS_PROXY` (or `https_proxy`) for an https target,
/// `HTTP_PROXY` (or `http_proxy`) for an http one, unless `NO_PROXY` (or `no_proxy`) matches the target.
pub fn env_proxy_for(target: &http::Uri, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let first = |names: [&str; 2]| names.iter().find_map(|n| var(n).filter(|v| !v.trim().is_empty()));
    let proxy = match target.scheme_str() {
        Some("http") => first(["HTTP_PROXY", "http_proxy"]),
        _ => first(["HTTPS_PROXY", "https_proxy"]),
    }?;
    let host = target.host()?;
    let port = target.port_u16().unwrap_or(if target.scheme_str() == Some("http") { 80 } else { 443 });
    match first(["NO_PROXY", "no_proxy"]) {
        Some(list) if no_proxy_matches(&list, host, port) => None,
        _ => Some(proxy.trim().to_owned()),
    }
}

/// Whether the `NO_PROXY` list `list` matches `host` (a name, an IPv4 address or a bracketed IPv6 address) on
/// `port`. Entries: `*`; an IP address or CIDR range; a host name, matching itself and its subdomains (a leading
/// `.` or `*.` is ignored); each optionally with `:port`.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let (name, entry_port) = split_port(entry);
        if entry_port.is_some_and(|p| p != port) {
            return false;
        }
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let Some(ip) = ip {
            if let Some((net, bits)) = name.split_once('/') {
                return net
                    .parse::<IpAddr>()
                    .ok()
                    .zip(bits.parse::<u8>().ok())
                    .is_some_and(|(n, b)| in_cidr(ip, n, b));
            }
            return name.parse::<IpAddr>().is_ok_and(|n| n == ip);
        }
        let name =
            name.trim_start_matches("*.").trim_start_matches('.').trim_end_matches('.').to_ascii_lowercase();
        !name.is_empty() && (host == name || host.ends_with(&format!(".{name}")))
    })
}

/// `host:port` → (`host`, port); an IPv6 address without brackets, or a CIDR, has no port.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some((addr, after)) = entry.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NO_PROXY entries match as curl and Go match them: names and their subdomains, IPs, CIDRs, ports, `*`.
    #[test]
    fn no_proxy_entries_match_like_curl() {
        let cases = [
            ("example.com", "example.com", 443, true),
            ("example.com", "api.example.com", 443, true),
            (".example.com", "api.example.com", 443, true),
            ("*.example.com", "api.example.com", 443, true),
            ("example.com", "notexample.com", 443, false),
            ("example.com:6443", "example.com", 443, false),
            ("example.com:6443", "example.com", 6443, true),
            ("10.0.0.0/8", "10.96.0.1", 443, true),
            ("10.0.0.0/8", "11.0.0.1", 443, false),
            ("127.0.0.1", "127.0.0.1", 6443, true),
            ("127.0.0.1", "localhost", 6443, false),
            ("localhost", "127.0.0.1", 6443, false),
            ("::1", "[::1]", 443, true),
            ("[::1]:443", "[::1]", 443, true),
            ("fd00::/8", "[fd12::1]", 443, true),
            ("*", "anything", 1, true),
            (" a.test , kubernetes.default.svc ", "kubernetes.default.svc", 443, true),
            ("", "example.com", 443, false),
        ];
        for (list, host, port, expected) in cases {
            assert_eq!(
                no_proxy_matches(list, host, port),
                expected,
                "NO_PROXY={list:?} host={host} port={port}"
            );
        }
    }

    /// The proxy for a target comes from HTTPS_PROXY unless NO_PROXY names the target — the target, not the
    /// proxy (kube-rs 5 matches NO_PROXY against the proxy's address).
    #[test]
    fn no_proxy_is_matched_against_the_api_server() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
        };
        let api: http::Uri = "https://127.0.0.1:6443".parse().unwrap();
        let proxy = "http://localhost:3128";
        assert_eq!(
            env_proxy_for(&api, env(&[("HTTPS_PROXY", "http://localhost:3128")])).as_deref(),
            Some(proxy)
        );
        assert_eq!(
            env_proxy_for(&api, env(&[("HTTPS_PROXY", "http://localhost:3128"), ("NO_PROXY", "127.0.0.1")])),
            None
        );
        // NO_PROXY naming the proxy's host does not turn the proxy off for the API server.
        assert_eq!(
            env_proxy_for(&api, env(&[("https_proxy", "http://localhost:3128"), ("no_proxy", "localhost")]))
                .as_deref(),
            Some(proxy)
        );
        assert_eq!(env_proxy_for(&api, env(&[("HTTP_PROXY", "http://p:1")])), None);
        assert_eq!(env_proxy_for(&api, env(&[])), None);
    }
}
