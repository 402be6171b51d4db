package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/gateway"
)

// TestConfigDumpGateway prints the gateway's effective configuration: the file's values over
// the defaults, in a form LoadConfig reads back to the same Config.
func TestConfigDumpGateway(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, gateway.ConfigFile), []byte("max_failovers = 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cmdConfig(context.Background(), []string{"dump", "--home", home, "--role", "gateway"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "max_failovers = 7") {
		t.Errorf("dump lacks the file's max_failovers:\n%s", out.String())
	}
	want, err := gateway.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	if err := os.WriteFile(filepath.Join(again, gateway.ConfigFile), out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := gateway.LoadConfig(again)
	if err != nil {
		t.Fatalf("reload the dump: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dump reloaded (-want +got):\n%s", diff)
	}
	if err := cmdConfig(context.Background(), []string{"dump", "--home", home, "--role", "nope"}, io.Discard, io.Discard); err == nil {
		t.Error("unknown role: no error")
	}
}
