#!/usr/bin/env bash
# Hot reload under load: the p99 latency of a steady wrk load (HTTP/1.1 keep-alive, 50
# connections) with the config rewritten every 250 ms versus without, and the time from a
# file write to the new behaviour being served, for a config change and for a plugin
# component change (cold: never compiled in this cache; cached: compiled before).
#
#   bench/reload.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
WORK=/tmp/portcullis-bench-reload
rm -rf "$WORK" && mkdir -p "$WORK/cache"

cargo build --release --quiet --bin portcullis
. bench/lib.sh

plugins=target/plugins/wasm32-wasip2/release
cp "$plugins/portcullis_hostile_filter.wasm" "$WORK/plugin.wasm"
# The plain route of bench/conf/portcullis.yaml, a response header naming the config
# version, and a plugin on it.
config() {
    sed -e "s/number: 18001/number: 18041/" \
        -e "s|    - destination: {host: upstream.bench}$|    - destination: {host: upstream.bench}\n      headers: {response: {set: {x-config: \"$1\"}}}|" \
        bench/conf/portcullis.yaml
    cat <<YAML
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata:
  name: swapped
spec:
  url: file://plugin.wasm
  targetRefs: [{kind: VirtualService, name: plain}]
  pluginConfig: {keys: {unused: nobody}, exempt: [/]}
YAML
}
write_config() { config "$1" > "$WORK/gateway.yaml.tmp" && mv "$WORK/gateway.yaml.tmp" "$WORK/gateway.yaml"; }
write_config v0

nginx -c "$PWD/bench/conf/upstream-nginx.conf" & pids+=($!)
RUST_LOG=warn target/release/portcullis run -c "$WORK/gateway.yaml" --cache-dir "$WORK/cache" > /dev/null & pids+=($!)
wait_for http://127.0.0.1:18000/
wait_for http://127.0.0.1:18041/

p99() { awk '$1 == "99%" {print $2}'; }
quiet=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" --latency http://127.0.0.1:18041/)
( for i in $(seq $((SECONDS_PER_RUN * 4))); do write_config "load-$i"; sleep 0.25; done ) &
reloading=$(wrk -t2 -c50 -d"${SECONDS_PER_RUN}s" --latency http://127.0.0.1:18041/)
wait $!
echo "p99 without reloads: $(p99 <<< "$quiet"), with a reload every 250 ms: $(p99 <<< "$reloading")"
echo "non-2xx during reloads: $(awk '/Non-2xx/ {print $NF}' <<< "$reloading")" "(none if empty)"

# Time from the write to a response showing the change, polled every millisecond.
python3 - "$WORK" "$plugins" <<'PY'
import os, re, shutil, sys, time, urllib.request
work, plugins = sys.argv[1], sys.argv[2]
def live(check):
    started = time.monotonic()
    while time.monotonic() - started < 30:
        with urllib.request.urlopen("http://127.0.0.1:18041/") as r:
            if check(r.headers):
                return (time.monotonic() - started) * 1000
        time.sleep(0.001)
    raise SystemExit("the change never showed")
timings = []
for i in range(5):
    with open(f"{work}/gateway.yaml") as f:
        text = f.read()
    version = f"timed-{i}"
    text = re.sub(r'x-config: "[^"]*"', f'x-config: "{version}"', text)
    with open(f"{work}/gateway.yaml.tmp", "w") as f:
        f.write(text)
    os.rename(f"{work}/gateway.yaml.tmp", f"{work}/gateway.yaml")
    timings.append(live(lambda h: h.get("x-config") == version))
print("config change live after (ms):", ", ".join(f"{t:.0f}" for t in timings))
def swap(name, filtered):
    shutil.copy(f"{plugins}/{name}", f"{work}/plugin.wasm.tmp")
    os.rename(f"{work}/plugin.wasm.tmp", f"{work}/plugin.wasm")
    return live(lambda h: ("x-filtered" in h) == filtered)
print(f"component change live after: cold {swap('rust_api_key.wasm', False):.0f} ms, "
      f"cached {swap('portcullis_hostile_filter.wasm', True):.0f} ms, "
      f"cached {swap('rust_api_key.wasm', False):.0f} ms")
PY
machine
