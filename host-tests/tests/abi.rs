//! The harness's own tests: each ABI area it serves, seen through the abi-probe fixture (and
//! the trapping fixture), compiled to wasm32-wasip1 as Envoy would load it.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zt_host_tests::{FilterSpec, Harness, HarnessError, LogLevel, Outcome, Request, ScriptedGrpc, ScriptedResponse};

const PROBE: &str = "fixture_abi_probe";

fn probe(config: &str) -> Harness {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new(PROBE, config)).unwrap();
    envoy
}

fn out(exchange: &zt_host_tests::Exchange, name: &str) -> String {
    exchange.upstream_header(&format!("x-probe-out-{name}")).unwrap_or_else(|| panic!("no {name}: {exchange:?}"))
}

#[test]
fn a_missing_module_names_the_build_step() {
    let err = Harness::new().load(FilterSpec::new("no_such_module", "{}")).unwrap_err();
    assert!(matches!(err, HarnessError::ModuleMissing(_)));
    assert!(err.to_string().contains("make build"), "{err}");
}

#[test]
fn logs_reach_the_test() {
    let mut envoy = probe("{}");
    envoy.send(Request::get("/").header("x-probe-log", "hello"));
    assert!(envoy.log_text().contains("probe: hello"), "{}", envoy.log_text());
    assert!(envoy.log_text().contains("probe: configured"));
}

#[test]
fn a_refused_configuration_is_reported() {
    let err = Harness::new().load(FilterSpec::new(PROBE, r#"{"fail": true}"#)).unwrap_err();
    assert_eq!(err, HarnessError::ConfigureRefused { filter: "fixture-abi-probe".into() });
}

#[test]
fn request_headers_are_set_added_removed_and_replaced() {
    let mut envoy = probe("{}");
    let exchange = envoy.send(
        Request::get("/")
            .header("x-a", "1")
            .header("x-gone", "1")
            .header("x-probe-set-header", "x-a=2")
            .header("x-probe-add-header", "x-b=3")
            .header("x-probe-remove-header", "x-gone"),
    );
    assert_eq!(exchange.upstream_header("x-a").as_deref(), Some("2"));
    assert_eq!(exchange.upstream_header("x-b").as_deref(), Some("3"));
    assert_eq!(exchange.upstream_header("x-gone"), None);

    let exchange = envoy.send(Request::get("/p").header("x-probe-replace-headers", "1").header("x-old", "1"));
    assert_eq!(exchange.upstream_header("x-replaced").as_deref(), Some("yes"));
    assert_eq!(exchange.upstream_header("x-old"), None);
    assert_eq!(exchange.upstream_header(":path").as_deref(), Some("/p"));
}

#[test]
fn non_utf8_header_values_pass_as_bytes() {
    let mut envoy = probe("{}");
    let exchange = envoy.send(Request::get("/").header("x-bin", b"\xff\xfe"));
    let Outcome::Upstream { headers, .. } = &exchange.outcome else { panic!("{exchange:?}") };
    assert!(headers.iter().any(|(n, v)| n == "x-bin" && v == b"\xff\xfe"));
}

#[test]
fn the_request_body_is_read_and_response_headers_pass_back() {
    let mut envoy = probe("{}");
    let exchange = envoy.send(Request::post("/", "payload").upstream_response(201, &[("x-up", "1")]));
    assert_eq!(exchange.filter_state_text("probe.body").as_deref(), Some("payload"));
    assert!(exchange.response_headers.iter().any(|(n, v)| n == "x-probe-response" && v == b"seen"));
    assert!(exchange.response_headers.iter().any(|(n, v)| n == ":status" && v == b"201"));
}

#[test]
fn envoy_attributes_are_readable_and_absent_ones_are_absent() {
    let mut envoy = probe("{}");
    let read = |envoy: &mut Harness, request: Request, path: &str| {
        out(&envoy.send(request.header("x-probe-read-property", path)), "property")
    };
    assert_eq!(read(&mut envoy, Request::get("/x?q=1"), "request.path"), "/x?q=1");
    assert_eq!(read(&mut envoy, Request::get("/x?q=1"), "request.url_path"), "/x");
    assert_eq!(read(&mut envoy, Request::post("/", ""), "request.method"), "POST");
    assert_eq!(read(&mut envoy, Request::get("/"), "source.address"), "127.0.0.1:45710");
    assert_eq!(read(&mut envoy, Request::get("/").route_name("r1"), "xds.route_name"), "r1");
    let with_metadata = Request::get("/").route_metadata("zt", "policy", "admin-only");
    assert_eq!(read(&mut envoy, with_metadata, "xds.route_metadata.filter_metadata.zt.policy"), "admin-only");
    assert_eq!(read(&mut envoy, Request::get("/"), "plugin_name"), "fixture-abi-probe");
    assert_eq!(read(&mut envoy, Request::get("/"), "plugin_vm_id"), "fixture-abi-probe");
    let spiffe = Request::get("/").attribute("connection.uri_san_peer_certificate", "spiffe://td/ns/a/sa/b");
    assert_eq!(read(&mut envoy, spiffe, "connection.uri_san_peer_certificate"), "spiffe://td/ns/a/sa/b");
    // Absent on a plaintext listener in Envoy: absent here too, never invented.
    assert_eq!(read(&mut envoy, Request::get("/"), "connection.uri_san_peer_certificate"), "absent");
    assert_eq!(read(&mut envoy, Request::get("/"), "zt.identity"), "absent");
}

#[test]
fn filter_state_passes_from_one_module_to_the_next_on_the_same_request_only() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new(PROBE, "{}").name("writer").vm_id("writer")).unwrap();
    envoy.load(FilterSpec::new(PROBE, r#"{"reader": true}"#).name("reader").vm_id("reader")).unwrap();
    let exchange = envoy.send(
        Request::get("/")
            .header("x-probe-set-state", "zt.identity=alice")
            .header("x-probe-set-header", "x-probe-read-state=zt.identity"),
    );
    // The writer saw no read header; the reader (another VM) read the writer's value.
    assert_eq!(out(&exchange, "state"), "alice");
    assert_eq!(exchange.filter_state_text("zt.identity").as_deref(), Some("alice"));
    // The next request starts with no filter state: both filters read nothing.
    let next = envoy.send(Request::get("/").header("x-probe-read-state", "zt.identity"));
    assert_eq!(next.upstream_header_values("x-probe-out-state"), ["absent", "absent"]);
}

#[test]
fn a_local_reply_stops_the_chain() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new(PROBE, "{}").name("first").vm_id("first")).unwrap();
    envoy.load(FilterSpec::new(PROBE, "{}").name("second").vm_id("second")).unwrap();
    let exchange = envoy.send(Request::get("/").header("x-probe-reply", "418").header("x-probe-metric", "seen"));
    let reply = exchange.local_reply().unwrap();
    assert_eq!(
        (reply.status, reply.header("x-probe"), reply.body_text().as_str()),
        (418, Some("reply"), "probe reply")
    );
    // Only the first filter ran: the metric is process-wide, as in Envoy.
    assert_eq!(envoy.metric("seen"), Some(1));
}

#[test]
fn an_http_call_is_answered_through_the_callback_and_resumes_the_request() {
    let mut envoy = probe("{}");
    envoy.script_http("authz", ScriptedResponse::ok("pong"));
    let exchange = envoy.send(Request::get("/").header("x-probe-call", "authz"));
    assert_eq!(out(&exchange, "call-body"), "pong");
    let call = envoy.http_calls().pop().unwrap();
    assert_eq!((call.cluster.as_str(), call.header(":path")), ("authz", Some("/probe")));
    assert_eq!(call.timeout, Duration::from_secs(5));

    envoy.script_http("down", ScriptedResponse::Fail);
    let failed = envoy.send(Request::get("/").header("x-probe-call", "down"));
    assert_eq!(failed.local_reply().map(|r| (r.status, r.header("x-probe-call"))), Some((502, Some("failed"))));
    envoy.script_http("teapot", ScriptedResponse::status(418, ""));
    let refused = envoy.send(Request::get("/").header("x-probe-call", "teapot"));
    assert_eq!(refused.local_reply().map(|r| r.header("x-probe-call")), Some(Some("418")));
    // An unknown cluster is refused at once (Envoy: BadArgument), and the request goes on.
    let unknown = envoy.send(Request::get("/").header("x-probe-call", "nowhere"));
    assert_eq!(out(&unknown, "call"), "BadArgument");
}

/// What the probe answers when a gRPC call ends with a status: its local reply's header.
fn grpc_failure(exchange: &zt_host_tests::Exchange) -> (u16, String) {
    let reply = exchange.local_reply().unwrap_or_else(|| panic!("no local reply: {exchange:?}"));
    (reply.status, reply.header("x-probe-grpc-status").unwrap_or_default().to_owned())
}

#[test]
fn a_grpc_reply_is_delivered_once_and_resumes_the_request() {
    let mut envoy = probe("{}");
    envoy.script_grpc("rls", ScriptedGrpc::reply("pong"));
    let exchange = envoy.send(Request::get("/").header("x-probe-grpc", "rls"));
    assert!(exchange.reached_upstream(), "{exchange:?}");
    assert_eq!(exchange.upstream_header_values("x-probe-out-grpc-reply"), ["pong"]);
    // proxy_on_grpc_receive alone: a close after it would be a second answer (Envoy sends none).
    assert_eq!(envoy.metric("probe.grpc_answers"), Some(1));
}

#[test]
fn a_grpc_error_status_is_delivered_with_its_code_and_envoys_message() {
    let mut envoy = probe("{}");
    envoy.script_grpc("rls", ScriptedGrpc::status(8, "over limit"));
    let exchange = envoy.send(Request::get("/").header("x-probe-grpc", "rls"));
    // Envoy 1.40 appends the response code details to the message (observed).
    assert_eq!(grpc_failure(&exchange), (502, "8 over limit{via_upstream}".to_owned()));
    envoy.script_grpc("rls", ScriptedGrpc::status(16, ""));
    assert_eq!(grpc_failure(&envoy.send(Request::get("/").header("x-probe-grpc", "rls"))).1, "16 via_upstream");
    assert_eq!(envoy.metric("probe.grpc_answers"), Some(2));
}

#[test]
fn a_grpc_timeout_is_delivered_as_envoys_grpc_client_delivers_it() {
    let mut envoy = probe("{}");
    envoy.script_grpc("rls", ScriptedGrpc::Timeout);
    let exchange = envoy.send(Request::get("/").header("x-probe-grpc", "rls").header("x-probe-grpc-timeout-ms", "20"));
    // Not DEADLINE_EXCEEDED (4): the router's timeout is a local reply (504) that the gRPC client
    // reads as UNAVAILABLE (14), as Envoy 1.40.0 does with an upstream that never answers.
    assert_eq!(grpc_failure(&exchange), (502, "14 upstream request timeout{response_timeout}".to_owned()));
}

#[test]
fn a_grpc_call_to_an_unknown_cluster_is_refused_at_once() {
    let mut envoy = probe("{}");
    envoy.script_grpc("rls", ScriptedGrpc::reply("pong"));
    // Envoy answers PARSE_FAILURE, which the SDK returns as an error; the request goes on.
    let unknown = envoy.send(Request::get("/").header("x-probe-grpc", "nowhere"));
    assert_eq!(out(&unknown, "grpc"), "ParseFailure");
    assert!(envoy.grpc_calls().is_empty());
    assert_eq!(envoy.metric("probe.grpc_answers"), None);
}

#[test]
fn a_serialized_grpc_service_names_its_cluster_and_some_names_are_not_names() {
    // envoy.config.core.v3.GrpcService { envoy_grpc { cluster_name } }, as a filter may pass it.
    let service = |cluster: &str| {
        let inner = [&[0x0a, cluster.len() as u8], cluster.as_bytes()].concat();
        format!("b64:{}", STANDARD.encode([&[0x0a, inner.len() as u8], inner.as_slice()].concat()))
    };
    let mut envoy = probe("{}");
    envoy.script_grpc("rls", ScriptedGrpc::reply("pong"));
    let exchange = envoy.send(Request::get("/").header("x-probe-grpc", service("rls")));
    assert_eq!(out(&exchange, "grpc-reply"), "pong");
    assert_eq!(envoy.grpc_calls()[0].cluster, "rls");
    // An unknown cluster in a GrpcService fails later in Envoy: INTERNAL_FAILURE.
    assert_eq!(
        out(&envoy.send(Request::get("/").header("x-probe-grpc", service("nowhere"))), "grpc"),
        "InternalFailure"
    );
    // `envoy` is valid protobuf (a GrpcService with no target): Envoy 1.40 aborts; the harness
    // refuses the call and says why.
    envoy.script_grpc("envoy", ScriptedGrpc::reply("never"));
    assert_eq!(out(&envoy.send(Request::get("/").header("x-probe-grpc", "envoy")), "grpc"), "InternalFailure");
    assert!(envoy.logs().iter().any(|l| l.level == LogLevel::Critical && l.message.contains("unset oneof")));
    assert_eq!(envoy.grpc_calls().len(), 1);
}

#[test]
fn a_grpc_call_is_recorded_with_every_field() {
    let mut envoy = probe("{}");
    envoy.script_grpc_method(
        "rls",
        "envoy.service.ratelimit.v3.RateLimitService",
        "ShouldRateLimit",
        ScriptedGrpc::reply("ok"),
    );
    let exchange = envoy.send(
        Request::get("/")
            .header("x-probe-grpc", "rls")
            .header("x-probe-grpc-method", "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit")
            .header("x-probe-grpc-message", "domain=zt")
            .header("x-probe-grpc-metadata", "x-tenant=acme")
            .header("x-probe-grpc-timeout-ms", "250"),
    );
    assert_eq!(out(&exchange, "grpc-reply"), "ok");
    let call = envoy.grpc_calls().pop().unwrap();
    assert_eq!(
        (call.cluster.as_str(), call.service.as_str(), call.method.as_str()),
        ("rls", "envoy.service.ratelimit.v3.RateLimitService", "ShouldRateLimit")
    );
    assert_eq!((call.message.as_slice(), call.timeout), (&b"domain=zt"[..], Duration::from_millis(250)));
    assert_eq!(call.metadata("X-Tenant"), Some(&b"acme"[..]));
    // Another method of the same cluster: UNIMPLEMENTED, as a gRPC server answers.
    let other = envoy.send(Request::get("/").header("x-probe-grpc", "rls"));
    assert_eq!(grpc_failure(&other).1, "12 via_upstream");
    assert_eq!(envoy.grpc_calls().len(), 2);
}

#[test]
fn a_grpc_sequence_answers_in_call_order_and_repeats_its_last_answer() {
    let mut envoy = probe("{}");
    envoy.script_grpc_sequence("rls", vec![ScriptedGrpc::reply("OK"), ScriptedGrpc::status(8, "OVER_LIMIT")]);
    let send = |envoy: &mut Harness| envoy.send(Request::get("/").header("x-probe-grpc", "rls"));
    assert_eq!(out(&send(&mut envoy), "grpc-reply"), "OK");
    for _ in 0..2 {
        assert_eq!(grpc_failure(&send(&mut envoy)), (502, "8 OVER_LIMIT{via_upstream}".to_owned()));
    }
    // An empty sequence accepts the call and never answers it: the request stalls.
    envoy.script_grpc_sequence("silent", Vec::new());
    let stalled = envoy.send(Request::get("/").header("x-probe-grpc", "silent"));
    assert!(matches!(stalled.outcome, Outcome::Stalled { .. }), "{stalled:?}");
    assert_eq!(envoy.metric("probe.grpc_answers"), Some(3));
}

#[test]
fn a_root_grpc_call_made_on_tick_is_answered_through_the_root() {
    let mut envoy = probe(r#"{"tick_ms": 1000, "tick_grpc": "rls"}"#);
    envoy.script_grpc_sequence("rls", vec![ScriptedGrpc::reply("tock"), ScriptedGrpc::Timeout]);
    let read = |envoy: &mut Harness| {
        out(&envoy.send(Request::get("/").header("x-probe-shared-get", "probe.tick_grpc")), "shared-get")
    };
    envoy.advance(Duration::from_millis(1000)).unwrap();
    assert!(read(&mut envoy).starts_with("reply:tock@"), "{}", envoy.log_text());
    envoy.advance(Duration::from_millis(1000)).unwrap();
    assert!(read(&mut envoy).starts_with("status:14 upstream request timeout"), "{}", envoy.log_text());
    let calls = envoy.grpc_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].message.as_slice(), calls[0].timeout), (&b"tick"[..], Duration::from_secs(1)));
}

#[test]
fn ticks_follow_the_test_clock() {
    let mut envoy = probe(r#"{"tick_ms": 1000, "tick_call": "ticker"}"#);
    envoy.script_http("ticker", ScriptedResponse::ok("tock"));
    assert_eq!(envoy.metric("probe.ticks"), None);
    envoy.advance(Duration::from_millis(3500)).unwrap();
    assert_eq!(envoy.metric("probe.ticks"), Some(3));
    envoy.advance(Duration::from_millis(500)).unwrap();
    assert_eq!(envoy.metric("probe.ticks"), Some(4));
    // Each tick's HTTP call was answered through the root's callback.
    let exchange = envoy.send(Request::get("/").header("x-probe-shared-get", "probe.tick_call"));
    assert!(out(&exchange, "shared-get").starts_with("tock@"));
    assert_eq!(envoy.http_calls().len(), 4);
}

#[test]
fn the_clock_is_the_tests_for_the_host_and_for_wasi() {
    let mut envoy = probe("{}");
    envoy.clock().set_unix_seconds(1_800_000_000);
    assert_eq!(out(&envoy.send(Request::get("/").header("x-probe-time", "1")), "time"), "1800000000 1800000000");
}

#[test]
fn random_bytes_are_served() {
    let mut envoy = probe("{}");
    let random = out(&envoy.send(Request::get("/").header("x-probe-random", "1")), "random");
    assert_eq!(STANDARD.decode(random).unwrap().len(), 8);
}

#[test]
fn shared_data_compare_and_swap_as_envoy() {
    let mut envoy = probe("{}");
    let mut send =
        |header: &str, value: &str, field: &str| out(&envoy.send(Request::get("/").header(header, value)), field);
    assert_eq!(send("x-probe-shared-get", "k", "shared-get"), "absent");
    // A missing key is created whatever cas is passed (Envoy's behaviour).
    assert_eq!(send("x-probe-shared-set", "k=v1;cas=77", "shared-set"), "ok");
    let first = send("x-probe-shared-get", "k", "shared-get");
    let (value, cas) = first.split_once('@').unwrap();
    assert_eq!(value, "v1");
    assert_eq!(
        send("x-probe-shared-set", &format!("k=v2;cas={}", cas.parse::<u32>().unwrap() + 1), "shared-set"),
        "CasMismatch"
    );
    assert_eq!(send("x-probe-shared-set", &format!("k=v2;cas={cas}"), "shared-set"), "ok");
    assert!(send("x-probe-shared-get", "k", "shared-get").starts_with("v2@"));
    // No cas: unconditional overwrite.
    assert_eq!(send("x-probe-shared-set", "k=v3", "shared-set"), "ok");
    assert!(send("x-probe-shared-get", "k", "shared-get").starts_with("v3@"));
}

#[test]
fn shared_data_is_shared_by_vm_id_across_vms() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new(PROBE, "{}").name("w1").vm_id("pool")).unwrap();
    let mut other = Harness::new();
    other.load(FilterSpec::new(PROBE, "{}").name("w2").vm_id("pool")).unwrap();
    // Two workers of one vm_id in one Envoy: two VMs, one store.
    envoy.load(FilterSpec::new(PROBE, r#"{"reader": true}"#).name("w2").vm_id("pool")).unwrap();
    envoy.load(FilterSpec::new(PROBE, r#"{"reader": true}"#).name("elsewhere").vm_id("elsewhere")).unwrap();
    let exchange =
        envoy.send(Request::get("/").header("x-probe-shared-set", "lease=w1").header("x-probe-shared-get", "lease"));
    // w1 wrote, then w1 and w2 (same vm_id) read it; `elsewhere` (another vm_id) did not.
    let views = exchange.upstream_header_values("x-probe-out-shared-get");
    assert_eq!(views.len(), 3, "{views:?}");
    assert!(views[0].starts_with("w1@") && views[1].starts_with("w1@"), "{views:?}");
    assert_eq!(views[2], "absent");
    // Another harness is another Envoy: nothing shared.
    assert_eq!(out(&other.send(Request::get("/").header("x-probe-shared-get", "lease")), "shared-get"), "absent");
}

#[test]
fn queues_deliver_on_queue_ready_to_the_registrant() {
    let mut envoy = probe(r#"{"queue": "q1"}"#);
    assert_eq!(out(&envoy.send(Request::get("/").header("x-probe-enqueue", "q1=a")), "enqueue"), "ok");
    assert_eq!(out(&envoy.send(Request::get("/").header("x-probe-enqueue", "q1=b")), "enqueue"), "ok");
    assert_eq!(out(&envoy.send(Request::get("/").header("x-probe-enqueue", "nope=c")), "enqueue"), "NotFound");
    envoy.advance(Duration::ZERO).unwrap();
    let queued = out(&envoy.send(Request::get("/").header("x-probe-shared-get", "probe.queue")), "shared-get");
    assert!(queued.starts_with("a,b@"), "{queued} {}", envoy.log_text());
}

#[test]
fn metrics_are_defined_incremented_recorded_and_read() {
    let mut envoy = probe("{}");
    envoy.send(Request::get("/").header("x-probe-metric", "hits"));
    let exchange = envoy.send(Request::get("/").header("x-probe-metric", "hits"));
    assert_eq!(envoy.metric("hits"), Some(2));
    assert_eq!(envoy.metric("hits.gauge"), Some(42));
    assert_eq!(out(&exchange, "gauge"), "42");
    assert_eq!(envoy.metric("never"), None);
}

#[test]
fn a_trapping_vm_fails_closed_and_stays_failed() {
    let mut envoy = Harness::new();
    envoy.load(FilterSpec::new("fixture_trap", "{}")).unwrap();
    envoy.load(FilterSpec::new(PROBE, "{}")).unwrap();
    for _ in 0..2 {
        let exchange = envoy.send(Request::get("/").header("x-probe-metric", "after-trap"));
        assert!(
            matches!(exchange.outcome, Outcome::VmFailed { ref filter, .. } if filter == "fixture-trap"),
            "{exchange:?}"
        );
        assert_eq!(exchange.status(), Some(503));
    }
    assert_eq!(envoy.metric("after-trap"), None);
    assert!(envoy.log_text().contains("trapping on purpose"));
}
