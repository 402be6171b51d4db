#!/usr/bin/env bash
# Regenerates ggmlref_*.bin: ggml's own reference quantisers (from the
# llama.cpp copy vendored in github.com/ollama/ollama v0.17.4, fetched from the
# Go module proxy) applied to ggmlref_input.f32 (written by
# `go test ./internal/quant -run TestGGMLReference -write-input`).
# Built without -march flags, so the compiler cannot contract a*b+c into FMA.
set -euo pipefail
cd "$(dirname "$0")"
go mod download github.com/ollama/ollama@v0.17.4
G="$(go env GOMODCACHE)/github.com/ollama/ollama@v0.17.4/ml/backend/ggml/ggml"
gcc -O2 -I"$G/include" -I"$G/src" -o /tmp/ggmlref ggmlref.c "$G/src/ggml-quants.c" -lm
for t in q4_0 q8_0 q4_K q6_K f16 bf16; do
	/tmp/ggmlref "$t" < ggmlref_input.f32 > "ggmlref_$t.bin"
done
