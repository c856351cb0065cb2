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
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>injected by the test proxy</Message>"
    "<RequestId>fault-{n}</RequestId></Error>"
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--stats", required=True)
    args = ap.parse_args()
    upstream = urllib.parse.urlparse(args.upstream)
    lock = threading.Lock()
    stats = {"requests": 0, "throttled": 0, "server_error": 0, "dropped": 0, "slow": 0}

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

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            with lock:
                stats["requests"] += 1
                n = stats["requests"]
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
