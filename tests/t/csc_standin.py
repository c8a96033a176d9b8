#!/usr/bin/env python3
"""A stand-in remote signing service for the tests (loopback), shaped like the
Cloud Signature Consortium API as workers/remote_signing.c speaks it:

  POST /signatures/signHash  {"credentialID", "userID", "hashes": [b64],
                              "hashAlgorithmOID", "signAlgo", "operationMode",
                              "validity_period", "transactionID", ...}
       -> {"responseID": ...}   (the same transactionID again: the same answer)
  POST /signatures/status    {"transactionID", "responseID"}
       -> {"status": "pending" | "signed" | "refused" | "expired",
           "signatures": [b64]}

Every call is authenticated with HTTP Basic (the client id and secret of the
configuration).  The signature is the bare PKCS#1 v1.5 (RSA) or DER ECDSA value
over the hash, made with the key of the credential.

What a user's transactions do (their "mode", set per user id):
  confirm:N   signed after N status polls (confirm:0: at the first)
  refuse      refused at the first poll
  never       pending for ever (our side expires it)
  garbage     the status answer is not JSON
The whole service is stopped by the test (it goes down) and started again.

Control (no authentication, loopback only):
  POST /control/mode {"user": ..., "mode": ...}
  GET  /control/stats -> {"signHash": n, "status": n, "transactions": n,
                          "signed": n, "by_transaction": {id: signed count}}

usage: csc_standin.py CONFIG.json PORTFILE
  CONFIG: {"client_id", "client_secret", "credentials": {id: {"key": path}},
           "modes": {user: mode}}
  PORTFILE: the port it listens on is written there once it listens
  (environment CSC_PORT: that port, to come back where it was; else any).
"""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

config = json.load(open(sys.argv[1]))
lock = threading.Lock()
modes = dict(config.get("modes", {}))
transactions = {}  # transactionID -> dict
stats = {"signHash": 0, "status": 0, "signed": 0}
keys = {}
for cred, c in config["credentials"].items():
    with open(c["key"], "rb") as f:
        keys[cred] = serialization.load_pem_private_key(f.read(), password=None)


def sign_value(cred, digest):
    key = keys[cred]
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    return key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body, raw=False):
        data = body if raw else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorised(self):
        want = "Basic " + base64.b64encode(
            (config["client_id"] + ":" + config["client_secret"]).encode()).decode()
        return self.headers.get("Authorization") == want

    def do_GET(self):
        if self.path == "/control/stats":
            with lock:
                body = dict(stats)
                body["transactions"] = len(transactions)
                body["by_transaction"] = {k: v["signed"] for k, v in transactions.items()}
            return self.answer(200, body)
        return self.answer(404, {"error": "not_found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        try:
            req = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.answer(400, {"error": "invalid_request"})
        if self.path == "/control/mode":
            with lock:
                modes[req["user"]] = req["mode"]
            return self.answer(200, {})
        if not self.authorised():
            return self.answer(401, {"error": "invalid_client"})
        if self.path == "/signatures/signHash":
            return self.sign_hash(req)
        if self.path == "/signatures/status":
            return self.status(req)
        return self.answer(404, {"error": "not_found"})

    def sign_hash(self, req):
        cred = req.get("credentialID")
        tid = req.get("transactionID")
        if (cred not in keys or not tid or req.get("hashAlgorithmOID") != "2.16.840.1.101.3.4.2.1"
                or not isinstance(req.get("hashes"), list) or len(req["hashes"]) != 1):
            return self.answer(400, {"error": "invalid_request"})
        with lock:
            stats["signHash"] += 1
            t = transactions.get(tid)
            if t is None:
                t = {"id": "r-" + tid, "cred": cred, "user": req.get("userID"),
                     "hash": base64.b64decode(req["hashes"][0]), "polls": 0, "signed": 0}
                transactions[tid] = t
        return self.answer(200, {"responseID": t["id"]})

    def status(self, req):
        tid = req.get("transactionID")
        with lock:
            stats["status"] += 1
            t = transactions.get(tid)
            if t is None or t["id"] != req.get("responseID"):
                return self.answer(404, {"error": "unknown_transaction"})
            t["polls"] += 1
            mode = modes.get(t["user"], "confirm:0")
            polls = t["polls"]
        if mode == "refuse":
            return self.answer(200, {"status": "refused"})
        if mode == "never":
            return self.answer(200, {"status": "pending"})
        if mode == "garbage":
            return self.answer(200, b"<html>Service Unavailable</html>", raw=True)
        after = int(mode.split(":")[1]) if mode.startswith("confirm:") else 0
        if polls <= after:
            return self.answer(200, {"status": "pending"})
        value = sign_value(t["cred"], t["hash"])
        with lock:
            t["signed"] += 1
            stats["signed"] += 1
        return self.answer(200, {"status": "signed",
                                 "signatures": [base64.b64encode(value).decode()]})


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("CSC_PORT", "0"))), Handler)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
server.serve_forever()
