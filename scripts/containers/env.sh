# Environment for AntifragileFlow's podman tools (scripts/container-images,
# scripts/compose-check), and for a shell that runs compose.yaml by hand:
#
#   source scripts/containers/env.sh && podman-compose up -d
#
# Debian 12's podman 4.3 needs a little help on hosts like ours:
# - its default runtime, crun, refuses hosts whose cgroups are in hybrid mode ("cgroups in
#   hybrid mode not supported"), so the project's containers.conf picks runc;
# - runc sets every ulimit it is given and cannot raise one above the host's hard limit,
#   while podman's defaults ask for more than such hosts allow ("error setting rlimits"),
#   so the limits written here are the host's own hard limits (nproc capped, as runc
#   refuses it at the hard limit itself);
# - no systemd runs the health checks' timers or the journal, so events and logs go to
#   files.
# CONTAINERS_CONF points podman at that file, written under .flow/containers/.

FLOW_REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FLOW_CONTAINERS_DIR="${FLOW_CONTAINERS_DIR:-$FLOW_REPO_DIR/.flow/containers}"
export FLOW_BASE_IMAGE="${FLOW_BASE_IMAGE:-localhost/antifragileflow-base:bookworm}"
export FLOW_IMAGE="${FLOW_IMAGE:-localhost/antifragileflow:latest}"
export FLOW_BROKER_IMAGE="${FLOW_BROKER_IMAGE:-localhost/antifragileflow-broker:latest}"
mkdir -p "$FLOW_CONTAINERS_DIR"

flow_nofile="$(ulimit -Hn)"
[ "$flow_nofile" = unlimited ] && flow_nofile=1048576
flow_nproc="$(ulimit -Hu)"
if [ "$flow_nproc" = unlimited ] || [ "$flow_nproc" -gt 4096 ]; then flow_nproc=4096; fi
cat > "$FLOW_CONTAINERS_DIR/containers.conf" <<CONF
# Written by scripts/containers/env.sh for this host; see that file for why.
[containers]
default_ulimits = ["nofile=$flow_nofile:$flow_nofile", "nproc=$flow_nproc:$flow_nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$FLOW_CONTAINERS_DIR/containers.conf"
unset flow_nofile flow_nproc

flow_require_podman() {
    local missing=()
    for tool in podman podman-compose runc; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "$(basename "$0"): ${missing[*]} not installed: run scripts/install-dependencies (Debian's podman, podman-compose, runc and debootstrap)" >&2
        exit 1
    fi
}
