#!/usr/bin/env bash
# Self-test of http_receiver.py: starts it on a free port, sends signed and
# unsigned requests with curl, a duplicate, injected failures, a stall that
# curl gives up on and a dropped connection, and checks /_stats and the log.
# Exits non-zero on the first mismatch.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=$(mktemp -d /tmp/ioffice_recv.XXXXXX)
SECRET='s3cret'
RPID=
cleanup() {
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT

python3 "$HERE/http_receiver.py" --port 0 --port-file "$D/port" \
    --pid-file "$D/pid" --secret "$SECRET" --log "$D/log.jsonl" 2>"$D/stderr" &
RPID=$!
for _ in $(seq 100); do [ -s "$D/port" ] && break; sleep 0.05; done
[ -s "$D/port" ] || { echo "receiver did not start"; cat "$D/stderr"; exit 1; }
PORT=$(cat "$D/port")
URL="http://127.0.0.1:$PORT"
[ "$(cat "$D/pid")" = "$RPID" ] || { echo "pid file wrong"; exit 1; }

fails=0
check() {   # check WHAT EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'"; fails=$((fails + 1)); fi
}
sign() { printf '%s' "$1" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1; }
# post BODY KEY [SIGNATURE] [curl options...]: prints the HTTP status (000 = none)
post() {
    local body=$1 key=$2 sig=${3-}
    shift 3
    local h=(-H 'Content-Type: application/json' -H "Idempotency-Key: $key"
             -H 'X-Ioffice-Event: document.issued')
    [ -n "$sig" ] && h+=(-H "X-Ioffice-Signature: sha256=$sig")
    curl -s -o /dev/null -w '%{http_code}' "${h[@]}" --data-binary "$body" "$@" "$URL/hooks/a" || true
}
control() { curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$1" "$URL/_control"; }
stat() { curl -sf "$URL/_stats" | python3 -c "import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1], {}, s))" "$1"; }

B1='{"id":1,"event":"document.issued","so":"12/QĐ-UBND"}'
B2='{"id":2}'
check "signed request"            200 "$(post "$B1" k1 "$(sign "$B1")")"
check "duplicate key"             200 "$(post "$B1" k1 "$(sign "$B1")")"
check "unsigned request"          401 "$(post "$B2" k2 "")"
check "wrong signature"           401 "$(post "$B2" k2 "$(sign "$B1")")"
check "uppercase hex refused"     401 "$(post "$B2" k2 "$(sign "$B2" | tr a-f A-F)")"

control '{"mode":"fail","count":2}'
check "fail 1/2 answers 503"      503 "$(post "$B2" k2 "$(sign "$B2")")"
check "fail 2/2 answers 503"      503 "$(post "$B2" k2 "$(sign "$B2")")"
check "after count: ok again"     200 "$(post "$B2" k2 "$(sign "$B2")")"
control '{"mode":"fail","status":429}'
check "fail until changed (429)"  429 "$(post "$B2" k3 "$(sign "$B2")")"
check "still failing"             429 "$(post "$B2" k3 "$(sign "$B2")")"
control '{"mode":"stall","stall_seconds":1,"count":1}'
check "stall: curl times out"     000 "$(post "$B2" k3 "$(sign "$B2")" --max-time 0.3)"
check "after stall: ok"           200 "$(post "$B2" k3 "$(sign "$B2")")"
control '{"mode":"stall","stall_seconds":0.3,"count":1}'
check "short stall answered"      200 "$(post "$B2" k4 "$(sign "$B2")" --max-time 5)"
control '{"mode":"close","count":1}'
check "close: no answer"          000 "$(post "$B2" k5 "$(sign "$B2")")"
control '{"mode":"ok"}'
check "after close: ok"           200 "$(post "$B2" k5 "$(sign "$B2")")"

# keep-alive: three requests on one connection; a 1 MiB body read exactly
big=$(python3 -c 'import json; print(json.dumps({"x": "a" * 1048576}))')
codes=$(printf '%s' "$big" >"$D/big.json"
        sig=$(openssl dgst -sha256 -hmac "$SECRET" -r <"$D/big.json" | cut -d' ' -f1)
        curl -s -o /dev/null -w '%{http_code} %{num_connects}\n' \
             -H "Idempotency-Key: k6" -H "X-Ioffice-Signature: sha256=$sig" \
             --data-binary @"$D/big.json" "$URL/hooks/a" \
             --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' \
             -H "Idempotency-Key: k7" -H "X-Ioffice-Signature: sha256=$(sign "$B2")" \
             --data-binary "$B2" "$URL/hooks/a" \
             --next -s -o /dev/null -w '%{http_code} %{num_connects}\n' \
             -H "Idempotency-Key: k8" -H "X-Ioffice-Signature: sha256=$(sign "$B2")" \
             -H 'Transfer-Encoding: chunked' --data-binary "$B2" "$URL/hooks/a" | tr '\n' ' ')
check "keep-alive, 1 MiB, chunked" "200 1 200 0 200 0 " "$codes"

# a client that sends half its body and hangs up must not disturb the server
python3 - "$PORT" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /hooks/a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"half\":")
s.close()
EOF
check "bad control refused"       400 "$(curl -s -o /dev/null -w '%{http_code}' -d '{"mode":"nap"}' "$URL/_control")"
check "still alive"               200 "$(post "$B2" k9 "$(sign "$B2")")"

# the stalled request is logged when its stall ends
for _ in $(seq 50); do [ "$(wc -l <"$D/log.jsonl")" -ge 19 ] && break; sleep 0.1; done
# k1: 2 (1 dup); k2: 3x401, 2x503, 200; k3: 2x429, gone, 200; k4: 200;
# k5: closed, 200; k6, k7, k8, k9: 200
check "total"          19  "$(stat total)"
check "distinct keys"  9   "$(stat distinct_keys)"
check "delivered keys" 9   "$(stat delivered_keys)"
check "duplicates"     1   "$(stat duplicates)"
check "bad signatures" 3   "$(stat bad_signature)"
check "max attempts"   6   "$(stat max_attempts)"
check "per status" "{'200': 10, '401': 3, '429': 2, '503': 2, 'client_gone': 1, 'closed': 1}" "$(stat status)"
check "mode"           ok  "$(stat "mode['mode']")"

check "log lines" 19 "$(wc -l <"$D/log.jsonl")"
check "log record" "k1 document.issued True 200 2 12/QĐ-UBND $(printf '%s' "$B1" | sha256sum | cut -d' ' -f1)" \
    "$(sed -n 2p "$D/log.jsonl" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["key"], r["event"], r["signature_ok"], r["status"], r["attempt"], r["body"]["so"], r["body_sha256"])')"

control '{"reset":true}'
check "reset" 0 "$(stat total)"

# only 127.0.0.1
check "listens on 127.0.0.1 only" "127.0.0.1:$PORT" "$(ss -Htln "sport = :$PORT" | awk '{print $4}')"

kill "$RPID"; wait "$RPID" 2>/dev/null || true; RPID=
check "port file removed at exit" no "$([ -e "$D/port" ] && echo yes || echo no)"
if [ -s "$D/stderr" ]; then echo "FAIL receiver wrote to stderr:"; cat "$D/stderr"; fails=$((fails + 1)); fi

[ "$fails" -eq 0 ] && echo "receiver selftest: all passed" || echo "receiver selftest: $fails failed"
[ "$fails" -eq 0 ]
