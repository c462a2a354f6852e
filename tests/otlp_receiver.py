#!/usr/bin/env python3
"""An OTLP/HTTP receiver for tests/otlp.rs: decodes every request with the official
OpenTelemetry protobuf definitions (the opentelemetry-proto package, see
tools/setup-debian.sh), checks what the specification requires of it, and prints one JSON line
per request with what it carried, in plain values. The first line is "listening PORT".

Usage: otlp_receiver.py [ANSWER,...]   answer the requests, in the order they come, with these
(the last one for every request after; default 200). An ANSWER is STATUS[/SECONDS][+REJECTED]:
/SECONDS adds a Retry-After header, +REJECTED a partial_success in the response body rejecting
that many log records or data points. Each line also says the status answered and when (the
monotonic clock, in seconds).
"""

import json
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

ANSWERS = [re.fullmatch(r"(\d+)(?:/(\d+))?(?:\+(\d+))?", a).groups()
           for a in (sys.argv[1] if len(sys.argv) > 1 else "200").split(",")]


def plain(v):
    """An AnyValue as the JSON value it came from."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return attributes(v.kvlist_value.values)
    return getattr(v, kind)


def attributes(kvs):
    out = {}
    for kv in kvs:
        if kv.key in out:
            raise ValueError(f"attribute {kv.key} twice")
        out[kv.key] = plain(kv.value)
    return out


def resource_of(r):
    attrs = attributes(r.resource.attributes)
    for key in ("service.name", "service.version", "host.name"):
        if not attrs.get(key):
            raise ValueError(f"resource without {key}: {attrs}")
    return attrs


def logs(body):
    req = ExportLogsServiceRequest()
    req.ParseFromString(body)
    records = []
    for rl in req.resource_logs:
        resource = resource_of(rl)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                if r.observed_time_unix_nano == 0:
                    raise ValueError("a log record without observed_time_unix_nano")
                records.append({
                    "resource": resource,
                    "scope": sl.scope.name,
                    "event_name": r.event_name,
                    "time_unix_nano": r.time_unix_nano,
                    "severity_number": r.severity_number,
                    "attributes": attributes(r.attributes),
                })
    return {"signal": "logs", "records": records}, ExportLogsServiceResponse()


def point(p, kind):
    out = {
        "attributes": attributes(p.attributes),
        "start_time_unix_nano": p.start_time_unix_nano,
        "time_unix_nano": p.time_unix_nano,
    }
    if not 0 < p.start_time_unix_nano <= p.time_unix_nano:
        raise ValueError(f"bad times in {out}")
    if kind == "histogram":
        if len(p.bucket_counts) != len(p.explicit_bounds) + 1:
            raise ValueError("bucket_counts must be one longer than explicit_bounds")
        if sum(p.bucket_counts) != p.count:
            raise ValueError("the buckets do not add up to count")
        if list(p.explicit_bounds) != sorted(set(p.explicit_bounds)):
            raise ValueError("explicit_bounds must increase")
        out.update(count=p.count, sum=p.sum, bucket_counts=list(p.bucket_counts),
                   explicit_bounds=list(p.explicit_bounds))
    else:
        out["value"] = getattr(p, p.WhichOneof("value"))
    return out


def metrics(body):
    req = ExportMetricsServiceRequest()
    req.ParseFromString(body)
    out = []
    for rm in req.resource_metrics:
        resource = resource_of(rm)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                entry = {"resource": resource, "name": m.name, "kind": kind, "unit": m.unit,
                         "points": [point(p, kind) for p in data.data_points]}
                if kind in ("sum", "histogram"):
                    entry["temporality"] = data.aggregation_temporality
                if kind == "sum":
                    entry["monotonic"] = data.is_monotonic
                out.append(entry)
    return {"signal": "metrics", "metrics": out}, ExportMetricsServiceResponse()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            if self.headers.get("Content-Type") != "application/x-protobuf":
                raise ValueError(f"Content-Type {self.headers.get('Content-Type')}")
            decode = {"/v1/logs": logs, "/v1/metrics": metrics}.get(self.path)
            if decode is None:
                raise ValueError(f"path {self.path}")
            seen, response = decode(body)
            status, retry_after, rejected = ANSWERS.pop(0) if len(ANSWERS) > 1 else ANSWERS[0]
            status = int(status)
            if rejected:
                partial = response.partial_success
                if seen["signal"] == "logs":
                    partial.rejected_log_records = int(rejected)
                else:
                    partial.rejected_data_points = int(rejected)
                partial.error_message = "rejected by the test"
            seen.update(headers={k.lower(): v for k, v in self.headers.items()},
                        status=status, time=time.monotonic())
            print(json.dumps(seen), flush=True)
            reply = response.SerializeToString()
        except Exception as e:  # what the test must see: the request broke the spec
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
            status, reply = 400, b""
            retry_after = None
        self.send_response(status)
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
