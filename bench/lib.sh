# Shared by the bench scripts: background processes stopped on exit, and CPU accounting.

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Waits until `curl ARGS URL` succeeds (at most WAIT_TRIES tenths of a second, 10 s by
# default).
wait_for() {
    for _ in $(seq "${WAIT_TRIES:-100}"); do curl -sf "$@" > /dev/null && return 0; sleep 0.1; done
    echo "not answering: $*" >&2
    return 1
}

# CPU ticks (user + system) of a process and its child processes.
ticks() {
    local total=0 pid
    for pid in "$1" $(pgrep -P "$1" || true); do
        [ -r "/proc/$pid/stat" ] || continue
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}

# CPU time (user + system) of a process's threads, in nanoseconds.
cpu_ns() {
    local total=0 stat
    for stat in /proc/"$1"/task/*/schedstat; do
        [ -r "$stat" ] && total=$((total + $(cut -d' ' -f1 "$stat")))
    done
    echo "$total"
}

machine() {
    echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
}

# The Istio Gateway `bench`: one plain-HTTP server on 127.0.0.1:PORT for every host.
bench_gateway() { # port
    cat <<YAML
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench}
spec:
  servers:
  - port: {number: $1, name: http, protocol: HTTP}
    bind: 127.0.0.1
    hosts: ["*"]
YAML
}
