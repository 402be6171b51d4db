package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/ledger"
)

func bps(v uint64) *uint64 { return &v }

// TestRoutingUsesReputation: of two providers equal in everything else, the one with a poor
// audit pass rate on the ledger serves only after the other.
func TestRoutingUsesReputation(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), cheap("b"))
	// Without records the tie goes to the smaller address: give that one the poor record.
	poor, good := e.addrs["a"], e.addrs["b"]
	if good < poor {
		poor, good = good, poor
	}
	e.ledger.SetRecord(poor, &ledger.Reputation{AuditsPassed: 1, AuditsFailed: 1, CleanEpochs: 10}, bps(5000))
	e.ledger.SetRecord(good, &ledger.Reputation{AuditsPassed: 9, CleanEpochs: 10}, bps(10_000))
	for i := 0; i < 3; i++ {
		var resp *http.Response
		if _, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get(HeaderProvider); got != good {
			t.Fatalf("request %d served by %s, want %s (the other failed half its audits)", i, got, good)
		}
	}
}

// TestRoutingUsesProvenCapacity: of two providers equal in price and advertised slots, the one
// the verifiers proved three times faster on the model serves three requests in four. Without
// the proofs the smaller address would win the first requests and measured latency the rest.
func TestRoutingUsesProvenCapacity(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), cheap("b"))
	low, high := e.addrs["a"], e.addrs["b"]
	if high < low {
		low, high = high, low
	}
	prove := func(addr string, tps uint64) {
		e.ledger.SetCapacity(addr, &ledger.Capacity{Provider: addr, Epoch: 1, Models: []ledger.ModelCapacity{
			{ModelID: "other-model", TokensPerSecMilli: 1_000_000}, // another model's proof does not count
			{ModelID: testModel, TokensPerSecMilli: tps, Records: 2}}})
	}
	prove(low, 10_000)
	prove(high, 30_000)
	const n = 16
	served := map[string]int{}
	for i := 0; i < n; i++ {
		var resp *http.Response
		if _, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		served[resp.Header.Get(HeaderProvider)]++
	}
	if served[high] < 11 || served[high] > 13 {
		t.Errorf("the provider proven 3× faster served %d of %d requests, the other %d; want 12 ± 1", served[high], n, served[low])
	}
}

func TestProvenTPS(t *testing.T) {
	pv := ledger.ProviderView{ProvenCapacity: &ledger.Capacity{Models: []ledger.ModelCapacity{{ModelID: "m", TokensPerSecMilli: 12_500}}}}
	if got := provenTPS(pv, "m"); got != 12.5 {
		t.Errorf("provenTPS(m) = %v, want 12.5", got)
	}
	if got := provenTPS(pv, "other"); got != 0 {
		t.Errorf("provenTPS(other) = %v, want 0 (no proof on that model)", got)
	}
	if got := provenTPS(ledger.ProviderView{}, "m"); got != 0 {
		t.Errorf("provenTPS without proof = %v, want 0", got)
	}
}

func TestReputation(t *testing.T) {
	for _, tt := range []struct {
		name string
		pv   ledger.ProviderView
		want float64
	}{
		{"nothing known", ledger.ProviderView{}, 0},
		{"perfect and seasoned", ledger.ProviderView{Reputation: &ledger.Reputation{CleanEpochs: 12}, AuditPassRateBps: bps(10_000)}, 1},
		{"new, no audit yet", ledger.ProviderView{Reputation: &ledger.Reputation{}}, 0.9},
		{"half its audits", ledger.ProviderView{Reputation: &ledger.Reputation{CleanEpochs: 10}, AuditPassRateBps: bps(5000)}, 0.5},
		{"evidence upheld", ledger.ProviderView{Reputation: &ledger.Reputation{CleanEpochs: 10, EvidenceAgainst: 1}, AuditPassRateBps: bps(10_000)}, 0.5},
		{"failed every audit is not unknown", ledger.ProviderView{Reputation: &ledger.Reputation{CleanEpochs: 10}, AuditPassRateBps: bps(0)}, 0.001},
	} {
		if got := reputation(tt.pv); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Errorf("%s: reputation = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestAtCapacity: a provider advertising one request slot and no queue, busy with a request,
// is refused the next one with the reason at_capacity.
func TestAtCapacity(t *testing.T) {
	a := cheap("a")
	a.cfg.MaxConcurrent = 1
	e := newEnv(t, Config{NoHedge: true}, a)
	ctx := context.Background()
	if err := e.gw.dir.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.gw.dir.probe(ctx) // reads the slots from /mycel/v1/info
	release := make(chan struct{})
	e.provs["a"].SetHold(release)
	first := make(chan error, 1)
	go func() {
		_, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
		first <- err
	}()
	waitFor(t, "the first request to reach the provider", func() bool { return e.provs["a"].Requests() == 1 })
	_, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
	var ae *oai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second request: err = %v, want 503", err)
	}
	if want := e.addrs["a"] + ": at_capacity (1 of 1 request slots in use)"; !strings.Contains(ae.Message, want) {
		t.Errorf("503 message %q does not contain %q", ae.Message, want)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first request: %v", err)
	}
	// The slot is free again.
	if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
		t.Fatalf("after the first answer: %v", err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestQueueCountsAsCapacity: a provider with one running slot and one queue place takes a
// second concurrent request (it waits in the provider's queue); the third is at capacity.
func TestQueueCountsAsCapacity(t *testing.T) {
	a := cheap("a")
	a.cfg.MaxConcurrent, a.cfg.QueueLength = 1, 1
	e := newEnv(t, Config{NoHedge: true}, a)
	ctx := context.Background()
	if err := e.gw.dir.ensure(ctx); err != nil {
		t.Fatal(err)
	}
	e.gw.dir.probe(ctx)
	release := make(chan struct{})
	e.provs["a"].SetHold(release)
	done := make(chan error, 2)
	for i := 1; i <= 2; i++ {
		go func() {
			_, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
			done <- err
		}()
		waitFor(t, fmt.Sprintf("request %d to reach the provider", i), func() bool { return e.provs["a"].Requests() == i })
	}
	_, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
	var ae *oai.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third request: err = %v, want 503", err)
	}
	if want := e.addrs["a"] + ": at_capacity (2 of 2 request slots in use)"; !strings.Contains(ae.Message, want) {
		t.Errorf("503 message %q does not contain %q", ae.Message, want)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("held request: %v", err)
		}
	}
}
