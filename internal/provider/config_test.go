package provider

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultTOMLLoads(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteDefaultConfig(dir, InitOptions{ModelID: "mycel-ref", GGUF: "models/mycel-ref.gguf"}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteDefaultConfig(dir, InitOptions{ModelID: "x", GGUF: "y"}); !errors.Is(err, ErrConfigExists) {
		t.Errorf("second write: %v, want ErrConfigExists", err)
	}
	got, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.KeysDir, want.DataDir = filepath.Join(dir, "keys"), filepath.Join(dir, "data")
	m := DefaultModel()
	m.ID, m.GGUF = "mycel-ref", filepath.Join(dir, "models/mycel-ref.gguf")
	want.Models = []ModelConfig{m}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("default file differs from DefaultConfig (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("default config invalid: %v", err)
	}
	// Encode → decode is the identity (config dump prints what would be loaded).
	b, err := got.Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir2, ConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := LoadConfig(dir2)
	if err != nil {
		t.Fatalf("reload dump: %v\n%s", err, b)
	}
	if diff := cmp.Diff(got, again, cmp.AllowUnexported(Config{})); diff != "" {
		t.Errorf("dump round trip (-want +got):\n%s", diff)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ChainRPC, cfg.Listen, cfg.CreditUmyc, cfg.RedeemInterval, cfg.ShutdownGrace = "", "nonsense", 0, -time.Second, 0
	cfg.PublicEndpoint = "ftp://x"
	cfg.Models = []ModelConfig{
		{ID: "Bad ID", Backend: "builtin", MaxConcurrent: 1, PriceInPerMTok: 1},
		{ID: "m", Backend: "openai", BaseURL: "localhost", Profile: "tgi", MaxConcurrent: 0, PriceOutPerMTok: 1},
		{ID: "m", Backend: "magic", MaxConcurrent: 1},
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a broken config")
	}
	for _, want := range []string{"chain_rpc", "listen", "credit_umyc", "redeem_interval", "shutdown_grace must be positive", "public_endpoint",
		"model[0] (Bad ID): id", "model[0] (Bad ID): builtin backend needs gguf", "model[1] (m): base_url", "model[1] (m): profile \"tgi\"",
		"model[1] (m): openai backend needs model_name", "model[1] (m): max_concurrent", "model[2] (m): id listed twice",
		"model[2] (m): backend \"magic\"", "model[2] (m): price_in_per_mtok and price_out_per_mtok are both 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestLoadConfigUnknownKey: keys the provider does not know are listed by Validate together
// with every other problem, not reported alone; a TOML syntax error stops LoadConfig.
func TestLoadConfigUnknownKey(t *testing.T) {
	dir := t.TempDir()
	file := `chain_rpc = "x"
credit = 5
credit_umyc = 0
shutdown_grace = "0s"

[[model]]
id = "m"
gguf = "m.gguf"
price_in_per_mtok = 1
max_concurent = 3
`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted unknown keys")
	}
	for _, want := range []string{`unknown key "credit"`, `unknown key "model.max_concurent"`, "credit_umyc must be positive", "shutdown_grace must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte("chain_rpc = \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(dir); err == nil {
		t.Error("LoadConfig accepted a TOML syntax error")
	}
}
