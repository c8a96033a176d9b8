#!/usr/bin/env python3
"""A loopback RFC 3161 time-stamp authority for TAP 037, answering with `openssl ts -reply`.

usage: tsa_standin.py DIR

At start it makes its own PKI in DIR with the openssl command: tsa_root.pem (a CA, its key
tsa_root.key) and tsa.pem (the TSA's certificate, extendedKeyUsage critical timeStamping, issued
by that CA), then listens on 127.0.0.1 (a free port, written to DIR/port once listening).
Each POST is answered according to DIR/mode (read at every request; default 'ok'):
  ok       a granted timestamp for the query (openssl ts -reply, the TSA's certificate included)
  other    a granted timestamp for another query (wrong imprint and nonce)
  garbage  200 application/timestamp-reply with bytes that are no timestamp response
  error    HTTP 500
  reject   a 'rejection' status (openssl ts -reply on a query it cannot parse gives none, so a
           rejection response DER is written here by hand)
Each request is noted as a line in DIR/requests.
"""
import http.server
import os
import subprocess
import sys
import tempfile

DIR = sys.argv[1]


def openssl(*args, stdin=None):
    subprocess.run(['openssl', *args], check=True, input=stdin, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_pki():
    cnf = os.path.join(DIR, 'tsa.cnf')
    with open(cnf, 'w') as f:
        f.write(f"""
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = Test TSA
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ v3_tsa ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {DIR}
serial = $dir/tsa_serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa_root.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    with open(os.path.join(DIR, 'tsa_serial'), 'w') as f:
        f.write('01\n')
    root_key = os.path.join(DIR, 'tsa_root.key')
    root = os.path.join(DIR, 'tsa_root.pem')
    key = os.path.join(DIR, 'tsa.key')
    csr = os.path.join(DIR, 'tsa.csr')
    cert = os.path.join(DIR, 'tsa.pem')
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', root_key, '-out', root,
            '-subj', '/CN=Test TSA Root', '-days', '36500', '-config', cnf, '-extensions', 'v3_ca')
    openssl('req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr,
            '-subj', '/CN=Test TSA', '-config', cnf)
    openssl('x509', '-req', '-in', csr, '-CA', root, '-CAkey', root_key, '-set_serial', '7',
            '-days', '36500', '-extfile', cnf, '-extensions', 'v3_tsa', '-out', cert)
    return cnf


CNF = make_pki()

# a TimeStampResp with status rejection (2) and no token: SEQUENCE { SEQUENCE { INTEGER 2 } }
REJECTION = bytes([0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02])


def reply(query):
    with tempfile.TemporaryDirectory() as t:
        q = os.path.join(t, 'q.tsq')
        r = os.path.join(t, 'r.tsr')
        with open(q, 'wb') as f:
            f.write(query)
        openssl('ts', '-reply', '-config', CNF, '-queryfile', q, '-out', r)
        with open(r, 'rb') as f:
            return f.read()


def other_query():
    with tempfile.TemporaryDirectory() as t:
        d = os.path.join(t, 'data')
        q = os.path.join(t, 'q.tsq')
        with open(d, 'wb') as f:
            f.write(os.urandom(32))
        openssl('ts', '-query', '-data', d, '-sha256', '-cert', '-out', q)
        with open(q, 'rb') as f:
            return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get('Content-Length', '0'))
        query = self.rfile.read(length)
        try:
            with open(os.path.join(DIR, 'mode')) as f:
                mode = f.read().strip() or 'ok'
        except FileNotFoundError:
            mode = 'ok'
        with open(os.path.join(DIR, 'requests'), 'a') as f:
            f.write(mode + ' ' + self.headers.get('Content-Type', '-') + '\n')
        if mode == 'error':
            self.send_response(500)
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        if mode == 'garbage':
            body = b'not a timestamp'
        elif mode == 'reject':
            body = REJECTION
        elif mode == 'other':
            body = reply(other_query())
        else:
            body = reply(query)
        self.send_response(200)
        self.send_header('Content-Type', 'application/timestamp-reply')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# one request at a time: openssl ts -reply keeps its serial in a file
server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
with open(os.path.join(DIR, 'port.tmp'), 'w') as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, 'port.tmp'), os.path.join(DIR, 'port'))
server.serve_forever()
