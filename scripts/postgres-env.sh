# Shared by scripts/postgres-start and scripts/postgres-stop: where the project's local
# PostgreSQL server keeps its files, and how to run its programs.
#
# Settings (environment):
#   FLOW_POSTGRES_PORT  the port the server listens on, on 127.0.0.1 (default 5440)
#   FLOW_POSTGRES_DIR   where the server keeps its files (default .flow/postgres/<port>)
#   FLOW_POSTGRES_BIN   PostgreSQL's programs (default: the newest under /usr/lib/postgresql)
repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FLOW_POSTGRES_PORT="${FLOW_POSTGRES_PORT:-5440}"
FLOW_POSTGRES_DIR="${FLOW_POSTGRES_DIR:-$repo_dir/.flow/postgres/$FLOW_POSTGRES_PORT}"
if [ -z "${FLOW_POSTGRES_BIN:-}" ]; then
    FLOW_POSTGRES_BIN="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
fi
flow_postgres_data="$FLOW_POSTGRES_DIR/data"

# The server refuses to run as root: as root, its programs run as Debian's 'postgres' user.
flow_postgres_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}
