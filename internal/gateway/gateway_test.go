package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
	"github.com/mycel-network/mycel/internal/router"
	"github.com/mycel-network/mycel/internal/tx"
)

const (
	testChain = "mycel-test"
	testModel = "demo-model"
	answer    = "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7"
)

type provSpec struct {
	name string
	cfg  gatewaytest.ProviderConfig
}

type env struct {
	t        testing.TB
	ledger   *gatewaytest.Ledger
	gw       *Gateway
	url      string
	keys     *apikey.Store
	secret   string
	keyID    string
	receipts *ReceiptLog
	provs    map[string]*gatewaytest.Provider
	srvs     map[string]*httptest.Server // the providers' servers
	addrs    map[string]string
}

func newEnv(t testing.TB, cfg Config, specs ...provSpec) *env {
	t.Helper()
	l := gatewaytest.NewLedger(testChain)
	l.AddModel(testModel)
	l.AddModel("registered-but-unserved")
	gk, gaddr := gatewaytest.Key("gateway")
	e := &env{t: t, ledger: l, provs: map[string]*gatewaytest.Provider{}, srvs: map[string]*httptest.Server{}, addrs: map[string]string{}}
	for _, s := range specs {
		k, addr := gatewaytest.Key(s.name)
		c := s.cfg
		c.Key, c.Address, c.ChainID, c.Model = k, addr, testChain, testModel
		c.Consumer, c.ConsumerAddress = gk.Public().(ed25519PublicKey), gaddr
		p := gatewaytest.NewProvider(c)
		srv := httptest.NewServer(p)
		t.Cleanup(srv.Close)
		l.AddProvider(addr, srv.URL, k.Public().(ed25519PublicKey), testModel, c.PriceIn, c.PriceOut)
		e.provs[s.name], e.srvs[s.name], e.addrs[s.name] = p, srv, addr
	}
	dir := t.TempDir()
	ks, err := apikey.Open(filepath.Join(dir, "keys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	secret, k, err := ks.Create("test", 0, 0, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rl, err := OpenReceiptLog(filepath.Join(dir, "receipts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rl.Close() })
	gw, err := New(cfg, Deps{Chain: l, ConsumerKey: gk, ConsumerAddress: gaddr, Keys: ks, Receipts: rl, Anchorer: l, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	e.gw, e.url, e.keys, e.secret, e.keyID, e.receipts = gw, srv.URL, ks, secret, k.ID, rl
	return e
}

func (e *env) client(opts ...option.RequestOption) *oai.Client {
	c := oai.NewClient(append([]option.RequestOption{option.WithBaseURL(e.url + "/v1/"), option.WithAPIKey(e.secret), option.WithMaxRetries(0)}, opts...)...)
	return &c
}

// settled waits until the gateway has verified and accounted the receipts of the answers
// received so far (it does so after each response).
func (e *env) settled() {
	e.t.Helper()
	if err := e.gw.WaitSettled(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) spent() uint64 {
	e.settled()
	ks, err := e.keys.List()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range ks {
		if k.ID == e.keyID {
			return k.SpentUmyc
		}
	}
	e.t.Fatal("test key not listed")
	return 0
}

func cheap(name string) provSpec {
	return provSpec{name, gatewaytest.ProviderConfig{PriceIn: 1000, PriceOut: 2000}}
}

func dear(name string) provSpec {
	return provSpec{name, gatewaytest.ProviderConfig{PriceIn: 5000, PriceOut: 9000}}
}

func chatParams(prompt string) oai.ChatCompletionNewParams {
	return oai.ChatCompletionNewParams{Model: testModel, Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage(prompt)}}
}

// promptTokens is how the fake provider counts the prompt "say hello please".
const testPrompt = "say hello please"
const testPromptTokens = 3

func TestSDKChat(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"), dear("b"))
	c := e.client()
	var resp *http.Response
	got, err := c.Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(got.Choices))
	}
	type result struct {
		Content, Finish, Role, Provider string
		Prompt, Completion, Total       int64
		HasRequestID                    bool
	}
	want := result{answer, "stop", "assistant", e.addrs["a"], testPromptTokens, 8, 11, true}
	have := result{got.Choices[0].Message.Content, got.Choices[0].FinishReason, string(got.Choices[0].Message.Role),
		resp.Header.Get(HeaderProvider), got.Usage.PromptTokens, got.Usage.CompletionTokens, got.Usage.TotalTokens,
		strings.HasPrefix(resp.Header.Get(HeaderRequestID), "req_")}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	// Paid: one channel to a, spend = the receipt's cost, the receipt logged.
	wantCost, _ := channel.Cost(testPromptTokens, 8, 1000, 2000)
	if got := e.spent(); got != wantCost {
		t.Errorf("key spend = %d, want %d", got, wantCost)
	}
	if root, n := e.receipts.Root(0); n != 1 || root == "" {
		t.Errorf("receipt log has %d receipts in epoch 0, want 1", n)
	}
	chs := e.gw.Channels()
	if len(chs) != 1 || chs[0].Provider != e.addrs["a"] || chs[0].Owed != wantCost {
		t.Errorf("channels = %+v, want one to a owing %d", chs, wantCost)
	}
}

func TestSDKChatStreaming(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	c := e.client()
	p := chatParams(testPrompt)
	p.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
	stream := c.Chat.Completions.NewStreaming(context.Background(), p)
	var acc oai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if chunks < 9 {
		t.Errorf("chunks = %d, want one per token plus finish and usage", chunks)
	}
	if got := acc.Choices[0].Message.Content; got != answer {
		t.Errorf("content = %q, want %q", got, answer)
	}
	if acc.Usage.PromptTokens != testPromptTokens || acc.Usage.CompletionTokens != 8 {
		t.Errorf("usage = %+v, want %d prompt and 8 completion tokens", acc.Usage, testPromptTokens)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish = %q, want stop", acc.Choices[0].FinishReason)
	}
}

func TestSDKCompletions(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	c := e.client()
	params := oai.CompletionNewParams{Model: testModel, Prompt: oai.CompletionNewParamsPromptUnion{OfString: oai.String(testPrompt)}, MaxTokens: oai.Int(5)}
	got, err := c.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if want := "tok0 tok1 tok2 tok3 tok4"; got.Choices[0].Text != want || got.Choices[0].FinishReason != "length" {
		t.Errorf("completion = %q (%s), want %q (length)", got.Choices[0].Text, got.Choices[0].FinishReason, want)
	}
	stream := c.Completions.NewStreaming(context.Background(), params)
	var text strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			text.WriteString(ch.Text)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != "tok0 tok1 tok2 tok3 tok4" {
		t.Errorf("streamed completion = %q", text.String())
	}
}

func TestSDKErrors(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	brokeSecret, k, err := e.keys.Create("broke", 1, 0, 0, time.Now()) // a key with its budget spent
	if err != nil {
		t.Fatal(err)
	}
	if err := e.keys.Charge(k.ID, 1, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		opts       []option.RequestOption
		params     oai.ChatCompletionNewParams
		wantStatus int
		wantCode   string
		wantParam  string
		wantInMsg  string
	}{
		{"bad key", []option.RequestOption{option.WithAPIKey("sk-mycel-wrong")}, chatParams("hi"), 401, "invalid_api_key", "", "Incorrect API key"},
		{"unknown model", nil, oai.ChatCompletionNewParams{Model: "nope", Messages: chatParams("hi").Messages}, 404, "model_not_found", "model", "nope"},
		{"registered but unserved", nil, oai.ChatCompletionNewParams{Model: "registered-but-unserved", Messages: chatParams("hi").Messages}, 503, "no_provider", "", "No provider serves"},
		{"bad temperature", []option.RequestOption{option.WithJSONSet("temperature", "hot")}, chatParams("hi"), 400, "", "temperature", ""},
		{"too expensive", []option.RequestOption{option.WithHeader(HeaderMaxPrice, "10")}, chatParams("hi"), 503, "no_provider", "", "too_expensive"},
		{"bad policy", []option.RequestOption{option.WithHeader(HeaderPolicy, "random")}, chatParams("hi"), 400, "", "x-mycel-policy", ""},
		{"budget spent", []option.RequestOption{option.WithAPIKey(brokeSecret)}, chatParams("hi"), 429, "insufficient_quota", "", "budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client(tt.opts...).Chat.Completions.New(context.Background(), tt.params)
			var ae *oai.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an API error", err)
			}
			if ae.StatusCode != tt.wantStatus || ae.Code != tt.wantCode || ae.Param != tt.wantParam || !strings.Contains(ae.Message, tt.wantInMsg) {
				t.Errorf("error = %d code %q param %q %q, want %d code %q param %q containing %q",
					ae.StatusCode, ae.Code, ae.Param, ae.Message, tt.wantStatus, tt.wantCode, tt.wantParam, tt.wantInMsg)
			}
			if ae.Response.Header.Get(HeaderRequestID) == "" {
				t.Error("error without x-request-id")
			}
		})
	}
}

// TestMidStreamFailover kills the preferred provider after three tokens: the SDK client must
// see one complete answer with correct usage, and each provider is paid for what it delivered.
func TestMidStreamFailover(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	p := chatParams(testPrompt)
	p.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
	stream := e.client().Chat.Completions.NewStreaming(context.Background(), p)
	var acc oai.ChatCompletionAccumulator
	ids := map[string]bool{}
	var served []string // the "mycel" field of the final chunks
	for stream.Next() {
		acc.AddChunk(stream.Current())
		ids[stream.Current().ID] = true
		if ps := chunkProviders(t, stream.Current().RawJSON()); ps != nil {
			served = ps
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != answer {
		t.Errorf("content = %q, want %q", got, answer)
	}
	if want := []string{e.addrs["a"], e.addrs["b"]}; !slices.Equal(served, want) {
		t.Errorf("final chunks name providers %v, want %v", served, want)
	}
	if acc.Usage.PromptTokens != testPromptTokens || acc.Usage.CompletionTokens != 8 || acc.Usage.TotalTokens != 11 {
		t.Errorf("usage = %d/%d/%d, want %d/8/11", acc.Usage.PromptTokens, acc.Usage.CompletionTokens, acc.Usage.TotalTokens, testPromptTokens)
	}
	if len(ids) != 1 {
		t.Errorf("chunk ids = %v, want one id for the whole answer", ids)
	}
	// b continued from a's three tokens, given as an assistant prefix.
	bodies := e.provs["b"].Bodies()
	if len(bodies) != 1 {
		t.Fatalf("b got %d requests, want 1", len(bodies))
	}
	var sent struct {
		Messages []struct{ Role, Content string }
	}
	if err := json.Unmarshal(bodies[0], &sent); err != nil {
		t.Fatal(err)
	}
	last := sent.Messages[len(sent.Messages)-1]
	if last.Role != "assistant" || last.Content != "tok0 tok1 tok2" {
		t.Errorf("continuation ends with %+v, want the assistant prefix %q", last, "tok0 tok1 tok2")
	}
	// a is paid for 3 prompt + 3 delivered tokens only; b per its receipt (prompt + prefix in, 5 out).
	costA, _ := channel.Cost(testPromptTokens, 3, 1000, 2000)
	costB, _ := channel.Cost(testPromptTokens+3, 5, 5000, 9000)
	if got, want := e.spent(), costA+costB; got != want {
		t.Errorf("key spend = %d, want %d (a %d + b %d)", got, want, costA, costB)
	}
	// a's own count of delivered umyc matches what the gateway now owes it, so the next
	// voucher to a is accepted without a 402.
	var owedA uint64
	for _, c := range e.gw.Channels() {
		if c.Provider == e.addrs["a"] {
			owedA = c.Owed
			if d := e.provs["a"].Delivered(c.ID); d != owedA {
				t.Errorf("a delivered %d umyc, gateway owes %d", d, owedA)
			}
		}
	}
	if owedA != costA {
		t.Errorf("owed to a = %d, want %d", owedA, costA)
	}
	// The x-mycel-provider trailer lists both providers too; the header names the first.
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+testModel+`","stream":true,"messages":[{"role":"user","content":"`+testPrompt+`"}]}`))
	req.Header.Set("Authorization", "Bearer "+e.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	if got, want := resp.Trailer.Get(HeaderProvider), e.addrs["a"]+","+e.addrs["b"]; got != want {
		t.Errorf("%s trailer = %q, want %q", HeaderProvider, got, want)
	}
	if got := resp.Header.Get(HeaderProvider); got != e.addrs["a"] {
		t.Errorf("%s header = %q, want the first provider %q", HeaderProvider, got, e.addrs["a"])
	}
}

// chunkProviders returns the "mycel": {"providers"} field of a chunk, nil if it has none.
func chunkProviders(t *testing.T, raw string) []string {
	t.Helper()
	var c struct {
		Mycel *struct {
			Providers []string `json:"providers"`
		} `json:"mycel"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("chunk %s: %v", raw, err)
	}
	if c.Mycel == nil {
		return nil
	}
	return c.Mycel.Providers
}

func TestRetryBeforeFirstByteAndBreaker(t *testing.T) {
	a := cheap("a")
	a.cfg.Status = http.StatusInternalServerError
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	c := e.client()
	for i := 0; i < 7; i++ {
		var resp *http.Response
		got, err := c.Chat.Completions.New(context.Background(), chatParams(testPrompt), option.WithResponseInto(&resp))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got.Choices[0].Message.Content != answer || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
			t.Fatalf("request %d: answer %q from %s, want the full answer from b", i, got.Choices[0].Message.Content, resp.Header.Get(HeaderProvider))
		}
	}
	// After 5 consecutive failures a's breaker is open: a saw exactly 5 requests.
	if got := e.provs["a"].Requests(); got != 5 {
		t.Errorf("a got %d requests, want 5 (then its circuit breaker opens)", got)
	}
}

func TestNoMatchReasons(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"), dear("b"))
	e.ledger.Jail(e.addrs["a"])
	_, err := e.client(option.WithHeader(HeaderMaxPrice, "3000")).Chat.Completions.New(context.Background(), chatParams("hi"))
	var ae *oai.Error
	if !errors.As(err, &ae) || ae.StatusCode != 503 {
		t.Fatalf("err = %v, want 503", err)
	}
	for _, want := range []string{e.addrs["a"] + ": jailed", e.addrs["b"] + ": too_expensive"} {
		if !strings.Contains(ae.Message, want) {
			t.Errorf("503 message %q does not contain %q", ae.Message, want)
		}
	}
	if ae.Response.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestHedging(t *testing.T) {
	e := newEnv(t, Config{HedgeMin: time.Millisecond}, cheap("a"), dear("b"))
	// Teach the gateway a's p95 time to first token (1 ms).
	for i := 0; i < 5; i++ {
		e.gw.stats.Start(e.addrs["a"])
		e.gw.stats.Done(e.addrs["a"], routerOutcome(time.Millisecond), time.Now())
	}
	// Now a stalls before its first token until the test ends: the hedge on b must win.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e.provs["a"].SetHold(release)
	var resp *http.Response
	p := chatParams(testPrompt)
	stream := e.client(option.WithHeader(HeaderPolicy, "cheapest"), option.WithResponseInto(&resp)).Chat.Completions.NewStreaming(context.Background(), p)
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != answer || resp.Header.Get(HeaderProvider) != e.addrs["b"] {
		t.Errorf("answer %q from %s, want the full answer from the hedge b", acc.Choices[0].Message.Content, resp.Header.Get(HeaderProvider))
	}
	if e.provs["a"].Requests() != 1 || e.provs["b"].Requests() != 1 {
		t.Errorf("requests a=%d b=%d, want one each (primary and hedge)", e.provs["a"].Requests(), e.provs["b"].Requests())
	}
	if tr := e.gw.Traffic(); tr.Hedges != 1 || tr.Requests != 1 {
		t.Errorf("traffic: %d hedges in %d requests, want 1 in 1", tr.Hedges, tr.Requests)
	}
	// The primary was cancelled before its answer's headers: it may have billed all the same,
	// so its channel counts the attempt as uncertain (a claim for it after a 402 is adopted).
	waitFor(t, "the cancelled primary's attempt to count as uncertain", func() bool {
		c := e.gw.pay.channel(e.addrs["a"])
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.unsure > 0
	})
}

func TestModelsList(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"), dear("b"))
	page, err := e.client().Models.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != testModel {
		t.Fatalf("models = %+v, want only %s", page.Data, testModel)
	}
	var info ModelInfo
	if err := json.Unmarshal([]byte(page.Data[0].RawJSON()), &info); err != nil {
		t.Fatal(err)
	}
	want := ModelInfo{Providers: 2, PriceInPerMTok: Range{1000, 5000}, PriceOutPerMTok: Range{2000, 9000}}
	if diff := cmp.Diff(want, info, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Model" }, cmp.Ignore())); diff != "" {
		t.Errorf("model info (-want +got):\n%s", diff)
	}
}

func TestAnchorAndProve(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	ctx := context.Background()
	e.ledger.SetEpoch(4)
	if err := e.gw.anchor(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
			t.Fatal(err)
		}
	}
	e.settled()
	e.ledger.SetEpoch(5)
	if err := e.gw.anchor(ctx); err != nil {
		t.Fatal(err)
	}
	anchors := e.ledger.Anchors()
	root, n := e.receipts.Root(4)
	leaves := e.receipts.AuditLeaves(4)
	if len(leaves) != 3 || leaves[0].Provider != e.addrs["a"] {
		t.Fatalf("audit leaves %+v, want 3 from a", leaves)
	}
	want := []gatewaytest.Anchor{{Epoch: 4, Root: root, AuditRoot: tx.AnchorRoot(leaves), Count: 3}}
	if diff := cmp.Diff(want, anchors); diff != "" || n != 3 {
		t.Fatalf("anchors (-want +got):\n%s", diff)
	}
	// An epoch skipped while the gateway was not polling is past the ledger's window.
	e.ledger.SetEpoch(8)
	if err := e.gw.anchor(ctx); err != nil || len(e.ledger.Anchors()) != 1 {
		t.Errorf("after skipping epochs: err %v, %d anchors, want still 1 (nothing logged in 7)", err, len(e.ledger.Anchors()))
	}
	// Anchoring again does not repeat the epoch.
	if err := e.gw.anchor(ctx); err != nil || len(e.ledger.Anchors()) != 1 {
		t.Errorf("second anchor: err %v, %d anchors, want 1", err, len(e.ledger.Anchors()))
	}
}

func TestBadReceiptPaysOnlyDelivered(t *testing.T) {
	a := cheap("a")
	a.cfg.BadSignature = true
	e := newEnv(t, Config{}, a)
	if _, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt)); err != nil {
		t.Fatal(err)
	}
	e.settled()
	if _, n := e.receipts.Root(0); n != 0 {
		t.Errorf("a bad receipt was logged")
	}
	want, _ := channel.Cost(testPromptTokens, 8, 1000, 2000) // the gateway's own count
	if got := e.spent(); got != want {
		t.Errorf("spend = %d, want %d", got, want)
	}
}

func TestRequestIDEverywhere(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	for _, path := range []string{"/healthz", "/metrics", "/v1/nope", "/v1/models"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.HasPrefix(resp.Header.Get(HeaderRequestID), "req_") {
			t.Errorf("GET %s: no x-request-id (status %d)", path, resp.StatusCode)
		}
	}
}

// TestIdleClose: a channel unused for IdleClose gets the final voucher and is closed on the
// ledger; the next request opens a new one.
func TestIdleClose(t *testing.T) {
	e := newEnv(t, Config{IdleClose: time.Minute}, cheap("a"))
	now := time.Unix(1_000_000, 0)
	e.gw.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
		t.Fatal(err)
	}
	e.settled()
	e.gw.closeIdle(ctx) // not idle yet
	if chs := e.gw.Channels(); len(chs) != 1 {
		t.Fatalf("channels %+v, want the one in use", chs)
	}
	now = now.Add(2 * time.Minute)
	e.gw.closeIdle(ctx)
	if chs := e.gw.Channels(); len(chs) != 0 {
		t.Errorf("channels %+v after idling, want none", chs)
	}
	lc := e.ledger.Channels()
	if len(lc) != 1 || lc[0].CloseAt == 0 {
		t.Errorf("ledger channels %+v, want channel 1 closing", lc)
	}
	if _, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt)); err != nil {
		t.Fatal(err)
	}
	if opened, _ := e.ledger.Counts(); opened != 2 {
		t.Errorf("opened %d channels, want a new one after the close", opened)
	}
}

// TestLogprobs: chat logprobs pass through, streamed per chunk and whole in one answer, also
// across a mid-stream failover.
func TestLogprobs(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	want := make([]float64, 8)
	for i := range want {
		want[i] = -float64(i+1) / 8
	}
	p := chatParams(testPrompt)
	p.Logprobs = oai.Bool(true)
	// Streamed: a breaks after 3 tokens, b continues; logprobs of every delivered token.
	stream := e.client().Chat.Completions.NewStreaming(context.Background(), p)
	var got []float64
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			for _, lp := range c.Logprobs.Content {
				got = append(got, lp.Logprob)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("streamed logprobs (-want +got):\n%s", diff)
	}
	// Whole: assembled from a's three tokens and b's continuation.
	res, err := e.client().Chat.Completions.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, lp := range res.Choices[0].Logprobs.Content {
		got = append(got, lp.Logprob)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logprobs (-want +got):\n%s", diff)
	}
}

// TestTraffic: what the explorer charts — a failed-over stream (a breaks after three tokens,
// b continues) and a refused request.
func TestTraffic(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	p := chatParams(testPrompt)
	stream := e.client().Chat.Completions.NewStreaming(context.Background(), p)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	bad := chatParams(testPrompt)
	bad.Model = "no-such-model"
	if _, err := e.client().Chat.Completions.New(context.Background(), bad); err == nil {
		t.Fatal("unknown model: no error")
	}
	costA, _ := channel.Cost(testPromptTokens, 3, 1000, 2000)
	costB, _ := channel.Cost(testPromptTokens+3, 5, 5000, 9000)
	e.settled()
	tr := e.gw.Traffic()
	count := func(h explorer.Histogram) (n uint64) {
		for _, c := range h.Counts {
			n += c
		}
		return n
	}
	type prov struct {
		Address                     string
		Requests, Errors, TokensOut uint64
		TTFTs                       uint64
	}
	type totals struct {
		Requests, Errors, Failovers, Hedges, TokensIn, TokensOut, SpendUmyc, TTFTs uint64
		Providers                                                                  []prov
	}
	got := totals{tr.Requests, tr.Errors, tr.Failovers, tr.Hedges, tr.TokensIn, tr.TokensOut, tr.SpendUmyc, count(tr.TTFTMs), nil}
	for _, p := range tr.Providers {
		got.Providers = append(got.Providers, prov{p.Address, p.Requests, p.Errors, p.TokensOut, count(p.TTFTMs)})
		if len(p.TTFTMs.Counts) != len(p.TTFTMs.Bounds)+1 || len(p.TokensPerSec.Counts) != len(p.TokensPerSec.Bounds)+1 {
			t.Errorf("provider %s: malformed histograms %+v %+v", p.Address, p.TTFTMs, p.TokensPerSec)
		}
	}
	want := totals{Requests: 2, Errors: 1, Failovers: 1, TokensIn: testPromptTokens, TokensOut: 8, SpendUmyc: costA + costB, TTFTs: 1,
		Providers: []prov{
			{Address: e.addrs["a"], Requests: 1, Errors: 1, TokensOut: 3, TTFTs: 1},
			{Address: e.addrs["b"], Requests: 1, TokensOut: 5, TTFTs: 1},
		}}
	sort.Slice(want.Providers, func(i, j int) bool { return want.Providers[i].Address < want.Providers[j].Address })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("traffic (-want +got):\n%s", diff)
	}
}

// TestTrafficHistograms: an attempt's TTFT and decode speed (tokens after the first per
// second) land in the right buckets; a non-streamed answer has neither.
func TestTrafficHistograms(t *testing.T) {
	tr := newTraffic()
	tr.attempt("p", router.Outcome{OK: true, TTFT: 30 * time.Millisecond})                                              // TTFT only
	tr.attempt("p", router.Outcome{OK: true, TTFT: 3 * time.Millisecond, TokensOut: 5, Decode: 100 * time.Millisecond}) // 40 tok/s
	tr.attempt("p", router.Outcome{OK: true, TokensOut: 7})                                                             // a whole answer
	tr.attempt("p", router.Outcome{OK: false})
	got := tr.providers["p"]
	wantTTFT := make([]uint64, len(ttftBoundsMs)+1)
	wantTTFT[2]++ // (2, 5] ms
	wantTTFT[5]++ // (20, 50] ms
	wantTPS := make([]uint64, len(tokensPerSecB)+1)
	wantTPS[5]++ // (20, 50] tokens/s
	if diff := cmp.Diff(explorer.ProviderTraffic{Address: "p", Requests: 4, Errors: 1, TokensOut: 12,
		TTFTMs:       explorer.Histogram{Bounds: ttftBoundsMs, Counts: wantTTFT},
		TokensPerSec: explorer.Histogram{Bounds: tokensPerSecB, Counts: wantTPS}}, *got); diff != "" {
		t.Errorf("provider traffic (-want +got):\n%s", diff)
	}
}
