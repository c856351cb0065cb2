#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for the S3 tests, on loopback.

    python3 fault_proxy.py --port P --upstream http://127.0.0.1:Q --stats FILE

Forwards every request to the upstream S3 server, except that, by request number n (from 1):
  n % 7 == 3    answers 503 SlowDown (throttling) without forwarding;
  n % 11 == 5   answers 500 InternalError without forwarding;
  n % 13 == 7   forwards, then drops the connection without answering (the request took effect);
  n % 17 == 9   waits 1.5 s, then forwards (a slow response).
The schedule is deterministic so that a run is repeatable. After every request the counts of each
fault are written to FILE as JSON.

Other modes, for tests that act while a run is in flight:
  --no-faults           forwards without the schedule above;
  --page-size N         rewrites every ListObjectsV2's max-keys to N, so listings take many pages;
  --disorder-pages      in every ListObjectsV2 answer to a request that continues a listing, moves
                        the first key to the end: a listing that is no longer in order, as when the
                        bucket changes between pages on a server that pages wrongly;
  --strict-checksums    answers as S3-compatible servers that predate flexible checksums (older MinIO,
                        Ceph RGW) do: a DeleteObjects (POST ?delete) without a Content-MD5 that is
                        the MD5 of its body gets 400 "Missing required header for this request:
                        Content-MD5", and any request with an x-amz-checksum-* header gets 400
                        InvalidRequest; implies --no-faults;
  --opaque-etags        rewrites every <ETag> in ListObjectsV2 answers to one that is not the MD5 of
                        the object (as under SSE-KMS or SSE-C, or for a multipart upload: "<hex>-1");
                        implies --no-faults;
  --throttle-batches    answers every batch request (a POST of multipart/mixed: GCS's JSON batch,
                        Azure's Blob Batch) itself, without forwarding it, with one 429 Too Many
                        Requests part for each DELETE it holds, as a throttled server does; the
                        deletes must then be sent again on their own; implies --no-faults;
  --initiated-now       rewrites every <Initiated> time in ListMultipartUploads answers to the time the
                        proxy started (moto reports every upload as initiated in 2010, which no grace
                        would hold);
  --hold REGEX --hold-from K --hold-count C --hold-dir D
                        holds the K-th to (K+C-1)-th requests whose "METHOD unquoted-path" matches
                        REGEX: creates D/held, waits (at most 120 s) until D/go exists, removes both,
                        then forwards the request; with --drop-alternate every second held request is
                        dropped instead (it never reaches the server), the others take effect after
                        the client that sent them may have been killed.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
    "<RequestId>fault-{n}</RequestId></Error>"
)


def disorder(xml):
    """Moves the first <Contents> element of a listing page to after the last one."""
    start, end = xml.find(b"<Contents>"), xml.find(b"</Contents>")
    last = xml.rfind(b"</Contents>")
    if start < 0 or end == last:
        return xml
    end += len(b"</Contents>")
    last += len(b"</Contents>")
    return xml[:start] + xml[end:last] + xml[start:end] + xml[last:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--page-size", type=int)
    ap.add_argument("--hold")
    ap.add_argument("--hold-from", type=int, default=1)
    ap.add_argument("--hold-count", type=int, default=1)
    ap.add_argument("--hold-dir")
    ap.add_argument("--drop-alternate", action="store_true")
    ap.add_argument("--disorder-pages", action="store_true")
    ap.add_argument("--initiated-now", action="store_true")
    ap.add_argument("--strict-checksums", action="store_true")
    ap.add_argument("--opaque-etags", action="store_true")
    ap.add_argument("--throttle-batches", action="store_true")
    args = ap.parse_args()
    if args.throttle_batches:
        args.no_faults = True
    if args.opaque_etags:
        args.no_faults = True
    if args.strict_checksums:
        args.no_faults = True
    hold = re.compile(args.hold) if args.hold else None
    started = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()).encode()
    matches = [0]
    upstream = urllib.parse.urlparse(args.upstream)
    lock = threading.Lock()
    stats = {"requests": 0, "throttled": 0, "server_error": 0, "dropped": 0, "slow": 0,
             "held": 0, "held_dropped": 0, "md5_checked": 0, "rejected": 0,
             "batches_throttled": 0, "parts_throttled": 0}

    def count(kind):
        with lock:
            stats[kind] += 1
            with open(args.stats, "w") as f:
                json.dump(stats, f)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def forward(self, body):
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            conn.close()
            return r.status, r.getheaders(), data

        def reply(self, status, headers, data):
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def held(self):
            """Holds this request when it is one of those to hold: None when it is not one, else
            what to do with it once released ("drop" or "forward")."""
            if hold is None or not hold.search(self.command + " " + urllib.parse.unquote(self.path)):
                return None
            with lock:
                matches[0] += 1
                m = matches[0]
            if not args.hold_from <= m < args.hold_from + args.hold_count:
                return None
            go = os.path.join(args.hold_dir, "go")
            open(os.path.join(args.hold_dir, "held"), "w").close()
            deadline = time.time() + 120
            while not os.path.exists(go) and time.time() < deadline:
                time.sleep(0.02)
            if os.path.exists(go):
                os.remove(go)
            count("held")
            drop = args.drop_alternate and stats["held"] % 2 == 0
            if drop:
                count("held_dropped")
            return "drop" if drop else "forward"

        def strict(self, body):
            """Why a server without flexible checksums would reject this request, or None."""
            names = [k.lower() for k in self.headers.keys()]
            if any(k.startswith("x-amz-checksum-") for k in names):
                return "x-amz-checksum-* headers are not supported"
            query = urllib.parse.urlparse(self.path).query
            if self.command == "POST" and "delete" in urllib.parse.parse_qs(query, keep_blank_values=True):
                md5 = base64.b64encode(hashlib.md5(body or b"").digest()).decode()
                if self.headers.get("Content-MD5") != md5:
                    return "Missing required header for this request: Content-MD5"
                count("md5_checked")
            return None

        def released(self):
            """Says that a held request is done with: D/held goes once it was forwarded or dropped."""
            held = os.path.join(args.hold_dir, "held")
            if os.path.exists(held):
                os.remove(held)

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if args.page_size and "list-type=2" in self.path:
                self.path = re.sub(r"max-keys=\d+", f"max-keys={args.page_size}", self.path)
            with lock:
                stats["requests"] += 1
                n = stats["requests"]
            action = self.held()
            if action == "drop":
                self.released()
                self.close_connection = True
                self.connection.close()
                return
            if action == "forward":
                answer = self.forward(body)
                self.released()
                try:
                    return self.reply(*answer)
                except OSError:
                    return  # the client is gone: the request took effect all the same
            if args.strict_checksums:
                rejection = self.strict(body)
                if rejection:
                    count("rejected")
                    data = ERROR.format(code="InvalidRequest", n=n).replace(
                        "injected by the test proxy", rejection).encode()
                    return self.reply(400, [("Content-Type", "application/xml")], data)
            if args.throttle_batches and self.command == "POST" and (
                    self.headers.get("Content-Type") or "").startswith("multipart/mixed"):
                deletes = [l for l in (body or b"").split(b"\r\n") if l.startswith(b"DELETE ")]
                count("batches_throttled")
                parts = []
                for i in range(len(deletes)):
                    count("parts_throttled")
                    parts.append("--throttled\r\nContent-Type: application/http\r\n"
                                 f"Content-ID: <response-{i}>\r\n\r\n"
                                 "HTTP/1.1 429 Too Many Requests\r\n\r\n")
                data = ("".join(parts) + "--throttled--\r\n").encode()
                return self.reply(202, [("Content-Type", "multipart/mixed; boundary=throttled")], data)
            if args.no_faults:
                status, headers, data = self.forward(body)
                if args.disorder_pages and "continuation-token" in self.path:
                    data = disorder(data)
                if args.opaque_etags and "list-type=2" in self.path:
                    data = re.sub(
                        rb"<ETag>([^<]*)</ETag>",
                        lambda m: b"<ETag>&quot;" + hashlib.sha256(m.group(1)).hexdigest()[:32].encode()
                        + b"-1&quot;</ETag>",
                        data,
                    )
                if args.initiated_now and b"<Initiated>" in data:
                    data = re.sub(rb"<Initiated>[^<]*</Initiated>", b"<Initiated>" + started + b"</Initiated>", data)
                return self.reply(status, headers, data)
            if n % 7 == 3:
                count("throttled")
                data = ERROR.format(code="SlowDown", n=n).encode()
                return self.reply(503, [("Content-Type", "application/xml")], data)
            if n % 11 == 5:
                count("server_error")
                data = ERROR.format(code="InternalError", n=n).encode()
                return self.reply(500, [("Content-Type", "application/xml")], data)
            if n % 17 == 9:
                count("slow")
                time.sleep(1.5)
            status, headers, data = self.forward(body)
            if n % 13 == 7:
                count("dropped")
                self.close_connection = True
                self.connection.close()
                return
            self.reply(status, headers, data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
