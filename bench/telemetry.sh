#!/usr/bin/env bash
# What the access log and metrics cost: the plain route of bench/load.sh through two
# Portcullis processes, one with `--access-log FILE --admin ADDR` (metrics on) and one
# without, under the same wrk load (HTTP/1.1 keep-alive, 50 connections), interleaved
# round by round because this machine is noisy.
#
#   bench/telemetry.sh [SECONDS_PER_RUN] [ROUNDS]
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
RUST_LOG=warn target/release/portcullis run -c bench/conf/portcullis.yaml > /dev/null & pids+=($!)
RUST_LOG=warn target/release/portcullis run -c "$WORK/observed.yaml" \
    --access-log "$WORK/access.log" --admin 127.0.0.1:18039 > /dev/null & pids+=($!)
for port in 18000 18001 18031; do wait_for "http://127.0.0.1:$port/"; done

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for target in "plain 18001" "observed 18031"; do
        read -r name port <<< "$target"
        out=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$port/")
        printf '%s\t%s\n' "$name" "$(awk '/requests in/ {print $1}' <<< "$out")" >> "$results"
    done
done
python3 - "$results" "$SECONDS_PER_RUN" <<'PY'
import sys, collections
totals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, requests = line.split()
    totals[name].append(int(requests) / float(sys.argv[2]))
for name, rates in totals.items():
    print(f"{name:<10}{sum(rates) / len(rates):>10.0f} req/s  (runs: {', '.join(f'{r:.0f}' for r in rates)})")
plain, observed = (sum(totals[n]) / len(totals[n]) for n in ("plain", "observed"))
print(f"access log + metrics cost {100 * (1 - observed / plain):.1f}% of req/s")
PY
echo "log lines: $(wc -l < "$WORK/access.log")"
machine
