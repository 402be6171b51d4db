package explorer_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// net is an in-process devnet with its chain client and the explorer served over HTTP.
type net struct {
	d       *devnet.Devnet
	client  *chainclient.Client
	srv     *httptest.Server
	traffic *fakeTraffic
}

// fakeTraffic stands in for a gateway.
type fakeTraffic struct {
	mu   sync.Mutex
	snap explorer.TrafficSnapshot
}

func (f *fakeTraffic) Traffic() explorer.TrafficSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.snap
	s.Providers = append([]explorer.ProviderTraffic(nil), s.Providers...)
	return s
}

// serve records one request of tokens tokens by provider with a TTFT.
func (f *fakeTraffic) serve(provider string, tokens uint64, ttftMs float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bounds := []float64{10, 20, 50, 100, 200, 500}
	bucket := func(h *explorer.Histogram, v float64) {
		if h.Bounds == nil {
			h.Bounds, h.Counts = bounds, make([]uint64, len(bounds)+1)
		}
		i := 0
		for i < len(h.Bounds) && v > h.Bounds[i] {
			i++
		}
		h.Counts[i]++
	}
	f.snap.Requests++
	f.snap.TokensOut += tokens
	bucket(&f.snap.TTFTMs, ttftMs)
	for i := range f.snap.Providers {
		if p := &f.snap.Providers[i]; p.Address == provider {
			p.Requests++
			p.TokensOut += tokens
			bucket(&p.TTFTMs, ttftMs)
			bucket(&p.TokensPerSec, float64(tokens))
			return
		}
	}
	p := explorer.ProviderTraffic{Address: provider, Requests: 1, TokensOut: tokens}
	bucket(&p.TTFTMs, ttftMs)
	bucket(&p.TokensPerSec, float64(tokens))
	f.snap.Providers = append(f.snap.Providers, p)
}

func startNet(t *testing.T, withTraffic bool) *net {
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
			t.Errorf("devnet Run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := d.WaitHeight(wctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	local, err := d.Local(0)
	if err != nil {
		t.Fatal(err)
	}
	n := &net{d: d, client: chainclient.New(local, chainclient.WithChainID(d.ChainID()))}
	deps := explorer.Deps{Chain: local, Poll: 50 * time.Millisecond, Names: map[string]string{}}
	for name, addr := range d.Info().Accounts {
		deps.Names[addr] = name
	}
	if withTraffic {
		n.traffic = &fakeTraffic{}
		deps.Traffic = n.traffic
	}
	mux := http.NewServeMux()
	h := explorer.Handler(deps)
	mux.Handle(explorer.Prefix, h)
	mux.Handle(explorer.Prefix+"/", h)
	n.srv = httptest.NewServer(mux)
	t.Cleanup(n.srv.Close)
	return n
}

func (n *net) addr(t *testing.T, name string) string {
	t.Helper()
	k, err := n.d.Key(name)
	if err != nil {
		t.Fatal(err)
	}
	return k.Address
}

func (n *net) submit(t *testing.T, from string, msgs ...any) chainclient.TxResult {
	t.Helper()
	k, err := n.d.Key(from)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.client.Submit(ctx, k, msgs...)
	if err != nil {
		t.Fatalf("submit from %s: %v", from, err)
	}
	return res
}

const demoSHA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func (n *net) registerModel(t *testing.T) {
	t.Helper()
	n.submit(t, "alice", tx.RegisterModel{ID: "demo-small", SHA256: demoSHA, Architecture: "llama",
		Parameters: 1_000_000, Quantization: "F32", ContextLength: 512, License: "apache-2.0"})
}

func (n *net) registerProvider(t *testing.T, name string, priceOut uint64) chainclient.TxResult {
	t.Helper()
	return n.submit(t, name, tx.RegisterProvider{
		Stake: 200_000_000, Endpoint: "http://127.0.0.1:9000/" + name,
		Hardware: tx.Hardware{CPU: "test cpu", Cores: 2},
		Models:   []tx.ServedModel{{ModelID: "demo-small", PriceInPerMTok: 1_000_000, PriceOutPerMTok: priceOut}},
	})
}

func (n *net) get(t *testing.T, path string, wantStatus int, out any) {
	t.Helper()
	resp, err := http.Get(n.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
}

func TestAPI(t *testing.T) {
	n := startNet(t, false)
	n.registerModel(t)
	reg := n.registerProvider(t, "provider1", 2_000_000)
	n.submit(t, "verifier1", tx.RegisterVerifier{Stake: 150_000_000})
	p1 := n.addr(t, "provider1")
	open := n.submit(t, "alice", tx.OpenChannel{Provider: p1, Deposit: 5_000_000})

	var providers []ledger.ProviderView
	n.get(t, "/explorer/api/providers", 200, &providers)
	if len(providers) != 1 || providers[0].Address != p1 || !providers[0].Active || providers[0].Stake != 200_000_000 {
		t.Errorf("providers = %+v, want provider1 active with its stake", providers)
	}
	var verifiers []ledger.VerifierView
	n.get(t, "/explorer/api/verifiers", 200, &verifiers)
	if len(verifiers) != 1 || verifiers[0].Address != n.addr(t, "verifier1") {
		t.Errorf("verifiers = %+v, want verifier1", verifiers)
	}

	var txs []explorer.TxView
	n.get(t, "/explorer/api/txs", 200, &txs)
	var gotTypes []string
	for _, x := range txs {
		gotTypes = append(gotTypes, strings.Join(x.Types, "+"))
	}
	wantTypes := []string{"open_channel", "register_verifier", "register_provider", "register_model"}
	if diff := cmp.Diff(wantTypes, gotTypes); diff != "" {
		t.Errorf("recent tx types, newest first (-want +got):\n%s", diff)
	}

	var ov explorer.Overview
	n.get(t, "/explorer/api/overview", 200, &ov)
	if ov.ChainID != n.d.ChainID() || ov.Height < open.Height || ov.Gateway || len(ov.QueryErrors) != 0 {
		t.Errorf("overview = %+v, want chain %s at height >= %d, no gateway, no errors", ov, n.d.ChainID(), open.Height)
	}

	var blocks []explorer.BlockView
	n.get(t, "/explorer/api/blocks?limit=5", 200, &blocks)
	if len(blocks) == 0 || len(blocks) > 5 || blocks[0].Height < open.Height {
		t.Errorf("blocks = %+v, want up to 5 newest first from height >= %d", blocks, open.Height)
	}
	for i := 1; i < len(blocks); i++ {
		if blocks[i].Height != blocks[i-1].Height-1 {
			t.Errorf("blocks not consecutive newest first: %d after %d", blocks[i].Height, blocks[i-1].Height)
		}
	}

	t.Run("search", func(t *testing.T) {
		var byAddr explorer.SearchResult
		n.get(t, "/explorer/api/search?q="+p1, 200, &byAddr)
		if byAddr.Kind != "address" || byAddr.Provider == nil || len(byAddr.Txs) != 1 || byAddr.Txs[0].Hash != reg.Hash {
			t.Errorf("search %s = kind %q provider %s txs %+v, want its registration %s", p1, byAddr.Kind, byAddr.Provider, byAddr.Txs, reg.Hash)
		}
		var chans []ledger.Channel
		if err := json.Unmarshal(byAddr.Channels, &chans); err != nil || len(chans) != 1 {
			t.Errorf("search %s channels = %s (%v), want the one channel", p1, byAddr.Channels, err)
		}
		var byHash explorer.SearchResult
		n.get(t, "/explorer/api/search?q="+strings.ToLower(open.Hash), 200, &byHash)
		if byHash.Kind != "tx" || byHash.Tx == nil || byHash.Tx.Sender != n.addr(t, "alice") || len(byHash.Tx.Msgs) != 1 || len(byHash.Tx.Events) == 0 {
			t.Errorf("search tx %s = %+v, want alice's open_channel with its message and events", open.Hash, byHash)
		}
		var byChan explorer.SearchResult
		n.get(t, "/explorer/api/search?q=1", 200, &byChan)
		var ch ledger.Channel
		if err := json.Unmarshal(byChan.Channel, &ch); err != nil || byChan.Kind != "channel" || ch.Provider != p1 || ch.Deposit != 5_000_000 {
			t.Errorf("search channel 1 = %+v (%v), want alice's channel to provider1", byChan, err)
		}
		for _, tc := range []struct {
			q      string
			status int
		}{
			{"", 400},
			{"hello world", 400},
			{"abcd", 400},
			{strings.Repeat("ab", 32), 404},
			{"999999", 404},
			{"myc1qqqq", 400},
		} {
			n.get(t, "/explorer/api/search?q="+url.QueryEscape(tc.q), tc.status, nil)
		}
	})

	t.Run("errors", func(t *testing.T) {
		n.get(t, "/explorer/api/tx/zz", 400, nil)
		n.get(t, "/explorer/api/tx/"+strings.Repeat("00", 32), 404, nil)
		n.get(t, "/explorer/api/nope", 404, nil)
		n.get(t, "/explorer/api/blocks?before=x", 400, nil)
		var tr map[string]any
		n.get(t, "/explorer/api/traffic", 200, &tr)
		if diff := cmp.Diff(map[string]any{"attached": false}, tr); diff != "" {
			t.Errorf("traffic without a gateway (-want +got):\n%s", diff)
		}
	})

	t.Run("static", func(t *testing.T) {
		for _, p := range []string{"/explorer", "/explorer/", "/explorer/static/app.js", "/explorer/static/app.css"} {
			resp, err := http.Get(n.srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(body) < 500 {
				t.Errorf("GET %s: status %d, %d bytes", p, resp.StatusCode, len(body))
			}
		}
		n.get(t, "/explorer/static/missing.js", 404, nil)
	})
}

func TestTrafficAndEvents(t *testing.T) {
	n := startNet(t, true)
	p := n.addr(t, "provider1")
	n.traffic.serve(p, 40, 30)
	n.traffic.serve(p, 60, 150)

	var tr struct {
		Attached bool `json:"attached"`
		explorer.TrafficSnapshot
	}
	n.get(t, "/explorer/api/traffic", 200, &tr)
	if !tr.Attached || tr.Requests != 2 || tr.TokensOut != 100 || len(tr.Providers) != 1 {
		t.Fatalf("traffic = %+v, want 2 requests, 100 tokens, one provider", tr)
	}
	if diff := cmp.Diff([]uint64{0, 0, 1, 0, 1, 0, 0}, tr.Providers[0].TTFTMs.Counts); diff != "" {
		t.Errorf("provider TTFT histogram (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", n.srv.URL+"/explorer/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events content type %q", ct)
	}
	events := readEvents(ctx, resp.Body)
	next := func(kind string) json.RawMessage {
		t.Helper()
		for ev := range events {
			if ev.kind == kind {
				return ev.data
			}
		}
		t.Fatalf("event stream ended before a %q event", kind)
		return nil
	}
	var first explorer.BlockEvent
	if err := json.Unmarshal(next("block"), &first); err != nil || first.Height < 1 {
		t.Fatalf("first block event %+v (%v)", first, err)
	}
	// A transaction makes a new block; the stream reports it.
	res := n.submit(t, "alice", tx.Send{To: p, Amount: 1})
	for {
		var b explorer.BlockEvent
		if err := json.Unmarshal(next("block"), &b); err != nil {
			t.Fatal(err)
		}
		if b.Height <= first.Height {
			t.Fatalf("block event height %d after %d: not increasing", b.Height, first.Height)
		}
		if b.Height >= res.Height {
			break
		}
	}
	n.traffic.serve(p, 10, 5)
	for {
		var s explorer.TrafficSnapshot
		if err := json.Unmarshal(next("traffic"), &s); err != nil {
			t.Fatal(err)
		}
		if s.Requests == 3 {
			break
		}
	}
}

type sse struct {
	kind string
	data json.RawMessage
}

// readEvents parses a server-sent event stream; the channel closes at its end.
func readEvents(ctx context.Context, r io.Reader) <-chan sse {
	ch := make(chan sse)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var kind, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					select {
					case ch <- sse{kind, json.RawMessage(data)}:
					case <-ctx.Done():
						return
					}
				}
				kind, data = "", ""
			case strings.HasPrefix(line, "event: "):
				kind = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}
