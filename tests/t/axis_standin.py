#!/usr/bin/env python3
"""A loopback stand-in for a VXP-shaped interconnection axis (TAP 036, 042,
tests/bench/edxml, scripts/demo).

    axis_standin.py CONFIG.json PORTFILE [PORT]

PORT (default: any free one) lets a test stop the axis and start it again on
the same port: the axis down, connections refused.

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
  POST /control/mode       {"mode": normal|down|slow|duplicate|malformed|error500,
                            "delay": seconds of slow (3), "paths": ["/sendEdoc", ...]
                            (the operations the mode applies to; default all)}
                           down: 503; error500: 500; slow: every answer after
                           delay; duplicate: every id listed twice; malformed:
                           a new package that is not well-formed at each list
  POST /control/inject     {"to": systemid, "fault": F, "size": bytes}: one
                           package put in the box of "to", listed until
                           acknowledged (or dropped); answers {"docId"}.  F:
                           baddocid  an id with CR LF and a header after it
                                     (never a valid VXP id; not fetchable)
                           notutf8   a package whose bytes are not UTF-8
                           huge      a well-formed package of "size" bytes
                           again     the last package given to "to", under a
                                     new id (the axis delivering it twice);
                                     with "listed": false, only fetchable by
                                     its id (the benchmark's HTTP floor)
  POST /control/tamper     {"on": true}: the next document package sent has one
                           base64 character of its first attachment changed
                           (its signature no longer holds)
  POST /control/drop       {"to", "docId"}: taken off the box without an ack
  GET  /control/stats      what was sent, acknowledged (by whom, when), refused,
                           fetched (ids; fetches: [by, id]), sends again with a key seen before
                           (resent), when a list held packages (full_lists),
                           requests that carried a header "X-Injected"

A package acknowledged done is forgotten (memory stays flat in the benchmark).
The Idempotency-Key "floor" (the benchmark's HTTP floor) is read and parsed
as any other, then neither stored nor counted.

A receiver that is not this one (tests/bench/edxml) measures the same
requests; everything is in memory.
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
stats = {'sent': [], 'acks': [], 'fetched': 0, 'lists': 0, 'posted': [], 'fetched_ids': [],
         'injected_headers': 0, 'resent': 0, 'full_lists': [], 'fetches': []}
last_given = {}     # systemid -> the last package (bytes) fetched by it
tamper = {'on': False}


def tampered(pkg):
    """one base64 character of the first attachment changed"""
    tag = b'<ContentTransferEncoded>'
    i = pkg.find(tag)
    if i < 0:
        return pkg
    i += len(tag)
    c = pkg[i:i + 1]
    return pkg[:i] + (b'B' if c != b'B' else b'C') + pkg[i + 1:]


def inject(req):
    to, fault = req['to'], req['fault']
    doc_id = str(uuid.uuid4())
    if fault == 'baddocid':
        doc_id = 'bad-' + doc_id + '\r\nX-Injected: 1'
        pkg = b''
    elif fault == 'notutf8':
        pkg = ('<?xml version="1.0" encoding="UTF-8"?><edXML xmlns="%s"><Subject>V\u0103n b\u1ea3n '
               % NS[1:-1]).encode() + b'\xff\xfe\xc3(' + b'</Subject></edXML>'
    elif fault == 'huge':
        head = ('<?xml version="1.0" encoding="UTF-8"?><edXML xmlns="%s"><Pad>' % NS[1:-1]).encode()
        tail = b'</Pad></edXML>'
        pkg = head + b'A' * max(0, int(req.get('size', 2 << 20)) - len(head) - len(tail)) + tail
    elif fault == 'again':
        pkg = last_given.get(to)
        if pkg is None:
            return None
    else:
        return None
    packages[doc_id] = (pkg, 'edoc', 'injected')
    if req.get('listed', True):
        boxes.setdefault(to, []).append(doc_id)
    return doc_id


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
            req = json.loads(self.body())
            mode['mode'] = req['mode']
            mode['delay'] = float(req.get('delay', 3))
            mode['paths'] = req.get('paths')
            return self.answer(200, {'mode': mode['mode']})
        if self.path == '/control/inject':
            with lock:
                doc_id = inject(json.loads(self.body()))
            if doc_id is None:
                return self.answer(400, {'error': 'nothing to inject'})
            return self.answer(200, {'docId': doc_id})
        if self.path == '/control/tamper':
            tamper['on'] = bool(json.loads(self.body()).get('on'))
            return self.answer(200, tamper)
        if self.path == '/control/drop':
            req = json.loads(self.body())
            with lock:
                box = boxes.get(req['to'], [])
                if req['docId'] in box:
                    box.remove(req['docId'])
            return self.answer(200, {'status': 'OK'})
        if self.path == '/control/stats':
            with lock:
                return self.answer(200, dict(stats, boxes=boxes))
        return self.answer(404, {'error': 'no such control'})

    def handle_any(self):
        if self.path.startswith('/control/'):
            return self.control()
        m = mode['mode']
        if mode.get('paths') is not None and self.path not in mode['paths']:
            m = 'normal'
        if self.headers.get('X-Injected') is not None:
            with lock:
                stats['injected_headers'] += 1
        if m == 'down':
            self.body()
            return self.answer(503, {'status': 'FAIL', 'error': 'the axis is down'})
        if m == 'error500':
            self.body()
            return self.answer(500, {'status': 'FAIL', 'error': 'internal error of the axis'})
        if m == 'slow':
            time.sleep(mode.get('delay', 3))
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
            if kind == 'edoc' and tamper['on']:
                tamper['on'] = False
                pkg = tampered(pkg)
            with lock:
                if key == 'floor':
                    pass
                elif key in seen_keys:
                    stats['resent'] += 1
                else:
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
                if ids:
                    stats['full_lists'].append(time.time())
            return self.answer(200, {'status': 'OK', 'data': [{'docId': i} for i in ids]})
        if self.path == '/getEdoc':
            with lock:
                p = packages.get(self.headers.get('docid'))
                stats['fetched'] += 1
                stats['fetched_ids'].append(self.headers.get('docid'))
                stats['fetches'].append([sid, self.headers.get('docid')])
                if p is not None and p[2] != 'injected':
                    last_given[sid] = p[0]
            if p is None:
                return self.answer(404, {'status': 'FAIL', 'error': 'no such package'})
            return self.answer(200, p[0], 'application/xml')
        if self.path == '/updateStatus':
            req = json.loads(self.body())
            with lock:
                box = boxes.get(sid, [])
                if req['docId'] in box:
                    box.remove(req['docId'])
                    if req.get('status') == 'done':
                        packages.pop(req['docId'], None)
                stats['acks'].append(dict(req, at=time.time(), by=sid))
            return self.answer(200, {'status': 'OK'})
        return self.answer(404, {'status': 'FAIL', 'error': 'no such operation'})

    do_GET = handle_any
    do_POST = handle_any


ThreadingHTTPServer.allow_reuse_address = True
ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(('127.0.0.1', int(sys.argv[3]) if len(sys.argv) > 3 else 0), Handler)
with open(sys.argv[2] + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[2] + '.tmp', sys.argv[2])
server.serve_forever()
