#!/usr/bin/env bash
# What the access log and metrics cost: the plain route of bench/load.sh through two
# Portcullis processes, one with `--access-log FILE --admin ADDR` (metrics on) and one
# without, under the same wrk load (HTTP/1.1 keep-alive, 50 connections), interleaved
# round by round because this machine is noisy.
#
#   bench/telemetry.sh [SECONDS_PER_RUN] [ROUNDS]
#
# OBSERVE="--access-log FILE" (or "--admin 127.0.0.1:18039") measures one of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-3}
WORK=/tmp/portcullis-bench-telemetry
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

sed 's/number: 18001/number: 18031/' bench/conf/portcullis.yaml > "$WORK/observed.yaml"
nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
RUST_LOG=warn target/release/portcullis run -c bench/conf/portcullis.yaml > /dev/null & pids+=($!); plain=$!
OBSERVE=${OBSERVE:---access-log $WORK/access.log --admin 127.0.0.1:18039}
# shellcheck disable=SC2086
RUST_LOG=warn target/release/portcullis run -c "$WORK/observed.yaml" $OBSERVE > /dev/null & pids+=($!); observed=$!
for port in 18000 18001 18031; do wait_for "http://127.0.0.1:$port/"; done

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for target in "plain 18001 $plain" "observed 18031 $observed"; do
        read -r name port pid <<< "$target"
        before=$(ticks "$pid")
        out=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/")
        after=$(ticks "$pid")
        printf '%s\t%s\t%s\n' "$name" "$(awk '/requests in/ {print $1}' <<< "$out")" "$((after - before))" >> "$results"
    done
done
python3 - "$results" "$SECONDS_PER_RUN" "$(getconf CLK_TCK)" <<'PY'
import sys, collections
seconds, hz = float(sys.argv[2]), float(sys.argv[3])
rates, cpu = collections.defaultdict(list), collections.defaultdict(lambda: [0, 0])
for line in open(sys.argv[1]):
    name, requests, ticks = line.split()
    rates[name].append(int(requests) / seconds)
    cpu[name][0] += int(ticks)
    cpu[name][1] += int(requests)
per = {n: c[0] / hz / c[1] * 1e6 for n, c in cpu.items()}
for name, runs in rates.items():
    print(f"{name:<10}{sum(runs) / len(runs):>10.0f} req/s {per[name]:>7.2f} CPU µs/req  (runs: {', '.join(f'{r:.0f}' for r in runs)})")
plain, observed = (sum(rates[n]) / len(rates[n]) for n in ("plain", "observed"))
print(f"access log + metrics cost {100 * (1 - observed / plain):.1f}% of req/s, "
      f"{100 * (per['observed'] / per['plain'] - 1):.1f}% more CPU per request")
PY
[ -f "$WORK/access.log" ] && echo "log lines: $(wc -l < "$WORK/access.log")"
machine
