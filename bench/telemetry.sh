#!/usr/bin/env bash
# What the access log and metrics cost: the plain route of bench/load.sh through two
# Portcullis processes, one with `--access-log FILE --admin ADDR` (metrics on) and one
# without, under the same wrk load (HTTP/1.1 keep-alive, 50 connections). This machine
# is shared and noisy, and two identical processes differ by up to ±9% (placement,
# memory layout), so every round starts a fresh pair, runs the two in ABBA order
# (against drift), and the cost is the median of the rounds' paired ratios.
#
#   bench/telemetry.sh [SECONDS_PER_RUN] [ROUNDS]
#
# OBSERVE="--access-log FILE" (or "--admin 127.0.0.1:18039") measures one of the two;
# OBSERVE="--workers 2" runs two identical processes, which shows the method's noise.
# PIN=1 runs the gateways on CPU 1 and wrk and nginx on CPU 0, so that the gateway's own
# CPU bounds req/s and the two never trade a core with the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
WORK=/tmp/portcullis-bench-telemetry
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

gateway=() load=()
[ -n "${PIN:-}" ] && gateway=(taskset -c 1) load=(taskset -c 0)
sed 's/number: 18001/number: 18031/' bench/conf/portcullis.yaml > "$WORK/observed.yaml"
"${load[@]}" nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
wait_for http://127.0.0.1:18000/
# The log goes outside the folder the observed process watches for config changes.
mkdir -p "$WORK/log"
OBSERVE=${OBSERVE:---access-log $WORK/log/access.log --admin 127.0.0.1:18039}

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    RUST_LOG=warn "${gateway[@]}" target/release/portcullis run -c bench/conf/portcullis.yaml > /dev/null & plain=$!
    # shellcheck disable=SC2086
    RUST_LOG=warn "${gateway[@]}" target/release/portcullis run -c "$WORK/observed.yaml" $OBSERVE > /dev/null & observed=$!
    pids+=("$plain" "$observed")
    for port in 18001 18031; do wait_for "http://127.0.0.1:$port/"; done
    targets=("plain 18001 $plain" "observed 18031 $observed")
    [ $((round % 2)) -eq 0 ] && targets=("${targets[1]}" "${targets[0]}")
    for target in "${targets[@]}"; do
        read -r name port pid <<< "$target"
        before=$(ticks "$pid")
        out=$("${load[@]}" wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/")
        after=$(ticks "$pid")
        printf '%s\t%s\t%s\t%s\n' "$round" "$name" "$(awk '/requests in/ {print $1}' <<< "$out")" "$((after - before))" >> "$results"
    done
    kill "$plain" "$observed"
    wait "$plain" "$observed" || true
done
python3 - "$results" "$SECONDS_PER_RUN" "$(getconf CLK_TCK)" <<'PY'
import sys, collections, statistics
seconds, hz = float(sys.argv[2]), float(sys.argv[3])
rate, cpu = collections.defaultdict(dict), collections.defaultdict(dict)
for line in open(sys.argv[1]):
    round_, name, requests, ticks = line.split()
    rate[name][round_] = int(requests) / seconds
    cpu[name][round_] = int(ticks) / hz / int(requests) * 1e6
for name in ("plain", "observed"):
    runs = list(rate[name].values())
    print(f"{name:<10}{statistics.median(runs):>10.0f} req/s {statistics.median(cpu[name].values()):>7.2f} CPU µs/req"
          f"  (runs: {', '.join(f'{r:.0f}' for r in runs)})")
costs = sorted(100 * (1 - rate["observed"][r] / rate["plain"][r]) for r in rate["plain"])
extra = sorted(100 * (cpu["observed"][r] / cpu["plain"][r] - 1) for r in rate["plain"])
print(f"access log + metrics cost {statistics.median(costs):.1f}% of req/s (median of {len(costs)} "
      f"rounds; middle half {costs[len(costs) // 4]:.1f} to {costs[(3 * len(costs)) // 4]:.1f}), "
      f"{statistics.median(extra):.1f}% more CPU per request")
PY
[ -f "$WORK/log/access.log" ] && echo "log lines: $(wc -l < "$WORK/log/access.log")"
machine
