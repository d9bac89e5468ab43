//! IP addresses and CIDR ranges (`ipBlocks`, `source.ip`, `source_ip`), IPv4 and IPv6.

use std::net::IpAddr;

/// An address range: a network address and a prefix length. A single address is a range of
/// one (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or one address. Host bits set below the prefix
    /// (`10.0.0.1/8`) are refused: Envoy would silently mask them, but they are almost always a
    /// typo for another range.
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        let invalid = || format!("invalid CIDR \"{value}\"");
        let (address, prefix) = match value.split_once('/') {
            Some((address, prefix)) => {
                if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                (address, Some(prefix.parse::<u8>().map_err(|_| invalid())?))
            }
            None => (value, None),
        };
        let network: IpAddr = address.parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(invalid());
        }
        if network.to_canonical() != network {
            // Sources are compared in their IPv4 form (see `contains`), so this could never match.
            return Err(format!("invalid CIDR \"{value}\": write an IPv4-mapped address in its IPv4 form"));
        }
        if mask(network, prefix) != network {
            return Err(format!("invalid CIDR \"{value}\": host bits set below /{prefix}"));
        }
        Ok(Self { network, prefix })
    }

    /// An IPv4-mapped IPv6 source (`::ffff:10.0.0.1`, what a dual-stack listener reports for an
    /// IPv4 client) is compared as the IPv4 address it is, so IPv4 ranges hold for it.
    pub(crate) fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        address.is_ipv4() == self.network.is_ipv4() && mask(address, self.prefix) == self.network
    }
}

fn mask(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let bits = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & bits).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & bits).into())
        }
    }
}

/// Whether some range contains `address`; no address is in no range.
pub(crate) fn any_contains(ranges: &[Cidr], address: Option<IpAddr>) -> bool {
    address.is_some_and(|address| ranges.iter().any(|range| range.contains(address)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ranges_contain_their_addresses() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.0", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "2001:db8::1", false),
            ("192.0.2.7/32", "192.0.2.7", true),
            ("192.0.2.7/32", "192.0.2.8", false),
            ("192.0.2.7", "192.0.2.7", true),
            ("192.0.2.0/31", "192.0.2.1", true),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "10.0.0.1", false),
            ("2001:db8::1/128", "2001:db8::1", true),
            ("2001:db8::1/128", "2001:db8::2", false),
            ("2001:db8::1", "2001:db8::1", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "10.1.2.3", true),
        ];
        for (range, address, expected) in cases {
            assert_eq!(Cidr::parse(range).unwrap().contains(ip(address)), expected, "{range} vs {address}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn refuses_invalid_ranges() {
        for bad in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/0008",
            "10.0.0/8",
            "10.0.0.256",
            "example.com",
            "",
            "/8",
            "10.0.0.1/8",
            "2001:db8::1/32",
            "10.0.0.0/8/8",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Cidr::parse("10.0.0.0/33").unwrap_err(), "invalid CIDR \"10.0.0.0/33\"");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn no_source_address_is_in_no_range() {
        let all = [Cidr::parse("0.0.0.0/0").unwrap(), Cidr::parse("::/0").unwrap()];
        assert!(!any_contains(&all, None));
        assert!(any_contains(&all, Some(ip("127.0.0.1"))));
    }
}
