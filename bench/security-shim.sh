#!/usr/bin/env bash
# peers.sh's policy route with the edge security filters on top: stands in for the
# gateway binary under ../shared/bench/portcullis-candidate.sh, adds a
# RequestAuthentication (the load carries no token, so each request takes the filter's
# no-token path), an AuthorizationPolicy (CUSTOM-free: a DENY and an ALLOW rule) and a
# rate limit to the config that script writes, then runs the real binary.
#
#   PORTCULLIS_BIN=$PWD/bench/security-shim.sh \
#   PORTCULLIS_REAL_BIN=$PWD/target/release/portcullis \
#   PORTCULLIS_CMD="exec bash ../shared/bench/portcullis-candidate.sh plain" \
#   PORTCULLIS_POLICY_CMD="exec bash ../shared/bench/portcullis-candidate.sh policy" \
#   TARGETS="envoy-policy portcullis-policy" ROUNDS=3 DURATION=8 bash ../shared/bench/peers.sh
set -euo pipefail
real=${PORTCULLIS_REAL_BIN:?set PORTCULLIS_REAL_BIN to the portcullis binary}
# The candidate script runs `portcullis run -c CONFIG ...`.
conf=$3
if grep -q "name: policy" "$conf"; then
cat >> "$conf" <<'YAML'
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: users}
spec:
  jwtRules:
  - issuer: https://issuer.example
    audiences: [bench]
    jwks: '{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/admin*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: loopback-readers}
spec:
  rules:
  - from: [{source: {ipBlocks: [127.0.0.0/8]}}]
    to: [{operation: {methods: [GET, HEAD]}}]
---
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: limit}
spec:
  url: builtin:rate-limit
  pluginConfig:
    tokenBucket: {maxTokens: 1000000000, tokensPerFill: 1000000000, fillInterval: 1s}
    descriptor: client
YAML
fi
exec "$real" "$@"
