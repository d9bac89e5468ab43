//! Limitador's limits, counted in Redis.
//!
//! Why not limitador's own `AsyncRedisStorage`: in every limitador release from 0.8 to 0.14 the
//! `redis_storage` feature only compiles together with `disk_storage` (`storage/keys.rs` calls a
//! `bin` module gated on `disk_storage`, since upstream commit b0b979d, July 2024), and
//! `disk_storage` builds RocksDB from C++ source and needs libclang: far too slow for a two-core
//! CI. Nor can a crate outside limitador implement its `AsyncCounterStorage` trait, as the trait's
//! error type, `StorageErr`, has no public constructor without those features.
//!
//! So this module does what limitador's `AsyncRateLimiter::check_rate_limited_and_update` does,
//! with limitador's own types: the limits that apply (`Limit::applies`), one `Counter` each
//! (`Counter::new`, which resolves the limit's variables), then one check-and-update in Redis. The
//! check and the update are one Lua script, so atomic: limitador's Redis storage reads and then
//! updates in two round trips, and two instances can together admit a little over the limit.
//!
//! Keys: `zt-rls:{NAMESPACE}:LIMIT_JSON:VARIABLES_JSON`, where `LIMIT_JSON` is limitador's own
//! serialisation of the limit (namespace, seconds, conditions, variables: its identity; not
//! `max_value` or `name`, as in limitador), so every instance with the same limits file shares
//! the same counters. The `{...}` hash tag keeps a namespace on one Redis Cluster slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use limitador::CheckResult;
use limitador::counter::Counter;
use limitador::limit::{Context, Limit, Namespace};

use crate::Error;
use crate::redis_client::{RedisClient, Reply};

/// KEYS: the counters. ARGV[1]: the hits to add; then, per counter i, ARGV[2i]: its max_value and
/// ARGV[2i+1]: its window in milliseconds. Returns {first limited counter (1-based, 0 if none),
/// value_1, pttl_1, value_2, pttl_2, ...} with each value as it was before this call, and each
/// pttl the time to the window's end (-2 when the counter did not exist). Adds the hits to every
/// counter only when none would exceed its max_value, and starts the window of a counter it
/// creates: all or nothing, in one atomic step.
const CHECK_AND_UPDATE: &str = r"
local delta = tonumber(ARGV[1])
local out = {0}
for i, key in ipairs(KEYS) do
  local value = tonumber(redis.call('GET', key) or '0')
  out[2 * i] = value
  out[2 * i + 1] = redis.call('PTTL', key)
  if out[1] == 0 and value + delta > tonumber(ARGV[2 * i]) then
    out[1] = i
  end
end
if out[1] == 0 then
  for i, key in ipairs(KEYS) do
    redis.call('INCRBY', key, delta)
    if redis.call('PTTL', key) < 0 then
      redis.call('PEXPIRE', key, ARGV[2 * i + 1])
    end
  end
end
return out
";

/// The limits by namespace, and the connection to Redis.
pub(crate) struct RedisLimiter {
    limits: HashMap<Namespace, Vec<Arc<Limit>>>,
    redis: RedisClient,
}

/// Why a check failed: Redis (UNAVAILABLE) or a limit's CEL expression (INTERNAL).
pub(crate) enum CheckError {
    Storage(String),
    Evaluation(String),
}

impl RedisLimiter {
    /// Checks that Redis at `url` answers PING now, as limitador-server connects at start.
    pub(crate) async fn connect(limits: Vec<Limit>, url: &str) -> Result<Self, Error> {
        let shown = redact(url);
        let redis = RedisClient::new(url).map_err(|e| Error::Storage(format!("{shown}: {e}")))?;
        match redis.call(&[b"PING"]).await {
            Ok(Reply::Simple(pong)) if pong == "PONG" => {}
            Ok(other) => return Err(Error::Storage(format!("Redis at {shown} answered PING with {other:?}"))),
            Err(e) => return Err(Error::Storage(format!("Redis at {shown}: {e}"))),
        }
        let mut by_namespace: HashMap<Namespace, Vec<Arc<Limit>>> = HashMap::new();
        for limit in limits {
            by_namespace.entry(limit.namespace().clone()).or_default().push(Arc::new(limit));
        }
        Ok(Self { limits: by_namespace, redis })
    }

    /// limitador's `check_rate_limited_and_update`, counters in Redis: on `Ok`, each returned
    /// counter carries `remaining` (after this call's hits when admitted) and `expires_in`.
    pub(crate) async fn check_rate_limited_and_update(
        &self,
        namespace: &Namespace,
        context: &Context<'_>,
        hits: u64,
    ) -> Result<CheckResult, CheckError> {
        let mut counters = Vec::new();
        for limit in self.limits.get(namespace).into_iter().flatten() {
            if limit.applies(context) {
                // `None`: a variable has no value in this request, so the limit does not count it.
                if let Some(counter) =
                    Counter::new(Arc::clone(limit), context).map_err(|e| CheckError::Evaluation(e.to_string()))?
                {
                    counters.push(counter);
                }
            }
        }
        if counters.is_empty() {
            return Ok(CheckResult { limited: false, counters, limit_name: None });
        }

        // EVAL script numkeys key... hits (max_value window_ms)...: the script's text every time
        // (Redis caches it by digest), so a restarted Redis needs no reloading.
        let keys = counters.iter().map(counter_key).collect::<Result<Vec<_>, _>>().map_err(CheckError::Storage)?;
        let mut args: Vec<Vec<u8>> = vec![b"EVAL".to_vec(), CHECK_AND_UPDATE.as_bytes().to_vec()];
        args.push(keys.len().to_string().into_bytes());
        args.extend(keys.into_iter().map(String::into_bytes));
        args.push(hits.to_string().into_bytes());
        for counter in &counters {
            args.push(counter.max_value().to_string().into_bytes());
            args.push(counter.window().as_millis().to_string().into_bytes());
        }
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let reply = match self.redis.call(&args).await.map_err(CheckError::Storage)? {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Integer(n) => Ok(n),
                    other => Err(CheckError::Storage(format!("counter script answered {other:?}"))),
                })
                .collect::<Result<Vec<i64>, _>>()?,
            Reply::Error(e) => return Err(CheckError::Storage(format!("counter script failed: {e}"))),
            other => return Err(CheckError::Storage(format!("counter script answered {other:?}"))),
        };

        let limited_index = reply.first().copied().unwrap_or(0);
        let (pairs, _) = reply.get(1..).unwrap_or_default().as_chunks::<2>();
        if pairs.len() != counters.len() {
            return Err(CheckError::Storage(format!("counter script answered {} values", reply.len())));
        }
        let mut limit_name = None;
        for ((index, counter), &[value, pttl]) in counters.iter_mut().enumerate().zip(pairs) {
            let value = u64::try_from(value).unwrap_or(0);
            let mut remaining = counter.max_value().saturating_sub(value);
            if limited_index == 0 {
                remaining = remaining.saturating_sub(hits);
            } else if usize::try_from(limited_index).ok() == Some(index + 1) {
                limit_name = counter.limit().name().map(str::to_owned);
            }
            counter.set_remaining(remaining);
            // No ttl (a new counter): a whole window is left, as limitador reports it.
            let expires_in = u64::try_from(pttl).map(Duration::from_millis).unwrap_or_else(|_| counter.window());
            counter.set_expires_in(expires_in);
        }
        Ok(CheckResult { limited: limited_index != 0, counters, limit_name })
    }
}

/// See the module header. The set of limits is deduplicated by [`crate::parse_limits`], so one
/// key never stands for two limits.
fn counter_key(counter: &Counter) -> Result<String, String> {
    let limit = serde_json::to_string(counter.limit()).map_err(|e| format!("serialise a limit: {e}"))?;
    let variables =
        serde_json::to_string(counter.set_variables()).map_err(|e| format!("serialise a counter's variables: {e}"))?;
    Ok(format!("zt-rls:{{{}}}:{limit}:{variables}", counter.namespace().as_ref()))
}

/// `redis://user:secret@host` shown as `redis://user:***@host`: no password in a log line.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = url.get(scheme_end + 3..at).unwrap_or_default();
            let user = userinfo.split(':').next().unwrap_or_default();
            let scheme = url.get(..scheme_end + 3).unwrap_or_default();
            let host = url.get(at..).unwrap_or_default();
            format!("{scheme}{user}:***{host}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redact("redis://:s3cret@127.0.0.1:6379/0"), "redis://:***@127.0.0.1:6379/0");
        assert_eq!(redact("redis://alice:s3cret@host"), "redis://alice:***@host");
    }

    #[test]
    fn keys_carry_the_namespace_tag_and_the_variables() {
        let limit = Limit::new(
            "ns",
            3,
            60,
            Vec::<limitador::limit::Predicate>::new(),
            vec![limitador::limit::Expression::parse("descriptors[0]['user']").unwrap()],
        );
        let mut context = Context::default();
        context.list_binding("descriptors".into(), vec![HashMap::from([("user".into(), "alice".into())])]);
        let counter = Counter::new(limit, &context).unwrap().unwrap();
        let key = counter_key(&counter).unwrap();
        assert!(key.starts_with("zt-rls:{ns}:"), "{key}");
        assert!(key.contains("alice"), "{key}");
        assert!(!key.contains("max_value"), "max_value is not part of a limit's identity: {key}");
    }
}
