package provider

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/tx"
)

// DetectHardware reports the machine's CPU model and cores (/proc/cpuinfo), RAM
// (/proc/meminfo) and NVIDIA GPUs (nvidia-smi, when present). Declared hardware is
// informational: the ledger never pays for it.
func DetectHardware(ctx context.Context) tx.Hardware {
	h := tx.Hardware{Cores: uint32(runtime.NumCPU())}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		h.CPU = parseCPUInfo(f)
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		h.RAMBytes = parseMemInfo(f)
		f.Close()
	}
	if path, err := exec.LookPath("nvidia-smi"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, path, "--query-gpu=name,memory.total", "--format=csv,noheader").Output()
		if err == nil {
			h.GPUs = parseNvidiaSMI(string(out))
		}
	}
	return h
}

func parseCPUInfo(f *os.File) string {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return clip(strings.Join(strings.Fields(v), " "))
		}
	}
	return ""
}

func parseMemInfo(f *os.File) uint64 {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// parseNvidiaSMI turns "NVIDIA GeForce RTX 4090, 24564 MiB" lines into GPU descriptions.
func parseNvidiaSMI(out string) []string {
	var gpus []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, mem, _ := strings.Cut(line, ",")
		s := strings.TrimSpace(name)
		if mem = strings.TrimSpace(mem); mem != "" {
			s += " (" + mem + ")"
		}
		gpus = append(gpus, clip(s))
		if len(gpus) == tx.MaxGPUs {
			break
		}
	}
	return gpus
}

// clip keeps a string within the ledger's short-string limit, without control characters.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	for len(s) > 128 {
		s = s[:len(s)-1]
	}
	return strings.ToValidUTF8(s, "")
}
