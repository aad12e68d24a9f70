//! Which addresses a URL source may be fetched from: a pure decision on a host and the addresses
//! it resolved to, against the built-in rules and the config's `urlSources` allow and deny lists.
//! A RagIndex must not turn the ingest Job into a way to read cloud metadata, the node, or the
//! cluster's internal services and serve them to every query.

use std::net::IpAddr;
use std::sync::LazyLock;

use ipnet::IpNet;

use crate::config::UrlSourcesConfig;

/// Networks refused unless allowed, with the name the refusal gives. Checked in order; IPv4
/// addresses inside IPv6 (mapped, NAT64) are checked as IPv4.
static RULES: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"),
        ("169.254.0.0/16", "a link-local (cloud metadata) address"),
        ("fe80::/10", "a link-local (cloud metadata) address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("fc00::/7", "a private address"),
        ("100.64.0.0/10", "a shared (CGNAT) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("ff00::/8", "a multicast address"),
        ("192.0.0.0/24", "a reserved address"),
        ("192.0.2.0/24", "a reserved address"),
        ("198.18.0.0/15", "a reserved address"),
        ("198.51.100.0/24", "a reserved address"),
        ("203.0.113.0/24", "a reserved address"),
        ("240.0.0.0/4", "a reserved address"),
        ("2001:db8::/32", "a reserved address"),
    ]
    .into_iter()
    .map(|(net, rule)| (net.parse().expect("a valid built-in network"), rule))
    .collect()
});

/// The address as the rules see it: an IPv4 address carried in IPv6 is that IPv4 address.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let nat64: IpNet = "64:ff9b::/96".parse().expect("a valid network");
            if nat64.contains(&addr) {
                let [.., a, b, c, d] = v6.octets();
                return IpAddr::V4([a, b, c, d].into());
            }
            addr
        }
        v4 => v4,
    }
}

/// Why `addr` is refused, or `None` when it may be fetched from.
pub fn denied(policy: &UrlSourcesConfig, addr: IpAddr) -> Option<String> {
    let addr = canonical(addr);
    if policy.allow_cidrs.iter().any(|net| net.contains(&addr)) {
        return None;
    }
    let rule = (policy.deny_cidrs.iter())
        .find(|net| net.contains(&addr))
        .map(|net| format!("in the cluster network {net}"))
        .or_else(|| {
            (RULES.iter())
                .find(|(net, _)| net.contains(&addr))
                .map(|(_, rule)| (*rule).to_string())
        })?;
    Some(format!(
        "{addr} is {rule} (denied; allow it with urlSources.allowCIDRs, RagIndex \
         spec.ingest.allowCIDRs)"
    ))
}

/// Whether `host` (as written in the URL) is fetched whatever it resolves to.
pub fn host_allowed(policy: &UrlSourcesConfig, host: &str) -> bool {
    let host = host.trim_end_matches('.');
    (policy.allow_hosts.iter()).any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(host))
}

/// The addresses of `host` that may be fetched from; when none may, why the first is refused.
pub fn filter(
    policy: &UrlSourcesConfig,
    host: &str,
    addrs: impl IntoIterator<Item = IpAddr>,
) -> Result<Vec<IpAddr>, String> {
    let addrs: Vec<IpAddr> = addrs.into_iter().collect();
    if host_allowed(policy, host) {
        return Ok(addrs);
    }
    let mut first_refusal = None;
    let allowed: Vec<IpAddr> = (addrs.iter().copied())
        .filter(|a| match denied(policy, *a) {
            Some(why) => {
                first_refusal.get_or_insert(why);
                false
            }
            None => true,
        })
        .collect();
    match first_refusal {
        // A name that resolves to any denied address is refused whole: which address a
        // connection uses is not ours to choose, and a mixed answer is a rebinding trick.
        Some(why) => Err(why),
        None if allowed.is_empty() => Err(format!("{host} resolved to no address")),
        None => Ok(allowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> UrlSourcesConfig {
        UrlSourcesConfig {
            allow_hosts: vec!["wiki.corp".into()],
            allow_cidrs: allow.iter().map(|n| n.parse().unwrap()).collect(),
            deny_cidrs: deny.iter().map(|n| n.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn each_rule_names_itself_and_the_allow_list_overrides_it() {
        let default = policy(&[], &["10.96.0.0/12", "2001:db8:42::/48"]);
        for (addr, rule) in [
            ("127.0.0.1", "a loopback address"),
            ("::1", "a loopback address"),
            ("::ffff:127.0.0.1", "a loopback address"),
            ("0.0.0.0", "an unspecified address"),
            ("169.254.169.254", "a link-local (cloud metadata) address"),
            ("fe80::1", "a link-local (cloud metadata) address"),
            (
                "64:ff9b::a9fe:a9fe",
                "a link-local (cloud metadata) address",
            ),
            ("10.1.2.3", "a private address"),
            ("172.20.0.1", "a private address"),
            ("192.168.1.1", "a private address"),
            ("fd00::1", "a private address"),
            ("100.64.0.1", "a shared (CGNAT) address"),
            ("239.1.1.1", "a multicast address"),
            ("255.255.255.255", "a reserved address"),
            ("10.96.0.10", "in the cluster network 10.96.0.0/12"),
            ("2001:db8:42::7", "in the cluster network 2001:db8:42::/48"),
        ] {
            let why = denied(&default, addr.parse().unwrap()).unwrap_or_default();
            assert!(
                why.contains(&format!(" is {rule} (denied; allow it with")),
                "{addr}: {why}"
            );
        }
        for public in ["93.184.215.14", "2606:4700::1111", "172.32.0.1"] {
            assert_eq!(denied(&default, public.parse().unwrap()), None, "{public}");
        }
        let allowing = policy(&["127.0.0.0/8", "10.96.0.0/16"], &["10.96.0.0/12"]);
        assert_eq!(denied(&allowing, "127.0.0.1".parse().unwrap()), None);
        assert_eq!(denied(&allowing, "10.96.0.10".parse().unwrap()), None);
        assert!(denied(&allowing, "10.97.0.10".parse().unwrap()).is_some());
    }

    #[test]
    fn a_name_with_any_denied_address_is_refused_unless_the_host_is_allowed() {
        let p = policy(&[], &[]);
        let public: IpAddr = "93.184.215.14".parse().unwrap();
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(filter(&p, "docs.example", [public]), Ok(vec![public]));
        let err = filter(&p, "docs.example", [public, metadata]).unwrap_err();
        assert!(err.starts_with("169.254.169.254 is a link-local"), "{err}");
        assert_eq!(filter(&p, "WIKI.corp.", [metadata]), Ok(vec![metadata]));
        assert!(filter(&p, "empty.example", []).is_err());
    }
}
