//! Who called what: records grouped by caller, route and method, with their outcomes counted.
//! Only reads records; whether their chains hold is [`crate::chain`]'s business.

use std::collections::BTreeMap;

use crate::caller::{Caller, RouteKey, printable};
use crate::record;
use crate::scan::{Found, Kind};

/// Records of one (caller, route, method), by `outcome`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub allow: u64,
    pub deny: u64,
    pub limited: u64,
    pub advisory: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub caller: Caller,
    pub route: RouteKey,
    pub method: Option<String>,
    pub counts: Counts,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Keyed by what the table shows, so that it is sorted by caller, then route, then method.
    rows: BTreeMap<(String, String, String), Row>,
    /// Candidates that are not valid records: counted nowhere else.
    pub unreadable: u64,
    /// Records whose `outcome` is none of the four the spec lists.
    pub other_outcomes: u64,
}

impl Inventory {
    pub fn add(&mut self, found: &Found) {
        // A checkpoint is no request.
        if found.kind == Kind::Checkpoint {
            return;
        }
        let Ok(text) = &found.text else {
            self.unreadable += 1;
            return;
        };
        let fields = match record::header(text).and_then(|_| record::fields(text)) {
            Ok(fields) => fields,
            Err(_) => {
                self.unreadable += 1;
                return;
            }
        };
        let (caller, route) = (Caller::of(&fields), RouteKey::of(&fields));
        let key =
            (caller.to_string(), route.display(fields.method.as_deref()), fields.method.clone().unwrap_or_default());
        let row = self.rows.entry(key).or_insert_with(|| Row {
            caller,
            route,
            method: fields.method,
            counts: Counts::default(),
        });
        row.counts.total += 1;
        match fields.outcome.as_deref() {
            Some("allow") => row.counts.allow += 1,
            Some("deny") => row.counts.deny += 1,
            Some("limited") => row.counts.limited += 1,
            Some("advisory") => row.counts.advisory += 1,
            _ => self.other_outcomes += 1,
        }
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// The table, a header line and one line per row, columns padded; numbers right-aligned.
    pub fn table(&self) -> String {
        const HEADER: [&str; 8] = ["CALLER", "ROUTE", "METHOD", "COUNT", "ALLOW", "DENY", "LIMITED", "ADVISORY"];
        let lines: Vec<[String; 8]> = self
            .rows
            .iter()
            .map(|((caller, route, _), row)| {
                let c = row.counts;
                [
                    caller.clone(),
                    route.clone(),
                    printable(row.method.as_deref().unwrap_or("-")),
                    c.total.to_string(),
                    c.allow.to_string(),
                    c.deny.to_string(),
                    c.limited.to_string(),
                    c.advisory.to_string(),
                ]
            })
            .collect();
        let mut widths = HEADER.map(str::len);
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header = HEADER.map(str::to_owned);
        let mut out = String::new();
        for line in std::iter::once(&header).chain(&lines) {
            let cells: Vec<String> = line
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, width))| if i < 3 { format!("{cell:<width$}") } else { format!("{cell:>width$}") })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ChainBuilder, found};

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn record(chain: &mut ChainBuilder, identity: &str, request: &str, outcome: &str) -> String {
        chain.next_with(&format!(r#"{request},"status":200,{identity}"outcome":"{outcome}""#))
    }

    #[test]
    fn groups_by_caller_route_and_method_sorted() {
        let mut chain = ChainBuilder::new(A);
        let alice = r#""identity":{"provider":"corp","sub":"alice"},"#;
        let web = r#""identity":{"provider":"corp","client_id":"web"},"#;
        let orders = r#""method":"GET","path":"/orders/7?x=1","route":"orders""#;
        let health = r#""method":"GET","path":"/health?probe=1""#;
        let records = [
            record(&mut chain, web, orders, "deny"),
            record(&mut chain, alice, orders, "allow"),
            record(&mut chain, alice, orders, "limited"),
            record(&mut chain, "", health, "allow"),
            record(&mut chain, alice, orders, "advisory"),
            record(&mut chain, alice, r#""method":"POST","path":"/orders","route":"orders""#, "allow"),
        ];
        let mut inventory = Inventory::default();
        for (i, text) in records.iter().enumerate() {
            inventory.add(&found(i + 1, text));
        }
        inventory.add(&found(99, r#"{"v":2}"#));
        assert_eq!(inventory.unreadable, 1);
        assert_eq!(
            inventory.table(),
            "\
CALLER              ROUTE        METHOD  COUNT  ALLOW  DENY  LIMITED  ADVISORY
anonymous           GET /health  GET         1      1     0        0         0
corp:client_id=web  orders       GET         1      0     1        0         0
corp:sub=alice      orders       GET         3      1     0        1         1
corp:sub=alice      orders       POST        1      1     0        0         0
"
        );
    }
}
