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

# Binaries to build, by name, with their packages in the tools/llamapeer
# module. Stale ones are built by one `go build`, so that Go compiles
# ollama's Go packages on one core while llama.cpp's largest cgo package (whose
# C++ files compile one after another) occupies the other.
declare -A pkg=([llamapeer]=. [ollama]=github.com/ollama/ollama)
names=(llamapeer)
if [[ ${PEER_OLLAMA:-1} != 0 ]]; then
	names+=(ollama)
fi
stale=()
for name in "${names[@]}"; do
	if [[ -x bin/$name && -f bin/.$name.inputs && $(cat "bin/.$name.inputs") == "$hash" ]]; then
		log "bin/$name is up to date"
	else
		stale+=("$name")
	fi
done
if ((${#stale[@]})); then
	log "building ${stale[*]} (llama.cpp compiles on a first build: several minutes)"
	t0=$(date +%s)
	pkgs=()
	for name in "${stale[@]}"; do
		rm -f "bin/.$name.inputs"
		pkgs+=("${pkg[$name]}")
	done
	(cd tools/llamapeer && go build -o "$root/bin/" "${pkgs[@]}")
	for name in "${stale[@]}"; do
		echo "$hash" >"bin/.$name.inputs"
	done
	log "built ${stale[*]} in $(($(date +%s) - t0))s"
fi
log "done in $(($(date +%s) - start))s"
