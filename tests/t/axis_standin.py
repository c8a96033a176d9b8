#!/usr/bin/env python3
"""A loopback stand-in for a VXP-shaped interconnection axis (TAP 036).

    axis_standin.py CONFIG.json PORTFILE

CONFIG: {"systems": {"<systemid>": "<secret>", ...}}.  Every request must
carry systemid, timestamp (ms) and signature = base64(HMAC-SHA256(secret,
"systemid:timestamp")) headers, else 401.

  POST /sendEdoc           multipart: servicetype, messagetype, file (the package);
                           routed to the package's To/OrganId (documents) or
                           ResponseFor/OrganId (statuses); an Idempotency-Key seen
                           before is not stored again
  GET  /getReceivedEdocList {"status": "OK", "data": [{"docId": ...}]} for the caller
  GET  /getEdoc            header docid: the package
  POST /updateStatus       {"docId", "status": done|fail, "description"}: taken off the list
  POST /endpoint           the endpoint transport: the package as the body,
                           X-Ioffice-Signature: sha256=<hex HMAC of the body with
                           CONFIG's "endpoint_secret">, Idempotency-Key
  POST /control/mode       {"mode": normal|down|slow|duplicate|malformed}
  GET  /control/stats      what was sent, acknowledged, refused
"""
import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS = '{http://www.mic.gov.vn/TBT/QCVN_102_2016}'
config = json.load(open(sys.argv[1]))
lock = threading.Lock()
mode = {'mode': 'normal'}
boxes = {}          # systemid -> [docId, ...] not yet acknowledged
packages = {}       # docId -> (bytes, messagetype, sender)
seen_keys = set()
stats = {'sent': [], 'acks': [], 'fetched': 0, 'lists': 0, 'posted': []}


def recipients(pkg):
    root = ET.fromstring(pkg)
    mh = root.find(f'{NS}edXMLEnvelope/{NS}edXMLHeader/{NS}MessageHeader')
    if mh.find(f'{NS}StatusCode') is not None:
        return [mh.findtext(f'{NS}ResponseFor/{NS}OrganId')], 'status', mh.findtext(f'{NS}StatusCode')
    return [t.findtext(f'{NS}OrganId') for t in mh.findall(f'{NS}To')], 'edoc', None


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, ctype='application/json'):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def caller(self):
        sid = self.headers.get('systemid')
        ts = self.headers.get('timestamp', '')
        sig = self.headers.get('signature', '')
        secret = config['systems'].get(sid)
        if secret is None:
            return None
        mac = base64.b64encode(hmac.new(secret.encode(), f'{sid}:{ts}'.encode(),
                                        hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(mac, sig) or abs(time.time() * 1000 - int(ts or 0)) > 300000:
            return None
        return sid

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n)

    def control(self):
        if self.path == '/control/mode':
            mode['mode'] = json.loads(self.body())['mode']
            return self.answer(200, {'mode': mode['mode']})
        if self.path == '/control/stats':
            with lock:
                return self.answer(200, dict(stats, boxes=boxes))
        return self.answer(404, {'error': 'no such control'})

    def handle_any(self):
        if self.path.startswith('/control/'):
            return self.control()
        m = mode['mode']
        if m == 'down':
            self.body()
            return self.answer(503, {'status': 'FAIL', 'error': 'the axis is down'})
        if m == 'slow':
            time.sleep(3)
        if self.path == '/endpoint':
            raw = self.body()
            mac = 'sha256=' + hmac.new(config['endpoint_secret'].encode(), raw, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(mac, self.headers.get('X-Ioffice-Signature', '')):
                return self.answer(401, {'error': 'bad signature'})
            try:
                to, kind, code = recipients(raw)
            except Exception as e:
                return self.answer(400, {'error': f'not an edXML package: {e}'})
            with lock:
                stats['posted'].append({'to': to, 'kind': kind, 'key': self.headers.get('Idempotency-Key'),
                                        'event': self.headers.get('X-Ioffice-Event'),
                                        'signed': b'SignatureValue' in raw})
            return self.answer(200, {'status': 'OK'})
        sid = self.caller()
        if sid is None:
            self.body()
            return self.answer(401, {'status': 'FAIL', 'error': 'bad signature'})
        if self.path == '/sendEdoc':
            raw = self.body()
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b'Content-Type: ' + self.headers['Content-Type'].encode() + b'\r\n\r\n' + raw)
            parts = {p.get_param('name', header='content-disposition'): p.get_payload(decode=True)
                     for p in msg.iter_parts()}
            pkg = parts.get('file')
            try:
                to, kind, code = recipients(pkg)
            except Exception as e:
                return self.answer(400, {'status': 'FAIL', 'error': f'not an edXML package: {e}'})
            key = self.headers.get('Idempotency-Key')
            with lock:
                if key not in seen_keys:
                    seen_keys.add(key)
                    for r in to:
                        doc_id = str(uuid.uuid4())
                        packages[doc_id] = (pkg, kind, sid)
                        boxes.setdefault(r, []).append(doc_id)
                    stats['sent'].append({'from': sid, 'to': to, 'kind': kind, 'code': code})
            return self.answer(200, {'status': 'OK', 'docId': key})
        if self.path == '/getReceivedEdocList':
            with lock:
                stats['lists'] += 1
                ids = list(boxes.get(sid, []))
                if m == 'malformed':
                    bad = str(uuid.uuid4())
                    packages[bad] = (b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><oops>',
                                     'edoc', 'nobody')
                    boxes.setdefault(sid, []).append(bad)
                    ids.append(bad)
                if m == 'duplicate':
                    ids = ids + ids
            return self.answer(200, {'status': 'OK', 'data': [{'docId': i} for i in ids]})
        if self.path == '/getEdoc':
            with lock:
                p = packages.get(self.headers.get('docid'))
                stats['fetched'] += 1
            if p is None:
                return self.answer(404, {'status': 'FAIL', 'error': 'no such package'})
            return self.answer(200, p[0], 'application/xml')
        if self.path == '/updateStatus':
            req = json.loads(self.body())
            with lock:
                box = boxes.get(sid, [])
                if req['docId'] in box:
                    box.remove(req['docId'])
                stats['acks'].append(req)
            return self.answer(200, {'status': 'OK'})
        return self.answer(404, {'status': 'FAIL', 'error': 'no such operation'})

    do_GET = handle_any
    do_POST = handle_any


server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
with open(sys.argv[2] + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[2] + '.tmp', sys.argv[2])
server.serve_forever()
