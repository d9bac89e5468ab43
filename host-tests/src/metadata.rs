//! Route metadata as Envoy 1.40 answers a whole namespace (a `Struct`, a map to its attribute
//! layer): proxy-wasm's map encoding, as header maps are sent.

/// The map encoding of `pairs`: a `u32` count, each key's and value's length as `u32`s, then
/// each key and value followed by a NUL, all little-endian.
pub fn map_encoding<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Vec<u8> {
    // Test metadata is a few short strings: a length over u32 cannot occur.
    let length = |bytes: &[u8]| u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes();
    let count = u32::try_from(pairs.clone().count()).unwrap_or(u32::MAX);
    let mut out = count.to_le_bytes().to_vec();
    for (key, value) in pairs.clone() {
        out.extend(length(key));
        out.extend(length(value));
    }
    for (key, value) in pairs {
        out.extend_from_slice(key);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// The stream's dynamic metadata as Envoy answers the `metadata` attribute: a serialized
/// `envoy.config.core.v3.Metadata`, each namespace a `google.protobuf.Struct` whose JSON numbers
/// are doubles. Declared here from Envoy's and protobuf's own definitions, apart from the
/// filters' decoder, so that the harness does not share a mistake with the code under test.
pub fn dynamic_metadata(namespaces: &[(&str, &serde_json::Value)]) -> Vec<u8> {
    let metadata = proto::Metadata {
        filter_metadata: namespaces
            .iter()
            .map(|(name, value)| {
                let serde_json::Value::Object(fields) = value else { panic!("a namespace is a JSON object") };
                ((*name).to_owned(), proto::structure(fields))
            })
            .collect(),
    };
    prost::Message::encode_to_vec(&metadata)
}

mod proto {
    use std::collections::BTreeMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(btree_map = "string, message", tag = "1")]
        pub filter_metadata: BTreeMap<String, Struct>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Struct {
        #[prost(btree_map = "string, message", tag = "1")]
        pub fields: BTreeMap<String, Value>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Value {
        #[prost(oneof = "value::Kind", tags = "1, 2, 3, 4, 5, 6")]
        pub kind: Option<value::Kind>,
    }

    pub mod value {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(int32, tag = "1")]
            Null(i32),
            #[prost(double, tag = "2")]
            Number(f64),
            #[prost(string, tag = "3")]
            String(String),
            #[prost(bool, tag = "4")]
            Bool(bool),
            #[prost(message, tag = "5")]
            Struct(super::Struct),
            #[prost(message, tag = "6")]
            List(super::ListValue),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListValue {
        #[prost(message, repeated, tag = "1")]
        pub values: Vec<Value>,
    }

    pub fn structure(fields: &serde_json::Map<String, serde_json::Value>) -> Struct {
        Struct { fields: fields.iter().map(|(name, value)| (name.clone(), self::value(value))).collect() }
    }

    fn value(json: &serde_json::Value) -> Value {
        use serde_json::Value as Json;
        let kind = match json {
            Json::Null => value::Kind::Null(0),
            // What protobuf's JSON mapping does with every number, integers included.
            Json::Number(n) => value::Kind::Number(n.as_f64().unwrap_or(f64::NAN)),
            Json::String(s) => value::Kind::String(s.clone()),
            Json::Bool(b) => value::Kind::Bool(*b),
            Json::Object(fields) => value::Kind::Struct(structure(fields)),
            Json::Array(items) => value::Kind::List(ListValue { values: items.iter().map(self::value).collect() }),
        };
        Value { kind: Some(kind) }
    }
}
