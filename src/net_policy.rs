//! Enforces `[fetch] private_networks` on every outgoing connection (fetch and sinks).
//!
//! Two places see the address herald connects to: a literal IP in the URL (hyper
//! connects to it without asking a resolver), checked by [`route`] before each request,
//! and a host name's DNS answer, filtered by [`PublicOnly`] inside the HTTP client, so
//! the address judged is the one connected to and a name that rebinds between a check
//! and the connection gains nothing. Refusals happen before any connection, so they
//! say nothing about which ports are open.

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::domain::address::{PrivateNetworks, SpecialRange, classify};

/// A connection herald would not make: the host as the URL names it, and the special
/// address it is or resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub host: String,
    pub address: IpAddr,
    pub range: SpecialRange,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let literal = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        if literal {
            write!(f, "{} ({})", self.host, self.range.describe())
        } else {
            write!(
                f,
                "{} ({}, {})",
                self.host,
                self.address,
                self.range.describe()
            )
        }
    }
}

impl Error for Refused {}

/// Which HTTP client a request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Any address: the operator named this host, or allowed everything.
    Direct,
    /// Through [`PublicOnly`]: special addresses in DNS answers are refused.
    Checked,
}

/// How to reach `target` on a fetch that started at the `configured` URL; `Err` when
/// `target` is a literal special address the policy forbids.
pub fn route(policy: PrivateNetworks, configured: &Url, target: &Url) -> Result<Route, Refused> {
    match policy {
        PrivateNetworks::Allow => Ok(Route::Direct),
        PrivateNetworks::Configured if same_host(configured, target) => Ok(Route::Direct),
        PrivateNetworks::Configured | PrivateNetworks::Deny => {
            check_literal(target)?;
            Ok(Route::Checked)
        }
    }
}

/// Refuses a URL whose host is a special IP address.
pub fn check_literal(url: &Url) -> Result<(), Refused> {
    let address = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(_)) | None => return Ok(()),
    };
    match classify(address) {
        Some(range) => Err(Refused {
            host: url.host_str().unwrap_or_default().to_owned(),
            address,
            range,
        }),
        None => Ok(()),
    }
}

/// Whether `target` is on the host, and port, that `configured` names. The default
/// ports count as one, so moving from http to https on the same host stays on it.
pub fn same_host(configured: &Url, target: &Url) -> bool {
    let default_port = |url: &Url| url.port().is_none_or(|port| Some(port) == default_of(url));
    let same_port = configured.port_or_known_default() == target.port_or_known_default()
        || (default_port(configured) && default_port(target));
    configured.host() == target.host() && same_port
}

fn default_of(url: &Url) -> Option<u16> {
    match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The refusal somewhere in an HTTP client error's chain of causes, if it was one.
pub fn find_refusal<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a Refused> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

/// A resolver that keeps only the public addresses of a name's DNS answer and fails
/// with [`Refused`] when none is left.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the client puts the URL's port in afterwards.
            let answer: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs = public_only(&host, answer)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn public_only(host: &str, answer: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    let first_special = answer
        .iter()
        .find_map(|addr| classify(addr.ip()).map(|range| (addr.ip(), range)));
    let public: Vec<SocketAddr> = answer
        .into_iter()
        .filter(|addr| classify(addr.ip()).is_none())
        .collect();
    match first_special {
        Some((address, range)) if public.is_empty() => Err(Refused {
            host: host.to_owned(),
            address,
            range,
        }),
        // An empty answer is the lookup's own failure, reported by the client.
        _ => Ok(public),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_configured_host_is_reached_directly_and_nothing_else_special() {
        let configured = url("http://127.0.0.1:8080/feed");
        let route = |target: &str| {
            super::route(PrivateNetworks::Configured, &configured, &url(target))
                .map_err(|refused| refused.to_string())
        };
        assert_eq!(route("http://127.0.0.1:8080/other"), Ok(Route::Direct));
        assert_eq!(
            route("http://127.0.0.2:8080/feed"),
            Err("127.0.0.2 (a loopback address)".into())
        );
        assert_eq!(
            route("http://127.0.0.1:8081/feed"),
            Err("127.0.0.1 (a loopback address)".into())
        );
        assert_eq!(
            route("http://169.254.169.254/latest/meta-data/"),
            Err("169.254.169.254 (a link-local address)".into())
        );
        assert_eq!(
            route("http://[::ffff:127.0.0.1]:8080/"),
            Err("[::ffff:7f00:1] (a loopback address)".into())
        );
        assert_eq!(
            route("http://0.0.0.0:8080/"),
            Err("0.0.0.0 (an unspecified address)".into())
        );
        // The URL parser reads other spellings of an IPv4 address as that address.
        assert_eq!(
            route("http://2130706434:8080/"),
            Err("127.0.0.2 (a loopback address)".into())
        );
        assert_eq!(route("https://example.com/feed"), Ok(Route::Checked));
        assert_eq!(route("https://93.184.216.34/feed"), Ok(Route::Checked));
    }

    #[test]
    fn deny_refuses_even_the_configured_host_and_allow_refuses_nothing() {
        let configured = url("http://127.0.0.1:8080/feed");
        assert!(route(PrivateNetworks::Deny, &configured, &configured).is_err());
        assert_eq!(
            route(
                PrivateNetworks::Deny,
                &configured,
                &url("https://example.com/")
            ),
            Ok(Route::Checked)
        );
        assert_eq!(
            route(
                PrivateNetworks::Allow,
                &configured,
                &url("http://169.254.169.254/")
            ),
            Ok(Route::Direct)
        );
    }

    #[test]
    fn same_host_means_host_and_port() {
        let check = |a: &str, b: &str| same_host(&url(a), &url(b));
        assert!(check("http://intranet/feed", "http://INTRANET/other"));
        assert!(check("http://intranet/feed", "https://intranet/feed"));
        assert!(check(
            "http://intranet:80/feed",
            "https://intranet:443/feed"
        ));
        assert!(check(
            "http://intranet:8080/feed",
            "https://intranet:8080/feed"
        ));
        assert!(!check("http://intranet/feed", "http://intranet:8080/feed"));
        assert!(!check("http://intranet:8080/feed", "https://intranet/feed"));
        assert!(!check(
            "http://intranet/feed",
            "http://intranet.evil.test/feed"
        ));
        assert!(!check("http://10.0.0.1/feed", "http://10.0.0.2/feed"));
    }

    #[test]
    fn dns_answers_keep_only_public_addresses() {
        let addr = |text: &str| SocketAddr::new(text.parse().unwrap(), 0);
        assert_eq!(
            public_only("mixed.test", vec![addr("127.0.0.1"), addr("93.184.216.34")]),
            Ok(vec![addr("93.184.216.34")])
        );
        let refused =
            public_only("rebind.test", vec![addr("169.254.169.254"), addr("::1")]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "rebind.test (169.254.169.254, a link-local address)"
        );
        assert_eq!(public_only("empty.test", vec![]), Ok(vec![]));
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_special_addresses() {
        let error = match PublicOnly.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let refused = find_refusal(error.as_ref()).unwrap();
        assert_eq!(refused.host, "localhost");
        assert_eq!(refused.range, SpecialRange::Loopback);
    }
}
