package verifier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// fakeGateway is a gateway reduced to the gwapi contract, in front of one real provider
// handler: it authenticates the API key, sends the provider the upstream body a gateway
// builds (gatewayUpstream, its seed added), pays with its own channel, answers the client
// as an OpenAI server (SSE chunks or one completion, no receipt), keeps the record of each
// request for the key that made it, and relays the provider's reveal fetched with its own
// consumer key. Hooks let a test make it misbehave.
type fakeGateway struct {
	apiKey   string
	payer    keys.Key // the gateway's consumer account (channel 1 at the provider)
	chainID  string
	provider ledger.ProviderView
	seed     int64

	upstream func(b []byte) []byte                    // rewrites the upstream body before sending, if set
	record   func(r *gwapi.Record)                    // rewrites a record before it is served, if set
	answer   func(text string) string                 // rewrites the text the client gets, if set
	reveal   func(status int, b []byte) (int, []byte) // rewrites the relayed reveal, if set

	mu        sync.Mutex
	n         int
	delivered uint64
	records   map[string]gwapi.Record
	pins      []string
	reveals   atomic.Int32
}

func newFakeGateway(t *testing.T) (*fakeGateway, *httptest.Server) {
	payer := seededKey("gateway")
	pv, chainID := realProvider(t, payer, nil)
	g := &fakeGateway{apiKey: "sk-shopper", payer: payer, chainID: chainID, provider: pv, seed: 918273, records: map[string]gwapi.Record{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", g.generate)
	mux.HandleFunc("GET /mycel/v1/requests/{id}", g.getRecord)
	mux.HandleFunc("GET /mycel/v1/requests/{id}/attempts/{i}/logprobs", g.getReveal)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *fakeGateway) authorised(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer "+g.apiKey {
		http.Error(w, `{"error":{"message":"bad key"}}`, http.StatusUnauthorized)
		return false
	}
	return true
}

func (g *fakeGateway) generate(w http.ResponseWriter, r *http.Request) {
	if !g.authorised(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pin := r.Header.Get(gwapi.HeaderPinProvider)
	g.mu.Lock()
	g.pins = append(g.pins, pin)
	g.n++
	n, delivered := g.n, g.delivered
	g.mu.Unlock()
	var client struct {
		Stream bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &client); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	up, err := gatewayUpstream(body, g.seed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if g.upstream != nil {
		up = g.upstream(up)
	}
	prid := fmt.Sprintf("%024x", n)
	vh, err := channel.EncodeHeader(channel.SignVoucher(g.chainID, 1, delivered, g.payer.PrivKey))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	// Every request goes to the one provider: a pin naming another is misrouted, as a
	// faulty gateway would.
	preq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, g.provider.Endpoint+"/v1/chat/completions", bytes.NewReader(up))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("X-Mycel-Voucher", vh)
	preq.Header.Set("X-Mycel-Request-Id", prid)
	resp, err := http.DefaultClient.Do(preq)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		http.Error(w, string(raw), http.StatusBadGateway)
		return
	}
	text, finish, _, _, rc, err := readStream(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	id := "gw-" + strconv.Itoa(n)
	g.mu.Lock()
	g.delivered = rc.Cumulative
	g.records[id] = gwapi.Record{RequestID: id, Model: rc.ModelID, Attempts: []gwapi.Attempt{
		{Provider: g.provider.Address, ProviderRequestID: prid, Body: string(up), Receipt: rc}}}
	g.mu.Unlock()
	if g.answer != nil {
		text = g.answer(text)
	}
	w.Header().Set("X-Request-Id", id)
	if !client.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "chat.completion",
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": finish}}})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(delta string, fin *string) {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": delta}, "finish_reason": fin}}})
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	half := len(text) / 2
	chunk(text[:half], nil)
	chunk(text[half:], nil)
	chunk("", &finish)
	fmt.Fprint(w, "data: [DONE]\n\n")
}

func (g *fakeGateway) lookup(w http.ResponseWriter, r *http.Request) (gwapi.Record, bool) {
	if !g.authorised(w, r) {
		return gwapi.Record{}, false
	}
	g.mu.Lock()
	rec, ok := g.records[r.PathValue("id")]
	g.mu.Unlock()
	if !ok {
		http.Error(w, `{"error":{"message":"no such request"}}`, http.StatusNotFound)
	}
	return rec, ok
}

func (g *fakeGateway) getRecord(w http.ResponseWriter, r *http.Request) {
	rec, ok := g.lookup(w, r)
	if !ok {
		return
	}
	if g.record != nil {
		g.record(&rec)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rec)
}

func (g *fakeGateway) getReveal(w http.ResponseWriter, r *http.Request) {
	g.reveals.Add(1)
	rec, ok := g.lookup(w, r)
	if !ok {
		return
	}
	i, err := strconv.Atoi(r.PathValue("i"))
	if err != nil || i < 0 || i >= len(rec.Attempts) {
		http.Error(w, `{"error":{"message":"no such attempt"}}`, http.StatusNotFound)
		return
	}
	at := rec.Attempts[i]
	preq, err := http.NewRequestWithContext(r.Context(), http.MethodGet, g.provider.Endpoint+reveal.Path(at.ProviderRequestID), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	preq.Header.Set(reveal.Header, reveal.Sign(g.chainID, at.Provider, at.ProviderRequestID, g.payer.PrivKey))
	resp, err := http.DefaultClient.Do(preq)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	status := resp.StatusCode
	if g.reveal != nil {
		status, b = g.reveal(status, b)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type keyMap map[string]ed25519.PublicKey

func (m keyMap) PubKey(_ context.Context, addr string) (ed25519.PublicKey, error) {
	if k, ok := m[addr]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key for %s", addr)
}

func gatewayShopper(g *fakeGateway, url string) *GatewayShopper {
	return &GatewayShopper{GatewayURL: url + "/", APIKey: g.apiKey, ChainID: g.chainID,
		Keys: keyMap{g.provider.Address: seededKey("provider").PubKey()}}
}

// TestGatewayShopper: a shopper request through the gateway, pinned to the provider, comes
// back as what the provider was sent and signed: the upstream body with the gateway's seed
// (so the re-check uses it), its receipt, and the revealed ids and logprobs behind the
// receipt's commitment, streamed or not, with the client's seed when it drew one.
func TestGatewayShopper(t *testing.T) {
	g, srv := newFakeGateway(t)
	s := gatewayShopper(g, srv.URL)
	seed := int64(77)
	for _, c := range []struct {
		name     string
		params   ShopperParams
		wantSeed int64
	}{
		{"stream", ShopperParams{PoolIndex: 3, MaxTokens: 9, Stream: true}, g.seed},
		{"completion", ShopperParams{PoolIndex: 4, MaxTokens: 7}, g.seed},
		{"client seed", ShopperParams{PoolIndex: 5, MaxTokens: 8, Seed: &seed, Stream: true}, seed},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Shop(context.Background(), g.provider, "synthetic", c.params)
			if err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			rec := g.records["gw-"+strconv.Itoa(g.n)]
			pin := g.pins[len(g.pins)-1]
			g.mu.Unlock()
			if pin != g.provider.Address {
				t.Errorf("pinned to %q, want %s", pin, g.provider.Address)
			}
			at := rec.Attempts[0]
			if string(got.Body) != at.Body || HexSHA256(got.Body) != got.Receipt.RequestHash {
				t.Errorf("body %s, want the upstream body %s bound by the receipt", got.Body, at.Body)
			}
			if got.Receipt.RequestID != at.ProviderRequestID || got.Receipt.Provider != g.provider.Address {
				t.Errorf("receipt of %s by %s, want %s by %s", got.Receipt.RequestID, got.Receipt.Provider, at.ProviderRequestID, g.provider.Address)
			}
			sys, user := PoolPrompt(c.params.PoolIndex)
			if got.System != sys || got.User != user {
				t.Errorf("prompt %q %q, want %q %q", got.System, got.User, sys, user)
			}
			if got.Params.Seed == nil || *got.Params.Seed != c.wantSeed || got.Params.MaxTokens != c.params.MaxTokens {
				t.Errorf("params %+v, want seed %d and max_tokens %d", got.Params, c.wantSeed, c.params.MaxTokens)
			}
			if HexSHA256([]byte(got.Answer.Text)) != got.Receipt.OutputHash || got.Answer.Text == "" {
				t.Errorf("answer %q does not hash to the receipt's output", got.Answer.Text)
			}
			a := got.Answer
			lps := make([]float32, len(a.Logprobs))
			for i, v := range a.Logprobs {
				lps[i] = float32(v)
			}
			if !a.Revealed || uint64(len(a.IDs)) != got.Receipt.TokensOut || channel.LogprobsCommitment(a.IDs, lps) != got.Receipt.LogprobsCommitment {
				t.Errorf("answer %+v: want the revealed ids and logprobs of the %d tokens", a, got.Receipt.TokensOut)
			}
			if got.Duration <= 0 {
				t.Errorf("duration %v", got.Duration)
			}
		})
	}
}

// TestGatewayShopperDiscrepancies: what the shopper cannot tie to the pinned provider's
// receipt is an error (the gateway may be at fault), not an answer to re-check.
func TestGatewayShopperDiscrepancies(t *testing.T) {
	other := seededKey("other provider")
	for _, c := range []struct {
		name  string
		setup func(g *fakeGateway, pv *ledger.ProviderView)
		want  string
	}{
		{"two attempts", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.record = func(r *gwapi.Record) { r.Attempts = append(r.Attempts, r.Attempts[0]) }
		}, "2 attempts"},
		{"another provider", func(g *fakeGateway, pv *ledger.ProviderView) {
			pv.Address = other.Address // the gateway ignores the pin
		}, "want " + other.Address},
		{"body not bound by the receipt", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.record = func(r *gwapi.Record) {
				r.Attempts[0].Body = strings.Replace(r.Attempts[0].Body, `"seed":918273`, `"seed":918274`, 1)
			}
		}, "upstream body hashes to"},
		{"answer not the provider's", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.answer = func(text string) string { return text + "!" }
		}, "the answer hashes to"},
		{"receipt not signed", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.record = func(r *gwapi.Record) { r.Attempts[0].Receipt.DurationMs++ }
		}, "signature"},
		{"request changed upstream", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.upstream = func(b []byte) []byte { return bytes.Replace(b, []byte(`"max_tokens":9`), []byte(`"max_tokens":5`), 1) }
		}, "max_tokens"},
		{"another key's record", func(g *fakeGateway, _ *ledger.ProviderView) {
			g.record = func(r *gwapi.Record) { r.RequestID = "gw-0" }
		}, "the gateway sent the record of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, srv := newFakeGateway(t)
			pv := g.provider
			c.setup(g, &pv)
			s := gatewayShopper(g, srv.URL)
			s.Keys = keyMap{g.provider.Address: seededKey("provider").PubKey(), other.Address: other.PubKey()}
			got, err := s.Shop(context.Background(), pv, "synthetic", ShopperParams{PoolIndex: 1, MaxTokens: 9, Stream: true})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %+v, %v; want an error about %q", got, err, c.want)
			}
		})
	}
	// The API key authorises the request and its record.
	g, srv := newFakeGateway(t)
	s := gatewayShopper(g, srv.URL)
	s.APIKey = "sk-other"
	if _, err := s.Shop(context.Background(), g.provider, "synthetic", ShopperParams{PoolIndex: 1, MaxTokens: 9}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("shop with another key: %v, want 401", err)
	}
}

// TestGatewayShopperSignedLie: a reveal the provider signed whose values contradict its
// receipt's commitment is kept with its signature (evidence material proves it), while an
// altered reveal whose signature no longer verifies is dropped.
func TestGatewayShopperSignedLie(t *testing.T) {
	prov := seededKey("provider")
	for _, c := range []struct {
		name    string
		signer  ed25519.PrivateKey
		wantSig bool
	}{
		{"signed by the provider", prov.PrivKey, true},
		{"signed by another key", seededKey("someone").PrivKey, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, srv := newFakeGateway(t)
			g.reveal = func(status int, b []byte) (int, []byte) {
				var rv reveal.Response
				if err := json.Unmarshal(b, &rv); err != nil || status != http.StatusOK || len(rv.Logprobs) == 0 {
					t.Errorf("honest reveal %d %s: %v", status, b, err)
					return status, b
				}
				if err := rv.Verify(g.chainID, g.provider.Address, prov.PubKey()); err != nil {
					t.Errorf("the provider's own reveal: %v", err)
				}
				rv.Logprobs[0] -= 0.25
				out, _ := json.Marshal(rv.Sign(g.chainID, g.provider.Address, c.signer))
				return status, out
			}
			got, err := gatewayShopper(g, srv.URL).Shop(context.Background(), g.provider, "synthetic", ShopperParams{PoolIndex: 2, MaxTokens: 9})
			if err != nil {
				t.Fatal(err)
			}
			a := got.Answer
			if !c.wantSig {
				if a.RevealSignature != "" || a.IDs != nil {
					t.Fatalf("answer %+v: an unverified contradicting reveal was kept", a)
				}
				return
			}
			lps := make([]float32, len(a.Logprobs))
			for i, v := range a.Logprobs {
				lps[i] = float32(v)
			}
			if a.RevealSignature == "" || len(a.IDs) == 0 || channel.LogprobsCommitment(a.IDs, lps) == got.Receipt.LogprobsCommitment {
				t.Fatalf("answer %+v: want the signed contradicting reveal", a)
			}
			if m := Material(got); m.RevealSignature != a.RevealSignature {
				t.Errorf("material carries reveal signature %q, want %q", m.RevealSignature, a.RevealSignature)
			}
		})
	}
}

// TestGatewayShopperRevealFails: a reveal the provider refuses, that keeps failing, or
// whose values do not hash to the commitment leaves the answer revealed without logprobs
// (the re-check's logprobs_reveal fails), after retries of transient failures only.
func TestGatewayShopperRevealFails(t *testing.T) {
	old := revealRetryWait
	revealRetryWait = 0
	t.Cleanup(func() { revealRetryWait = old })
	for _, c := range []struct {
		name   string
		reveal func(status int, b []byte) (int, []byte)
		calls  int32
	}{
		{"refused", func(int, []byte) (int, []byte) { return http.StatusForbidden, []byte(`{"error":{"message":"no"}}`) }, 1},
		{"unreachable", func(int, []byte) (int, []byte) { return http.StatusBadGateway, []byte(`{"error":{"message":"down"}}`) }, revealAttempts},
		{"changed logprob", func(status int, b []byte) (int, []byte) {
			var rv reveal.Response
			if err := json.Unmarshal(b, &rv); err != nil || status != http.StatusOK || len(rv.Logprobs) == 0 {
				t.Errorf("honest reveal %d %s: %v", status, b, err)
				return status, b
			}
			rv.Logprobs[0] -= 0.25
			out, _ := json.Marshal(rv)
			return status, out
		}, 1},
		{"other request", func(status int, b []byte) (int, []byte) {
			var rv reveal.Response
			if err := json.Unmarshal(b, &rv); err != nil || status != http.StatusOK {
				t.Errorf("honest reveal %d %s: %v", status, b, err)
				return status, b
			}
			rv.RequestID += "0"
			out, _ := json.Marshal(rv)
			return status, out
		}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, srv := newFakeGateway(t)
			g.reveal = c.reveal
			got, err := gatewayShopper(g, srv.URL).Shop(context.Background(), g.provider, "synthetic", ShopperParams{PoolIndex: 2, MaxTokens: 9})
			if err != nil {
				t.Fatal(err)
			}
			if n := g.reveals.Load(); n != c.calls {
				t.Errorf("%d reveal requests, want %d", n, c.calls)
			}
			if a := got.Answer; !a.Revealed || a.IDs != nil || a.Logprobs != nil {
				t.Fatalf("answer %+v: want revealed without ids or logprobs", a)
			}
		})
	}
}
