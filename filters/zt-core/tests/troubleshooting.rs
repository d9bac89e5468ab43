//! `docs/troubleshooting.md` has a row for every reason a stage can give, so that an operator who
//! reads a reason in a metric or a record finds what it means: a reason added without its row
//! fails here.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::indexing_slicing, clippy::panic)]

use zt_core::authz::AuthzReason;
use zt_core::jwt::JwtError;
use zt_core::ratelimit::Reason;

const DOC: &str = include_str!("../../../docs/troubleshooting.md");

/// The reasons with a table row (`| \`reason\` |`) in the section that starts at `heading`.
fn rows_in(heading: &str) -> Vec<String> {
    let start = DOC.find(heading).unwrap_or_else(|| panic!("no section {heading:?}"));
    let section = &DOC[start + heading.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `").and_then(|rest| rest.split_once('`')).map(|(r, _)| r.to_owned()))
        .collect()
}

fn assert_rows(heading: &str, reasons: &[&str]) {
    let rows = rows_in(heading);
    for reason in reasons {
        assert!(rows.iter().any(|row| row == reason), "{heading}: no row for `{reason}`");
    }
    assert_eq!(rows.len(), reasons.len(), "{heading}: rows {rows:?}, reasons {reasons:?}");
}

#[test]
fn every_reason_of_every_stage_has_a_row() {
    assert_rows("## JWT stage", &JwtError::REASONS);
    assert_rows("## Authorization stage", &AuthzReason::REASONS);
    let ratelimit: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_rows("## Rate-limit stage", &ratelimit);
}
