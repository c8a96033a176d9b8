# Shared by scripts/test, scripts/demo and tests/bench: where PostgreSQL is,
# and how to run a command as an unprivileged user (initdb refuses root).
PG_CONFIG=${PG_CONFIG:-pg_config}
PGBIN=$($PG_CONFIG --bindir)
PGXS_DIR=$(dirname "$(dirname "$(dirname "$($PG_CONFIG --pgxs)")")")
export PATH="$PGBIN:$PATH"

# as_user CMD...: runs CMD as the 'postgres' OS user when we are root
as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- env PATH="$PATH" PERL5LIB="${PERL5LIB:-}" "$@"
    else
        "$@"
    fi
}

# build_and_install: make, and make install (with sudo when not root)
build_and_install() {
    make -s PG_CONFIG="$PG_CONFIG" >/dev/null
    if [ "$(id -u)" -eq 0 ] || [ -w "$($PG_CONFIG --pkglibdir)" ]; then
        make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    else
        sudo make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    fi
}

# a scratch folder the test user can write to
scratch_dir() {
    local d
    d=$(mktemp -d /tmp/ioffice.XXXXXX)
    chmod 755 "$d"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$d"
    echo "$d"
}
