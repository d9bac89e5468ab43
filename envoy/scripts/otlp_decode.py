#!/usr/bin/env python3
"""Decode OTLP/HTTP JSON log exports with the official OpenTelemetry protobuf definitions.

Usage: otlp_decode.py BODY_FILE...

Each file holds one request body as POSTed to `/v1/logs`: an `ExportLogsServiceRequest` in the
OTLP/JSON encoding. It is parsed strictly (unknown fields are errors) with
`google.protobuf.json_format.Parse` into the message class generated from opentelemetry-proto
(PyPI `opentelemetry-proto`, installed into the project virtualenv by `make otel-proto`).

OTLP/JSON differs from the plain protobuf JSON mapping in one place that matters here: `traceId`
and `spanId` are hex strings (OTLP specification, "JSON Protobuf Encoding"), whereas the mapping
reads `bytes` fields as base64. Left as is, a 32-character hex trace id would even parse, as
base64, into 24 wrong bytes. So, as OTLP receivers do, each log record's `traceId` (32 lowercase
hex digits) and `spanId` (16) are checked and re-encoded as base64 before parsing; anything else
is an error. An empty string is accepted as "no id" (the protobuf default, which receivers also
accept). After parsing, every id present must be 16 (trace) or 8 (span) bytes long.

Two more OTLP/JSON rules the protobuf mapping alone would let through are enforced: keys must be
lowerCamelCase (`log_records` is refused), and `severityNumber` must be an integer, not an enum
name. Duplicate JSON keys and duplicate attribute keys are refused too.

Output, on stdout: one JSON object per log record, in order, with values read from the parsed
protobuf messages (not from the raw JSON):
  {"resource": {key: value}, "scope": {"name": str, "version": str},
   "time_unix_nano": int, "observed_time_unix_nano": int, "severity_number": int,
   "severity_text": str, "body": value, "attributes": {key: value},
   "trace_id": hex or null, "span_id": hex or null}
AnyValue becomes a string, int, float, bool, list, object, base64 string (bytes) or null (unset).

Exit status: 0 on success; 1 if any body fails to parse (the message names the file and why);
2 on a usage error; 3 if the protobuf definitions are not installed.
"""

import base64
import json
import re
import sys

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
except ImportError as missing:
    print(
        f"otlp_decode: the OpenTelemetry protobuf definitions are not installed ({missing}); "
        "run `make otel-proto`",
        file=sys.stderr,
    )
    sys.exit(3)

# OTLP trace ids are 16 bytes, span ids 8; in OTLP/JSON, lowercase hex.
ID_FORMS = {"traceId": (re.compile(r"[0-9a-f]{32}"), 16), "spanId": (re.compile(r"[0-9a-f]{16}"), 8)}


class DecodeError(Exception):
    pass


def check_object_keys(pairs):
    """`json.loads` hook: no duplicate keys, and no original (snake_case) field names.

    The protobuf JSON mapping accepts both `logRecords` and `log_records`; OTLP/JSON does not
    ("Original field names are not valid to use as keys for JSON objects"). Every multi-word
    field of the OTLP messages has an underscore in its original name, and OTLP/JSON has no
    JSON object whose keys are data (attributes are lists of {key, value}), so a key with an
    underscore is always an original field name. Rejecting it also keeps a hex `trace_id` from
    slipping past the conversion below.
    """
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DecodeError(f"duplicate JSON keys {duplicates}")
    snake = sorted(key for key in keys if "_" in key)
    if snake:
        raise DecodeError(f"original field names {snake}: OTLP/JSON requires lowerCamelCase keys")
    return dict(pairs)


def hex_ids_to_base64(request):
    """Rewrites every log record's hex `traceId`/`spanId` in place as base64 (see the module doc),
    and checks that its `severityNumber` is an integer.

    Walks only the structure it expects; anything shaped otherwise is left for `Parse` to reject.
    """
    if not isinstance(request, dict):
        return
    for r, resource_logs in enumerate(request.get("resourceLogs") or []):
        if not isinstance(resource_logs, dict):
            continue
        for s, scope_logs in enumerate(resource_logs.get("scopeLogs") or []):
            if not isinstance(scope_logs, dict):
                continue
            for i, record in enumerate(scope_logs.get("logRecords") or []):
                if not isinstance(record, dict):
                    continue
                where = f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]"
                # OTLP/JSON: "Values of enum fields MUST be encoded as integer values."
                severity = record.get("severityNumber", 0)
                if not isinstance(severity, int) or isinstance(severity, bool):
                    raise DecodeError(f"{where}.severityNumber: {severity!r} is not an integer")
                for name, (form, size) in ID_FORMS.items():
                    if name not in record:
                        continue
                    value = record[name]
                    if value == "":
                        continue
                    if not isinstance(value, str) or not form.fullmatch(value):
                        raise DecodeError(
                            f"{where}.{name}: {value!r} is not {size * 2} lowercase hex digits ({size} bytes)"
                        )
                    record[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def any_value(value):
    """An `AnyValue` as plain JSON: the one field of its `value` oneof, or None when unset."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return key_values(value.kvlist_value.values, "kvlist_value")
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, kind)


def key_values(pairs, where):
    out = {}
    for pair in pairs:
        if pair.key in out:
            # OTLP: "attribute keys MUST be unique"; a later value silently winning would hide that.
            raise DecodeError(f"{where}: duplicate attribute key {pair.key!r}")
        out[pair.key] = any_value(pair.value)
    return out


def records(request):
    for r, resource_logs in enumerate(request.resource_logs):
        resource = key_values(resource_logs.resource.attributes, f"resource_logs[{r}].resource.attributes")
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            scope = {"name": scope_logs.scope.name, "version": scope_logs.scope.version}
            for i, record in enumerate(scope_logs.log_records):
                where = f"resource_logs[{r}].scope_logs[{s}].log_records[{i}]"
                for name, raw, size in (("trace_id", record.trace_id, 16), ("span_id", record.span_id, 8)):
                    if raw and len(raw) != size:
                        raise DecodeError(f"{where}.{name}: {len(raw)} bytes, expected {size}")
                yield {
                    "resource": resource,
                    "scope": scope,
                    "time_unix_nano": record.time_unix_nano,
                    "observed_time_unix_nano": record.observed_time_unix_nano,
                    "severity_number": record.severity_number,
                    "severity_text": record.severity_text,
                    "body": any_value(record.body),
                    "attributes": key_values(record.attributes, f"{where}.attributes"),
                    "trace_id": record.trace_id.hex() if record.trace_id else None,
                    "span_id": record.span_id.hex() if record.span_id else None,
                }


def decode(path):
    with open(path, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"body is not UTF-8: {e}") from None
    try:
        request = json.loads(text, object_pairs_hook=check_object_keys)
    except json.JSONDecodeError as e:
        raise DecodeError(f"body is not JSON: {e}") from None
    hex_ids_to_base64(request)
    message = ExportLogsServiceRequest()
    try:
        # Strict: `ignore_unknown_fields` stays False, so a misspelled field is an error.
        json_format.Parse(json.dumps(request), message)
    except json_format.ParseError as e:
        raise DecodeError(f"not an OTLP ExportLogsServiceRequest: {e}") from None
    return list(records(message))


def main(paths):
    if not paths:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    decoded = []
    for path in paths:
        try:
            decoded.extend(decode(path))
        except (DecodeError, OSError) as e:
            print(f"otlp_decode: {path}: {e}", file=sys.stderr)
            return 1
    # Only once every body parsed: a failure prints nothing on stdout.
    for record in decoded:
        print(json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
