package provider

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

const testChain = "mycel-test"

func testKey(name string) (ed25519.PrivateKey, string) {
	s := sha256.Sum256([]byte(name))
	k := ed25519.NewKeyFromSeed(s[:])
	return k, address.FromPubKey(k.Public().(ed25519.PublicKey))
}

// harness is a provider on an in-memory chain with a synthetic backend: prices of 1 umyc
// per prompt token and 2 per output token, credit 100 umyc.
type harness struct {
	t        testing.TB
	chain    *MemChain
	p        *Provider
	srv      *httptest.Server
	store    *Store
	dir      string
	syn      *backend.Synthetic
	provKey  ed25519.PrivateKey
	prov     string
	aliceKey ed25519.PrivateKey
	alice    string
	served   chan struct{} // one value per finished inference request
	reg      *prometheus.Registry
	storeOpt StoreOptions
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.CreditUmyc = 100
	cfg.MaxBodyBytes = 64 << 10
	cfg.Register = false
	m := DefaultModel()
	m.ID, m.Backend, m.GGUF = "synthetic", BackendBuiltin, "unused.gguf"
	m.PriceInPerMTok, m.PriceOutPerMTok = 1_000_000, 2_000_000
	m.MaxConcurrent, m.QueueLength = 2, 4
	cfg.Models = []ModelConfig{m}
	return cfg
}

func newHarness(t testing.TB, mod func(*Config, *backend.Synthetic)) *harness {
	return newHarnessStore(t, StoreOptions{}, mod)
}

func newHarnessStore(t testing.TB, so StoreOptions, mod func(*Config, *backend.Synthetic)) *harness {
	t.Helper()
	return newHarnessAt(t, t.TempDir(), so, mod)
}

// newHarnessAt is newHarnessStore with the provider's home (the store is in dir/data).
func newHarnessAt(t testing.TB, dir string, so StoreOptions, mod func(*Config, *backend.Synthetic)) *harness {
	t.Helper()
	h := &harness{t: t, chain: NewMemChain(testChain), syn: &backend.Synthetic{}, dir: dir, served: make(chan struct{}, 64), storeOpt: so}
	h.provKey, h.prov = testKey("provider")
	h.aliceKey, h.alice = testKey("alice")
	h.chain.Sender = h.prov
	h.chain.SetPubKey(h.alice, h.aliceKey.Public().(ed25519.PublicKey))
	h.chain.SetModel(tx.RegisterModel{ID: "synthetic", SHA256: hexHash("synthetic"), Architecture: "test", Parameters: 1, Quantization: "F32", ContextLength: 4096})
	cfg := testConfig()
	if mod != nil {
		mod(&cfg, h.syn)
	}
	h.start(cfg)
	return h
}

func hexHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// start (re)opens the store and builds a provider over it.
func (h *harness) start(cfg Config) {
	t := h.t
	st, err := OpenStore(filepath.Join(h.dir, "data"), h.storeOpt)
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	h.reg = prometheus.NewRegistry()
	p, err := New(cfg, Deps{Chain: h.chain, Address: h.prov, PrivKey: h.provKey, Backends: map[string]backend.Backend{"synthetic": h.syn},
		Store: st, Registerer: h.reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.p = p
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Handler().ServeHTTP(w, r)
		if r.Method == http.MethodPost && (r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/v1/completions") {
			h.served <- struct{}{}
		}
	}))
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
	if h.store != nil {
		h.store.Close()
		h.store = nil
	}
}

// restart closes the server and store and starts a new provider over the same directory.
func (h *harness) restart(cfg Config) {
	h.stop()
	h.start(cfg)
}

func (h *harness) openChannel(id, deposit uint64) {
	h.chain.SetChannel(ledger.Channel{ID: id, Consumer: h.alice, Provider: h.prov, Deposit: deposit, OpenedHeight: 1})
}

func (h *harness) voucher(channelID, amount uint64) string {
	s, err := channel.EncodeHeader(channel.SignVoucher(testChain, channelID, amount, h.aliceKey))
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

type call struct {
	path    string
	body    string
	voucher string // header value; "" sends none
	reqID   string
}

func (h *harness) do(ctx context.Context, c call) *http.Response {
	h.t.Helper()
	if c.path == "" {
		c.path = "/v1/chat/completions"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+c.path, bytes.NewReader([]byte(c.body)))
	if err != nil {
		h.t.Fatal(err)
	}
	if c.voucher != "" {
		req.Header.Set(channel.HeaderVoucher, c.voucher)
	}
	if c.reqID != "" {
		req.Header.Set(channel.HeaderRequestID, c.reqID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// chat sends a non-streaming chat request and decodes the answer and receipt.
func (h *harness) chat(c call) (int, openai.ChatCompletion, channel.Receipt, *openai.Error, http.Header) {
	h.t.Helper()
	resp := h.do(context.Background(), c)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, openai.ChatCompletion{}, channel.Receipt{}, openai.ParseError(resp.StatusCode, b), resp.Header
	}
	var cc openai.ChatCompletion
	if err := json.Unmarshal(b, &cc); err != nil {
		h.t.Fatalf("decode answer %s: %v", b, err)
	}
	rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
	if err != nil {
		h.t.Fatalf("receipt header: %v", err)
	}
	return resp.StatusCode, cc, rc, nil, resp.Header
}

func (h *harness) channelInfo(id uint64) channelInfo {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/mycel/v1/channels/" + strconv.FormatUint(id, 10))
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ci channelInfo
	if err := json.NewDecoder(resp.Body).Decode(&ci); err != nil {
		h.t.Fatal(err)
	}
	return ci
}

func chatBody(maxTokens int, extra string) string {
	return `{"model":"synthetic","messages":[{"role":"user","content":"hi"}],"max_tokens":` + strconv.Itoa(maxTokens) + extra + `}`
}

func (h *harness) provPub() ed25519.PublicKey { return h.provKey.Public().(ed25519.PublicKey) }

func ledgerChannel(id uint64, consumer, provider string, deposit uint64) ledger.Channel {
	return ledger.Channel{ID: id, Consumer: consumer, Provider: provider, Deposit: deposit, OpenedHeight: 1}
}

// fetchReceipt gets a stored receipt from GET /mycel/v1/receipts/{channel}/{request}.
func (h *harness) fetchReceipt(channelID uint64, reqID string) channel.Receipt {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/mycel/v1/receipts/" + strconv.FormatUint(channelID, 10) + "/" + reqID)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("receipt %d/%s: status %d", channelID, reqID, resp.StatusCode)
	}
	var rc channel.Receipt
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil {
		h.t.Fatal(err)
	}
	return rc
}

// testClock is a clock a test moves by hand (Provider.now).
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// useClock makes the provider read time from a test clock, which it returns.
func (h *harness) useClock() *testClock {
	c := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h.p.now = c.Now
	return c
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
