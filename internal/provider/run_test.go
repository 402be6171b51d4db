package provider

import (
	"context"
	"crypto/ed25519"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// TestRun: Run registers, serves, and on cancel drains, redeems the latest voucher and
// returns without leaving goroutines behind; a second Run updates only what changed.
func TestRun(t *testing.T) {
	before := runtime.NumGoroutine()
	chain := NewMemChain(testChain)
	provKey, prov := testKey("provider")
	aliceKey, alice := testKey("alice")
	chain.Sender = prov
	chain.SetPubKey(alice, aliceKey.Public().(ed25519.PublicKey))
	chain.SetModel(tx.RegisterModel{ID: "synthetic", SHA256: hexHash("synthetic"), Architecture: "t", Parameters: 1, Quantization: "F32", ContextLength: 4096})
	chain.SetChannel(ledgerChannel(1, alice, prov, 1_000_000))
	dir := t.TempDir()
	hw := tx.Hardware{CPU: "cpu", Cores: 2}
	run := func(work func(url string)) {
		cfg := testConfig()
		cfg.Register = true
		store, err := OpenStore(filepath.Join(dir, "data"), StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(cfg, Deps{Chain: chain, Address: prov, PrivKey: provKey, Backends: map[string]backend.Backend{"synthetic": &backend.Synthetic{}},
			Store: store, Registerer: prometheus.NewRegistry(), Hardware: &hw, Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		select {
		case <-p.Ready():
		case err := <-done:
			t.Fatalf("Run: %v", err)
		}
		work(p.URL())
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}
	var delivered uint64
	run(func(url string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(chatBody(4, "")))
		v, _ := channel.EncodeHeader(channel.SignVoucher(testChain, 1, 0, aliceKey))
		req.Header.Set(channel.HeaderVoucher, v)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
		if err != nil {
			t.Fatal(err)
		}
		delivered = rc.Cumulative
		// The consumer pays what it received.
		resp, err = http.Post(url+"/mycel/v1/voucher", "application/json", strings.NewReader(mustJSON(channel.SignVoucher(testChain, 1, delivered, aliceKey))))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("voucher: %v", err)
		}
		resp.Body.Close()
	})
	ch, _ := chain.Channel(context.Background(), 1)
	if ch.Redeemed != delivered || delivered == 0 {
		t.Errorf("redeemed %d at shutdown, want %d", ch.Redeemed, delivered)
	}
	var kinds []string
	for _, m := range chain.Submitted() {
		kinds = append(kinds, m.(interface{ Type() string }).Type())
	}
	if strings.Join(kinds, ",") != "register_provider,redeem_voucher" {
		t.Errorf("submitted %v", kinds)
	}
	// Second run: a new listen address, so only the endpoint is updated; nothing to redeem.
	run(func(string) {})
	sub := chain.Submitted()
	if len(sub) != 3 {
		t.Fatalf("submitted %d messages, want 3", len(sub))
	}
	upd, ok := sub[2].(tx.UpdateProvider)
	if !ok || upd.Endpoint == "" || !upd.Hardware.IsZero() || len(upd.Models) != 0 || upd.AddStake != 0 {
		t.Errorf("second run submitted %+v, want an endpoint-only update", sub[2])
	}
	// Every goroutine Run started has exited (HTTP keep-alive conns of the default client
	// aside, which belong to the test).
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunRefusesModelHashMismatch: a model file whose sha256 differs from the hash registered
// on the ledger stops the start with an error naming the model and both hashes; the provider
// neither registers nor serves.
func TestRunRefusesModelHashMismatch(t *testing.T) {
	chain := NewMemChain(testChain)
	provKey, prov := testKey("provider")
	chain.Sender = prov
	registered, file := hexHash("synthetic"), hexHash("a different file")
	chain.SetModel(tx.RegisterModel{ID: "synthetic", SHA256: registered, Architecture: "t", Parameters: 1, Quantization: "F32", ContextLength: 4096})
	store, err := OpenStore(filepath.Join(t.TempDir(), "data"), StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig()
	cfg.Register = true
	hw := tx.Hardware{CPU: "cpu", Cores: 2}
	p, err := New(cfg, Deps{Chain: chain, Address: prov, PrivKey: provKey, Hardware: &hw, Listener: ln, Store: store,
		Backends: map[string]backend.Backend{"synthetic": &backend.Synthetic{SHA256: file}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = p.Run(ctx)
	if err == nil {
		t.Fatal("Run served a model file whose hash differs from the registered one")
	}
	for _, want := range []string{"model synthetic", file, registered, "refusing to serve"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if sub := chain.Submitted(); len(sub) != 0 {
		t.Errorf("submitted %v, want nothing registered", sub)
	}
	select {
	case <-p.Ready():
		t.Error("provider became ready")
	default:
	}
	// The same file with the registered hash starts.
	if err := prepareWithHash(t, chain, prov, provKey, store, registered); err != nil {
		t.Errorf("matching hash: %v", err)
	}
}

// prepareWithHash builds a provider whose synthetic backend reports sha and runs Prepare.
func prepareWithHash(t *testing.T, chain *MemChain, prov string, key []byte, store *Store, sha string) error {
	t.Helper()
	p, err := New(testConfig(), Deps{Chain: chain, Address: prov, PrivKey: key, Store: store,
		Backends: map[string]backend.Backend{"synthetic": &backend.Synthetic{SHA256: sha}}})
	if err != nil {
		t.Fatal(err)
	}
	return p.Prepare(context.Background())
}
