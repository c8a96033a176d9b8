# Shared by scripts/test, scripts/demo and tests/bench: where PostgreSQL is,
# and how to run a command as an unprivileged user (initdb refuses root).
#
# IOFFICE_INSTALL_ROOT=DIR builds into a private copy of the PostgreSQL
# installation under DIR (its bin, lib and share, found by the server relative
# to its own binary) instead of the system's, so that two checkouts can be
# tested side by side without overwriting each other's library.
PG_CONFIG=${PG_CONFIG:-pg_config}
# by its absolute path: PATH gets the private installation's bin below, and
# the pg_config there reports paths inside the private root, to which
# DESTDIR would add the root a second time (and the server would go on
# loading the system's copy of ioffice)
PG_CONFIG=$(command -v "$PG_CONFIG") || { echo "pg_config not found" >&2; exit 1; }
PGBIN=$($PG_CONFIG --bindir)
PGXS_DIR=$(dirname "$(dirname "$(dirname "$($PG_CONFIG --pgxs)")")")
if [ -n "${IOFFICE_INSTALL_ROOT:-}" ]; then
    PGBIN="$IOFFICE_INSTALL_ROOT$PGBIN"
fi
export PATH="$PGBIN:$PATH"

# as_user CMD...: runs CMD as the 'postgres' OS user when we are root, with
# the variables of the array RUN_ENV (NAME=value; scripts/test's faketime mode)
RUN_ENV=()
as_user() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- env PATH="$PATH" PERL5LIB="${PERL5LIB:-}" "${RUN_ENV[@]}" "$@"
    else
        env "${RUN_ENV[@]}" "$@"
    fi
}

# private_root DIR: a copy of the server's installation under DIR, once
private_root() {
    local root=$1 d
    for d in "$($PG_CONFIG --bindir)" "$($PG_CONFIG --pkglibdir)" "$($PG_CONFIG --sharedir)"; do
        [ -d "$root$d" ] && continue
        mkdir -p "$(dirname "$root$d")"
        cp -a "$d" "$root$d"
    done
    chmod -R a+rX "$root"
}

# build_and_install: make, and make install (with sudo when not root), or
# into the private installation when IOFFICE_INSTALL_ROOT is set
build_and_install() {
    make -s PG_CONFIG="$PG_CONFIG" >/dev/null || return 1
    if [ -n "${IOFFICE_INSTALL_ROOT:-}" ]; then
        private_root "$IOFFICE_INSTALL_ROOT"
        make -s PG_CONFIG="$PG_CONFIG" DESTDIR="$IOFFICE_INSTALL_ROOT" install >/dev/null
    elif [ "$(id -u)" -eq 0 ] || [ -w "$($PG_CONFIG --pkglibdir)" ]; then
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
