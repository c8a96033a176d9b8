#!/usr/bin/env python3
"""A local HTTP receiver for the outbox tests.

It answers the outbox worker's POSTs on 127.0.0.1 only, checks their HMAC
signature, records every request (JSON lines) and counts retries and
duplicates by Idempotency-Key.  Tests steer it through POST /_control to make
it fail, stall or drop connections, and read GET /_stats.  Standard library
only (Debian 12's python3); see README.md next to it.
"""

import argparse
import hashlib
import hmac
import json
import os
import select
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 64 * 1024 * 1024     # larger bodies are answered 413
LOG_BODY_MAX = 64 * 1024        # bodies up to this size are logged parsed
IDLE_TIMEOUT = 120              # seconds an idle keep-alive connection is kept
MODES = ("ok", "fail", "stall", "close")


class State:
    """Counters, the current mode and the log, shared by all threads."""

    def __init__(self, secret, log_path):
        self.lock = threading.Lock()
        self.secret = secret.encode() if secret is not None else None
        self.log = open(log_path, "a", encoding="utf-8") if log_path else None
        self.reset()
        self.set_mode({"mode": "ok"})

    def reset(self):
        self.total = 0
        self.attempts = {}          # key -> requests seen with that key
        self.delivered = set()      # keys answered 2xx at least once
        self.duplicates = 0         # requests whose key was already answered 2xx
        self.bad_signature = 0
        self.no_key = 0
        self.status = {}            # "200"/"503"/"401"/"closed" -> count

    def set_mode(self, c):
        mode = c.get("mode", "ok")
        if mode not in MODES:
            raise ValueError("mode must be one of " + ", ".join(MODES))
        count = c.get("count")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise ValueError("count must be a non-negative integer")
        status = c.get("status", 503 if mode == "fail" else 200)
        if not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError("status must be an integer in 200..599")
        stall = c.get("stall_seconds", 30)
        if not isinstance(stall, (int, float)) or stall < 0:
            raise ValueError("stall_seconds must be a non-negative number")
        if mode == "ok" or count == 0:
            mode, count, status, stall = "ok", None, 200, 0
        self.mode, self.mode_count = mode, count
        self.mode_status, self.stall_seconds = status, stall

    def take_mode(self):
        """The behaviour for the request arriving now (caller holds lock)."""
        mode = (self.mode, self.mode_status, self.stall_seconds)
        if self.mode_count is not None:
            self.mode_count -= 1
            if self.mode_count == 0:
                self.set_mode({"mode": "ok"})
        return mode

    def stats(self):
        return {
            "total": self.total,
            "distinct_keys": len(self.attempts),
            "delivered_keys": len(self.delivered),
            "duplicates": self.duplicates,
            "bad_signature": self.bad_signature,
            "no_key": self.no_key,
            "max_attempts": max(self.attempts.values(), default=0),
            "status": dict(sorted(self.status.items())),
            "mode": {"mode": self.mode, "count": self.mode_count,
                     "status": self.mode_status,
                     "stall_seconds": self.stall_seconds},
        }

    def write_log(self, rec):
        if self.log is not None:
            self.log.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.log.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ioffice-test-receiver/1"
    timeout = IDLE_TIMEOUT

    def log_message(self, format, *args):   # quiet: the JSON log says it all
        pass

    # -- plumbing ---------------------------------------------------------

    def read_body(self):
        """The request body, or None after answering an error / on EOF."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self.read_chunked()
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            self.reply(400, {"error": "bad Content-Length"}, close=True)
            return None
        if n > MAX_BODY:
            self.reply(413, {"error": "body too large"}, close=True)
            return None
        body = self.rfile.read(n)   # buffered: loops until n bytes or EOF
        if len(body) != n:          # client went away mid-body
            self.close_connection = True
            return None
        return body

    def read_chunked(self):
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                self.close_connection = True
                return None
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.reply(400, {"error": "bad chunk"}, close=True)
                return None
            if n == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass            # trailers
                return b"".join(parts)
            size += n
            if size > MAX_BODY:
                self.reply(413, {"error": "body too large"}, close=True)
                return None
            chunk = self.rfile.read(n + 2)  # data and CRLF
            if len(chunk) != n + 2:
                self.close_connection = True
                return None
            parts.append(chunk[:n])

    def reply(self, status, obj, close=False):
        data = (json.dumps(obj) + "\n").encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if close:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:             # client gone: nothing to answer to
            self.close_connection = True
            return False

    def client_gone(self):
        """True when the peer has closed its side (EOF or reset)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            return bool(r) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- endpoints --------------------------------------------------------

    def do_GET(self):
        st = self.server.state
        if self.path == "/_stats":
            with st.lock:
                s = st.stats()
            self.reply(200, s)
        elif self.path == "/_health":
            self.reply(200, {"ok": True})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/_control":
            self.control()
        else:
            self.event()

    do_PUT = do_POST

    def control(self):
        st = self.server.state
        body = self.read_body()
        if body is None:
            return
        try:
            c = json.loads(body or b"{}")
            if not isinstance(c, dict):
                raise ValueError("body must be a JSON object")
            with st.lock:
                if c.get("reset"):
                    st.reset()
                if "mode" in c or not c.get("reset"):
                    st.set_mode(c)
                s = st.stats()
        except ValueError as e:     # json.JSONDecodeError is a ValueError
            self.reply(400, {"error": str(e)})
            return
        self.reply(200, s)

    def event(self):
        st = self.server.state
        arrived = time.time()
        body = self.read_body()
        if body is None:
            return
        key = self.headers.get("Idempotency-Key")
        sig = self.headers.get("X-Ioffice-Signature")
        sig_ok = None
        if st.secret is not None:
            want = "sha256=" + hmac.new(st.secret, body, hashlib.sha256).hexdigest()
            sig_ok = sig is not None and hmac.compare_digest(sig.strip(), want)

        with st.lock:
            st.total += 1
            if key is None:
                st.no_key += 1
                attempt = None
            else:
                attempt = st.attempts.get(key, 0) + 1
                st.attempts[key] = attempt
                if key in st.delivered:
                    st.duplicates += 1
            if sig_ok is False:
                st.bad_signature += 1
                mode, status, stall = "ok", 401, 0   # a bad request uses no fault
            else:
                mode, status, stall = st.take_mode()

        if mode == "stall":
            time.sleep(stall)
        if mode == "stall" and self.client_gone():
            # the client timed out: it never sees an answer, so the event is
            # not counted as delivered and its retry is not a duplicate
            answered, sent = "client_gone", False
            self.close_connection = True
        elif mode == "close":
            answered, sent = "closed", False
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            answered = status
            if status == 401:
                obj = {"ok": False, "error": "bad signature"}
            elif status >= 300:
                obj = {"ok": False, "error": "injected failure"}
            else:
                obj = {"ok": True}
            sent = self.reply(status, obj)
            if not sent:
                answered = "client_gone"

        rec = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "arrived": arrived,     # epoch seconds, when the request came in
            "method": self.command,
            "path": self.path,
            "key": key,
            "event": self.headers.get("X-Ioffice-Event"),
            "content_type": self.headers.get("Content-Type"),
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "signature_ok": sig_ok,
            "mode": mode,
            "status": answered,
            "attempt": attempt,
        }
        if len(body) <= LOG_BODY_MAX:
            try:
                rec["body"] = json.loads(body)
            except ValueError:
                pass
        with st.lock:
            k = str(answered)
            st.status[k] = st.status.get(k, 0) + 1
            if sent and 200 <= status < 300 and key is not None:
                st.delivered.add(key)
            st.write_log(rec)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        # HTTPServer.server_bind would also look up a host name: not needed
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # clients that disconnect are part of the tests: no tracebacks for them
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def write_atomically(path, text):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="written (atomically) once listening")
    ap.add_argument("--pid-file")
    ap.add_argument("--secret", help="HMAC-SHA256 secret; checks X-Ioffice-Signature")
    ap.add_argument("--log", help="JSON lines, one per request")
    a = ap.parse_args()

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.state = State(a.secret, a.log)

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it runs in another thread
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    if a.pid_file:
        write_atomically(a.pid_file, "%d\n" % os.getpid())
    if a.port_file:
        write_atomically(a.port_file, "%d\n" % srv.server_port)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        for f in (a.port_file, a.pid_file):
            if f:
                try:
                    os.unlink(f)
                except OSError:
                    pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
