#!/usr/bin/env bash
# TLS termination benchmark: Portcullis and Envoy terminating TLS with the same ECDSA
# P-256 certificate in front of the same nginx upstream. Two loads, interleaved round by
# round because this machine is noisy:
#
# - handshakes: HTTP/1.1 with `Connection: close` (wrk), so every request is a new TCP
#   connection and a full TLS handshake (no resumption);
# - h2: 50 keep-alive HTTP/2 connections over TLS, 10 streams each (h2load).
#
#   bench/tls.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Needs what bench/load.sh needs (`bench/load.sh --install`) and openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-2}
WORK=/tmp/portcullis-bench-tls
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.example.com -addext subjectAltName=DNS:bench.example.com \
    -keyout "$WORK/server.key" -out "$WORK/server.pem" 2> /dev/null
cp bench/conf/portcullis-tls.yaml "$WORK/gateway.yaml"

nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
envoy -c bench/conf/envoy-tls.yaml --concurrency 2 --log-level error > "$WORK/envoy.log" 2>&1 & pids+=($!); envoy_pid=$!
RUST_LOG=warn target/release/portcullis run -c "$WORK/gateway.yaml" > "$WORK/portcullis.out" & pids+=($!); portcullis_pid=$!
wait_for http://127.0.0.1:18000/
for port in 18021 18024; do wait_for -k "https://127.0.0.1:$port/"; done

results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for target in "portcullis $portcullis_pid 18021" "envoy $envoy_pid 18024"; do
        read -r name pid port <<< "$target"
        for load in handshakes h2; do
            before=$(ticks "$pid")
            if [ "$load" = handshakes ]; then
                out=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" -H 'Connection: close' "https://127.0.0.1:$port/")
                requests=$(awk '/requests in/ {print $1}' <<< "$out")
            else
                out=$(h2load -c50 -m10 -t2 -D "$SECONDS_PER_RUN" "https://127.0.0.1:$port/")
                requests=$(awk '/^requests:/ {print $8}' <<< "$out")
            fi
            after=$(ticks "$pid")
            printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$load" "$requests" "$((after - before))" >> "$results"
        done
    done
done

python3 - "$results" "$SECONDS_PER_RUN" "$(getconf CLK_TCK)" <<'PY'
import sys, collections
path, seconds, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = collections.defaultdict(list)
for line in open(path):
    _, name, load, requests, ticks = line.split("\t")
    rows[(name, load)].append((int(requests), int(ticks)))
rates = {}
print(f"{'target':<12}{'load':<12}{'per s':>10}{'CPU µs each':>13}")
for (name, load), runs in sorted(rows.items()):
    requests = sum(r[0] for r in runs)
    rates[(name, load)] = requests / (seconds * len(runs))
    cpu = sum(r[1] for r in runs) / hz / max(requests, 1) * 1e6
    print(f"{name:<12}{load:<12}{rates[(name, load)]:>10.0f}{cpu:>13.1f}")
for load in ("handshakes", "h2"):
    print(f"{load}: Portcullis {rates[('portcullis', load)] / rates[('envoy', load)]:.2f}x Envoy")
PY
machine
