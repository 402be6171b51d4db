package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifierGatewayNeedsKey: a verifier.toml naming a gateway to shop through without an
// API key for it is refused before anything starts.
func TestVerifierGatewayNeedsKey(t *testing.T) {
	home := t.TempDir()
	conf := "gateway_url = \"http://127.0.0.1:1\"\n"
	if err := os.WriteFile(filepath.Join(home, verifierConfigFile), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	err := cmdVerifier(context.Background(), []string{"--home", home}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "gateway_api_key") {
		t.Fatalf("got %v, want an error about gateway_api_key", err)
	}
}
