package provider

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/backend"
)

// synthetic output of n tokens: "t0 t1 … t(n-1)" with logprobs -(i%7)/8.
func synthOut(n int) (string, []int32, []float32) {
	var b strings.Builder
	var ids []int32
	var lps []float32
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("t")
		b.WriteString(itoa(i))
		ids = append(ids, int32(i))
		lps = append(lps, -float32(i%7)/8)
	}
	return b.String(), ids, lps
}

func itoa(i int) string { return strconv.Itoa(i) }

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestChatNonStreaming(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	// The first token comes 40 ms after the request, the next four 10 ms apart.
	clock := h.useClock()
	start := clock.Now()
	h.syn.OnToken = func(i int) {
		if i == 0 {
			clock.advance(40 * time.Millisecond)
		} else {
			clock.advance(10 * time.Millisecond)
		}
	}
	body := chatBody(5, `,"logprobs":true,"top_logprobs":1`)
	code, cc, rc, e, hdr := h.chat(call{body: body, voucher: h.voucher(1, 0), reqID: "req-1"})
	if code != 200 {
		t.Fatalf("status %d: %v", code, e)
	}
	text, ids, lps := synthOut(5)
	if got := cc.Choices[0].Message.Content; got != text {
		t.Errorf("content %q, want %q", got, text)
	}
	if diff := gocmp.Diff(&openai.Usage{PromptTokens: 2, CompletionTokens: 5, TotalTokens: 7}, cc.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	if n := len(cc.Choices[0].Logprobs.Content); n != 5 {
		t.Errorf("%d logprob entries, want 5", n)
	}
	if err := rc.Verify(h.provPub()); err != nil {
		t.Fatalf("receipt: %v", err)
	}
	want := channel.Receipt{ChainID: testChain, RequestID: "req-1", Provider: h.prov, Consumer: h.alice, ChannelID: 1,
		ModelID: "synthetic", ModelSHA256: hexHash("synthetic"), RequestHash: sum(body), OutputHash: sum(text),
		TokensIn: 2, TokensOut: 5, PriceInPerMTok: 1_000_000, PriceOutPerMTok: 2_000_000, Cost: 12, Cumulative: 12,
		LogprobsCommitment: channel.LogprobsCommitment(ids, lps), FinishReason: "length",
		QueueMs: 0, TTFTMs: 40, DurationMs: 80, MilliTokensPerSec: 100_000, // 4 tokens in the 40 ms after the first
		TimeUnixMs: start.Add(80 * time.Millisecond).UnixMilli()}
	ignore := cmpopts.IgnoreFields(channel.Receipt{}, "Signature")
	if diff := gocmp.Diff(want, rc, ignore); diff != "" {
		t.Errorf("receipt (-want +got):\n%s", diff)
	}
	if hdr.Get(channel.HeaderRequestID) != "req-1" {
		t.Errorf("request id header %q", hdr.Get(channel.HeaderRequestID))
	}
	// The receipt was stored before it was sent (unsigned: the signature is deterministic)
	// and can be fetched again, signed.
	stored, ok, err := h.store.Receipt(1, "req-1")
	if err != nil || !ok {
		t.Fatalf("stored receipt: %v %v", ok, err)
	}
	if diff := gocmp.Diff(rc, channel.SignReceipt(stored, h.provKey)); diff != "" {
		t.Errorf("stored receipt (-sent +stored):\n%s", diff)
	}
	if diff := gocmp.Diff(rc, h.fetchReceipt(1, "req-1")); diff != "" {
		t.Errorf("fetched receipt (-sent +fetched):\n%s", diff)
	}
	// Same request id again: refused, nothing billed twice.
	code, _, _, e, _ = h.chat(call{body: body, voucher: h.voucher(1, 12), reqID: "req-1"})
	if code != http.StatusConflict {
		t.Errorf("duplicate request id: status %d (%v), want 409", code, e)
	}
	if got := h.channelInfo(1).Delivered; got != 12 {
		t.Errorf("delivered %d after duplicate, want 12", got)
	}
}

// readStream returns the data events of an SSE answer (without [DONE]) and whether [DONE] came.
func readStream(t *testing.T, r io.Reader) ([]json.RawMessage, bool) {
	t.Helper()
	sr := openai.NewSSEReader(r)
	var evs []json.RawMessage
	for {
		d, err := sr.Next()
		if err == io.EOF {
			return evs, true
		}
		if err != nil {
			return evs, false
		}
		evs = append(evs, append(json.RawMessage(nil), d...))
	}
}

func TestChatStreaming(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	body := `{"model":"synthetic","messages":[{"role":"user","content":"hi"}],"max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}`
	resp := h.do(context.Background(), call{body: body, voucher: h.voucher(1, 0)})
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs, done := readStream(t, resp.Body)
	if !done {
		t.Fatal("stream ended without [DONE]")
	}
	// role, 4 content chunks, finish, usage, receipt
	if len(evs) != 8 {
		t.Fatalf("%d events, want 8:\n%s", len(evs), evs)
	}
	var content strings.Builder
	for _, ev := range evs[:7] {
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal(ev, &c); err != nil {
			t.Fatal(err)
		}
		if c.Object != openai.ObjectChatCompletionChunk {
			t.Errorf("object %q", c.Object)
		}
		if len(c.Choices) > 0 {
			content.WriteString(c.Choices[0].Delta.Content)
		}
	}
	text, _, _ := synthOut(4)
	if content.String() != text {
		t.Errorf("streamed %q, want %q", content.String(), text)
	}
	var fin openai.ChatCompletionChunk
	_ = json.Unmarshal(evs[5], &fin)
	if fin.Choices[0].FinishReason == nil || *fin.Choices[0].FinishReason != "length" {
		t.Errorf("finish chunk %s", evs[5])
	}
	var usage openai.ChatCompletionChunk
	_ = json.Unmarshal(evs[6], &usage)
	if diff := gocmp.Diff(&openai.Usage{PromptTokens: 2, CompletionTokens: 4, TotalTokens: 6}, usage.Usage); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
	var re channel.ReceiptEvent
	if err := json.Unmarshal(evs[7], &re); err != nil || re.Object != channel.ReceiptEventObject {
		t.Fatalf("receipt event %s: %v", evs[7], err)
	}
	if err := re.Receipt.Verify(h.provPub()); err != nil {
		t.Fatal(err)
	}
	if re.Receipt.Cost != 10 || re.Receipt.Cumulative != 10 || re.Receipt.OutputHash != sum(text) {
		t.Errorf("receipt cost %d cumulative %d output hash %s", re.Receipt.Cost, re.Receipt.Cumulative, re.Receipt.OutputHash)
	}
}

func TestCompletion(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	resp := h.do(context.Background(), call{path: "/v1/completions", body: `{"model":"synthetic","prompt":"once upon a time","max_tokens":3,"logprobs":2}`, voucher: h.voucher(1, 0)})
	defer resp.Body.Close()
	var c openai.Completion
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	text, _, _ := synthOut(3)
	if c.Object != openai.ObjectTextCompletion || c.Choices[0].Text != text {
		t.Errorf("completion %+v", c)
	}
	lp := c.Choices[0].Logprobs
	if lp == nil || len(lp.Tokens) != 3 || len(lp.TextOffset) != 3 || lp.TextOffset[1] != 2 {
		t.Errorf("logprobs %+v", lp)
	}
	rc, err := channel.DecodeReceiptHeader(resp.Header.Get(channel.HeaderReceipt))
	if err != nil || rc.Verify(h.provPub()) != nil || rc.TokensIn != 5 || rc.TokensOut != 3 {
		t.Errorf("receipt %+v: %v", rc, err)
	}
}

// TestCreditLimit: with vouchers that only cover past deliveries, a request runs on credit
// and stops with finish_reason "length" where the credit ends, billed for what it delivered.
// Vouchers after the first are verified only when the credit needs them.
func TestCreditLimit(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	var delivered uint64
	for i := 0; i < 3; i++ {
		code, _, rc, e, _ := h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, delivered)})
		if code != 200 {
			t.Fatalf("request %d: %d %v", i, code, e)
		}
		delivered = rc.Cumulative
	}
	if delivered != 36 {
		t.Fatalf("delivered %d, want 36", delivered)
	}
	if got := counterValue(h.p.metrics.VoucherVerifies); got != 1 {
		t.Errorf("%v voucher verifications after 3 requests within credit, want 1 (the first)", got)
	}
	// Latest voucher 36 (unverified). Credit 100 on top of it once verified: the request
	// may cost 100: 2 for the prompt and 49 tokens at 2.
	code, cc, rc, e, _ := h.chat(call{body: chatBody(1000, ""), voucher: h.voucher(1, delivered)})
	if code != 200 {
		t.Fatalf("long request: %d %v", code, e)
	}
	if cc.Choices[0].FinishReason != "length" || rc.TokensOut != 49 || rc.Cost != 100 || rc.Cumulative != 136 {
		t.Errorf("finish %q, tokens out %d, cost %d, cumulative %d; want length, 49, 100, 136", cc.Choices[0].FinishReason, rc.TokensOut, rc.Cost, rc.Cumulative)
	}
	if got := counterValue(h.p.metrics.VoucherVerifies); got != 2 {
		t.Errorf("%v voucher verifications, want 2", got)
	}
	// Without a new voucher covering the 136 delivered, nothing more is served.
	code, _, _, e, hdr := h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, delivered)})
	if code != http.StatusPaymentRequired || e.Code != openai.CodePaymentRequired || hdr.Get(HeaderDelivered) != "136" {
		t.Errorf("stale voucher: status %d, error %v, delivered header %q", code, e, hdr.Get(HeaderDelivered))
	}
}

func TestExhaustedDeposit(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 20)
	code, cc, rc, e, _ := h.chat(call{body: chatBody(100, ""), voucher: h.voucher(1, 0)})
	if code != 200 {
		t.Fatalf("%d %v", code, e)
	}
	if cc.Choices[0].FinishReason != "length" || rc.TokensOut != 9 || rc.Cumulative != 20 {
		t.Errorf("finish %q tokens %d cumulative %d, want length 9 20", cc.Choices[0].FinishReason, rc.TokensOut, rc.Cumulative)
	}
	code, _, _, e, _ = h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 20)})
	if code != http.StatusPaymentRequired || !strings.Contains(e.Message, "exhausted") {
		t.Errorf("exhausted channel: %d %v", code, e)
	}
	if got := h.channelInfo(1).Delivered; got != 20 {
		t.Errorf("delivered %d, want 20", got)
	}
	// The consumer tops the channel up: the next request sees it at once.
	h.openChannel(1, 1000)
	if code, _, rc, e, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 20)}); code != 200 || rc.Cumulative != 24 {
		t.Errorf("after top-up: %d %v cumulative %d", code, e, rc.Cumulative)
	}
}

// TestForgedVoucher: a forged first voucher is refused at once; a forged later voucher is
// refused the moment the provider would rely on it, so exposure never passes the credit.
func TestForgedVoucher(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	mallory, _ := testKey("mallory")
	forged := func(amount uint64) string {
		s, _ := channel.EncodeHeader(channel.SignVoucher(testChain, 1, amount, mallory))
		return s
	}
	code, _, _, e, _ := h.chat(call{body: chatBody(5, ""), voucher: forged(0)})
	if code != http.StatusPaymentRequired || !strings.Contains(e.Message, "signature") {
		t.Fatalf("forged first voucher: %d %v", code, e)
	}
	if code, _, _, e, _ = h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, 0)}); code != 200 {
		t.Fatalf("%d %v", code, e)
	}
	// Forged voucher for 12: accepted unverified while within credit of the verified 0.
	code, _, rc, e, _ := h.chat(call{body: chatBody(5, ""), voucher: forged(12)})
	if code != 200 {
		t.Fatalf("forged voucher within credit: %d %v", code, e)
	}
	// A long request needs the credit of the forged voucher: refused mid-way.
	code, cc, rc2, e, _ := h.chat(call{body: chatBody(1000, ""), voucher: forged(rc.Cumulative)})
	if code != 200 {
		t.Fatalf("%d %v", code, e)
	}
	if cc.Choices[0].FinishReason != "length" || rc2.Cumulative > 100 {
		t.Errorf("finish %q cumulative %d: exposure passed the credit of 100 over the verified voucher of 0", cc.Choices[0].FinishReason, rc2.Cumulative)
	}
	// The provider forgot the forged voucher: the redeemable one is still the genuine 0.
	if ci := h.channelInfo(1); ci.Verified != 0 || ci.VoucherAmount != 0 {
		t.Errorf("channel %+v: want verified 0 and voucher amount 0", ci)
	}
	code, _, _, e, _ = h.chat(call{body: chatBody(5, ""), voucher: forged(rc2.Cumulative)})
	if code != http.StatusPaymentRequired {
		t.Errorf("forged voucher beyond credit: %d %v", code, e)
	}
	// The voucher journal recorded the forgetting too: a restart does not bring it back.
	h.restart(testConfig())
	if ci := h.channelInfo(1); ci.VoucherAmount != 0 {
		t.Errorf("after restart: voucher amount %d, want the genuine 0", ci.VoucherAmount)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, func(c *Config, s *backend.Synthetic) { s.ContextLength = 64 })
	h.openChannel(1, 1_000_000)
	other, otherAddr := testKey("other-provider")
	_ = other
	h.chain.SetChannel(ledgerChannel(2, h.alice, otherAddr, 1000))
	wrongChain, _ := channel.EncodeHeader(channel.SignVoucher("other-chain", 1, 0, h.aliceKey))
	good := h.voucher(1, 0)
	tests := []struct {
		name   string
		c      call
		status int
		code   string
		param  string
	}{
		{"malformed json", call{body: `{"model":`, voucher: good}, 400, "", ""},
		{"wrong type", call{body: `{"model":"synthetic","messages":[{"role":"user","content":"x"}],"max_tokens":"5"}`, voucher: good}, 400, "", "max_tokens"},
		{"unknown model", call{body: `{"model":"gpt-5","messages":[{"role":"user","content":"x"}]}`, voucher: good}, 404, openai.CodeModelNotFound, "model"},
		{"oversized body", call{body: `{"model":"synthetic","messages":[{"role":"user","content":"` + strings.Repeat("a", 70<<10) + `"}]}`, voucher: good}, 413, openai.CodeBodyTooLarge, ""},
		{"prompt longer than context", call{body: `{"model":"synthetic","messages":[{"role":"user","content":"` + strings.Repeat("abcd", 100) + `"}]}`, voucher: good}, 400, openai.CodeContextLength, "messages"},
		{"missing voucher", call{body: chatBody(5, "")}, 402, openai.CodePaymentRequired, ""},
		{"garbage voucher", call{body: chatBody(5, ""), voucher: "%%%"}, 402, openai.CodePaymentRequired, ""},
		{"voucher for another chain", call{body: chatBody(5, ""), voucher: wrongChain}, 402, openai.CodePaymentRequired, ""},
		{"voucher for another provider", call{body: chatBody(5, ""), voucher: h.voucher(2, 0)}, 402, openai.CodePaymentRequired, ""},
		{"unknown channel", call{body: chatBody(5, ""), voucher: h.voucher(99, 0)}, 402, openai.CodePaymentRequired, ""},
		{"bad request id", call{body: chatBody(5, ""), voucher: good, reqID: "a/b"}, 400, "", ""},
		{"echo unsupported", call{path: "/v1/completions", body: `{"model":"synthetic","prompt":"x","echo":true}`, voucher: good}, 400, openai.CodeUnsupportedValue, "echo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, _, e, _ := h.chat(tt.c)
			if code != tt.status {
				t.Fatalf("status %d (%v), want %d", code, e, tt.status)
			}
			if e == nil || e.Message == "" || e.Code != tt.code || e.Param != tt.param {
				t.Errorf("error %+v, want code %q param %q and a message", e, tt.code, tt.param)
			}
		})
	}
	// Nothing was served or billed.
	if ci := h.channelInfo(1); ci.Delivered != 0 || ci.Receipts != 0 || ci.InFlight != 0 {
		t.Errorf("channel after bad input: %+v", ci)
	}
	n, err := h.store.Channels()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range n {
		if r.Delivered != 0 {
			t.Errorf("stored channel %d delivered %d", r.ID, r.Delivered)
		}
	}
}

func TestQueueFull(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, func(c *Config, s *backend.Synthetic) {
		c.Models[0].MaxConcurrent, c.Models[0].QueueLength = 1, 1
		s.Gate = gate
	})
	clock := h.useClock()
	h.openChannel(1, 1_000_000)
	type result struct {
		code int
		rc   channel.Receipt
	}
	results := make(chan result, 2)
	for _, id := range []string{"a", "b"} {
		go func() {
			code, _, rc, _, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 0), reqID: id})
			results <- result{code, rc}
		}()
	}
	// One request runs (blocked at the gate), the other waits in the queue.
	m := h.p.models["synthetic"]
	waitFor(t, func() bool { return m.sched.depth() == 1 })
	code, _, _, e, hdr := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 0), reqID: "c"})
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" || e.Type != openai.TypeRateLimit {
		t.Errorf("third request: %d %v Retry-After %q; want 429 with Retry-After", code, e, hdr.Get("Retry-After"))
	}
	clock.advance(50 * time.Millisecond) // the queued request waits 50 ms
	gate <- struct{}{}
	gate <- struct{}{}
	var queueMs []uint64
	for i := 0; i < 2; i++ {
		r := <-results
		if r.code != 200 {
			t.Errorf("queued request: %d", r.code)
			continue
		}
		// Both arrived before the clock moved and got their token after: 50 ms to the first
		// token and in all, of which the one queued spent 50 ms in the queue.
		if r.rc.TTFTMs != 50 || r.rc.DurationMs != 50 || r.rc.MilliTokensPerSec != 0 {
			t.Errorf("request %s: ttft %d ms, duration %d ms, rate %d; want 50, 50, 0 (one token)", r.rc.RequestID, r.rc.TTFTMs, r.rc.DurationMs, r.rc.MilliTokensPerSec)
		}
		queueMs = append(queueMs, r.rc.QueueMs)
	}
	slices.Sort(queueMs)
	if !slices.Equal(queueMs, []uint64{0, 50}) {
		t.Errorf("queue times %v ms, want [0 50]: the running request did not wait, the queued one 50 ms", queueMs)
	}
}

// waitFor polls cond (state owned by other goroutines) until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDisconnect: a streaming client that goes away stops generation before the next token
// and is billed only for the tokens it was sent.
func TestDisconnect(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, func(c *Config, s *backend.Synthetic) { s.Gate = gate })
	h.openChannel(1, 1_000_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { gate <- struct{}{}; gate <- struct{}{} }() // two tokens may be generated
	resp := h.do(ctx, call{body: `{"model":"synthetic","messages":[{"role":"user","content":"hi"}],"max_tokens":50,"stream":true}`, voucher: h.voucher(1, 0), reqID: "gone"})
	sr := openai.NewSSEReader(resp.Body)
	for i := 0; i < 3; i++ { // role chunk and two tokens
		if _, err := sr.Next(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	resp.Body.Close()
	<-h.served // the handler returned: generation stopped at the gate of token 3
	rc := h.fetchReceipt(1, "gone")
	if rc.TokensOut != 2 || rc.Cost != 2+4 || rc.FinishReason != "cancel" {
		t.Errorf("receipt tokens out %d cost %d finish %q; want 2, 6, cancel", rc.TokensOut, rc.Cost, rc.FinishReason)
	}
	if err := rc.Verify(h.provPub()); err != nil {
		t.Error(err)
	}
	if ci := h.channelInfo(1); ci.Delivered != 6 || ci.InFlight != 0 {
		t.Errorf("channel %+v", ci)
	}
}

// TestDisconnectNonStreaming: a non-streaming client that goes away mid-generation received
// nothing, so it pays nothing (not even the prompt) and gets no receipt; generation stops and
// what the request had been charged is released (docs/spec/channels.md, Payment rule).
func TestDisconnectNonStreaming(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, func(c *Config, s *backend.Synthetic) { s.Gate = gate })
	h.openChannel(1, 1_000_000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"synthetic","messages":[{"role":"user","content":"hi"}],"max_tokens":50}`))
		req.Header.Set(channel.HeaderVoucher, h.voucher(1, 0))
		req.Header.Set(channel.HeaderRequestID, "gone")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("the request answered %s, want it cancelled", resp.Status)
		}
	}()
	gate <- struct{}{} // two tokens generated and charged…
	gate <- struct{}{}
	waitFor(t, func() bool { return h.channelInfo(1).InFlight > 0 })
	cancel() // …then the client leaves
	<-done
	<-h.served // the handler returned: generation stopped at the gate of token 3
	resp, err := http.Get(h.srv.URL + "/mycel/v1/receipts/1/gone")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("receipt of the cancelled request: status %d, want 404", resp.StatusCode)
	}
	if ci := h.channelInfo(1); ci.Delivered != 0 || ci.InFlight != 0 {
		t.Errorf("channel %+v, want nothing delivered or in flight", ci)
	}
	if got := counterValue(h.p.metrics.Errors.WithLabelValues("synthetic", "client_gone")); got != 1 {
		t.Errorf("client_gone errors %v, want 1", got)
	}
	// The same voucher still covers everything delivered: the next request is served.
	go func() {
		for i := 0; i < 2; i++ {
			gate <- struct{}{}
		}
	}()
	status, cc, rc, e, _ := h.chat(call{body: chatBody(2, ""), voucher: h.voucher(1, 0), reqID: "next"})
	if status != http.StatusOK {
		t.Fatalf("next request: %d %v", status, e)
	}
	if cc.Choices[0].Message.Content != "t0 t1" || rc.Cumulative != rc.Cost {
		t.Errorf("next answer %q receipt %+v: want t0 t1 billed alone", cc.Choices[0].Message.Content, rc)
	}
}

func TestUnhealthyModel(t *testing.T) {
	var down bool
	h := newHarness(t, func(c *Config, s *backend.Synthetic) {
		s.HealthErr = func() error {
			if down {
				return errors.New("engine down")
			}
			return nil
		}
	})
	h.openChannel(1, 1_000_000)
	health := func() int {
		resp, err := http.Get(h.srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	down = true
	h.p.probe(context.Background())
	if code, _, _, e, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 0)}); code != 503 || e.Code != openai.CodeModelUnhealthy {
		t.Errorf("unhealthy model: %d %v", code, e)
	}
	if got := health(); got != 503 {
		t.Errorf("/healthz %d while unhealthy", got)
	}
	down = false
	h.p.probe(context.Background())
	if got := health(); got != 200 {
		t.Errorf("/healthz %d after recovery", got)
	}
	if code, _, _, e, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 0)}); code != 200 {
		t.Errorf("recovered model: %d %v", code, e)
	}
}

// TestRedeemAndRestart: the provider redeems only vouchers covering delivered tokens, keeps
// everything across a restart, and redeems a closing channel.
func TestRedeemAndRestart(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	ctx := context.Background()
	code, _, rc, e, _ := h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, 0)})
	if code != 200 {
		t.Fatal(code, e)
	}
	// A voucher paying ahead (more than delivered) is accepted but never redeemed as such.
	resp, err := http.Post(h.srv.URL+"/mycel/v1/voucher", "application/json", strings.NewReader(mustJSON(channel.SignVoucher(testChain, 1, 50, h.aliceKey))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("voucher endpoint: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	h.p.redeemAll(ctx, 1, "test")
	if ch, _ := h.chain.Channel(ctx, 1); ch.Redeemed != 0 {
		t.Errorf("redeemed %d while the only verified voucher ≤ delivered is 0", ch.Redeemed)
	}
	// Deliveries catch up with the voucher of 50: it becomes redeemable.
	for rc.Cumulative < 50 {
		code, _, rc, e, _ = h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, 50)})
		if code != 200 {
			t.Fatal(code, e)
		}
	}
	h.p.redeemAll(ctx, 1, "test")
	if ch, _ := h.chain.Channel(ctx, 1); ch.Redeemed != 50 {
		t.Errorf("redeemed %d, want 50", ch.Redeemed)
	}
	delivered := rc.Cumulative

	// Restart over the same store: delivered total and vouchers survive.
	h.restart(testConfig())
	if ci := h.channelInfo(1); ci.Delivered != delivered || ci.Redeemed != 50 || ci.VoucherAmount != 50 {
		t.Errorf("after restart: %+v, want delivered %d redeemed 50 voucher 50", ci, delivered)
	}
	if code, _, _, _, _ := h.chat(call{body: chatBody(5, ""), voucher: h.voucher(1, 50)}); code != http.StatusPaymentRequired {
		t.Errorf("stale voucher after restart: %d", code)
	}
	// The consumer starts closing: the provider redeems its latest voucher at once.
	if code, _, _, e, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, delivered)}); code != 200 {
		t.Fatal(code, e)
	}
	ch, _ := h.chain.Channel(ctx, 1)
	ch.CloseAt = 100
	h.chain.SetChannel(ch)
	h.p.refreshChannels(ctx)
	if ch, _ := h.chain.Channel(ctx, 1); ch.Redeemed != delivered {
		t.Errorf("closing channel redeemed %d, want %d", ch.Redeemed, delivered)
	}
	if code, _, _, _, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, delivered+3)}); code != http.StatusPaymentRequired {
		t.Errorf("request on a closing channel: %d, want 402", code)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// metricsText returns the provider's /metrics exposition.
func (h *harness) metricsText() string {
	h.t.Helper()
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// checkMetrics fails unless every line of want is a line of the /metrics exposition.
func (h *harness) checkMetrics(step string, want ...string) {
	h.t.Helper()
	lines := strings.Split(h.metricsText(), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			h.t.Errorf("%s: /metrics lacks %q", step, w)
		}
	}
}

// TestMetricsAndInfo: the counters and gauges follow requests, errors, receipts and
// redemptions as they happen (pending earnings included, without waiting for a channel poll).
func TestMetricsAndInfo(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	h.openChannel(2, 1_000_000)
	h.checkMetrics("at start",
		`mycel_provider_earnings_pending_umyc 0`,
		`mycel_provider_earnings_redeemed_umyc_total 0`)
	if code, _, _, e, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(1, 0)}); code != 200 {
		t.Fatal(code, e)
	}
	h.checkMetrics("after a receipt of 8 umyc",
		`mycel_provider_requests_total{code="200",model="synthetic"} 1`,
		`mycel_provider_tokens_total{direction="out",model="synthetic"} 3`,
		`mycel_provider_tokens_total{direction="in",model="synthetic"} 2`,
		`mycel_provider_earnings_billed_umyc_total 8`,
		`mycel_provider_queue_depth{model="synthetic"} 0`,
		`mycel_provider_earnings_pending_umyc 8`,
		`mycel_provider_earnings_redeemed_umyc_total 0`)
	if code, _, _, e, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(2, 0)}); code != 200 {
		t.Fatal(code, e)
	}
	h.checkMetrics("after a receipt of 4 umyc on another channel",
		`mycel_provider_earnings_billed_umyc_total 12`,
		`mycel_provider_earnings_pending_umyc 12`)
	// Errors: a request without a voucher, a stale voucher, an unknown model.
	if code, _, _, _, _ := h.chat(call{body: chatBody(1, "")}); code != http.StatusPaymentRequired {
		t.Fatalf("no voucher: %d", code)
	}
	if code, _, _, _, _ := h.chat(call{body: chatBody(1, ""), voucher: h.voucher(1, 7)}); code != http.StatusPaymentRequired {
		t.Fatalf("stale voucher: %d", code)
	}
	if code, _, _, _, _ := h.chat(call{body: `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, voucher: h.voucher(1, 8)}); code != http.StatusNotFound {
		t.Fatalf("unknown model: %d", code)
	}
	h.checkMetrics("after three failed requests",
		`mycel_provider_errors_total{kind="payment",model="synthetic"} 2`,
		`mycel_provider_errors_total{kind="bad_request",model="unknown"} 1`,
		`mycel_provider_requests_total{code="402",model="synthetic"} 2`,
		`mycel_provider_earnings_pending_umyc 12`)
	// The consumer of channel 1 pays its receipt; a redemption moves it from pending to redeemed.
	resp, err := http.Post(h.srv.URL+"/mycel/v1/voucher", "application/json", strings.NewReader(mustJSON(channel.SignVoucher(testChain, 1, 8, h.aliceKey))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("voucher: %v %v", resp, err)
	}
	resp.Body.Close()
	h.p.redeemAll(context.Background(), 1, "test")
	h.checkMetrics("after redeeming channel 1",
		`mycel_provider_earnings_redeemed_umyc_total 8`,
		`mycel_provider_earnings_pending_umyc 4`,
		`mycel_provider_redemptions_total{result="ok"} 1`)
	// A restart counts what is pending from the store.
	h.restart(testConfig())
	h.checkMetrics("after a restart", `mycel_provider_earnings_pending_umyc 4`)
	// The ledger closes channel 2 unredeemed: its earnings are no longer pending.
	ch, _ := h.chain.Channel(context.Background(), 2)
	ch.Closed = true
	h.chain.SetChannel(ch)
	h.p.refreshChannels(context.Background())
	h.checkMetrics("after channel 2 closed", `mycel_provider_earnings_pending_umyc 0`)

	resp, err = http.Get(h.srv.URL + "/mycel/v1/info")
	if err != nil {
		t.Fatal(err)
	}
	var in Info
	_ = json.NewDecoder(resp.Body).Decode(&in)
	resp.Body.Close()
	want := Info{Address: h.prov, ChainID: testChain, Healthy: true, Credit: 100, Models: []ModelInfo{{ID: "synthetic", SHA256: hexHash("synthetic"),
		PriceInPerMTok: 1_000_000, PriceOutPerMTok: 2_000_000, ContextLength: 4096, Healthy: true, MaxConcurrent: 2, QueueLength: 4}}}
	if diff := gocmp.Diff(want, in); diff != "" {
		t.Errorf("info (-want +got):\n%s", diff)
	}
}

// TestDeadEngine: an OpenAI-compatible engine that does not answer gives 503 and marks the
// model unhealthy until a probe succeeds; nothing is billed.
func TestDeadEngine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String() + "/v1"
	ln.Close() // nothing listens there now
	prof, _ := backend.LookupProfile("vllm")
	ob, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: dead, Profile: prof, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	h.p.models["synthetic"].b = ob
	code, _, _, e, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(1, 0)})
	if code != http.StatusServiceUnavailable || e.Code != openai.CodeModelUnhealthy {
		t.Fatalf("dead engine: %d %v", code, e)
	}
	if h.p.models["synthetic"].healthy.Load() {
		t.Error("model still healthy after its engine failed")
	}
	if code, _, _, _, _ = h.chat(call{body: chatBody(3, ""), voucher: h.voucher(1, 0)}); code != http.StatusServiceUnavailable {
		t.Errorf("second request: %d, want 503 without trying the engine", code)
	}
	if ci := h.channelInfo(1); ci.Delivered != 0 || ci.InFlight != 0 {
		t.Errorf("channel %+v: billed for nothing delivered", ci)
	}
}

// TestConcurrentOneChannel: 40 requests admitted at once on one channel (all covered by the
// first voucher, as nothing is delivered yet) share its credit: together they are billed at most
// the credit, each stops with "length" when it runs out, every billed umyc is in exactly one
// receipt, and the receipts' cumulatives chain.
func TestConcurrentOneChannel(t *testing.T) {
	gate := make(chan struct{})
	h := newHarness(t, func(c *Config, s *backend.Synthetic) {
		c.Models[0].MaxConcurrent, c.Models[0].QueueLength = 4, 64
		s.Gate = gate
	})
	h.openChannel(1, 1_000_000)
	type out struct {
		code int
		rc   channel.Receipt
	}
	results := make(chan out, 40)
	for i := 0; i < 40; i++ {
		go func() {
			code, _, rc, _, _ := h.chat(call{body: chatBody(3+i%5, ""), voucher: h.voucher(1, 0)})
			results <- out{code, rc}
		}()
	}
	// All admitted and charged for their prompts (2 umyc each): 4 running, 36 queued.
	m := h.p.models["synthetic"]
	waitFor(t, func() bool { return m.sched.depth() == 36 })
	close(gate)
	var sum uint64
	var receipts []channel.Receipt
	for i := 0; i < 40; i++ {
		r := <-results
		if r.code != 200 {
			t.Errorf("status %d", r.code)
			continue
		}
		if err := r.rc.Verify(h.provPub()); err != nil {
			t.Error(err)
		}
		sum += r.rc.Cost
		receipts = append(receipts, r.rc)
	}
	ci := h.channelInfo(1)
	if ci.Delivered != sum || sum > 100 || ci.InFlight != 0 {
		t.Errorf("delivered %d, receipts sum %d, in flight %d; want equal and ≤ credit 100", ci.Delivered, sum, ci.InFlight)
	}
	var tokens uint64
	for _, r := range receipts {
		tokens += r.TokensOut
	}
	if tokens != (100-80)/2 {
		t.Errorf("%d output tokens billed in all, want the 10 the credit left after 40 prompts", tokens)
	}
	// Sorted by cumulative, each receipt's cumulative is the previous plus its cost.
	slices.SortFunc(receipts, func(a, b channel.Receipt) int { return cmp.Compare(a.Cumulative, b.Cumulative) })
	var prev uint64
	for _, r := range receipts {
		if r.Cumulative != prev+r.Cost {
			t.Errorf("receipt cumulative %d after %d with cost %d", r.Cumulative, prev, r.Cost)
		}
		prev = r.Cumulative
	}
}

// TestChannelPollClamped: a channel_poll longer than a quarter of the close challenge window
// (challenge blocks × block interval) is shortened; a shorter one is kept.
func TestChannelPollClamped(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		poll, block, want time.Duration
	}{
		{time.Minute, 50 * time.Millisecond, 250 * time.Millisecond}, // 20 blocks: a 1 s window
		{100 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond},
		{5 * time.Second, time.Second, 5 * time.Second},
		{time.Minute, 0, 500 * time.Millisecond}, // unknown interval: 100 ms assumed
		{time.Minute, time.Microsecond, minChannelPoll},
	} {
		h := newHarness(t, func(c *Config, _ *backend.Synthetic) { c.ChannelPoll = tc.poll })
		h.chain.BlockTime = tc.block
		if got := h.p.channelPoll(ctx); got != tc.want {
			t.Errorf("channel_poll %v, block %v: poll every %v, want %v", tc.poll, tc.block, got, tc.want)
		}
	}
}

// TestRedeemLoopBeforeCloseWindow: with a configured channel_poll far longer than the close
// challenge window, the periodic loop still sees a consumer's close and redeems the channel
// before the chain closes it.
func TestRedeemLoopBeforeCloseWindow(t *testing.T) {
	h := newHarness(t, func(c *Config, _ *backend.Synthetic) {
		c.ChannelPoll, c.RedeemInterval = time.Hour, time.Hour
	})
	h.chain.BlockTime = 50 * time.Millisecond // 20 challenge blocks: the window is 1 s
	h.openChannel(1, 1_000_000)
	code, _, rc, e, _ := h.chat(call{body: chatBody(4, ""), voucher: h.voucher(1, 0)})
	if code != 200 {
		t.Fatal(code, e)
	}
	resp, err := http.Post(h.srv.URL+"/mycel/v1/voucher", "application/json", strings.NewReader(mustJSON(channel.SignVoucher(testChain, 1, rc.Cumulative, h.aliceKey))))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("voucher: %v %v", resp, err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); h.p.redeemLoop(ctx, h.p.channelPoll(ctx)) }()
	defer func() { cancel(); <-loopDone }()
	closed := h.chain.StartClose(1)
	<-closed // the challenge window is over: the chain closed the channel
	ch, _ := h.chain.Channel(ctx, 1)
	if !ch.Closed || ch.Redeemed != rc.Cumulative {
		t.Errorf("channel closed %v with %d redeemed, want the %d delivered redeemed in the window", ch.Closed, ch.Redeemed, rc.Cumulative)
	}
}
