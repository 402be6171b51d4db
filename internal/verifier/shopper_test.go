package verifier_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// recordingShopper records the parameters of the daemon's shopper requests
// and answers with an empty receipt (the re-check then fails for want of a
// model, which is fine: only the requests matter here).
type recordingShopper struct{ params []verifier.ShopperParams }

func (s *recordingShopper) Shop(_ context.Context, p ledger.ProviderView, _ string, params verifier.ShopperParams) (verifier.Shopped, error) {
	s.params = append(s.params, params)
	rc := channel.Receipt{RequestID: fmt.Sprintf("r%d", len(s.params)), Provider: p.Address, TokensOut: 8}
	return verifier.Shopped{Receipt: rc, Duration: time.Second}, nil
}

// TestShopperRequestsFollowUserMix: the daemon's shopper requests (capacity
// jobs included) ask for streaming and logprobs with the same frequencies
// as the user mix, and their bodies say exactly what the parameters do, so
// a provider cannot single shoppers out by these fields.
func TestShopperRequestsFollowUserMix(t *testing.T) {
	ctx := context.Background()
	prov := func(a string) ledger.ProviderView {
		return ledger.ProviderView{Provider: ledger.Provider{Address: a, Models: []tx.ServedModel{{ModelID: "mycel-ref"}}}, Active: true}
	}
	me, _ := memKey("me")
	p1, _ := memKey("p1")
	p2, _ := memKey("p2")
	chain := &fakeChain{sha: "00", providers: []ledger.ProviderView{prov(p1), prov(p2)}, registered: true,
		epoch: ledger.EpochView{Epoch: ledger.Epoch{Number: 1, LastHeight: 100}, Height: 101, NextEpochHeight: 200}}
	shop := &recordingShopper{}
	v, err := verifier.New(verifier.Config{Address: me}, chain, shop, noCheckers{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := 0; i < n; i++ {
		_ = v.ShopOnce(ctx) // the re-check fails: no model
	}
	if len(shop.params) != n {
		t.Fatalf("%d requests sent, want %d", len(shop.params), n)
	}
	mix := verifier.DefaultMix()
	var stream, logprobs int
	for i, p := range shop.params {
		if p.Stream {
			stream++
		}
		if p.Logprobs {
			logprobs++
		}
		var body struct {
			Logprobs bool `json:"logprobs"`
			Stream   bool `json:"stream"`
		}
		if err := json.Unmarshal(verifier.RequestBody("mycel-ref", p, "", "hi"), &body); err != nil {
			t.Fatal(err)
		}
		if body.Logprobs != p.Logprobs || body.Stream != p.Stream {
			t.Fatalf("request %d: body logprobs=%t stream=%t, params %t %t", i, body.Logprobs, body.Stream, p.Logprobs, p.Stream)
		}
	}
	// Within 4 standard deviations of the user mix's shares.
	for _, c := range []struct {
		name  string
		got   int
		share float64
	}{{"stream", stream, mix.StreamShare}, {"logprobs", logprobs, mix.LogprobsShare}} {
		sd := math.Sqrt(n * c.share * (1 - c.share))
		if d := math.Abs(float64(c.got) - n*c.share); d > 4*sd {
			t.Errorf("%s: %d of %d shopper requests, user mix %.0f ± %.0f", c.name, c.got, n, n*c.share, 4*sd)
		}
	}
}

// TestShopperKey: shopper requests are paid from an account derived from,
// but not equal to, the verifier's (a different one per verifier).
func TestShopperKey(t *testing.T) {
	k := func(name string) keys.Key {
		seed := sha256.Sum256([]byte(name))
		priv := ed25519.NewKeyFromSeed(seed[:])
		return keys.Key{Name: name, Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
	}
	a, b := k("a"), k("b")
	sa := verifier.ShopperKey(a)
	if sa.Address == a.Address {
		t.Fatal("the shopper account is the verifier's")
	}
	if err := address.Validate(sa.Address); err != nil {
		t.Fatal(err)
	}
	if got := address.FromPubKey(sa.PrivKey.Public().(ed25519.PublicKey)); got != sa.Address {
		t.Errorf("shopper address %s does not match its key (%s)", sa.Address, got)
	}
	if verifier.ShopperKey(a).Address != sa.Address {
		t.Error("the derivation is not deterministic")
	}
	if verifier.ShopperKey(b).Address == sa.Address {
		t.Error("two verifiers share a shopper account")
	}
}

type noCheckers struct{}

func (noCheckers) Checker(context.Context, string) (*verifier.Checker, verifier.PromptFunc, error) {
	return nil, nil, fmt.Errorf("no models")
}

// TestRecheckWithoutLogprobs: answers to requests that asked for no
// logprobs carry no token ids; the daemon re-checks them on the tokenizer's
// own tokenisation of the text, never accuses the honest provider for it,
// and still catches the substituting one.
func TestRecheckWithoutLogprobs(t *testing.T) {
	l := lab(t)
	ctx := context.Background()
	honestAddr, honestKey := memKey("honest")
	cheatAddr, cheatKey := memKey("sub")
	me, _ := memKey("me")
	honest, _ := l.Provider(cheat.Honest, "mycel-ref", "", 1)
	sub, _ := l.Provider(cheat.Substitute, "mycel-ref", "mycel-sub", 2)
	view := func(a string) ledger.ProviderView {
		return ledger.ProviderView{Provider: ledger.Provider{Address: a, Models: []tx.ServedModel{{ModelID: "mycel-ref"}}}, Active: true}
	}
	chain := &fakeChain{sha: l.Models["mycel-ref"].SHA256, providers: []ledger.ProviderView{view(honestAddr), view(cheatAddr)}, registered: true,
		epoch: ledger.EpochView{Epoch: ledger.Epoch{Number: 1, LastHeight: 100}, Height: 101, NextEpochHeight: 200}}
	shop := &labShopper{lab: l, provs: map[string]*cheat.Provider{honestAddr: honest, cheatAddr: sub},
		keys: map[string]ed25519.PrivateKey{honestAddr: honestKey, cheatAddr: cheatKey}}
	mix := verifier.DefaultMix()
	mix.LogprobsShare = 0
	v, err := verifier.New(verifier.Config{Address: me, EvidenceBond: 10, Mix: mix}, chain, shop, labCheckers{l}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	chain.take()
	accused := map[string]int{}
	// At least 16 shops, so the honest provider is audited several times; then on until the
	// substitute is caught. Without logprobs a substituted answer is caught only
	// statistically (about one audit in six on these models, so 16 shops miss it about one
	// run in four); 160 shops miss it with probability about 1e-6.
	for i := 0; i < 16 || (accused[cheatAddr] == 0 && i < 160); i++ {
		if err := v.ShopOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range chain.take() {
			if e, ok := m.(tx.SubmitEvidence); ok {
				accused[e.Receipt.Provider]++
				if len(e.Material.LogprobBits) != 0 {
					t.Errorf("evidence carries logprobs the request did not ask for")
				}
			}
		}
	}
	if accused[honestAddr] != 0 {
		t.Errorf("the honest provider was accused %d times", accused[honestAddr])
	}
	if accused[cheatAddr] == 0 {
		t.Error("the substituting provider was never caught without logprobs")
	}
}
