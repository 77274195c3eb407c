#!/usr/bin/env bash
# Scaling: the cost of a request as the route table and the virtual hosts grow, and what a
# second worker buys. One Portcullis process per case in front of the tiny nginx upstream,
# h2load (HTTP/1.1, 50 keep-alive connections, pinned to CPU 1) asking for the last route
# (or host) of the table.
#
#   bench/scale.sh [SECONDS_PER_RUN]
#
# Needs: nginx and h2load (Debian: nginx-light, nghttp2-client).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-6}
WORK=/tmp/portcullis-scale
rm -rf "$WORK" && mkdir -p "$WORK"
cargo build --release --quiet --bin portcullis
. bench/lib.sh
mkdir -p /tmp/portcullis-bench
nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
wait_for http://127.0.0.1:18000/

# The Gateway on :18200 and the upstream ServiceEntry, then the YAML of "$@".
head_yaml() {
    bench_gateway 18200
    cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: up}
spec:
  hosts: [up.bench]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, ports: {http: 18000}}
YAML
}

# N routes, each matching one exact path, in one VirtualService.
routes_yaml() {
    head_yaml
    printf -- '---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: many}\nspec:\n  hosts: ["*"]\n  gateways: [bench]\n  http:\n'
    for i in $(seq 0 $(($1 - 1))); do
        printf '  - name: r%d\n    match: [{uri: {exact: /r%d}}]\n    route: [{destination: {host: up.bench}}]\n' "$i" "$i"
    done
}

# N VirtualServices, each for its own host.
hosts_yaml() {
    head_yaml
    for i in $(seq 0 $(($1 - 1))); do
        printf -- '---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs%d}\nspec:\n  hosts: [h%d.example]\n  gateways: [bench]\n  http:\n  - route: [{destination: {host: up.bench}}]\n' "$i" "$i"
    done
}

# Runs one case: config file, worker count, path, Host; prints req/s and CPU µs/request.
run_case() {
    local config=$1 workers=$2 path=$3 host=$4
    RUST_LOG=warn target/release/portcullis run -c "$config" --workers "$workers" > "$WORK/run.out" 2>&1 &
    local pid=$!
    WAIT_TRIES=300 wait_for -H "host: $host" "http://127.0.0.1:18200$path"
    local before out requests
    before=$(ticks "$pid")
    out=$(taskset -c 1 h2load -c 50 -D "$SECONDS_PER_RUN" --h1 -H ":authority: $host" "http://127.0.0.1:18200$path")
    requests=$(awk '/^requests:/ {print $8}' <<< "$out")
    local cpu=$(( ($(ticks "$pid") - before) * 10000000 / requests ))
    kill "$pid"; wait "$pid" 2>/dev/null || true
    printf '%s req/s, %d.%d µs CPU/request\n' \
        "$(awk '/^finished in/ {print $4}' <<< "$out")" $((cpu / 1000)) $((cpu % 1000 / 100))
}

machine
for n in 10 1000 10000; do
    routes_yaml "$n" > "$WORK/routes-$n.yaml"
    echo "routes $n (the last one asked): $(run_case "$WORK/routes-$n.yaml" 2 "/r$((n - 1))" any)"
done
for n in 10 10000; do
    hosts_yaml "$n" > "$WORK/hosts-$n.yaml"
    echo "virtual hosts $n (the last one asked): $(run_case "$WORK/hosts-$n.yaml" 2 / "h$((n - 1)).example")"
done
for workers in 1 2; do
    echo "workers $workers, 10 routes: $(run_case "$WORK/routes-10.yaml" "$workers" /r9 any)"
done
machine
