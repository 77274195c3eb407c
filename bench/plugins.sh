#!/usr/bin/env bash
# What one custom plugin costs per request, by language: a direct-response route (no
# upstream, so the plugin is most of the work) through Portcullis with no plugin, with
# the Rust api-key example, the JavaScript canary tagger and the Python api-key check
# (each admitting the request), under the same wrk load (HTTP/1.1 keep-alive, 50
# connections), interleaved round by round. Also reports each plugin's memory per
# instance (its linear memory high-water mark, from the admin API).
#
#   bench/plugins.sh [SECONDS_PER_RUN] [ROUNDS]
#
# The JavaScript and Python components are the ones the tests build into target/tools
# (`cargo test --test all plugins::javascript` makes them).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-4}
ROUNDS=${2:-3}
WORK=/tmp/portcullis-bench-plugins
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

declare -A wasm=(
    [rust]=target/plugins/wasm32-wasip2/release/rust_api_key.wasm
    [js]=target/tools/js-canary/js_canary.wasm
    [python]=target/tools/python_api_key.wasm
)
declare -A plugin_config=(
    [rust]='{keys: {k1: alice}}'
    [js]='{percent: 10}'
    [python]='{keys: {k1: alice}}'
)
config() { # name port
    bench_gateway "$2"
    cat <<YAML
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: direct}
spec:
  hosts: ["*"]
  gateways: [bench]
  http:
  - directResponse: {status: 200, body: {string: "ok\n"}}
YAML
    if [ "$1" != none ]; then
        cat <<YAML
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: $1}
spec:
  url: file://$PWD/${wasm[$1]}
  pluginConfig: ${plugin_config[$1]}
YAML
    fi
}
targets=()
port=18060
for name in none rust js python; do
    port=$((port + 1))
    config "$name" "$port" > "$WORK/$name.yaml"
    RUST_LOG=warn target/release/portcullis run -c "$WORK/$name.yaml" --cache-dir "$WORK/cache" \
        --workers 1 --admin "127.0.0.1:$((port + 100))" > /dev/null & pids+=($!)
    targets+=("$name $port $!")
done
# Compiling a JavaScript or Python component takes a while the first time.
for target in "${targets[@]}"; do read -r _ port _ <<< "$target"; WAIT_TRIES=1200 wait_for "http://127.0.0.1:$port/" -H 'x-api-key: k1'; done

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for target in "${targets[@]}"; do
        read -r name port pid <<< "$target"
        before=$(ticks "$pid")
        out=$(wrk -t1 -c50 -d"${SECONDS_PER_RUN}s" -H 'x-api-key: k1' "http://127.0.0.1:$port/")
        after=$(ticks "$pid")
        printf '%s\t%s\t%s\n' "$name" "$(awk '/requests in/ {print $1}' <<< "$out")" "$((after - before))" >> "$results"
    done
done
for target in "${targets[@]}"; do
    read -r name port _ <<< "$target"
    [ "$name" = none ] && continue
    memory=$(curl -s "http://127.0.0.1:$((port + 100))/plugins" | python3 -c 'import json,sys; print(json.load(sys.stdin)["plugins"][0]["stats"]["memory_high_water_bytes"])')
    printf 'memory\t%s\t%s\n' "$name" "$memory" >> "$results"
done
python3 - "$results" "$SECONDS_PER_RUN" "$(getconf CLK_TCK)" <<'PY'
import sys, collections
seconds, hz = float(sys.argv[2]), float(sys.argv[3])
rates, cpu, memory = collections.defaultdict(list), collections.defaultdict(lambda: [0, 0]), {}
for line in open(sys.argv[1]):
    fields = line.split()
    if fields[0] == "memory":
        memory[fields[1]] = int(fields[2])
        continue
    name, requests, ticks = fields
    rates[name].append(int(requests) / seconds)
    cpu[name][0] += int(ticks)
    cpu[name][1] += int(requests)
per = {n: c[0] / hz / c[1] * 1e6 for n, c in cpu.items()}
print(f"{'plugin':<8}{'req/s':>10}{'CPU µs/req':>12}{'plugin µs':>11}{'memory/instance':>17}")
for name in rates:
    extra = per[name] - per["none"]
    mem = f"{memory[name] / 2**20:.1f} MiB" if name in memory else "-"
    print(f"{name:<8}{sum(rates[name]) / len(rates[name]):>10.0f}{per[name]:>12.2f}{extra:>11.2f}{mem:>17}")
PY
machine
