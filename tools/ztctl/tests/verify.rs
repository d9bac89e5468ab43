//! `ztctl verify` as an operator runs it: the built binary on logs the tests write, in the three
//! forms of the audit spec, intact and tampered with.

// Test code: a panic is a failed test (the workspace denies these in shipped code only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use common::*;

fn intact_summary() -> String {
    format!("intact: 12 records in 2 chains (chain {CHAIN_A}: seq 0-5, chain {CHAIN_B}: seq 0-5)\n")
}

/// Runs `verify` on the log written as Envoy writes it; returns the run and the file's path.
fn verify_log(test: &str, log: &[Entry], flags: &[&str]) -> (Run, String) {
    let path = write(&scratch(test), "envoy.log", &as_envoy_log(log));
    let mut args = vec!["verify"];
    args.extend_from_slice(flags);
    args.push(&path);
    (ztctl(&args, ""), path)
}

fn assert_broken(run: &Run, at: &str, reason: &[&str]) {
    assert_eq!(run.code, 1, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with(&format!("broken: {at}: ")), "{}", run.stdout);
    for part in reason {
        assert!(run.stdout.contains(part), "{part:?} not in {}", run.stdout);
    }
}

#[test]
fn an_intact_envoy_log_with_two_interleaved_chains() {
    let (run, _) = verify_log("intact", &two_chains(), &[]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (0, intact_summary().as_str(), ""));
}

#[test]
fn a_deleted_record_is_a_seq_gap() {
    let mut log = two_chains();
    log.remove(index_of(&log, CHAIN_A, 3));
    let (run, path) = verify_log("deleted", &log, &[]);
    let at = format!("{path}:{}", line_of(&log, CHAIN_A, 4));
    assert_broken(&run, &at, &[&format!("chain {CHAIN_A} seq 4: seq gap: expected seq 3, found 4: seq 3 missing")]);
}

#[test]
fn an_edited_record_breaks_the_next_prev() {
    let mut log = two_chains();
    let edited = index_of(&log, CHAIN_A, 2);
    assert!(log[edited].text.contains(r#""status":403"#));
    log[edited].text = log[edited].text.replace(r#""status":403"#, r#""status":200"#);
    let (run, path) = verify_log("edited", &log, &[]);
    let at = format!("{path}:{}", line_of(&log, CHAIN_A, 3));
    let previous = format!("(seq 2, at {path}:{})", edited + 1);
    assert_broken(&run, &at, &[&format!("chain {CHAIN_A} seq 3: prev does not match"), &previous, "was edited"]);
}

#[test]
fn two_swapped_records_are_out_of_order() {
    let mut log = two_chains();
    let (first, second) = (index_of(&log, CHAIN_B, 1), index_of(&log, CHAIN_B, 2));
    log.swap(first, second);
    let (run, path) = verify_log("swapped", &log, &[]);
    let at = format!("{path}:{}", first + 1);
    let later = format!("seq 1 comes later, at {path}:{}: records reordered", second + 1);
    assert_broken(&run, &at, &[&format!("chain {CHAIN_B} seq 2: out of order: expected seq 1, found 2"), &later]);
}

#[test]
fn a_duplicated_record_is_named() {
    let mut log = two_chains();
    let i = index_of(&log, CHAIN_A, 1);
    log.insert(i + 1, log[i].clone());
    let (run, path) = verify_log("duplicated", &log, &[]);
    assert_broken(&run, &format!("{path}:{}", i + 2), &[&format!("an exact copy of the record at {path}:{}", i + 1)]);
}

#[test]
fn a_removed_first_record_is_a_break_unless_mid_chain() {
    let mut log = two_chains();
    log.remove(index_of(&log, CHAIN_A, 0));
    let (run, path) = verify_log("first-removed", &log, &[]);
    let at = format!("{path}:{}", line_of(&log, CHAIN_A, 1));
    assert_broken(&run, &at, &["chain first seen at seq 1: its start (seq 0) is missing", "--mid-chain"]);

    // Chains are listed in order of first appearance: B now comes first.
    let (run, _) = verify_log("first-removed-mid-chain", &log, &["--mid-chain"]);
    let summary = format!("intact: 11 records in 2 chains (chain {CHAIN_B}: seq 0-5, chain {CHAIN_A}: seq 1-5)\n");
    assert_eq!((run.code, run.stdout), (0, summary));
}

#[test]
fn mid_chain_still_checks_from_the_first_record_seen() {
    let mut log = two_chains();
    log.remove(index_of(&log, CHAIN_A, 0));
    log.remove(index_of(&log, CHAIN_A, 3));
    let (run, path) = verify_log("mid-chain-gap", &log, &["--mid-chain"]);
    assert_broken(&run, &format!("{path}:{}", line_of(&log, CHAIN_A, 4)), &["seq gap: expected seq 3, found 4"]);
}

#[test]
fn a_malformed_record_is_a_break() {
    let cases = [
        ("v2", r#""v":1"#, r#""v":2"#, "malformed record: `v` is 2; this tool reads format version 1"),
        ("no-prev", r#","prev":""#, r#","prevv":""#, "malformed record: `prev` is missing"),
        ("no-seq", r#""seq":"#, r#""sequence":"#, "malformed record: `seq` is missing"),
        ("cut", r#","outcome":"allow"}"#, r#","outcome":"al"#, "malformed record: not valid JSON"),
    ];
    for (name, from, to, reason) in cases {
        let mut log = two_chains();
        let i = index_of(&log, CHAIN_B, 3);
        log[i].text = log[i].text.replacen(from, to, 1);
        let (run, path) = verify_log(&format!("malformed-{name}"), &log, &[]);
        assert_broken(&run, &format!("{path}:{}", i + 1), &[reason]);
    }
}

#[test]
fn crlf_line_ends_are_not_part_of_the_record() {
    let log = as_envoy_log(&two_chains()).replace('\n', "\r\n");
    let path = write(&scratch("crlf"), "envoy.log", &log);
    let run = ztctl(&["verify", &path], "");
    assert_eq!((run.code, run.stdout), (0, intact_summary()));
}

#[test]
fn ndjson_intact_and_with_a_record_deleted() {
    let log = two_chains();
    let dir = scratch("ndjson");
    let path = write(&dir, "audit.ndjson", &as_ndjson(&log));
    let run = ztctl(&["verify", &path], "");
    assert_eq!((run.code, run.stdout), (0, intact_summary()));

    let mut log = log;
    log.remove(index_of(&log, CHAIN_B, 4));
    let ndjson = as_ndjson(&log);
    let path = write(&dir, "deleted.ndjson", &ndjson);
    let line = ndjson.lines().position(|l| l.contains(&format!(r#""chain":"{CHAIN_B}","seq":5"#))).unwrap() + 1;
    assert_broken(&ztctl(&["verify", &path], ""), &format!("{path}:{line}"), &["expected seq 4, found 5"]);
}

#[test]
fn standard_input_is_read_for_dash() {
    let run = ztctl(&["verify", "-"], &as_ndjson(&two_chains()));
    assert_eq!((run.code, run.stdout), (0, intact_summary()));

    let mut log = two_chains();
    log.remove(index_of(&log, CHAIN_A, 0));
    let run = ztctl(&["verify", "-"], &as_envoy_log(&log));
    assert_broken(&run, &format!("<stdin>:{}", line_of(&log, CHAIN_A, 1)), &["chain first seen at seq 1"]);
}

#[test]
fn otlp_lines_intact_and_with_an_edited_record() {
    let log = two_chains();
    let dir = scratch("otlp");
    let path = write(&dir, "export.jsonl", &as_otlp(&log, 5));
    let run = ztctl(&["verify", &path], "");
    assert_eq!((run.code, run.stdout), (0, intact_summary()));

    // Records 0-4 on line 1, 5-9 on line 2: B2 is the 6th record, A3 the 8th.
    let mut log = log;
    let i = index_of(&log, CHAIN_B, 2);
    log[i].text = log[i].text.replace(r#""status":200"#, r#""status":500"#);
    let order: Vec<_> = records(&log).map(|e| e.record.unwrap()).collect();
    let position = order.iter().position(|r| *r == (CHAIN_B, 3)).unwrap();
    let path = write(&dir, "edited.jsonl", &as_otlp(&log, 5));
    let at = format!("{path}:{} (OTLP log record {})", position / 5 + 1, position % 5 + 1);
    assert_broken(&ztctl(&["verify", &path], ""), &at, &[&format!("chain {CHAIN_B} seq 3: prev does not match")]);
}

#[test]
fn a_pretty_printed_otlp_export_is_read_whole() {
    let log = two_chains();
    let all: Vec<&Entry> = records(&log).collect();
    let (first, rest) = all.split_at(7);
    let pretty = |records: &[&Entry]| serde_json::to_string_pretty(&otlp_request(records)).unwrap();
    let path = write(&scratch("otlp-pretty"), "export.json", &format!("{}\n{}\n", pretty(first), pretty(rest)));
    let run = ztctl(&["verify", &path], "");
    assert_eq!((run.code, run.stdout), (0, intact_summary()));
}

#[test]
fn files_are_one_stream_so_rotated_logs_chain_on() {
    let log = two_chains();
    let (old, new) = log.split_at(7);
    let dir = scratch("rotated");
    let (old, new) = (write(&dir, "envoy.log.1", &as_envoy_log(old)), write(&dir, "envoy.log", &as_envoy_log(new)));
    let run = ztctl(&["verify", &old, &new], "");
    assert_eq!((run.code, run.stdout), (0, intact_summary()));
    // Newest first: each chain seems to go backwards.
    assert_eq!(ztctl(&["verify", &new, &old], "").code, 1);
}

#[test]
fn forms_mix_within_one_stream() {
    let log = two_chains();
    let all: Vec<&Entry> = records(&log).collect();
    let mut mixed = envoy_line(&all[0].text) + "\n" + &all[1].text + "\n";
    mixed += &(otlp_request(&all[2..5]).to_string() + "\n");
    mixed += &all[5..].iter().map(|e| envoy_line(&e.text) + "\n").collect::<String>();
    let run = ztctl(&["verify", "-"], &mixed);
    assert_eq!((run.code, run.stdout), (0, intact_summary()));
}

#[test]
fn no_records_is_intact_with_a_warning() {
    let run = ztctl(&["verify", "-"], "[info] nothing to see\n");
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "intact: 0 records in 0 chains\n");
    assert!(run.stderr.contains("no zt.audit.v1 records found"), "{}", run.stderr);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let missing = scratch("io").join("missing.log");
    let cases: [(&[&str], &str); 4] = [
        (&[], "missing subcommand"),
        (&["verify"], "required arguments were not provided"),
        (&["verify", "--strict", "x"], "unexpected argument '--strict'"),
        (&["verify", missing.to_str().unwrap()], "cannot read"),
    ];
    for (args, message) in cases {
        let run = ztctl(args, "");
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn help_prints_the_usage() {
    let run = ztctl(&["verify", "--help"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("Usage: ztctl verify [OPTIONS] <FILE>..."), "{}", run.stdout);
    for option in ["--mid-chain", "--key <KEYFILE>", "--checkpoints <FILE>"] {
        assert!(run.stdout.contains(option), "{option}: {}", run.stdout);
    }
    let run = ztctl(&["inventory", "--help"], "");
    assert!(run.stdout.contains("--draft-policy <OUT.json>"), "{}", run.stdout);
    let run = ztctl(&["completions", "bash"], "");
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("complete -F") && run.stdout.contains("ztctl"), "{}", run.stdout);
}

const KEY: &str = "a-chain-key-for-the-cli-tests-0123456789";

/// Six records of one keyed chain, and the checkpoint after each.
fn keyed_chain() -> (Vec<Entry>, Vec<Entry>) {
    let mut a = ChainBuilder::keyed(CHAIN_A, KEY.as_bytes());
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    for i in 0..6 {
        records.push(a.next(&request("alice", "GET", &format!("/orders/{i}"), Some("orders"), 200, "allow")));
        checkpoints.push(a.checkpoint());
    }
    (records, checkpoints)
}

#[test]
fn a_keyed_log_verifies_with_the_key_file_only() {
    let dir = scratch("keyed");
    let (log, _) = keyed_chain();
    let path = write(&dir, "envoy.log", &as_envoy_log(&log));
    // `echo KEY > chain.key`: the newline is not part of the key.
    let key = write(&dir, "chain.key", &format!("{KEY}\n"));
    let run = ztctl(&["verify", "--key", &key, &path], "");
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(run.stdout, format!("intact: 6 records in 1 chain, keyed (chain {CHAIN_A}: seq 0-5)\n"));
    // Without the key: not verified, exit 3, never "intact".
    let run = ztctl(&["verify", &path], "");
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(run.stdout.starts_with(&format!("not verified: {path}:1: ")), "{}", run.stdout);
    assert!(run.stdout.contains("pass --key FILE"), "{}", run.stdout);
    // The wrong key: a break where the first `prev` is checked.
    let wrong = write(&dir, "wrong.key", "another-key-of-enough-length-0123456789");
    assert_broken(
        &ztctl(&["verify", "--key", &wrong, &path], ""),
        &format!("{path}:2"),
        &["or the key is not this chain's"],
    );
    // A key file too short: a usage error, never an unkeyed check.
    let short = write(&dir, "short.key", "short\n");
    let run = ztctl(&["verify", "--key", &short, &path], "");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("the chain key has 5 bytes; at least 32 are required"), "{}", run.stderr);
}

#[test]
fn an_edited_keyed_log_recomputed_without_the_key_is_refused() {
    let dir = scratch("keyed-forged");
    let key = write(&dir, "chain.key", KEY);
    // The attacker rewrites the chain from scratch, unkeyed, with a record changed.
    let mut forged = ChainBuilder::new(CHAIN_A);
    let log: Vec<Entry> =
        (0..3).map(|i| forged.next(&request("mallory", "GET", &format!("/x/{i}"), None, 200, "allow"))).collect();
    let path = write(&dir, "envoy.log", &as_envoy_log(&log));
    assert_eq!(ztctl(&["verify", &path], "").code, 0, "unkeyed, it is a consistent chain");
    assert_broken(
        &ztctl(&["verify", "--key", &key, &path], ""),
        &format!("{path}:1"),
        &["unkeyed record (prev_alg sha256) while --key was given"],
    );
}

#[test]
fn the_collectors_checkpoints_show_a_cut_tail_or_an_edited_last_record() {
    let dir = scratch("checkpoints");
    let key = write(&dir, "chain.key", KEY);
    let (log, checkpoints) = keyed_chain();
    // The collector's copy: every record, a checkpoint after seq 2 and after seq 5.
    let mut collector = log.clone();
    collector.insert(3, checkpoints[2].clone());
    collector.push(checkpoints[5].clone());
    let ndjson: String = collector.iter().map(|e| e.text.clone() + "\n").collect();
    let collector = write(&dir, "collector.ndjson", &ndjson);
    let intact = write(&dir, "envoy.log", &as_envoy_log(&log));
    let run = ztctl(&["verify", "--key", &key, "--checkpoints", &collector, &intact], "");
    assert_eq!((run.code, run.stdout.ends_with("; 2 checkpoints match\n")), (0, true), "{}", run.stdout);
    // The collector's copy verifies on its own too, its checkpoints checked inline.
    let run = ztctl(&["verify", "--key", &key, &collector], "");
    assert_eq!(run.code, 0, "{}", run.stdout);
    // The log's last two records cut: the chain is intact alone, not against the checkpoints.
    let cut = write(&dir, "cut.log", &as_envoy_log(&log[..4]));
    assert_eq!(ztctl(&["verify", "--key", &key, &cut], "").code, 0, "a cut tail is invisible alone");
    let run = ztctl(&["verify", "--key", &key, "--checkpoints", &collector, &cut], "");
    assert_broken(&run, &format!("{collector}:8"), &["reached seq 5, but its records end at seq 3: seqs 4-5 missing"]);
    // The last record edited: no successor vouches for it, the checkpoint does.
    let mut edited = log.clone();
    edited[5].text = edited[5].text.replace(r#""status":200"#, r#""status":204"#);
    let edited = write(&dir, "edited.log", &as_envoy_log(&edited));
    assert_eq!(ztctl(&["verify", "--key", &key, &edited], "").code, 0);
    let run = ztctl(&["verify", "--key", &key, "--checkpoints", &collector, &edited], "");
    assert_broken(
        &run,
        &format!("{collector}:8"),
        &[&format!("the checkpoint's head is not the digest of the record at {edited}:6")],
    );
}
