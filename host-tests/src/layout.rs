//! How a test deploys the suite's stages: as Envoy chains the single modules (each stage its
//! own filter, handing results on through filter state), or as the one suite module with a
//! section per stage. Scenarios loop over [`Layout::ALL`], so each runs against both.

use serde_json::{Map, Value};

use crate::{Exchange, FilterSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `zt_jwt`, `zt_authz`, `zt_ratelimit`, `zt_audit`, one filter per stage, in that order.
    Chain,
    /// `zt_suite`, one filter.
    Suite,
}

impl Layout {
    pub const ALL: [Layout; 2] = [Layout::Chain, Layout::Suite];

    /// The filters to load, in order, for `sections`: each a stage (`jwt`, `authz`,
    /// `ratelimit`, `audit`) and its configuration, in the order the stages run. Every VM gets
    /// the environment `env`.
    pub fn filters(self, sections: &[(&str, &Value)], env: &[(&str, &str)]) -> Vec<FilterSpec> {
        self.filters_with(sections, env, false)
    }

    /// The same, with the stages' results in filter state in either layout (the suite's
    /// `filter_state: true`), for scenarios that check decisions there: [`Layout::decision`].
    pub fn filters_publishing(self, sections: &[(&str, &Value)], env: &[(&str, &str)]) -> Vec<FilterSpec> {
        self.filters_with(sections, env, true)
    }

    /// A stage's decision record (`jwt`, `authz`, `ratelimit`) as filter state holds it: the
    /// single filter's own entry, or the stage's part of the suite's one entry.
    pub fn decision(self, exchange: &Exchange, stage: &str) -> Option<Value> {
        let entry = |name: &str| exchange.filter_state_text(name).map(|text| serde_json::from_str::<Value>(&text));
        match self {
            Layout::Chain => entry(&format!("zt.{stage}.decision")).map(|parsed| parsed.expect("a JSON decision")),
            Layout::Suite => entry("zt.suite")?.expect("a JSON entry").get(stage).cloned(),
        }
    }

    fn filters_with(self, sections: &[(&str, &Value)], env: &[(&str, &str)], publish: bool) -> Vec<FilterSpec> {
        let with_env = |spec: FilterSpec| env.iter().fold(spec, |spec, (name, value)| spec.env(name, value));
        match self {
            Layout::Chain => sections
                .iter()
                .map(|(stage, config)| with_env(FilterSpec::new(&format!("zt_{stage}"), config.to_string())))
                .collect(),
            Layout::Suite => {
                let mut suite: Map<String, Value> =
                    sections.iter().map(|(stage, config)| ((*stage).to_owned(), (*config).clone())).collect();
                if publish {
                    suite.insert("filter_state".into(), Value::Bool(true));
                }
                vec![with_env(FilterSpec::new("zt_suite", Value::Object(suite).to_string()))]
            }
        }
    }
}
