# Sourced by bench drivers: a private nginx that stands in for the outbox's
# HTTP endpoints.  It answers every request with 200 {"ok":true}, reads and
# discards the body, and logs status, request length and Idempotency-Key so
# that duplicates can be counted afterwards.  Everything it writes (config,
# pid, logs, temp folders) is inside DIR; it listens on 127.0.0.1:PORT only
# and runs as the user who calls nginx_start (root included: see 'user').
#
#   nginx_start DIR PORT     # writes DIR/nginx.conf, starts, waits until it answers
#   nginx_count DIR          # requests=N distinct_keys=M duplicates=N-M [no_key=K]
#   nginx_stop DIR           # stops it (idempotent), waits for the master to exit
#
# NGINX_WORKERS (default 1) sets worker_processes.  Debian 12 package: nginx.

NGINX_BIN=${NGINX_BIN:-$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)}

nginx_start() {
    local dir=$1 port=$2
    [ -n "$dir" ] && [ -n "$port" ] || { echo "usage: nginx_start DIR PORT" >&2; return 2; }
    [ -x "$NGINX_BIN" ] || { echo "nginx not found (apt-get install nginx)" >&2; return 1; }
    mkdir -p "$dir" && dir=$(cd "$dir" && pwd) || return 1
    mkdir -p "$dir/tmp"
    # As root the master keeps root and the workers switch to 'user' (the
    # built-in default is nobody, which could not write DIR): name the
    # caller.  Any other user cannot switch, so the directive is left out.
    local user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user $(id -un) $(id -gn);"
    cat >"$dir/nginx.conf" <<EOF
# written by tests/bench/nginx_receiver.sh
$user_line
daemon on;
worker_processes ${NGINX_WORKERS:-1};
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    # the built-in temp paths are under /var/lib/nginx: keep them here
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    # time, status, method, header bytes (\$request_length leaves out a
    # discarded body), body bytes, key, event.  Tab-separated; escape=json
    # keeps a tab or quote in a key from breaking the columns.  Written
    # unbuffered, so nginx_count is current while nginx runs.
    log_format outbox escape=json '\$msec\t\$status\t\$request_method\t\$request_length\t\$content_length\t\$http_idempotency_key\t\$http_x_ioffice_event';
    access_log $dir/access.log outbox;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    client_max_body_size 64m;
    default_type application/json;
    server_tokens off;
    server {
        listen 127.0.0.1:$port;
        location = /_ready { access_log off; return 200 '{"ok":true}'; }
        # 'return' discards the body (read and dropped, never buffered to disk)
        location / { return 200 '{"ok":true}'; }
    }
}
EOF
    # -e: the built-in error log (/var/log/nginx) is opened before the
    # config is read; -p: relative paths resolve inside DIR
    if ! "$NGINX_BIN" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" 2>>"$dir/error.log"; then
        echo "nginx did not start:" >&2; cat "$dir/error.log" >&2; return 1
    fi
    local i
    for i in $(seq 100); do
        if curl -sf -o /dev/null "http://127.0.0.1:$port/_ready"; then return 0; fi
        sleep 0.05
    done
    echo "nginx does not answer on 127.0.0.1:$port:" >&2; cat "$dir/error.log" >&2
    nginx_stop "$dir"
    return 1
}

nginx_stop() {
    local dir=$1 pid i
    [ -s "$dir/nginx.pid" ] || return 0
    pid=$(cat "$dir/nginx.pid")
    kill -TERM "$pid" 2>/dev/null || { rm -f "$dir/nginx.pid"; return 0; }
    for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    echo "nginx (pid $pid) did not stop in 5 s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/nginx.pid"
}

nginx_count() {
    local dir=$1
    [ -f "$dir/access.log" ] || { echo "requests=0 distinct_keys=0 duplicates=0"; return 0; }
    awk -F'\t' '
        { n++ }
        $6 == "" || $6 == "-" { nokey++; next }
        !($6 in seen) { seen[$6] = 1; m++ }
        END {
            printf "requests=%d distinct_keys=%d duplicates=%d", n, m, n - nokey - m
            if (nokey) printf " no_key=%d", nokey
            printf "\n"
        }' "$dir/access.log"
}
