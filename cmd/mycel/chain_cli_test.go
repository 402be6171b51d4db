package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/ledger"
)

// startDevnet runs a one-validator devnet for the test and returns it.
func startDevnet(t *testing.T) *devnet.Devnet {
	t.Helper()
	d, err := devnet.New(devnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devnet: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := d.WaitHeight(wctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	return d
}

// mycel runs the CLI in-process and returns stdout, stderr and the error.
func mycel(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	err := run(ctx, args, &out, &errb)
	return out.String(), errb.String(), err
}

func mustMycel(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := mycel(t, args...)
	if err != nil {
		t.Fatalf("mycel %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

func TestCLIKeys(t *testing.T) {
	home := t.TempDir()
	added := decode[keyJSON](t, mustMycel(t, "keys", "add", "dave", "--home", home, "--output", "json"))
	if added.Name != "dave" || !strings.HasPrefix(added.Address, "myc1") {
		t.Fatalf("keys add = %+v", added)
	}
	shown := decode[keyJSON](t, mustMycel(t, "keys", "show", "dave", "--home", home, "--output", "json"))
	if diff := cmp.Diff(added, shown); diff != "" {
		t.Errorf("keys show (-add +show):\n%s", diff)
	}
	list := decode[[]keyJSON](t, mustMycel(t, "keys", "list", "--home", home, "--output", "json"))
	if diff := cmp.Diff([]keyJSON{added}, list); diff != "" {
		t.Errorf("keys list (-want +got):\n%s", diff)
	}
	exported := decode[keyJSON](t, mustMycel(t, "keys", "export", "dave", "--home", home, "--output", "json"))
	other := t.TempDir()
	recovered := decode[keyJSON](t, mustMycel(t, "keys", "add", "dave", "--recover", exported.Seed, "--home", other, "--output", "json"))
	if recovered.Address != added.Address {
		t.Errorf("recovered address %s, want %s", recovered.Address, added.Address)
	}
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"keys", "add", "dave", "--home", home}, "exists"},
		{[]string{"keys", "show", "nobody", "--home", home}, "not found"},
		{[]string{"keys", "add", "Bad Name", "--home", home}, "invalid key name"},
		{[]string{"keys", "add", "--home", home}, "want 1 argument"},
		{[]string{"keys", "list", "--bogus"}, "flag provided but not defined"},
		{[]string{"keys", "remove", "dave"}, "unknown subcommand"},
	} {
		_, _, err := mycel(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mycel %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestCLIChain drives every tx and query command against a devnet.
func TestCLIChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a devnet; skipped with -short")
	}
	d := startDevnet(t)
	home := d.Dir()
	alice, _ := d.Key("alice")
	bob, _ := d.Key("bob")
	prov, _ := d.Key("provider1")
	tx := func(args ...string) map[string]any {
		t.Helper()
		out := mustMycel(t, append(append([]string{"tx"}, args...), "--home", home, "--output", "json")...)
		res := decode[map[string]any](t, out)
		if res["code"] != nil && res["code"] != float64(0) {
			t.Fatalf("tx %v: %v", args, res)
		}
		return res
	}
	query := func(args ...string) string {
		t.Helper()
		return mustMycel(t, append(append([]string{"query"}, args...), "--home", home, "--output", "json")...)
	}

	tx("send", "--from", "alice", "--to", "bob", "--amount", "5myc")
	tx("send", "--from", "alice", "--to", bob.Address, "--amount", "250umyc")
	acc := decode[ledger.Account](t, query("account", "bob"))
	if want := devnet.DemoBalance + 5_000_250; acc.Balance != want {
		t.Errorf("bob balance %d, want %d", acc.Balance, want)
	}
	if acc := decode[ledger.Account](t, query("account", alice.Address)); acc.Nonce != 2 {
		t.Errorf("alice nonce %d, want 2", acc.Nonce)
	}
	text := mustMycel(t, "query", "account", "bob", "--home", home)
	if !strings.Contains(text, bob.Address) || !strings.Contains(text, "balance:") {
		t.Errorf("query account text output:\n%s", text)
	}

	sha := strings.Repeat("ab", 32)
	tx("register-model", "--from", "alice", "--id", "demo-1b", "--sha256", sha, "--architecture", "llama",
		"--parameters", "1000000000", "--quantization", "Q8_0", "--context-length", "4096", "--license", "apache-2.0")
	tx("register-provider", "--from", "provider1", "--stake", "200myc", "--endpoint", "http://127.0.0.1:9001",
		"--cpu", "test-cpu", "--cores", "8", "--ram-bytes", "17179869184", "--gpu", "none", "--model", "demo-1b:0.1myc:0.2myc")
	tx("update-provider", "--from", "provider1", "--endpoint", "http://127.0.0.1:9002", "--add-stake", "1myc",
		"--model", "demo-1b:0.1myc:0.3myc")
	tx("register-verifier", "--from", "verifier1", "--stake", "150myc")
	tx("unbond", "--from", "verifier1", "--role", "verifier", "--amount", "1myc")
	tx("open-channel", "--from", "alice", "--provider", "provider1", "--deposit", "10myc")
	tx("top-up-channel", "--from", "alice", "--channel", "1", "--amount", "1myc")
	v, err := json.Marshal(channel.SignVoucher(d.ChainID(), 1, 2_000_000, alice.PrivKey))
	if err != nil {
		t.Fatal(err)
	}
	tx("redeem-voucher", "--from", "provider1", "--voucher", string(v))
	tx("close-channel", "--from", "alice", "--channel", "1")

	for _, q := range [][]string{
		{"models"}, {"model", "demo-1b"}, {"providers"}, {"provider", prov.Address}, {"verifiers"},
		{"verifier", "verifier1"}, {"channels"}, {"channel", "1"}, {"params"}, {"supply"}, {"epoch"},
	} {
		out := query(q...)
		if !json.Valid([]byte(out)) {
			t.Errorf("query %v: not JSON: %s", q, out)
		}
	}
	ch := decode[struct {
		Redeemed uint64 `json:"redeemed"`
		Deposit  uint64 `json:"deposit"`
	}](t, query("channel", "1"))
	if ch.Redeemed != 2_000_000 || ch.Deposit != 11_000_000 {
		t.Errorf("channel 1: redeemed %d deposit %d, want 2000000 11000000", ch.Redeemed, ch.Deposit)
	}

	// Errors: clear, non-zero, and the chain's code name when it comes from the chain.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tx", "send", "--from", "alice", "--to", "bob", "--amount", "5xyz"}, `invalid value "5xyz" for flag -amount`},
		{[]string{"tx", "send", "--from", "alice", "--to", "bob", "--amount", "-5myc"}, "-amount"},
		{[]string{"tx", "send", "--from", "alice", "--to", "bob"}, "--amount is required"},
		{[]string{"tx", "send", "--from", "alice", "--to", "bob", "--amount", "1myc", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"tx", "send", "--from", "nobody", "--to", "bob", "--amount", "1myc"}, "key not found"},
		{[]string{"tx", "send", "--from", "carol", "--to", "bob", "--amount", "2000000myc"}, "insufficient_funds (code 7)"},
		{[]string{"tx", "unbond", "--from", "carol", "--role", "provider", "--amount", "1myc"}, "not_found (code 10)"},
		{[]string{"tx", "redeem-voucher", "--from", "provider1", "--voucher", string(v)}, "stale_voucher (code 8)"},
		{[]string{"tx", "frobnicate", "--from", "alice"}, `unknown message "frobnicate"`},
		{[]string{"query", "channel", "99"}, "not_found (code 10)"},
		{[]string{"query", "channel", "x"}, "not a number"},
		{[]string{"query", "account", "nobody"}, "neither an address"},
		{[]string{"query", "nothing"}, `unknown object "nothing"`},
		{[]string{"query", "params", "--output", "yaml"}, "want text or json"},
	} {
		args := append(tc.args, "--home", home)
		_, _, err := mycel(t, args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mycel %s: error %v, want one containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
