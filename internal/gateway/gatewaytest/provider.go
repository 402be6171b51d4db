// Package gatewaytest provides fakes for testing and benchmarking the gateway: a provider
// that speaks the provider HTTP API (vouchers, SSE streams ending with the mycel.receipt event,
// signed receipts) with scripted latency and failures, and an in-memory ledger.
package gatewaytest

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// ProviderConfig scripts a fake provider.
type ProviderConfig struct {
	Key             ed25519.PrivateKey
	Address         string
	ChainID         string
	Consumer        ed25519.PublicKey // if set, vouchers must be signed by it
	ConsumerAddress string            // put in receipts
	Model           string
	PriceIn         uint64 // umyc per 1M tokens
	PriceOut        uint64
	// Tokens is the answer to every prompt, one token per SSE event (default: 8 tokens
	// "tok0", " tok1", …).
	Tokens []string
	// TTFT delays the first token, TokenDelay each later one.
	TTFT, TokenDelay time.Duration
	// BreakAfter, if positive, aborts the connection after that many tokens of an answer.
	BreakAfter int
	// Status, if set, is the status of every generation request (with an error envelope).
	Status int
	// BadSignature makes receipts carry a wrong signature.
	BadSignature bool
	// Overclaim is added to the output tokens (and the cost) receipts claim.
	Overclaim uint64
	// SkipPayment serves without checking vouchers (benchmarks that call it directly).
	SkipPayment bool
	// MaxConcurrent, if positive, is advertised as the model's max_concurrent in
	// GET /mycel/v1/info (else the provider has no info endpoint).
	MaxConcurrent int
	// QueueLength is advertised as the model's queue_length beside MaxConcurrent.
	QueueLength int
}

// Provider is a fake provider. It is an http.Handler.
type Provider struct {
	cfg ProviderConfig

	mu        sync.Mutex
	delivered map[uint64]uint64 // channel → cumulative umyc delivered
	bodies    [][]byte
	answered  map[string]int // request id → tokens of its answer (for the reveal)
	reveals   int

	hold      chan struct{}
	pause     *pause
	requests  atomic.Int64
	unhealthy atomic.Bool
}

// DefaultTokens returns n tokens "tok0", " tok1", ….
func DefaultTokens(n int) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = fmt.Sprintf(" tok%d", i)
	}
	t[0] = strings.TrimSpace(t[0])
	return t
}

// NewProvider returns a fake provider.
func NewProvider(cfg ProviderConfig) *Provider {
	if cfg.Tokens == nil {
		cfg.Tokens = DefaultTokens(8)
	}
	return &Provider{cfg: cfg, delivered: map[uint64]uint64{}, answered: map[string]int{}}
}

// Reveals returns how many logprobs reveals were answered with 200.
func (p *Provider) Reveals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reveals
}

// Requests returns how many generation requests arrived.
func (p *Provider) Requests() int { return int(p.requests.Load()) }

// Bodies returns the generation request bodies received.
func (p *Provider) Bodies() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.bodies...)
}

// Delivered returns the cumulative umyc delivered on channel id.
func (p *Provider) Delivered(id uint64) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.delivered[id]
}

// SetHold makes every later answer wait before its first token until release is closed (or
// the request is cancelled).
func (p *Provider) SetHold(release chan struct{}) {
	p.mu.Lock()
	p.hold = release
	p.mu.Unlock()
}

// pause stops an answer after n tokens until its request is cancelled.
type pause struct {
	n                int
	once, onceAbort  sync.Once
	reached, aborted chan struct{}
}

// SetPause makes later answers stop after n tokens (streamed) until their request is
// cancelled: reached is closed when an answer gets there, aborted when its request is then
// cancelled (the provider writes nothing more).
func (p *Provider) SetPause(n int) (reached, aborted <-chan struct{}) {
	ps := &pause{n: n, reached: make(chan struct{}), aborted: make(chan struct{})}
	p.mu.Lock()
	p.pause = ps
	p.mu.Unlock()
	return ps.reached, ps.aborted
}

// SetHealthy makes GET /healthz answer 200 (true, the default) or 503.
func (p *Provider) SetHealthy(ok bool) { p.unhealthy.Store(!ok) }

// SetBreakAfter changes BreakAfter (safe while serving).
func (p *Provider) SetBreakAfter(n int) {
	p.mu.Lock()
	p.cfg.BreakAfter = n
	p.mu.Unlock()
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		if p.unhealthy.Load() {
			http.Error(w, "degraded", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	case r.URL.Path == "/mycel/v1/info" && p.cfg.MaxConcurrent > 0:
		json.NewEncoder(w).Encode(map[string]any{"address": p.cfg.Address, "chain_id": p.cfg.ChainID, "healthy": true,
			"models": []map[string]any{{"id": p.cfg.Model, "max_concurrent": p.cfg.MaxConcurrent, "queue_length": p.cfg.QueueLength, "healthy": true}}})
	case r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/v1/completions":
		p.generate(w, r, r.URL.Path == "/v1/chat/completions")
	case strings.HasPrefix(r.URL.Path, "/mycel/v1/channels/"):
		id, _ := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/mycel/v1/channels/"), 10, 64)
		json.NewEncoder(w).Encode(map[string]uint64{"delivered": p.Delivered(id)})
	case strings.HasPrefix(r.URL.Path, reveal.Path("")) && r.Method == http.MethodGet:
		p.reveal(w, r, strings.TrimPrefix(r.URL.Path, reveal.Path("")))
	case r.URL.Path == "/mycel/v1/voucher":
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func words(s string) int { return len(strings.Fields(s)) }

// reveal answers GET /mycel/v1/logprobs/{request_id} like a provider (provider/reveal): to
// the consumer's signature only (cfg.Consumer), for a request it answered with a receipt.
// The ids are the tokens' positions, the logprobs TokenLogprob's.
func (p *Provider) reveal(w http.ResponseWriter, r *http.Request, reqID string) {
	p.mu.Lock()
	n, ok := p.answered[reqID]
	p.mu.Unlock()
	if !ok {
		openai.WriteError(w, &openai.Error{Status: http.StatusNotFound, Type: openai.TypeNotFound, Message: "no receipt for request " + reqID})
		return
	}
	if err := reveal.Verify(p.cfg.ChainID, p.cfg.Address, reqID, r.Header.Get(reveal.Header), p.cfg.Consumer); err != nil {
		openai.WriteError(w, &openai.Error{Status: http.StatusForbidden, Type: openai.TypePermission, Message: err.Error()})
		return
	}
	out := reveal.Response{RequestID: reqID, IDs: make([]int32, n), Logprobs: make([]reveal.Logprob, n)}
	for i := range n {
		out.IDs[i] = int32(i)
		out.Logprobs[i] = reveal.Logprob(TokenLogprob(i, "").Logprob)
	}
	p.mu.Lock()
	p.reveals++
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func (p *Provider) generate(w http.ResponseWriter, r *http.Request, chat bool) {
	p.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.bodies = append(p.bodies, body)
	cfg, hold, ps := p.cfg, p.hold, p.pause
	p.mu.Unlock()
	if cfg.Status != 0 {
		openai.WriteError(w, &openai.Error{Status: cfg.Status, Message: "scripted failure"})
		return
	}
	v, err := channel.DecodeVoucherHeader(r.Header.Get(channel.HeaderVoucher))
	if cfg.SkipPayment {
		err = nil
	}
	if err == nil && cfg.Consumer != nil && !cfg.SkipPayment {
		err = v.Verify(cfg.Consumer)
	}
	if err == nil && v.ChainID != cfg.ChainID && !cfg.SkipPayment {
		err = fmt.Errorf("chain id %q", v.ChainID)
	}
	p.mu.Lock()
	if err == nil && v.Amount < p.delivered[v.ChannelID] && !cfg.SkipPayment {
		err = fmt.Errorf("voucher %d below delivered %d", v.Amount, p.delivered[v.ChannelID])
	}
	p.mu.Unlock()
	if err != nil {
		openai.WriteError(w, &openai.Error{Status: http.StatusPaymentRequired, Code: openai.CodePaymentRequired, Message: err.Error()})
		return
	}
	// Prompt and, for a continuation, the assistant prefix to continue.
	var prompt, prefix string
	var maxTokens int
	stream, logprobs, top := true, false, 0
	if chat {
		req, e := openai.DecodeChatRequest(body)
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		msgs := req.Messages
		if n := len(msgs); n > 0 && msgs[n-1].Role == "assistant" {
			prefix = msgs[n-1].Content
		}
		for _, m := range msgs {
			prompt += m.Content + " "
		}
		if n, ok := req.MaxOutputTokens(); ok {
			maxTokens = n
		}
		stream, logprobs = req.Stream, req.Logprobs
		if req.TopLogprobs != nil {
			top = *req.TopLogprobs
		}
	} else {
		req, e := openai.DecodeCompletionRequest(body)
		if e != nil {
			openai.WriteError(w, e)
			return
		}
		prompt = req.Prompt.Text()
		for k := len(cfg.Tokens); k > 0; k-- {
			if s := strings.Join(cfg.Tokens[:k], ""); strings.HasSuffix(prompt, s) {
				prefix = s
				break
			}
		}
		if n, ok := req.MaxOutputTokens(); ok {
			maxTokens = n
		}
		stream = req.Stream
		if req.Logprobs != nil {
			logprobs, top = true, *req.Logprobs
		}
	}
	start := 0
	for k := len(cfg.Tokens); k > 0; k-- {
		if strings.Join(cfg.Tokens[:k], "") == prefix {
			start = k
			break
		}
	}
	out := cfg.Tokens[start:]
	finish := openai.FinishStop
	if maxTokens > 0 && len(out) > maxTokens {
		out, finish = out[:maxTokens], openai.FinishLength
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	tokensIn := uint64(words(prompt))
	if !stream {
		p.whole(w, r, cfg, v, chat, body, out, finish, tokensIn, logprobs)
		return
	}
	sse, err := openai.NewSSEWriter(w)
	if err != nil {
		return
	}
	id := "chatcmpl-fake"
	t0 := time.Now()
	var text strings.Builder
	for i, tok := range out {
		if i == 0 {
			time.Sleep(cfg.TTFT)
		} else {
			time.Sleep(cfg.TokenDelay)
		}
		if ps != nil && i == ps.n {
			ps.once.Do(func() { close(ps.reached) })
			<-r.Context().Done()
			ps.onceAbort.Do(func() { close(ps.aborted) })
			return
		}
		if cfg.BreakAfter > 0 && i == cfg.BreakAfter {
			// The provider delivered i tokens and dies: it has served them on credit.
			cost, _ := channel.Cost(tokensIn, uint64(i), cfg.PriceIn, cfg.PriceOut)
			p.mu.Lock()
			p.delivered[v.ChannelID] += cost
			p.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		text.WriteString(tok)
		var chunk any
		if chat {
			d := openai.ChatDelta{Content: tok}
			if i == 0 {
				d.Role = "assistant"
			}
			c := openai.ChatChunkChoice{Delta: d}
			if logprobs {
				c.Logprobs = &openai.ChatLogprobs{Content: []openai.TokenLogprob{TokenLogprobTop(start+i, tok, top)}}
			}
			chunk = openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Model: cfg.Model,
				Choices: []openai.ChatChunkChoice{c}}
		} else {
			c := openai.CompletionChunkChoice{Text: tok}
			if logprobs {
				// text_offset counts from the start of this provider's own output.
				lp := TokenLogprobTop(start+i, tok, top)
				m := map[string]float64{}
				for _, t := range lp.TopLogprobs {
					m[t.Token] = t.Logprob
				}
				c.Logprobs = &openai.CompletionLogprobs{Tokens: []string{tok}, TokenLogprobs: []float64{lp.Logprob},
					TopLogprobs: []map[string]float64{m}, TextOffset: []int{text.Len() - len(tok)}}
			}
			chunk = openai.CompletionChunk{ID: id, Object: openai.ObjectTextCompletion, Model: cfg.Model,
				Choices: []openai.CompletionChunkChoice{c}}
		}
		if sse.WriteJSON(chunk) != nil {
			return
		}
	}
	if chat {
		sse.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Model: cfg.Model,
			Choices: []openai.ChatChunkChoice{{FinishReason: &finish}}})
	} else {
		sse.WriteJSON(openai.CompletionChunk{ID: id, Object: openai.ObjectTextCompletion, Model: cfg.Model,
			Choices: []openai.CompletionChunkChoice{{FinishReason: &finish}}})
	}
	tokensOut := uint64(len(out))
	sse.WriteJSON(map[string]any{"id": id, "object": "chat.completion.chunk", "choices": []any{},
		"usage": openai.Usage{PromptTokens: int(tokensIn), CompletionTokens: int(tokensOut), TotalTokens: int(tokensIn + tokensOut)}})
	rc := p.receipt(r, cfg, v, body, text.String(), tokensIn, tokensOut, finish, time.Since(t0))
	sse.WriteJSON(channel.ReceiptEvent{Object: channel.ReceiptEventObject, Receipt: rc})
	sse.WriteDone()
}

// whole answers a non-streaming request with one JSON body and the X-Mycel-Receipt header.
func (p *Provider) whole(w http.ResponseWriter, r *http.Request, cfg ProviderConfig, v channel.Voucher, chat bool, body []byte, out []string, finish string, tokensIn uint64, logprobs bool) {
	t0 := time.Now()
	time.Sleep(cfg.TTFT + time.Duration(max(len(out)-1, 0))*cfg.TokenDelay)
	if cfg.BreakAfter > 0 && cfg.BreakAfter < len(out) {
		// Generated BreakAfter tokens on credit, then died before answering.
		cost, _ := channel.Cost(tokensIn, uint64(cfg.BreakAfter), cfg.PriceIn, cfg.PriceOut)
		p.mu.Lock()
		p.delivered[v.ChannelID] += cost
		p.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	text := strings.Join(out, "")
	tokensOut := uint64(len(out))
	usage := &openai.Usage{PromptTokens: int(tokensIn), CompletionTokens: int(tokensOut), TotalTokens: int(tokensIn + tokensOut)}
	var resp any
	if chat {
		c := openai.ChatChoice{Message: openai.ChatMessage{Role: "assistant", Content: text}, FinishReason: finish}
		if logprobs {
			c.Logprobs = &openai.ChatLogprobs{}
			for i, tok := range out {
				c.Logprobs.Content = append(c.Logprobs.Content, TokenLogprob(i, tok))
			}
		}
		resp = openai.ChatCompletion{ID: "chatcmpl-fake", Object: openai.ObjectChatCompletion, Model: cfg.Model,
			Choices: []openai.ChatChoice{c}, Usage: usage}
	} else {
		resp = openai.Completion{ID: "cmpl-fake", Object: openai.ObjectTextCompletion, Model: cfg.Model,
			Choices: []openai.CompletionChoice{{Text: text, FinishReason: finish}}, Usage: usage}
	}
	b, _ := json.Marshal(resp)
	rc := p.receipt(r, cfg, v, body, text, tokensIn, tokensOut, finish, time.Since(t0))
	hv, _ := channel.EncodeHeader(rc)
	w.Header().Set(channel.HeaderReceipt, hv)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// TokenLogprob is the fake log-probability of the i-th token of an answer: −(i+1)/8.
func TokenLogprob(i int, tok string) openai.TokenLogprob {
	return openai.TokenLogprob{Token: tok, Logprob: -float64(i+1) / 8, Bytes: openai.TokenBytes(tok), TopLogprobs: []openai.TopLogprob{}}
}

func (p *Provider) receipt(r *http.Request, cfg ProviderConfig, v channel.Voucher, body []byte, text string, tokensIn, tokensOut uint64, finish string, took time.Duration) channel.Receipt {
	tokensOut += cfg.Overclaim
	cost, _ := channel.Cost(tokensIn, tokensOut, cfg.PriceIn, cfg.PriceOut)
	p.mu.Lock()
	p.delivered[v.ChannelID] += cost
	cum := p.delivered[v.ChannelID]
	p.answered[r.Header.Get(channel.HeaderRequestID)] = int(tokensOut)
	p.mu.Unlock()
	reqHash := sha256.Sum256(body)
	outHash := sha256.Sum256([]byte(text))
	rc := channel.Receipt{ChainID: cfg.ChainID, RequestID: r.Header.Get(channel.HeaderRequestID), Provider: cfg.Address,
		Consumer: cfg.ConsumerAddress, ChannelID: v.ChannelID, ModelID: cfg.Model,
		RequestHash: hex.EncodeToString(reqHash[:]), OutputHash: hex.EncodeToString(outHash[:]),
		TokensIn: tokensIn, TokensOut: tokensOut, PriceInPerMTok: cfg.PriceIn, PriceOutPerMTok: cfg.PriceOut,
		Cost: cost, Cumulative: cum, TTFTMs: uint64(cfg.TTFT.Milliseconds()), DurationMs: uint64(took.Milliseconds()),
		FinishReason: finish, TimeUnixMs: time.Now().UnixMilli()}
	rc = channel.SignReceipt(rc, cfg.Key)
	if cfg.BadSignature {
		rc.Signature[0] ^= 1
	}
	return rc
}

// TokenLogprobTop is TokenLogprob with top alternatives: the token itself, then "alt1",
// "alt2", … each 1 less likely than the one before.
func TokenLogprobTop(i int, tok string, top int) openai.TokenLogprob {
	lp := TokenLogprob(i, tok)
	if top > 0 {
		lp.TopLogprobs = append(lp.TopLogprobs, openai.TopLogprob{Token: tok, Logprob: lp.Logprob, Bytes: openai.TokenBytes(tok)})
	}
	for k := 1; k < top; k++ {
		alt := fmt.Sprintf("alt%d", k)
		lp.TopLogprobs = append(lp.TopLogprobs, openai.TopLogprob{Token: alt, Logprob: lp.Logprob - float64(k), Bytes: openai.TokenBytes(alt)})
	}
	return lp
}
