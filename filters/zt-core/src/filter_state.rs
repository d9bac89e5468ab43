//! Names of the Envoy filter-state entries through which the filters hand results to each
//! other. Filter state is set by a filter through `set_property` and cannot be set by a client,
//! unlike a request header, so identity never travels in a forgeable header.

/// The verified identity, JSON of [`crate::jwt::Identity`], set by the JWT filter.
pub const IDENTITY: &str = "zt.identity";
