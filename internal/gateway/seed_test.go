package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/openai"
)

// post sends body to the gateway's path with the test key and headers hdr (name, value,
// …), and returns the response with its body read.
func (e *env) post(path, body string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.secret)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// sentSeed returns the top-level "seed" of an upstream body and whether there was one.
func sentSeed(t *testing.T, body []byte) (int64, bool) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("upstream body %s: %v", body, err)
	}
	raw, ok := m["seed"]
	if !ok || string(raw) == "null" {
		return 0, false
	}
	var s int64
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("upstream seed %s: %v", raw, err)
	}
	return s, true
}

func chatBody(extra string) string {
	return `{"model":"` + testModel + `",` + extra + `"messages":[{"role":"user","content":"` + testPrompt + `"}]}`
}

// TestGatewaySeed: a request without a seed (absent or null) reaches the provider with one
// the gateway drew in [0, 2^31); a client's seed is sent as it is; chat and completions,
// streamed or not (the plain path that does not decode the body and the one that does).
func TestGatewaySeed(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	tests := []struct {
		name, path, body string
		client           *int64 // the client's seed; nil: the gateway draws one
	}{
		{"chat, no seed", "/v1/chat/completions", chatBody(""), nil},
		{"chat, streamed, no seed", "/v1/chat/completions", chatBody(`"stream":true,`), nil},
		{"chat, null seed", "/v1/chat/completions", chatBody(`"seed":null,`), nil},
		{"chat, nested seed only", "/v1/chat/completions", chatBody(`"metadata":{"seed":"x"},`), nil},
		{"chat, client seed", "/v1/chat/completions", chatBody(`"seed":42,`), openai.Ptr(int64(42))},
		{"chat, streamed, client seed", "/v1/chat/completions", chatBody(`"stream":true,"seed":7,`), openai.Ptr(int64(7))},
		{"completion, no seed", "/v1/completions", `{"model":"` + testModel + `","prompt":"` + testPrompt + `"}`, nil},
		{"completion, client seed", "/v1/completions", `{"model":"` + testModel + `","prompt":"` + testPrompt + `","seed":-3}`, openai.Ptr(int64(-3))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.settled() // else a voucher may lag the last receipt: a 402 and a second try
			before := len(e.provs["a"].Bodies())
			resp, b := e.post(tt.path, tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			bodies := e.provs["a"].Bodies()
			if len(bodies) != before+1 {
				t.Fatalf("provider got %d requests, want 1", len(bodies)-before)
			}
			up := bodies[before]
			seed, ok := sentSeed(t, up)
			switch {
			case !ok:
				t.Errorf("upstream body %s has no seed", up)
			case tt.client != nil && seed != *tt.client:
				t.Errorf("upstream seed %d, want the client's %d", seed, *tt.client)
			case tt.client == nil && (seed < 0 || seed >= 1<<31):
				t.Errorf("gateway seed %d outside [0, 2^31)", seed)
			}
			var sent struct {
				Stream        bool
				StreamOptions struct {
					IncludeUsage bool `json:"include_usage"`
				} `json:"stream_options"`
			}
			if err := json.Unmarshal(up, &sent); err != nil || !sent.Stream || !sent.StreamOptions.IncludeUsage {
				t.Errorf("upstream body %s: want a stream with usage (err %v)", up, err)
			}
		})
	}
}

// TestGatewaySeedSameOnEveryAttempt: the seed the gateway draws for a request is sent on each
// of its attempts: a mid-stream failover's continuation and a hedge.
func TestGatewaySeedSameOnEveryAttempt(t *testing.T) {
	t.Run("failover", func(t *testing.T) {
		a := cheap("a")
		a.cfg.BreakAfter = 3
		e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
		if resp, b := e.post("/v1/chat/completions", chatBody("")); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		assertSameSeed(t, e, "a", "b")
	})
	t.Run("hedge", func(t *testing.T) {
		e := newEnv(t, Config{HedgeMin: time.Millisecond}, cheap("a"), dear("b"))
		for range 5 { // a's p95 time to first token: 1 ms
			e.gw.stats.Start(e.addrs["a"])
			e.gw.stats.Done(e.addrs["a"], routerOutcome(time.Millisecond), time.Now())
		}
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		e.provs["a"].SetHold(release) // a stalls before its first token: b's hedge answers
		if resp, b := e.post("/v1/chat/completions", chatBody(`"stream":true,`), HeaderPolicy, "cheapest"); resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
			t.Fatalf("status %d from %q: %s; want the hedge b's answer", resp.StatusCode, resp.Header.Get(HeaderProvider), b)
		}
		assertSameSeed(t, e, "a", "b")
	})
}

func assertSameSeed(t *testing.T, e *env, names ...string) {
	t.Helper()
	var seeds []int64
	for _, n := range names {
		bodies := e.provs[n].Bodies()
		if len(bodies) != 1 {
			t.Fatalf("%s got %d requests, want 1", n, len(bodies))
		}
		s, ok := sentSeed(t, bodies[0])
		if !ok {
			t.Fatalf("%s was sent no seed: %s", n, bodies[0])
		}
		seeds = append(seeds, s)
	}
	for i := range seeds {
		if seeds[i] != seeds[0] {
			t.Errorf("seeds sent to %v: %v, want one seed", names, seeds)
		}
	}
}

// TestUpstreamBodyPlainPath: the plain request's body is the client's with the three fields
// prepended, byte for byte.
func TestUpstreamBodyPlainPath(t *testing.T) {
	body := ` {"model":"m","messages":[{"role":"user","content":"say \"seed\""}]}`
	req, e := decodeRequest(kindChat, []byte(body))
	if e != nil {
		t.Fatal(e)
	}
	req.seed = 123
	got, err := upstreamBody(req, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"stream":true,"stream_options":{"include_usage":true},"seed":123,"model":"m","messages":[{"role":"user","content":"say \"seed\""}]}`
	if string(got) != want {
		t.Errorf("upstream body\n%s\nwant\n%s", got, want)
	}
	if _, e := openai.DecodeChatRequest(got); e != nil {
		t.Errorf("upstream body does not decode: %v", e)
	}
}
