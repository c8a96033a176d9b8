# Sourced by the bench drivers: a throwaway cluster with ioffice loaded.
# bench_start makes it (initdb in a scratch folder, unix socket only) and
# arranges for it to be stopped and removed when the driver exits.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$BENCH_DIR/../../scripts/lib.sh"

# With IOFFICE_INSTALL_ROOT set, lib.sh put the private installation's bin
# first in PATH; if it is not there (not built yet), PATH would silently fall
# back to the system's server and extension: refuse instead.
if [ -n "${IOFFICE_INSTALL_ROOT:-}" ] &&
   { [ ! -x "$PGBIN/postgres" ] ||
     [ ! -f "$IOFFICE_INSTALL_ROOT$($PG_CONFIG --pkglibdir)/ioffice.so" ]; }; then
    echo "no ioffice in the private installation $IOFFICE_INSTALL_ROOT: build it first" \
         "(IOFFICE_INSTALL_ROOT=$IOFFICE_INSTALL_ROOT bash scripts/test regress)" >&2
    exit 2
fi

WORK=
bench_stop() {
    [ -n "$WORK" ] || return 0
    if [ -f "$WORK/data/postmaster.pid" ]; then
        as_user pg_ctl -D "$WORK/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -n "${KEEP_BENCH_DIR:-}" ]; then
        echo "bench folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

bench_start() {
    WORK=$(scratch_dir)
    trap bench_stop EXIT
    trap 'exit 130' INT TERM
    as_user initdb -D "$WORK/data" -U postgres -A trust -E UTF8 --no-locale \
        >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log"; return 1; }
    # a large max_wal_size: a checkpoint is taken between timed runs, never
    # inside one, so neither workload pays for the other's dirty pages
    cat >>"$WORK/data/postgresql.conf" <<EOF
shared_preload_libraries = 'ioffice'
listen_addresses = ''
unix_socket_directories = '$WORK'
max_wal_size = 8GB
checkpoint_timeout = 30min
${BENCH_CONF:-}
EOF
    as_user pg_ctl -D "$WORK/data" -l "$WORK/server.log" -w start >/dev/null ||
        { cat "$WORK/server.log"; return 1; }
    as_user createdb -h "$WORK" -U postgres bench
    # the scripts are read by the server's OS user
    cp "$BENCH_DIR"/*.sql "$BENCH_DIR"/*.pgbench "$WORK/" 2>/dev/null || true
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$WORK"
    return 0
}

# bsql ARGS...: psql on the bench database, stopping at the first error
bsql() {
    as_user psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -U postgres -d bench "$@"
}
