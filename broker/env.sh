# Environment of a local node, shared by broker/start, broker/stop and broker/ctl.
# Everything RabbitMQ writes goes under FLOW_BROKER_DIR, so nodes on different ports
# live side by side and nothing touches /var/lib/rabbitmq.

FLOW_BROKER_PORT="${FLOW_BROKER_PORT:-5672}"
FLOW_BROKER_MANAGEMENT_PORT="${FLOW_BROKER_MANAGEMENT_PORT:-$((FLOW_BROKER_PORT + 10000))}"
FLOW_BROKER_PROMETHEUS_PORT="${FLOW_BROKER_PROMETHEUS_PORT:-$((FLOW_BROKER_PORT + 10020))}"
FLOW_BROKER_DIST_PORT="${FLOW_BROKER_DIST_PORT:-$((FLOW_BROKER_PORT + 20000))}"
# Every node's files are in a folder of its port under FLOW_BROKER_ROOT, so broker/ctl,
# broker/stop and broker/start find a node (a cluster's too) by its port alone.
FLOW_BROKER_ROOT="${FLOW_BROKER_ROOT:-$(dirname "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)")/.flow/broker}"
FLOW_BROKER_DIR="${FLOW_BROKER_DIR:-$FLOW_BROKER_ROOT/$FLOW_BROKER_PORT}"
FLOW_RABBITMQ_BIN="${FLOW_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"

export HOME="$FLOW_BROKER_DIR"  # the Erlang cookie lives in $HOME/.erlang.cookie
export RABBITMQ_NODENAME="flow$FLOW_BROKER_PORT@localhost"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$FLOW_BROKER_PORT"
export RABBITMQ_DIST_PORT="$FLOW_BROKER_DIST_PORT"
export RABBITMQ_CONFIG_FILE="$FLOW_BROKER_DIR/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$FLOW_BROKER_DIR/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$FLOW_BROKER_DIR/data"
export RABBITMQ_LOG_BASE="$FLOW_BROKER_DIR/log"
export RABBITMQ_PID_FILE="$FLOW_BROKER_DIR/rabbitmq.pid"
export RABBITMQ_CONF_ENV_FILE=/dev/null
# A node that fails to boot writes its crash dump beside its logs, not into the caller's folder.
export ERL_CRASH_DUMP="$FLOW_BROKER_DIR/log/erl_crash.dump"
# A development node talks to nobody but this machine, Erlang distribution included.
# Its schedulers do not spin while idle (RabbitMQ's advice for shared hosts): the suite
# runs up to five nodes beside its own processes on two cores, and spinning schedulers
# of idle nodes would take the CPU the busy ones need.
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1} +sbwt none +sbwtdcpu none +sbwtdio none"
export RABBITMQ_ADVANCED_CONFIG_FILE="$FLOW_BROKER_DIR/advanced.config"
mkdir -p "$FLOW_BROKER_DIR"

flow_rabbitmqctl() {
    "$FLOW_RABBITMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"
}
