//! The per-request context of every module: runs the stages in order as the request arrives,
//! goes on where a stage waited when its callout answers, adds response fields, and hands the
//! ended stream to the audit stage.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::{Deciding, Flow, Next, Pass, SharedPass, Stages, publish_state, record_latency, run};

pub struct PipelineHttp<const M: u8> {
    stages: Rc<Stages<M>>,
    pass: SharedPass,
}

impl<const M: u8> PipelineHttp<M> {
    pub fn new(context_id: u32, stages: Rc<Stages<M>>) -> Self {
        Self { stages, pass: Rc::new(RefCell::new(Pass::new(context_id))) }
    }

    /// The stage `waited` answered its callout: its time is recorded once it decided; if it
    /// let the request go on, the later stages run, then the request resumes.
    fn go_on(&self, waited: Deciding, flow: Flow, after: Next) {
        if let Some(histogram) = self.stages.latency.of(waited) {
            // The next stage reads its own start when `run` reaches it.
            let _ = record_latency(histogram, &mut self.pass.borrow_mut(), waited);
        }
        match flow {
            Flow::Continue => {
                self.pass.borrow_mut().next = after;
                if run(self, &self.stages, &self.pass) == Action::Continue {
                    self.resume_http_request();
                }
            }
            // The stage answered the request itself: its decision is final.
            Flow::Stop => publish_state(&self.stages, &self.pass.borrow()),
        }
    }
}

impl<const M: u8> Context for PipelineHttp<M> {
    fn on_http_call_response(&mut self, _token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        // The only callout a request makes over HTTP: the JWT stage's key refetch.
        let Some(stage) = self.stages.jwt() else { return };
        // Time passed while the callout was out: the token is checked again at the present.
        self.pass.borrow_mut().facts.clock_moved();
        let flow = stage.on_refetch_answer(self, self.stages.handoff, &self.pass, body_size);
        self.go_on(Deciding::Jwt, flow, Next::Authz);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        let Some(stage) = self.stages.ratelimit() else { return };
        self.pass.borrow_mut().facts.clock_moved();
        let answered = stage.on_global_answer(
            self,
            &self.stages,
            &mut self.pass.borrow_mut(),
            token_id,
            status_code,
            response_size,
        );
        if let Some(flow) = answered {
            self.go_on(Deciding::RateLimit, flow, Next::Upstream);
        }
    }

    fn on_done(&mut self) -> bool {
        if let Some(stage) = self.stages.jwt() {
            stage.on_done(self.pass.borrow().context_id);
        }
        true
    }
}

impl<const M: u8> HttpContext for PipelineHttp<M> {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.stages.audit().is_some() {
            // Audit records the request as it reached this filter, in either layout: later
            // filters (the router's path rewrite, its trace headers) change what Envoy holds.
            let _ = self.pass.borrow().facts.request_headers();
        }
        run(self, &self.stages, &self.pass)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(stage) = self.stages.ratelimit() {
            stage.on_response_headers(self, &mut self.pass.borrow_mut());
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some(stage) = self.stages.audit() {
            stage.on_log(self, &self.stages, &self.pass.borrow());
        }
    }
}
