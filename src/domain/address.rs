//! Which IP addresses are special (loopback, private, link-local, reserved…) and the
//! `[fetch] private_networks` setting that says when herald may connect to them.
//!
//! Pure classification: `net_policy` enforces it on the addresses actually connected to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `[fetch] private_networks`: when herald may connect to a [`SpecialRange`] address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateNetworks {
    /// Only to the host a configured URL names (the operator chose it); never to
    /// another special address reached by a redirect or a DNS answer.
    #[default]
    Configured,
    /// Anywhere: herald runs where everything it may reach is trusted.
    Allow,
    /// Never, not even a configured URL's host.
    Deny,
}

impl PrivateNetworks {
    pub const NAMES: [&'static str; 3] = ["configured", "allow", "deny"];

    /// The value as written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            PrivateNetworks::Configured => "configured",
            PrivateNetworks::Allow => "allow",
            PrivateNetworks::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Option<PrivateNetworks> {
        match text {
            "configured" => Some(PrivateNetworks::Configured),
            "allow" => Some(PrivateNetworks::Allow),
            "deny" => Some(PrivateNetworks::Deny),
            _ => None,
        }
    }
}

impl fmt::Display for PrivateNetworks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an address is not an ordinary public unicast address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialRange {
    /// `0.0.0.0`, `::` and the rest of 0.0.0.0/8: many stacks treat them as this host.
    Unspecified,
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7 and the deprecated site-local fec0::/10.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT: private to the provider's network.
    SharedAddressSpace,
    /// 169.254/16 and fe80::/10, where cloud metadata services answer.
    LinkLocal,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32.
    Documentation,
    /// 198.18.0.0/15.
    Benchmarking,
    Multicast,
    Broadcast,
    /// Everything else set aside by the IETF (192.0.0.0/24, 240/4, 100::/64, 2001::/23…).
    Reserved,
}

impl SpecialRange {
    /// "a link-local address", for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            SpecialRange::Unspecified => "an unspecified address",
            SpecialRange::Loopback => "a loopback address",
            SpecialRange::Private => "a private address",
            SpecialRange::SharedAddressSpace => "a shared (carrier-grade NAT) address",
            SpecialRange::LinkLocal => "a link-local address",
            SpecialRange::Documentation => "a documentation address",
            SpecialRange::Benchmarking => "a benchmarking address",
            SpecialRange::Multicast => "a multicast address",
            SpecialRange::Broadcast => "the broadcast address",
            SpecialRange::Reserved => "a reserved address",
        }
    }
}

/// `None` for an ordinary public unicast address; otherwise the range it belongs to.
pub fn classify(address: IpAddr) -> Option<SpecialRange> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<SpecialRange> {
    let [a, b, c, _] = address.octets();
    Some(match (a, b, c) {
        (0, _, _) => SpecialRange::Unspecified,
        (127, _, _) => SpecialRange::Loopback,
        (10, _, _) | (192, 168, _) => SpecialRange::Private,
        (172, 16..=31, _) => SpecialRange::Private,
        (100, 64..=127, _) => SpecialRange::SharedAddressSpace,
        (169, 254, _) => SpecialRange::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => SpecialRange::Documentation,
        (198, 18..=19, _) => SpecialRange::Benchmarking,
        // 192.88.99.0/24 is the retired 6to4 relay anycast range.
        (192, 0, 0) | (192, 88, 99) => SpecialRange::Reserved,
        (224..=239, _, _) => SpecialRange::Multicast,
        _ if address == Ipv4Addr::BROADCAST => SpecialRange::Broadcast,
        (240..=255, _, _) => SpecialRange::Reserved,
        _ => return None,
    })
}

fn classify_v6(address: Ipv6Addr) -> Option<SpecialRange> {
    let segments = address.segments();
    if address.is_unspecified() {
        return Some(SpecialRange::Unspecified);
    }
    if address.is_loopback() {
        return Some(SpecialRange::Loopback);
    }
    // Forms that carry an IPv4 address reach that address: judge it instead.
    if let Some(v4) = address.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // The deprecated IPv4-compatible form (::a.b.c.d).
        return Some(SpecialRange::Reserved);
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return classify_v4(embedded_v4(segments[1], segments[2]));
    }
    Some(match segments[0] {
        0x0064 if segments[1] == 0xff9b && segments[2] == 1 => SpecialRange::Private,
        0x0100 if segments[1..4] == [0, 0, 0] => SpecialRange::Reserved,
        0x2001 if segments[1] == 0x0db8 => SpecialRange::Documentation,
        0x2001 if segments[1] < 0x0200 => SpecialRange::Reserved,
        0xfc00..=0xfdff | 0xfec0..=0xfeff => SpecialRange::Private,
        0xfe80..=0xfebf => SpecialRange::LinkLocal,
        0xff00..=0xffff => SpecialRange::Multicast,
        _ => return None,
    })
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(address: &str, expected: Option<SpecialRange>) {
        let parsed: IpAddr = address.parse().unwrap();
        assert_eq!(classify(parsed), expected, "{address}");
    }

    #[test]
    fn public_addresses_are_ordinary() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82a::200e",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            check(address, None);
        }
    }

    #[test]
    fn ipv4_special_ranges() {
        use SpecialRange::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.0.0.2", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("192.88.99.1", Reserved),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("240.0.0.1", Reserved),
            ("255.255.255.254", Reserved),
            ("255.255.255.255", Broadcast),
        ];
        for (address, range) in cases {
            check(address, Some(range));
        }
    }

    #[test]
    fn ipv6_special_ranges_and_embedded_ipv4() {
        use SpecialRange::*;
        let cases = [
            ("::", Unspecified),
            ("::1", Loopback),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Reserved),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b:1::1", Private),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::", LinkLocal),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("2001:db8::1", Documentation),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("ff02::1", Multicast),
        ];
        for (address, range) in cases {
            check(address, Some(range));
        }
    }

    #[test]
    fn settings_round_trip() {
        for name in PrivateNetworks::NAMES {
            assert_eq!(PrivateNetworks::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(PrivateNetworks::parse("Allow"), None);
        assert_eq!(PrivateNetworks::default(), PrivateNetworks::Configured);
    }
}
