package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultConfig(), got); diff != "" {
		t.Errorf("missing file: (-want +got):\n%s", diff)
	}
	want := DefaultConfig()
	want.Policy, want.IdleClose, want.NoHedge, want.DepositUmyc = "cheapest", 90*time.Second, true, 5
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("polcy = \"cheapest\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err == nil || !strings.Contains(err.Error(), "polcy") {
		t.Errorf("unknown key: err = %v, want it named", err)
	}
	if err := (Config{Policy: "random"}).Validate(); err == nil {
		t.Error("Validate accepted policy random")
	}
}
