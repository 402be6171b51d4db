package verifier

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/provider/reveal"
	"github.com/mycel-network/mycel/internal/tx"
)

// revealChainID is realProvider's chain id.
const revealChainID = "mycel-reveal-test"

func seededKey(name string) keys.Key {
	s := sha256.Sum256([]byte(name))
	k := ed25519.NewKeyFromSeed(s[:])
	return keys.Key{Name: name, Address: address.FromPubKey(k.Public().(ed25519.PublicKey)), PrivKey: k}
}

// realProvider is the provider's handler (synthetic backend, in-memory chain and store) on
// 127.0.0.1, with channel 1 open from payer. tamper, if set, may rewrite reveal answers.
func realProvider(t *testing.T, payer keys.Key, tamper func(w http.ResponseWriter, r *http.Request, next http.Handler)) (ledger.ProviderView, string) {
	t.Helper()
	const chainID = revealChainID
	pk := seededKey("provider")
	mc := provider.NewMemChain(chainID)
	mc.Sender = pk.Address
	mc.SetPubKey(payer.Address, payer.PubKey())
	mc.SetModel(tx.RegisterModel{ID: "synthetic", SHA256: strings.Repeat("ab", 32), Architecture: "test", Parameters: 1, Quantization: "F32", ContextLength: 4096})
	mc.SetChannel(ledger.Channel{ID: 1, Consumer: payer.Address, Provider: pk.Address, Deposit: 1_000_000, OpenedHeight: 1})
	st, err := provider.OpenStore("data", provider.StoreOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := provider.DefaultConfig()
	cfg.Listen, cfg.CreditUmyc, cfg.Register = "127.0.0.1:0", 1000, false
	m := provider.DefaultModel()
	m.ID, m.Backend, m.GGUF = "synthetic", provider.BackendBuiltin, "unused.gguf"
	m.PriceInPerMTok, m.PriceOutPerMTok = 1_000_000, 2_000_000
	cfg.Models = []provider.ModelConfig{m}
	p, err := provider.New(cfg, provider.Deps{Chain: mc, Address: pk.Address, PrivKey: pk.PrivKey,
		Backends: map[string]backend.Backend{"synthetic": &backend.Synthetic{}}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := p.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tamper != nil && strings.HasPrefix(r.URL.Path, "/mycel/v1/logprobs/") {
			tamper(w, r, h)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return ledger.ProviderView{Provider: ledger.Provider{Address: pk.Address, Endpoint: srv.URL}}, chainID
}

// keyLedger is a fixedLedger that knows the public keys of some accounts (AccountKeys).
type keyLedger struct {
	fixedLedger
	keys map[string]ed25519.PublicKey
}

func (l keyLedger) PubKey(_ context.Context, addr string) (ed25519.PublicKey, error) {
	if k, ok := l.keys[addr]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no account %s", addr)
}

// providerLedger knows realProvider's key.
func providerLedger() keyLedger {
	pk := seededKey("provider")
	return keyLedger{keys: map[string]ed25519.PublicKey{pk.Address: pk.PubKey()}}
}

func shopOnce(t *testing.T, payer keys.Key, pv ledger.ProviderView, chainID string) Shopped {
	t.Helper()
	s := &HTTPShopper{ChainID: chainID, Payer: &payer, Ledger: providerLedger(), channels: map[string]*shopChannel{"0/" + pv.Address: {id: 1}}}
	got, err := s.Shop(context.Background(), pv, "synthetic", ShopperParams{PoolIndex: 2, MaxTokens: 9})
	if err != nil {
		t.Fatal(err)
	}
	if got.Receipt.TokensOut == 0 || got.Answer.Text == "" {
		t.Fatalf("provider answered nothing: %+v", got)
	}
	return got
}

// TestShopperReveal: after an answer without logprobs the shopper fetches, as the paying
// account, the ids and logprobs behind the receipt's commitment from the real provider
// handler and hands them over as revealed, with the provider's signature; the evidence
// material carries them, bound to the commitment, so other verifiers re-check them exactly.
func TestShopperReveal(t *testing.T) {
	payer := seededKey("shopper")
	pv, chainID := realProvider(t, payer, nil)
	got := shopOnce(t, payer, pv, chainID)
	a := got.Answer
	if !a.Revealed || uint64(len(a.IDs)) != got.Receipt.TokensOut || len(a.Logprobs) != len(a.IDs) {
		t.Fatalf("answer %+v for %d tokens: want the revealed ids and logprobs", a, got.Receipt.TokensOut)
	}
	m := Material(got)
	lps := make([]float32, len(m.LogprobBits))
	for i, b := range m.LogprobBits {
		lps[i] = math.Float32frombits(b)
	}
	if channel.LogprobsCommitment(m.TokenIDs, lps) != got.Receipt.LogprobsCommitment {
		t.Fatal("evidence material does not hash to the receipt's commitment")
	}
	if a.RevealSignature == "" || m.RevealSignature != a.RevealSignature {
		t.Fatalf("reveal signature %q, material's %q: want the provider's", a.RevealSignature, m.RevealSignature)
	}
	if err := m.VerifyReveal(got.Receipt, seededKey("provider").PubKey()); err != nil || m.SignedRevealContradicts(got.Receipt) {
		t.Fatalf("material's signed reveal: verify %v, contradicts %v; want valid and matching", err, m.SignedRevealContradicts(got.Receipt))
	}
}

// TestShopperRevealFails: a provider that refuses the reveal, reveals values that do not
// hash to its commitment without its valid signature, or keeps failing, leaves the answer
// revealed without logprobs, so the re-check runs on the text and logprobs_reveal fails (see
// TestCheckRevealRefused).
func TestShopperRevealFails(t *testing.T) {
	old := revealRetryWait
	revealRetryWait = 0
	t.Cleanup(func() { revealRetryWait = old })
	payer := seededKey("shopper")
	var calls atomic.Int32
	wantCalls := map[string]int32{"refused": 1, "server error": revealAttempts, "changed logprob": 1, "changed id": 1, "lie signed by another key": 1}
	for name, tamper := range map[string]func(w http.ResponseWriter, r *http.Request, next http.Handler){
		"refused": func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			http.Error(w, `{"error":{"message":"no"}}`, http.StatusNotFound)
		},
		"server error": func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			http.Error(w, "down", http.StatusBadGateway)
		},
		"changed logprob": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var rv reveal.Response
			if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || len(rv.Logprobs) == 0 {
				t.Errorf("honest reveal %d %s: %v", rec.Code, rec.Body, err)
			} else {
				rv.Logprobs[0] -= 0.25
			}
			_ = json.NewEncoder(w).Encode(rv)
		},
		"changed id": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var rv reveal.Response
			if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || len(rv.IDs) == 0 {
				t.Errorf("honest reveal %d %s: %v", rec.Code, rec.Body, err)
			} else {
				rv.IDs[0]++
			}
			_ = json.NewEncoder(w).Encode(rv)
		},
		"lie signed by another key": func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			rv := tamperReveal(t, r, next, func(rv *reveal.Response) { rv.Logprobs[0] -= 0.25 })
			_ = json.NewEncoder(w).Encode(rv.Sign(revealChainID, seededKey("provider").Address, seededKey("other").PrivKey))
		},
	} {
		t.Run(name, func(t *testing.T) {
			calls.Store(0)
			pv, chainID := realProvider(t, payer, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				calls.Add(1)
				tamper(w, r, next)
			})
			got := shopOnce(t, payer, pv, chainID)
			if n := calls.Load(); n != wantCalls[name] {
				t.Errorf("%d reveal requests, want %d", n, wantCalls[name])
			}
			if a := got.Answer; !a.Revealed || a.IDs != nil || a.Logprobs != nil {
				t.Fatalf("answer %+v: want revealed without ids or logprobs", a)
			}
		})
	}
	// The signature is the paying account's: a shopper signing with another key is refused.
	pv, chainID := realProvider(t, payer, nil)
	got := shopOnce(t, payer, pv, chainID)
	other := seededKey("other")
	s := &HTTPShopper{ChainID: chainID}
	if _, err := s.fetchReveal(context.Background(), pv.Endpoint, pv.Address, got.Receipt.RequestID, got.Receipt.LogprobsCommitment, other.PrivKey); err == nil {
		t.Fatal("reveal signed by another key accepted")
	}
	if _, err := s.fetchReveal(context.Background(), pv.Endpoint, pv.Address, got.Receipt.RequestID, got.Receipt.LogprobsCommitment, payer.PrivKey); err != nil {
		t.Fatalf("second reveal by the payer: %v", err)
	}
}

// tamperReveal returns the provider's own reveal of r, changed by f.
func tamperReveal(t *testing.T, r *http.Request, next http.Handler, f func(*reveal.Response)) reveal.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	var rv reveal.Response
	if err := json.Unmarshal(rec.Body.Bytes(), &rv); err != nil || len(rv.IDs) == 0 {
		t.Errorf("honest reveal %d %s: %v", rec.Code, rec.Body, err)
		return rv
	}
	f(&rv)
	return rv
}

// TestShopperSignedLie: a provider that signs values other than those its receipt commits
// to has them kept, with its signature: the answer carries them, logprobs_reveal fails on
// them, and the evidence material proves the lie (its signature verifies under the
// provider's key, its values contradict the receipt). An honest reveal whose signature was
// stripped still matches and is kept, unsigned.
func TestShopperSignedLie(t *testing.T) {
	payer := seededKey("shopper")
	prov := seededKey("provider")
	pv, chainID := realProvider(t, payer, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		rv := tamperReveal(t, r, next, func(rv *reveal.Response) { rv.Logprobs[0] -= 0.25 })
		_ = json.NewEncoder(w).Encode(rv.Sign(revealChainID, prov.Address, prov.PrivKey))
	})
	got := shopOnce(t, payer, pv, chainID)
	a := got.Answer
	if !a.Revealed || a.RevealSignature == "" || uint64(len(a.IDs)) != got.Receipt.TokensOut || len(a.Logprobs) != len(a.IDs) {
		t.Fatalf("answer %+v for %d tokens: want the signed revealed values kept", a, got.Receipt.TokensOut)
	}
	m := Material(got)
	if err := m.VerifyReveal(got.Receipt, prov.PubKey()); err != nil {
		t.Fatalf("material's reveal signature: %v", err)
	}
	if !m.SignedRevealContradicts(got.Receipt) {
		t.Fatal("material's signed reveal does not contradict the receipt: the test tampers nothing")
	}

	pv, chainID = realProvider(t, payer, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		_ = json.NewEncoder(w).Encode(tamperReveal(t, r, next, func(rv *reveal.Response) { rv.Signature = "" }))
	})
	got = shopOnce(t, payer, pv, chainID)
	if a := got.Answer; a.RevealSignature != "" || uint64(len(a.IDs)) != got.Receipt.TokensOut {
		t.Fatalf("unsigned matching reveal: answer %+v, want the values kept without signature", a)
	}
}
