package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHardware(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) *os.File {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	cpu := write("cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC   9554 64-Core Processor\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9554 64-Core Processor\n")
	if got := parseCPUInfo(cpu); got != "AMD EPYC 9554 64-Core Processor" {
		t.Errorf("cpu %q", got)
	}
	mem := write("meminfo", "MemTotal:       16314500 kB\nMemFree:         1000 kB\n")
	if got := parseMemInfo(mem); got != 16314500*1024 {
		t.Errorf("ram %d", got)
	}
	gpus := parseNvidiaSMI("NVIDIA GeForce RTX 4090, 24564 MiB\nNVIDIA H100 80GB HBM3, 81559 MiB\n\n")
	if diff := cmp.Diff([]string{"NVIDIA GeForce RTX 4090 (24564 MiB)", "NVIDIA H100 80GB HBM3 (81559 MiB)"}, gpus); diff != "" {
		t.Errorf("gpus (-want +got):\n%s", diff)
	}
	if got := clip("a\x00b" + strings.Repeat("x", 300)); len(got) != 128 || strings.ContainsRune(got, 0) {
		t.Errorf("clip gave %d bytes %q", len(got), got[:8])
	}
	// The machine running the test: at least the core count is known, and it validates.
	h := DetectHardware(context.Background())
	if h.Cores == 0 {
		t.Error("no cores detected")
	}
	if err := h.Validate(); err != nil {
		t.Errorf("detected hardware does not validate: %v", err)
	}
}
