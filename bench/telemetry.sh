#!/usr/bin/env bash
# What the access log and metrics cost: the plain route of bench/load.sh through two
# Portcullis processes, one with `--access-log FILE --admin ADDR` (metrics on) and one
# without, under the same wrk load (HTTP/1.1 keep-alive, 50 connections). This machine
# is shared and noisy, and two identical processes differ by up to ±9% (placement,
# memory layout), so every round starts a fresh pair and the cost is the median of the
# rounds' paired ratios. Two ways to load the pair:
#
# - in turn (the default): unpinned, as bench/load.sh runs, in ABBA order against
#   drift. Gives the cost in req/s of the bench's plain route.
# - TOGETHER=1: both gateways pinned to CPU 1 and loaded at the same time (wrk and
#   nginx on CPU 0), so that both see the same machine at every instant. Gives the cost
#   in the gateway's CPU time per request, which is what bounds req/s when the gateway
#   is the bottleneck; its rounds agree to about a point.
#
#   bench/telemetry.sh [SECONDS_PER_RUN] [ROUNDS]
#
# OBSERVE="--access-log FILE" (or "--admin 127.0.0.1:18039") measures one of the two;
# OBSERVE="--workers 2" runs two identical processes, which shows the method's noise.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
WORK=/tmp/portcullis-bench-telemetry
rm -rf "$WORK" && mkdir -p "$WORK"
# The upstream nginx keeps its pid and log where bench/load.sh does.
mkdir -p /tmp/portcullis-bench

cargo build --release --quiet --bin portcullis
. bench/lib.sh

gateway=() load=()
[ -n "${TOGETHER:-}" ] && gateway=(taskset -c 1) load=(taskset -c 0)
sed 's/number: 18001/number: 18031/' bench/conf/portcullis.yaml > "$WORK/observed.yaml"
"${load[@]}" nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
wait_for http://127.0.0.1:18000/
# The log goes outside the folder the observed process watches for config changes.
mkdir -p "$WORK/log"
OBSERVE=${OBSERVE:---access-log $WORK/log/access.log --admin 127.0.0.1:18039}

# Loads `name port pid` with CONNECTIONS connections and records its requests and the
# CPU time its process spent meanwhile.
measure() {
    local name=$1 port=$2 pid=$3 before after out
    before=$(cpu_ns "$pid")
    out=$("${load[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/")
    after=$(cpu_ns "$pid")
    printf '%s\t%s\t%s\t%s\n' "$round" "$name" "$(awk '/requests in/ {print $1}' <<< "$out")" "$((after - before))" >> "$results"
}

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    RUST_LOG=warn "${gateway[@]}" target/release/portcullis run -c bench/conf/portcullis.yaml > /dev/null & plain=$!
    # shellcheck disable=SC2086
    RUST_LOG=warn "${gateway[@]}" target/release/portcullis run -c "$WORK/observed.yaml" $OBSERVE > /dev/null & observed=$!
    pids+=("$plain" "$observed")
    for port in 18001 18031; do wait_for "http://127.0.0.1:$port/"; done
    if [ -n "${TOGETHER:-}" ]; then
        THREADS=1 CONNECTIONS=25
        measure plain 18001 "$plain" & a=$!
        measure observed 18031 "$observed" & b=$!
        wait "$a" "$b"
    else
        THREADS=2 CONNECTIONS=50
        targets=("plain 18001 $plain" "observed 18031 $observed")
        [ $((round % 2)) -eq 0 ] && targets=("${targets[1]}" "${targets[0]}")
        for target in "${targets[@]}"; do
            # shellcheck disable=SC2086
            measure $target
        done
    fi
    kill "$plain" "$observed"
    wait "$plain" "$observed" || true
done
python3 - "$results" "$SECONDS_PER_RUN" <<'PY'
import sys, collections, statistics
seconds = float(sys.argv[2])
rate, cpu = collections.defaultdict(dict), collections.defaultdict(dict)
for line in open(sys.argv[1]):
    round_, name, requests, ns = line.split()
    rate[name][round_] = int(requests) / seconds
    cpu[name][round_] = int(ns) / int(requests) / 1000
for name in ("plain", "observed"):
    runs = list(rate[name].values())
    print(f"{name:<10}{statistics.median(runs):>10.0f} req/s {statistics.median(cpu[name].values()):>7.2f} CPU µs/req"
          f"  (runs: {', '.join(f'{r:.0f}' for r in runs)})")
def summary(what, costs):
    costs = sorted(costs)
    print(f"access log + metrics cost {statistics.median(costs):.1f}% {what} (median of {len(costs)} rounds; "
          f"middle half {costs[len(costs) // 4]:.1f} to {costs[(3 * len(costs)) // 4]:.1f})")
summary("of req/s", [100 * (1 - rate["observed"][r] / rate["plain"][r]) for r in rate["plain"]])
summary("more CPU per request", [100 * (cpu["observed"][r] / cpu["plain"][r] - 1) for r in rate["plain"]])
PY
[ -f "$WORK/log/access.log" ] && echo "log lines: $(wc -l < "$WORK/log/access.log")"
machine
