//! Requests held until their provider's first keys arrive, as Envoy's `jwt_authn` holds a
//! request until its worker has keys: a valid token sent the moment Envoy starts is verified,
//! not refused. The root context wakes them (`proxy_set_effective_context`) when keys arrive
//! or their wait is over, and decides each as its own HTTP context would.

use std::cell::RefCell;

use zt_core::jwt::ProviderId;

use crate::pipeline::SharedPass;

/// More held requests than this in one worker are refused at once rather than queued: a start
/// under heavy load must not grow memory without bound.
pub const MAX_HELD: usize = 10_000;

/// A held request: its context and its way through the stages, to go on with once woken.
struct Held<P> {
    context_id: u32,
    pass: P,
    provider: ProviderId,
    until_ms: u64,
}

pub struct Waiting<P = SharedPass> {
    held: RefCell<Vec<Held<P>>>,
}

impl<P> Default for Waiting<P> {
    fn default() -> Self {
        Self { held: RefCell::new(Vec::new()) }
    }
}

impl<P> Waiting<P> {
    /// Holds a request; `false` when the list is full (the caller decides the request now).
    pub fn hold(&self, context_id: u32, pass: P, provider: ProviderId, until_ms: u64) -> bool {
        let mut held = self.held.borrow_mut();
        if held.len() >= MAX_HELD {
            return false;
        }
        held.push(Held { context_id, pass, provider, until_ms });
        true
    }

    /// A held request's stream ended (the client went away): nothing to wake.
    pub fn forget(&self, context_id: u32) {
        self.held.borrow_mut().retain(|h| h.context_id != context_id);
    }

    pub fn is_empty(&self) -> bool {
        self.held.borrow().is_empty()
    }

    /// Takes the requests to decide now: those whose provider is `settled` (keys arrived, or
    /// the fetch failed), and those whose wait is over.
    pub fn take_due(&self, now_ms: u64, settled: impl Fn(ProviderId) -> bool) -> Vec<P> {
        let (due, kept) =
            self.held.take().into_iter().partition::<Vec<_>, _>(|h| settled(h.provider) || now_ms >= h.until_ms);
        *self.held.borrow_mut() = kept;
        due.into_iter().map(|h| h.pass).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_on_keys_or_deadline_and_forgets_ended_streams() {
        let waiting = Waiting::<u32>::default();
        assert!(waiting.hold(1, 1, ProviderId(0), 1_000));
        assert!(waiting.hold(2, 2, ProviderId(1), 5_000));
        assert!(waiting.hold(3, 3, ProviderId(1), 9_000));
        waiting.forget(3);
        assert_eq!(waiting.take_due(500, |_| false), Vec::<u32>::new());
        assert_eq!(waiting.take_due(1_000, |_| false), vec![1]);
        assert_eq!(waiting.take_due(1_001, |p| p == ProviderId(1)), vec![2]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn the_list_is_bounded() {
        let waiting = Waiting::<u32>::default();
        for id in 0..MAX_HELD {
            let id = u32::try_from(id).unwrap();
            assert!(waiting.hold(id, id, ProviderId(0), 1));
        }
        assert!(!waiting.hold(u32::MAX, u32::MAX, ProviderId(0), 1));
    }
}
