#!/usr/bin/env bash
# Builds the llama.cpp peer engine into ./bin:
#   bin/llamapeer  the CLI in tools/llamapeer over ollama's cgo package `llama`
#   bin/ollama     the Ollama server (github.com/ollama/ollama), same flags
# Both come from the Go module proxy (github.com/ollama/ollama, pinned in
# tools/llamapeer/go.mod). The module zip lacks llama.cpp's vendored headers:
# Debian's nlohmann-json3-dev and libstb-dev supply two, and
# tools/llamapeer/include/miniaudio/miniaudio.h stubs the third.
#
# Idempotent: a binary whose inputs (sources, go.mod/go.sum, flags, Go
# version) are unchanged is not rebuilt. Needs Go 1.26 and, unless the
# packages are already installed, root and apt.
#
# Environment:
#   PEER_CFLAGS   C/C++ optimisation flags (default "-O3 -march=native"; the
#                 binaries are for the machine that builds them, as llama.cpp's
#                 own GGML_NATIVE build is)
#   PEER_OLLAMA=0 skip bin/ollama
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)

log() { echo "build-peer: $*" >&2; }

pkgs=(build-essential nlohmann-json3-dev libstb-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		log "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)"
		exit 1
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v go >/dev/null || { log "go not found in PATH"; exit 1; }

cflags=${PEER_CFLAGS:-"-O3 -march=native"}
export CGO_ENABLED=1
export CGO_CPPFLAGS="-I$root/tools/llamapeer/include"
export CGO_CFLAGS="$cflags"
export CGO_CXXFLAGS="$cflags"
mkdir -p bin

# inputs_hash prints a hash of everything a build depends on besides the
# module cache (which go.sum pins).
inputs_hash() {
	{
		go version
		echo "$cflags|$CGO_CPPFLAGS|${GOFLAGS:-}"
		uname -m
		grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true
		(cd tools/llamapeer && find . -type f \( -name '*.go' -o -name '*.h' -o -name go.mod -o -name go.sum \) -print0 |
			sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -d' ' -f1
}
hash=$(inputs_hash)

# build NAME PACKAGE: builds bin/NAME from PACKAGE inside the tools/llamapeer
# module unless bin/NAME was built from the same inputs.
build() {
	local name=$1 pkg=$2 stamp="bin/.$1.inputs"
	if [[ -x bin/$name && -f $stamp && $(cat "$stamp") == "$hash" ]]; then
		log "bin/$name is up to date"
		return
	fi
	log "building bin/$name (llama.cpp compiles on first build: several minutes)"
	local t0=$(date +%s)
	rm -f "$stamp"
	(cd tools/llamapeer && go build -o "$root/bin/$name" "$pkg")
	echo "$hash" >"$stamp"
	log "built bin/$name in $(($(date +%s) - t0))s"
}

build llamapeer .
if [[ ${PEER_OLLAMA:-1} != 0 ]]; then
	build ollama github.com/ollama/ollama
fi
log "done in $(($(date +%s) - start))s"
