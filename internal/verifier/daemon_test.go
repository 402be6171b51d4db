package verifier_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// fakeChain records submitted messages and serves a settable epoch.
type fakeChain struct {
	mu         sync.Mutex
	epoch      ledger.EpochView
	providers  []ledger.ProviderView
	sha        string
	registered bool
	evidence   []ledger.Evidence
	sent       []any
}

func (c *fakeChain) Epoch(context.Context) (ledger.EpochView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch, nil
}
func (c *fakeChain) Providers(context.Context) ([]ledger.ProviderView, error) {
	return c.providers, nil
}
func (c *fakeChain) ModelSHA256(_ context.Context, id string) (string, error) {
	if id != "mycel-ref" {
		return "", fmt.Errorf("unknown model %s", id)
	}
	return c.sha, nil
}
func (c *fakeChain) Evidence(context.Context) ([]ledger.Evidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evidence, nil
}
func (c *fakeChain) Registered(context.Context) (bool, error) { return c.registered, nil }
func (c *fakeChain) Submit(_ context.Context, msgs ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		if v, ok := m.(interface{ ValidateBasic() error }); ok {
			if err := v.ValidateBasic(); err != nil {
				return fmt.Errorf("%T: %w", m, err)
			}
		}
		if m, ok := m.(tx.RegisterVerifier); ok && m.Stake > 0 {
			c.registered = true
		}
	}
	c.sent = append(c.sent, msgs...)
	return nil
}

func (c *fakeChain) take() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sent
	c.sent = nil
	return out
}

// labShopper serves shopper requests with cheat providers and signs
// receipts with their keys.
type labShopper struct {
	lab   *cheat.Lab
	provs map[string]*cheat.Provider
	keys  map[string]ed25519.PrivateKey
	chain string // receipts' chain id ("test" when empty)
	mu    sync.Mutex
	n     int
}

func (s *labShopper) Shop(ctx context.Context, p ledger.ProviderView, model string, params verifier.ShopperParams) (verifier.Shopped, error) {
	req, err := s.lab.Request(model, params)
	if err != nil {
		return verifier.Shopped{}, err
	}
	sv, err := s.provs[p.Address].Serve(ctx, req)
	if err != nil {
		return verifier.Shopped{}, err
	}
	s.mu.Lock()
	s.n++
	n := s.n
	s.mu.Unlock()
	chainID := s.chain
	if chainID == "" {
		chainID = "test"
	}
	c := sv.Claim
	r := channel.Receipt{ChainID: chainID, RequestID: fmt.Sprintf("req-%d-%s", n, p.Address[len(p.Address)-6:]), Provider: p.Address,
		Consumer: p.Address, ChannelID: 1, ModelID: model, ModelSHA256: c.ModelSHA256, RequestHash: c.RequestHash,
		OutputHash: c.OutputHash, TokensIn: c.TokensIn, TokensOut: c.TokensOut, LogprobsCommitment: c.LogprobsCommitment,
		FinishReason: c.FinishReason}
	sys, user := verifier.PoolPrompt(params.PoolIndex)
	if !params.Logprobs {
		// As over HTTP: token ids come only with logprobs.
		sv.Answer.IDs, sv.Answer.Logprobs = nil, nil
	}
	return verifier.Shopped{Body: req.Body, System: sys, User: user, Params: params, Answer: sv.Answer,
		Receipt: channel.SignReceipt(r, s.keys[p.Address]), Duration: 100 * time.Millisecond}, nil
}

type labCheckers struct{ lab *cheat.Lab }

func (c labCheckers) Checker(_ context.Context, sha string) (*verifier.Checker, verifier.PromptFunc, error) {
	for _, m := range c.lab.Models {
		if m.SHA256 == sha {
			return m.Checker, func(sys, user string) ([]int32, error) {
				return verifier.Prompt(m.Format, m.Tokenizer, sys, user)
			}, nil
		}
	}
	return nil, nil, fmt.Errorf("no model %s", sha)
}

// TestVerifierEpoch drives the daemon through two epochs against an honest
// and a substituting provider and checks every ledger message it sends.
func TestVerifierEpoch(t *testing.T) {
	l := lab(t)
	ctx := context.Background()
	ref := l.Models["mycel-ref"]
	keyOf := func(b byte) (string, ed25519.PrivateKey) {
		k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, 32))
		return address.FromPubKey(k.Public().(ed25519.PublicKey)), k
	}
	honestAddr, honestKey := keyOf(1)
	cheatAddr, cheatKey := keyOf(2)
	me, _ := keyOf(3)
	honest, _ := l.Provider(cheat.Honest, "mycel-ref", "", 1)
	sub, _ := l.Provider(cheat.Substitute, "mycel-ref", "mycel-sub", 2)
	view := func(a string) ledger.ProviderView {
		return ledger.ProviderView{Provider: ledger.Provider{Address: a, Models: []tx.ServedModel{{ModelID: "mycel-ref"}}}, Active: true}
	}
	chain := &fakeChain{sha: ref.SHA256, providers: []ledger.ProviderView{view(honestAddr), view(cheatAddr)},
		epoch: ledger.EpochView{Epoch: ledger.Epoch{Number: 1, LastHeight: 100}, Height: 101, NextEpochHeight: 200}}
	shop := &labShopper{lab: l, provs: map[string]*cheat.Provider{honestAddr: honest, cheatAddr: sub},
		keys: map[string]ed25519.PrivateKey{honestAddr: honestKey, cheatAddr: cheatKey}}
	rnd := rand.NewChaCha8([32]byte{7})
	v, err := verifier.New(verifier.Config{Address: me, Stake: 5, EvidenceBond: 10, Bands: verifier.DefaultBands()},
		chain, shop, labCheckers{l}, rnd)
	if err != nil {
		t.Fatal(err)
	}

	// Run registers, then stops with its context.
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := v.Run(runCtx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff([]any{tx.RegisterVerifier{Stake: 5}}, chain.take()); diff != "" {
		t.Errorf("registration (-want +got):\n%s", diff)
	}

	// Epoch 1 starts: its seed is committed, and the next epoch's already
	// (the ledger takes it during the epoch before).
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	sent := chain.take()
	if len(sent) != 2 {
		t.Fatalf("epoch start sent %v", sent)
	}
	commit, ok := sent[0].(tx.CommitAuditSeed)
	if !ok || commit.Epoch != 1 {
		t.Fatalf("epoch start sent %#v, want CommitAuditSeed for epoch 1", sent[0])
	}
	commitNext, ok := sent[1].(tx.CommitAuditSeed)
	if !ok || commitNext.Epoch != 2 || commitNext.Commitment == commit.Commitment {
		t.Fatalf("epoch start sent %#v, want a fresh CommitAuditSeed for epoch 2", sent[1])
	}
	// A later tick of the same epoch sends nothing more (no retry loop).
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if again := chain.take(); len(again) != 0 {
		t.Fatalf("second tick of epoch 1 sent %#v", again)
	}

	// Shopper requests: new providers are audited at 100%.
	var evidence []tx.SubmitEvidence
	capacity := map[string]int{}
	for i := 0; i < 8; i++ {
		if err := v.ShopOnce(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range chain.take() {
			switch m := m.(type) {
			case tx.SubmitEvidence:
				evidence = append(evidence, m)
			case tx.RecordCapacity:
				capacity[m.Provider]++
			default:
				t.Errorf("unexpected message %#v", m)
			}
		}
	}
	if len(evidence) == 0 {
		t.Fatal("no evidence against the substituting provider")
	}
	for _, e := range evidence {
		if e.Receipt.Provider != cheatAddr {
			t.Errorf("evidence against the honest provider: %+v", e.Summary)
		}
		if e.Summary.Verdict != tx.VerdictQuantization && e.Summary.Verdict != tx.VerdictSubstitution {
			t.Errorf("verdict %q, want substitution or quantization", e.Summary.Verdict)
		}
	}
	for a, n := range capacity {
		if n != 1 {
			t.Errorf("provider %s: %d capacity records in one epoch, want 1", a, n)
		}
	}

	// Second half of the epoch: weights are committed; the cheater gets 0.
	ws := v.Weights()
	for _, w := range ws {
		if (w.Provider == cheatAddr) != (w.Weight == 0) {
			t.Errorf("weight %+v (cheater %s)", w, cheatAddr)
		}
	}
	chain.mu.Lock()
	chain.epoch.Height = 160
	chain.mu.Unlock()
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	sent = chain.take()
	cw, ok := sent[0].(tx.CommitWeights)
	if len(sent) != 1 || !ok || cw.Epoch != 1 {
		t.Fatalf("mid-epoch sent %#v, want CommitWeights for epoch 1", sent)
	}

	// Epoch 2: the seed and weights of epoch 1 are revealed and match the
	// commitments; epoch 3's seed is committed (epoch 2's already is).
	chain.mu.Lock()
	chain.epoch = ledger.EpochView{Epoch: ledger.Epoch{Number: 2, LastHeight: 200}, Height: 201, NextEpochHeight: 300}
	chain.mu.Unlock()
	if err := v.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	sent = chain.take()
	if len(sent) != 5 {
		t.Fatalf("epoch 2 start sent %#v", sent)
	}
	rs, ok1 := sent[0].(tx.RevealAuditSeed)
	rw, ok2 := sent[1].(tx.RevealWeights)
	c2, ok3 := sent[4].(tx.CommitAuditSeed)
	an, ok4 := sent[2].(tx.AnchorReceipts)
	ar, ok5 := sent[3].(tx.SubmitAuditReport)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		t.Fatalf("epoch 2 start sent %#v", sent)
	}
	// Epoch 1's eight shopper receipts are anchored and all reported
	// audited (new providers are audited at 100%); the cheater's failed.
	if an.Epoch != 1 || an.Count != 8 || an.AuditRoot != tx.AnchorRoot(ar.Leaves) || ar.Anchor != me || ar.Epoch != 1 {
		t.Errorf("anchor %+v, report %+v", an, ar)
	}
	if len(ar.Audited) != 8 {
		t.Errorf("audited %v, want all 8", ar.Audited)
	}
	var failedCheat int
	for _, i := range ar.Failed {
		if ar.Leaves[i].Provider != cheatAddr {
			t.Errorf("audit of the honest provider reported failed: %+v", ar.Leaves[i])
		}
		failedCheat++
	}
	// Every failed audit was accused; a passing answer may be accused too
	// when the provider's combined tally rejects.
	if failedCheat == 0 || failedCheat > len(evidence) {
		t.Errorf("%d failed audits reported, %d accusations", failedCheat, len(evidence))
	}
	seed, _ := hex.DecodeString(rs.Seed)
	if rs.Epoch != 1 || tx.AuditSeedCommitment(seed) != commit.Commitment {
		t.Errorf("revealed seed does not match the commitment")
	}
	if rw.Epoch != 1 || tx.WeightsCommitment(1, me, rw.Weights, rw.Salt) != cw.Hash {
		t.Errorf("revealed weights do not match the commitment")
	}
	if diff := cmp.Diff(ws, rw.Weights); diff != "" {
		t.Errorf("revealed weights (-want +got):\n%s", diff)
	}
	if c2.Epoch != 3 || c2.Commitment == commit.Commitment || c2.Commitment == commitNext.Commitment {
		t.Errorf("epoch 3 seed commitment %+v", c2)
	}

	// Votes: evidence by another verifier about a request this verifier
	// shopped is re-checked and voted on once.
	other, _ := keyOf(4)
	chain.mu.Lock()
	chain.evidence = []ledger.Evidence{{ID: 9, Submitter: other, Provider: cheatAddr, RequestID: evidence[0].Receipt.RequestID, Receipt: evidence[0].Receipt}}
	chain.mu.Unlock()
	for i := 0; i < 2; i++ {
		if err := v.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]any{tx.VoteEvidence{ID: 9, Guilty: true}}, chain.take()); diff != "" {
		t.Errorf("votes (-want +got):\n%s", diff)
	}
}

// TestModelDir loads a checker by file hash and maps OpenAI logprobs token
// bytes back to token ids.
func TestModelDir(t *testing.T) {
	l := lab(t)
	ctx, cancel := context.WithCancel(context.Background())
	d := &verifier.ModelDir{Dir: labDir, Threads: 1, Bands: verifier.DefaultBands()}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	ref := l.Models["mycel-ref"]
	c, prompt, err := d.Checker(ctx, ref.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA256() != ref.SHA256 {
		t.Errorf("checker for %s, want %s", c.SHA256(), ref.SHA256)
	}
	got, err := prompt("", "What is defer?")
	if err != nil {
		t.Fatal(err)
	}
	want, err := verifier.Prompt(ref.Format, ref.Tokenizer, "", "What is defer?")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("prompt ids (-want +got):\n%s", diff)
	}
	if _, _, err := d.Checker(ctx, "00"); err == nil {
		t.Error("unknown hash: no error")
	}
	ids := []int32{}
	var content []verifier.LogprobEntry
	for _, id := range want[len(want)-5:] {
		b, err := ref.Tokenizer.TokenBytes(id)
		if err != nil {
			t.Fatal(err)
		}
		ints := make([]int, len(b))
		for i, x := range b {
			ints[i] = int(x)
		}
		ids = append(ids, id)
		content = append(content, verifier.LogprobEntry{Token: string(b), Logprob: -1, Bytes: ints})
	}
	gotIDs, _, err := d.IDsFromBytes(ref.SHA256, content)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids, gotIDs); diff != "" {
		t.Errorf("ids from bytes (-want +got):\n%s", diff)
	}
}
