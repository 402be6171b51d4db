package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/router"
)

// TestGatewayPinProvider: a pinned request is served by the pinned provider only, even when
// the router prefers another; an unknown, jailed or failing pinned provider gives 503
// no_provider naming it and no other provider is asked.
func TestGatewayPinProvider(t *testing.T) {
	failing := dear("c")
	failing.cfg.Status = http.StatusInternalServerError
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), dear("b"), failing, cheap("j"))
	e.ledger.Jail(e.addrs["j"])

	resp, b := e.post("/v1/chat/completions", chatBody(""), gwapi.HeaderPinProvider, e.addrs["b"])
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
		t.Fatalf("pinned to b: status %d from %q: %s", resp.StatusCode, resp.Header.Get(HeaderProvider), b)
	}
	if n := e.provs["a"].Requests(); n != 0 {
		t.Errorf("a, the router's choice, got %d requests of a request pinned to b", n)
	}

	for _, tt := range []struct{ name, pin string }{
		{"unknown", "mycel1nosuchprovider"},
		{"jailed", e.addrs["j"]},
		{"failing", e.addrs["c"]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a0, b0 := e.provs["a"].Requests(), e.provs["b"].Requests()
			resp, body := e.post("/v1/chat/completions", chatBody(""), gwapi.HeaderPinProvider, tt.pin)
			perr := openai.ParseError(resp.StatusCode, body)
			if resp.StatusCode != http.StatusServiceUnavailable || perr.Code != "no_provider" || !strings.Contains(perr.Message, tt.pin) {
				t.Errorf("status %d code %q %q, want 503 no_provider naming %s", resp.StatusCode, perr.Code, perr.Message, tt.pin)
			}
			if a, b := e.provs["a"].Requests()-a0, e.provs["b"].Requests()-b0; a != 0 || b != 0 {
				t.Errorf("other providers asked: a %d, b %d requests, want none", a, b)
			}
		})
	}
	if n := e.provs["c"].Requests(); n != 1 {
		t.Errorf("failing pinned c got %d requests, want 1 (no retry)", n)
	}
	// An unknown model stays a 404.
	resp, b = e.post("/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, gwapi.HeaderPinProvider, e.addrs["a"])
	if perr := openai.ParseError(resp.StatusCode, b); resp.StatusCode != http.StatusNotFound || perr.Code != openai.CodeModelNotFound {
		t.Errorf("unknown model pinned: status %d code %q, want 404 model_not_found", resp.StatusCode, perr.Code)
	}
}

// TestGatewayPinNoHedgeNoFailover: a pinned request is not hedged when its provider is late
// to its first token, and a stream that breaks after its first tokens ends there (no [DONE])
// instead of being continued on another provider.
func TestGatewayPinNoHedgeNoFailover(t *testing.T) {
	slow := cheap("a")
	slow.cfg.TTFT = 50 * time.Millisecond // 50 times its p95 below: unpinned, it would be hedged
	e := newEnv(t, Config{HedgeMin: time.Millisecond}, slow, dear("b"))
	for range 5 {
		e.gw.stats.Start(e.addrs["a"])
		e.gw.stats.Done(e.addrs["a"], routerOutcome(time.Millisecond), time.Now())
	}
	resp, b := e.post("/v1/chat/completions", chatBody(`"stream":true,`), gwapi.HeaderPinProvider, e.addrs["a"], HeaderPolicy, "cheapest")
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderProvider) != e.addrs["a"] || !strings.Contains(string(b), "[DONE]") {
		t.Fatalf("pinned to slow a: status %d from %q: %s", resp.StatusCode, resp.Header.Get(HeaderProvider), b)
	}
	if n := e.provs["b"].Requests(); n != 0 {
		t.Errorf("b got %d requests: a pinned request was hedged", n)
	}

	e.provs["a"].SetBreakAfter(3)
	resp, b = e.post("/v1/chat/completions", chatBody(`"stream":true,`), gwapi.HeaderPinProvider, e.addrs["a"])
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "[DONE]") || !strings.Contains(string(b), "tok2") || strings.Contains(string(b), "tok3") {
		t.Errorf("stream of a pinned provider that broke after 3 tokens:\n%s\nwant tok0…tok2 and no [DONE]", b)
	}
	if n := e.provs["b"].Requests(); n != 0 {
		t.Errorf("b got %d requests: a pinned stream was failed over", n)
	}
	if got := resp.Trailer.Get(HeaderProvider); got != e.addrs["a"] {
		t.Errorf("%s trailer %q, want only a", HeaderProvider, got)
	}
}

// TestGatewayPinBeyondProvenShare: a pinned request (a verifier's capacity job, say) to a
// provider without a capacity proof that already holds its exploration share of the requests
// in flight is served: the share bounds steer the router's choices, a pin is limited by the
// provider's free slots only.
func TestGatewayPinBeyondProvenShare(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), cheap("n"))
	e.ledger.SetCapacity(e.addrs["a"], &ledger.Capacity{Provider: e.addrs["a"], Epoch: 1,
		Models: []ledger.ModelCapacity{{ModelID: testModel, TokensPerSecMilli: 50_000, Records: 2}}})
	release := make(chan struct{})
	e.provs["n"].SetHold(release)
	first := make(chan *http.Response, 1)
	go func() {
		resp, _ := e.post("/v1/chat/completions", chatBody(""), gwapi.HeaderPinProvider, e.addrs["n"])
		first <- resp
	}()
	waitFor(t, "the first pinned request to reach n", func() bool { return e.provs["n"].Requests() == 1 })
	// n holds 1 of 1 requests in flight, over its 5 % exploration share; a second pin still
	// reaches it (it waits on the same hold).
	second := make(chan *http.Response, 1)
	go func() {
		resp, _ := e.post("/v1/chat/completions", chatBody(""), gwapi.HeaderPinProvider, e.addrs["n"])
		second <- resp
	}()
	waitFor(t, "the second pinned request to reach n", func() bool { return e.provs["n"].Requests() == 2 })
	close(release)
	for _, ch := range []chan *http.Response{first, second} {
		if resp := <-ch; resp == nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("pinned request: %v, want 200", resp)
		}
	}
	if n := e.provs["a"].Requests(); n != 0 {
		t.Errorf("a got %d of the requests pinned to n", n)
	}
}

// TestGatewayPinOpenBreaker: a provider whose circuit breaker is open gets no routed request,
// but a request pinned to it (a verifier auditing a provider that misbehaves) reaches it.
func TestGatewayPinOpenBreaker(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, cheap("a"), dear("b"))
	for !e.gw.stats.Open(e.addrs["a"], e.gw.now()) {
		e.gw.stats.Done(e.addrs["a"], router.Outcome{OK: false}, e.gw.now())
	}
	resp, b := e.post("/v1/chat/completions", chatBody(""))
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
		t.Fatalf("unpinned with a's breaker open: status %d from %q, want b: %s", resp.StatusCode, resp.Header.Get(HeaderProvider), b)
	}
	resp, b = e.post("/v1/chat/completions", chatBody(""), gwapi.HeaderPinProvider, e.addrs["a"])
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderProvider) != e.addrs["a"] {
		t.Fatalf("pinned to a with its breaker open: status %d from %q: %s", resp.StatusCode, resp.Header.Get(HeaderProvider), b)
	}
	if n := e.provs["a"].Requests(); n != 1 {
		t.Errorf("a got %d requests, want the pinned one", n)
	}
}
