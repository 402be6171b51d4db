package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/router"
)

// Non-streaming clients: the gateway streams from the providers and assembles one answer.

// TestNonStreamingFailover: a's stream breaks after five tokens of a plain request; b
// continues the same answer, and the client gets one complete answer with correct usage,
// both providers named, and is charged what each delivered.
func TestNonStreamingFailover(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 5
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	var resp *http.Response
	got, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		Object, Content, Finish, Role, Provider string
		Prompt, Completion, Total               int64
		IDPrefix                                bool
	}
	want := result{"chat.completion", answer, "stop", "assistant", e.addrs["a"] + "," + e.addrs["b"], testPromptTokens, 8, 11, true}
	have := result{string(got.Object), got.Choices[0].Message.Content, got.Choices[0].FinishReason, string(got.Choices[0].Message.Role),
		resp.Header.Get(HeaderProvider), got.Usage.PromptTokens, got.Usage.CompletionTokens, got.Usage.TotalTokens,
		got.ID == "chatcmpl-"+strings.TrimPrefix(resp.Header.Get(HeaderRequestID), "req_")}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	// Both providers were asked for a stream with usage; b continued from a's five tokens.
	for name, n := range map[string]int{"a": 1, "b": 1} {
		bodies := e.provs[name].Bodies()
		if len(bodies) != n {
			t.Fatalf("%s got %d requests, want %d", name, len(bodies), n)
		}
		var sent struct {
			Stream        bool
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
			Messages []struct{ Role, Content string }
		}
		if err := json.Unmarshal(bodies[0], &sent); err != nil {
			t.Fatal(err)
		}
		if !sent.Stream || !sent.StreamOptions.IncludeUsage {
			t.Errorf("%s was sent %s, want a stream with usage", name, bodies[0])
		}
		if name == "b" {
			if last := sent.Messages[len(sent.Messages)-1]; last.Role != "assistant" || last.Content != "tok0 tok1 tok2 tok3 tok4" {
				t.Errorf("continuation ends with %+v, want a's five tokens as the assistant prefix", last)
			}
		}
	}
	costA, _ := channel.Cost(testPromptTokens, 5, 1000, 2000)
	costB, _ := channel.Cost(testPromptTokens+5, 3, 5000, 9000)
	if got, want := e.spent(), costA+costB; got != want {
		t.Errorf("key spend = %d, want %d (a %d + b %d)", got, want, costA, costB)
	}
	if tr := e.gw.Traffic(); tr.Failovers != 1 {
		t.Errorf("traffic counts %d failovers, want 1", tr.Failovers)
	}
}

// TestNonStreamingHedging: a plain request whose provider is late to its first token is
// hedged on the next provider, which answers.
func TestNonStreamingHedging(t *testing.T) {
	e := newEnv(t, Config{HedgeMin: time.Millisecond}, cheap("a"), dear("b"))
	for i := 0; i < 5; i++ { // a's p95 time to first token: 1 ms
		e.gw.stats.Start(e.addrs["a"])
		e.gw.stats.Done(e.addrs["a"], routerOutcome(time.Millisecond), time.Now())
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.provs["a"].SetHold(release) // a stalls before its first token until the test ends
	var resp *http.Response
	got, err := e.client(option.WithHeader(HeaderPolicy, "cheapest")).Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if got.Choices[0].Message.Content != answer || resp.Header.Get(HeaderProvider) != e.addrs["b"] || got.Usage.CompletionTokens != 8 {
		t.Errorf("answer %q (%d tokens) from %s, want the full answer from the hedge b", got.Choices[0].Message.Content, got.Usage.CompletionTokens, resp.Header.Get(HeaderProvider))
	}
	if e.provs["a"].Requests() != 1 || e.provs["b"].Requests() != 1 {
		t.Errorf("requests a=%d b=%d, want one each (primary and hedge)", e.provs["a"].Requests(), e.provs["b"].Requests())
	}
	if tr := e.gw.Traffic(); tr.Hedges != 1 || tr.Requests != 1 {
		t.Errorf("traffic: %d hedges in %d requests, want 1 in 1", tr.Hedges, tr.Requests)
	}
	want, _ := channel.Cost(testPromptTokens, 8, 5000, 9000)
	if got := e.spent(); got != want {
		t.Errorf("key spend = %d, want b's %d", got, want)
	}
}

// TestNonStreamingLogprobs: the logprobs of a plain answer, with top alternatives, assembled
// from the chunks of two providers (a breaks after three tokens): chat entries in order, and
// a completion's text offsets counted from the start of the whole answer.
func TestNonStreamingLogprobs(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	toks := gatewaytest.DefaultTokens(8)

	p := chatParams(testPrompt)
	p.Logprobs, p.TopLogprobs = oai.Bool(true), oai.Int(2)
	var resp *http.Response
	res, err := e.client().Chat.Completions.New(context.Background(), p, option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(HeaderProvider); got != e.addrs["a"]+","+e.addrs["b"] {
		t.Fatalf("%s = %q, want both providers (the test needs the failover)", HeaderProvider, got)
	}
	var wantChat []openai.TokenLogprob
	for i, tok := range toks {
		wantChat = append(wantChat, gatewaytest.TokenLogprobTop(i, tok, 2))
	}
	var gotChat struct {
		Content []openai.TokenLogprob `json:"content"`
	}
	if err := json.Unmarshal([]byte(res.Choices[0].Logprobs.RawJSON()), &gotChat); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantChat, gotChat.Content); diff != "" {
		t.Errorf("chat logprobs (-want +got):\n%s", diff)
	}

	cp := oai.CompletionNewParams{Model: testModel, Prompt: oai.CompletionNewParamsPromptUnion{OfString: oai.String(testPrompt)}, Logprobs: oai.Int(2)}
	cres, err := e.client().Completions.New(context.Background(), cp)
	if err != nil {
		t.Fatal(err)
	}
	want := openai.CompletionLogprobs{}
	off := 0
	for i, tok := range toks {
		lp := gatewaytest.TokenLogprobTop(i, tok, 2)
		want.Tokens = append(want.Tokens, tok)
		want.TokenLogprobs = append(want.TokenLogprobs, lp.Logprob)
		want.TopLogprobs = append(want.TopLogprobs, map[string]float64{tok: lp.Logprob, "alt1": lp.Logprob - 1})
		want.TextOffset = append(want.TextOffset, off)
		off += len(tok)
	}
	var got openai.CompletionLogprobs
	if err := json.Unmarshal([]byte(cres.Choices[0].Logprobs.RawJSON()), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" || cres.Choices[0].Text != answer {
		t.Errorf("completion %q, logprobs (-want +got):\n%s", cres.Choices[0].Text, diff)
	}
}

// TestNonStreamingTTFT: a plain request's time to first token is measured: in the router's
// statistics (which hedging and the max-TTFT limit use), the explorer's histograms and the
// gateway's metric.
func TestNonStreamingTTFT(t *testing.T) {
	a := cheap("a")
	a.cfg.TTFT = 20 * time.Millisecond
	e := newEnv(t, Config{}, a)
	for i := 0; i < 3; i++ {
		if _, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt)); err != nil {
			t.Fatal(err)
		}
	}
	c := router.Candidate{Provider: e.addrs["a"]}
	e.gw.stats.Fill(&c, time.Now())
	if c.Samples != 3 || c.TTFTP95Ms < 20 || e.gw.stats.P95TTFT(e.addrs["a"]) < 20*time.Millisecond {
		t.Errorf("router stats: %d samples, p95 TTFT %.1f ms, want 3 samples of at least 20 ms", c.Samples, c.TTFTP95Ms)
	}
	count := func(counts []uint64) (n uint64) {
		for _, c := range counts {
			n += c
		}
		return n
	}
	tr := e.gw.Traffic()
	if n := count(tr.TTFTMs.Counts); n != 3 {
		t.Errorf("explorer TTFT histogram has %d samples, want 3", n)
	}
	var m dto.Metric
	if err := e.gw.metrics.ttft.Write(&m); err != nil {
		t.Fatal(err)
	}
	if n := m.GetHistogram().GetSampleCount(); n != 3 || m.GetHistogram().GetSampleSum() < 0.06 {
		t.Errorf("ttft metric: %d samples summing %.3f s, want 3 of at least 20 ms", n, m.GetHistogram().GetSampleSum())
	}
}

// TestNonStreamingClientGone: a client that gives up on a plain request mid-generation stops
// the provider's stream (it writes nothing more) and is charged nothing; the provider is
// still paid for the tokens it delivered.
func TestNonStreamingClientGone(t *testing.T) {
	e := newEnv(t, Config{NoHedge: true}, pricey("a"), provSpec{"b", gatewaytest.ProviderConfig{PriceIn: 2_000_000, PriceOut: 4_000_000}})
	reached, aborted := e.provs["a"].SetPause(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
		errc <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	select {
	case <-reached:
	case <-time.After(time.Until(deadline)):
		t.Fatal("a never delivered three tokens")
	}
	// Leave once the gateway has the answer's first token.
	for histCount(t, e.gw.metrics.ttft) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never got a's first token")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-aborted:
	case <-time.After(time.Until(deadline)):
		t.Fatal("a's stream was not cancelled after the client left")
	}
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request returned an answer")
	}
	owed := func() map[string]uint64 {
		m := map[string]uint64{}
		for _, c := range e.gw.Channels() {
			m[c.Provider] = c.Owed
		}
		return m
	}
	// The gateway's handler ends after the client has gone: wait until it has paid a.
	for owed()[e.addrs["a"]] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a was never paid for its delivered tokens")
		}
		time.Sleep(time.Millisecond)
	}
	if got := e.spent(); got != 0 {
		t.Errorf("key spend = %d, want 0 for an answer the client never got", got)
	}
	// a is paid for the prompt (the gateway's estimate, without a receipt) and the 1 to 3
	// tokens it relayed: 1 umyc per prompt token, 2 per output token.
	estIn := 4 + len(testPrompt)/4
	if o := owed(); o[e.addrs["a"]] < uint64(estIn+2) || o[e.addrs["a"]] > uint64(estIn+6) || o[e.addrs["b"]] != 0 {
		t.Errorf("owed %v, want a paid for at most its 3 delivered tokens (%d..%d umyc), b nothing", o, estIn+2, estIn+6)
	}
	if n := e.provs["b"].Requests(); n != 0 {
		t.Errorf("b got %d requests, want none (no failover for a client that left)", n)
	}
}

func histCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// TestSSEBufferReused: openai.NewSSEReader takes a pooled buffer as it is instead of
// allocating its own 64 KiB (else sseBufs would only add work).
func TestSSEBufferReused(t *testing.T) {
	br := sseBufs.Get().(*bufio.Reader)
	defer sseBufs.Put(br)
	br.Reset(strings.NewReader("data: {}\n\ndata: [DONE]\n\n"))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sse := openai.NewSSEReader(br)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n >= sseBufSize {
		t.Errorf("NewSSEReader allocated %d bytes, want the pooled buffer used as it is", n)
	}
	if ev, err := sse.Next(); err != nil || string(ev) != "{}" {
		t.Errorf("first event %q, %v, want {}", ev, err)
	}
}
