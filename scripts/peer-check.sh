#!/usr/bin/env bash
# The peer check: builds llama.cpp (scripts/build-peer.sh), generates the demo
# models, and checks that Mycel's built-in engine and llama.cpp agree on them
# (greedy tokens, top-k logprobs within the tolerances in docs/PEER.md, and
# tokenization). Called by .ci/run; runs as root on a fresh Debian 12 machine
# with Go 1.26.
#
# Environment:
#   PEER_MODELS  directory for the demo and peer-check models (default: a
#                temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

scripts/build-peer.sh

models=${PEER_MODELS:-}
if [[ -z $models ]]; then
	models=$(mktemp -d)
	trap 'rm -rf "$models"' EXIT
fi
mkdir -p "$models" bin

echo "peer-check: building bin/mycel" >&2
go build -o bin/mycel ./cmd/mycel

echo "peer-check: generating demo and peer-check models in $models" >&2
bin/mycel models gen --out "$models"
bin/mycel models gen --peer --out "$models"

echo "peer-check: comparing engines" >&2
status=0
MYCEL_PEER=bin/llamapeer MYCEL_MODELS="$models" MYCEL_BIN=bin/mycel \
	go test -tags peer -count=1 -timeout 10m -v ./internal/peercheck/... || status=$?
MYCEL_OLLAMA=bin/ollama MYCEL_MODELS="$models" go test -tags peer -count=1 -timeout 5m -v -run 'Ollama' ./internal/provider/... || status=$?
echo "peer-check: done in $(($(date +%s) - start))s (exit $status)" >&2
exit "$status"
