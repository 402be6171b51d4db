package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/router"
)

// upChunk is any event of a provider's stream: a chat or completion chunk, the usage chunk or
// the mycel.receipt event.
type upChunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta        *openai.ChatDelta `json:"delta"`
		Text         string            `json:"text"`
		Logprobs     json.RawMessage   `json:"logprobs"`
		FinishReason *string           `json:"finish_reason"`
	} `json:"choices"`
	Usage   *openai.Usage    `json:"usage"`
	Receipt *channel.Receipt `json:"receipt"`
}

// segment is the part of an answer one provider delivered.
type segment struct {
	cand     candInfo
	tokens   int // content events delivered (≈ tokens)
	before   int // tokens delivered by earlier segments
	receipt  *channel.Receipt
	broken   bool
	bodyHash string
	body     []byte          // the upstream body sent to the provider
	reqID    string          // request id sent to the provider
	pending  *pendingReceipt // the receipt's registration with its channel until verified
	// offset is the bytes of answer text before the segment: a continuation's completion
	// logprobs count their text_offset from its own start.
	offset int
	// What the gateway relayed, to bound the output tokens a receipt may claim: token events
	// (content chunks, empty ones included: a token can render as nothing until the next),
	// bytes of text, log-probability entries and whether the segment ended with a finish reason.
	events, bytes, lpTokens int
	finished                bool
}

// receiptTokenSlack is how many output tokens a receipt may claim beyond what the gateway
// saw delivered in a segment that finished: the end-of-sequence token and the tokens of a
// stop sequence are generated and billed but never shown.
const receiptTokenSlack = 4

// maxTokensOut is the most output tokens s's receipt may claim. A streamed token arrives in
// an event of its own and renders as at least one byte (possibly later, in the event that
// completes a character or releases held-back text), so the gateway's witness is the smaller
// of the events and the bytes (or the log-probability entries, one per token, when there are
// more). Non-streaming clients' answers are streamed from the providers too, so this holds
// for every segment.
func (s *segment) maxTokensOut() int {
	slack := 0
	if s.finished {
		slack = receiptTokenSlack
	}
	return min(max(s.events, s.lpTokens), s.bytes) + slack
}

// checkTokensOut rejects a receipt that claims more output tokens than s delivered.
func (s *segment) checkTokensOut() error {
	if m := s.maxTokensOut(); s.receipt.TokensOut > uint64(m) {
		return fmt.Errorf("%w: %d output tokens claimed, at most %d delivered", errReceipt, s.receipt.TokensOut, m)
	}
	return nil
}

// splice assembles the client's one answer from one or more provider segments.
type splice struct {
	req      genRequest
	id       string
	created  int64
	sse      *openai.SSEWriter // nil: not streaming to the client
	text     strings.Builder
	tokens   int
	finish   string
	roleSent bool
	chatLP   []openai.TokenLogprob
	compLP   *openai.CompletionLogprobs
	segs     []*segment
}

// serve answers req from one stream, spliced from one or more providers: streamed to a
// streaming client as it arrives, assembled into one answer for the others. Every provider is
// asked for a stream, so hedging, retries before the first token, mid-stream failover, the
// TTFT statistics and the receipt's check against the relayed tokens apply to both.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, key *apikey.Key, req genRequest, cands []candInfo, rr router.Request, reqID string) *openai.Error {
	ctx := r.Context()
	seq := 0
	a, rest, failed, err := g.firstByte(ctx, cands, req.kind, func() ([]byte, error) { return upstreamBody(req, "", 0) }, reqID, rr, &seq)
	if err != nil {
		return noMatch(req.model, nil, failed)
	}
	sp := &splice{req: req, id: chatID(req.kind, reqID), created: g.now().Unix()}
	if req.stream {
		// The header names the provider that starts the answer; the trailer of the same name,
		// declared here, and the "mycel" field of the final chunks list every provider that
		// served part of it, in order (after a mid-stream failover, more than one).
		w.Header().Set(HeaderProvider, a.cand.Provider)
		w.Header().Set("Trailer", HeaderProvider)
		sse, err := openai.NewSSEWriter(w)
		if err != nil {
			a.close()
			return &openai.Error{Status: http.StatusInternalServerError, Message: err.Error()}
		}
		sp.sse = sse
	}
	g.metrics.ttft.Observe(a.ttft.Seconds())
	g.traffic.firstToken(a.ttft)
	failovers := 0
	var clientGone bool
	for {
		seg := &segment{cand: a.cand, before: sp.tokens, offset: sp.text.Len(), bodyHash: a.bodyHash, body: a.body, reqID: a.id}
		sp.segs = append(sp.segs, seg)
		clientGone = g.pump(ctx, a, sp, seg)
		g.log.Debug("segment ended", "provider_id", a.cand.Provider, "broken", seg.broken, "finish", sp.finish, "client_gone", clientGone, "tokens", seg.tokens)
		a.close()
		if seg.broken {
			failed = append(failed, fmt.Sprintf("%s: answer broke after %d tokens", a.cand.Provider, seg.tokens))
		}
		if clientGone || !seg.broken || sp.finish != "" || failovers >= g.cfg.MaxFailovers || req.pin != "" {
			break // a pinned request has no other provider: its answer ends broken
		}
		// Mid-stream failover: continue the same answer on the next provider.
		failovers++
		g.metrics.failovers.Inc()
		g.traffic.add(1, 0, 0, 0, 0)
		prefix, delivered := sp.text.String(), sp.tokens
		g.log.Info("mid-stream failover", "request_id", reqID, "from", a.cand.Provider, "delivered_tokens", delivered)
		rr2 := rr
		rr2.TokensIn += delivered
		var next *attempt
		var f []string
		next, rest, f, err = g.firstByte(ctx, rest, req.kind, func() ([]byte, error) { return upstreamBody(req, prefix, delivered) }, reqID, rr2, &seq)
		failed = append(failed, f...)
		if err != nil {
			g.log.Warn("failover found no provider", "request_id", reqID, "failed", strings.Join(f, "; "))
			break
		}
		a = next
	}
	// The record is kept before the answer's last byte goes out (the body, [DONE], the end
	// of a broken stream): a client that has read its answer finds it.
	if req.stream || sp.finish != "" && !clientGone {
		g.keep(reqID, key, sp)
	}
	if !req.stream {
		if sp.finish == "" || clientGone {
			// The client gets no answer and is charged nothing; the providers are still paid
			// for what they delivered.
			g.settleLater(ctx, sp, nil)
			return noMatch(req.model, nil, failed)
		}
		w.Header().Set(HeaderProvider, strings.Join(sp.providers(), ","))
		writeJSON(w, http.StatusOK, sp.final(sp.claimedUsage()))
		g.settleLater(ctx, sp, key)
		return nil
	}
	// Pay and account even if the client has gone away, once the client's answer is complete.
	defer g.settleLater(ctx, sp, key)
	w.Header().Set(HeaderProvider, strings.Join(sp.providers(), ",")) // the trailer
	if sp.finish == "" {
		return nil // the client sees a stream without [DONE]: the SDK reports the break
	}
	if req.includeUsage {
		sp.emitUsage(sp.claimedUsage())
	}
	sp.sse.WriteDone()
	return nil
}

// lpCount is the number of tokens in a chunk's logprobs (chat: content entries; completions:
// tokens), 0 if it does not parse.
func lpCount(raw json.RawMessage) int {
	var lp struct {
		Content []json.RawMessage `json:"content"`
		Tokens  []json.RawMessage `json:"tokens"`
	}
	if json.Unmarshal(raw, &lp) != nil {
		return 0
	}
	return max(len(lp.Content), len(lp.Tokens))
}

func chatID(k kind, reqID string) string {
	id := strings.TrimPrefix(reqID, "req_")
	if k == kindChat {
		return "chatcmpl-" + id
	}
	return "cmpl-" + id
}

// pump copies a's events into sp until a ends. It reports whether the client went away.
func (g *Gateway) pump(ctx context.Context, a *attempt, sp *splice, seg *segment) bool {
	data := a.first
	var firstTok, lastTok time.Time
	for {
		var c upChunk
		if err := json.Unmarshal(data, &c); err != nil {
			g.log.Warn("bad event from provider", "provider_id", a.cand.Provider, "err", err)
			seg.broken = true
			break
		}
		switch {
		case c.Object == channel.ReceiptEventObject && c.Receipt != nil:
			seg.receipt = c.Receipt
		case len(c.Choices) == 0:
			// the usage chunk: the receipt is what counts
		default:
			ch := c.Choices[0]
			text := ch.Text
			if ch.Delta != nil {
				text = ch.Delta.Content
			}
			fin := ch.FinishReason != nil && *ch.FinishReason != ""
			if text != "" || !fin && (ch.Delta == nil || ch.Delta.Role == "") {
				seg.events++ // a token, perhaps rendered later (not the role-only opener or the closer)
			}
			seg.bytes += len(text)
			if len(ch.Logprobs) > 0 && string(ch.Logprobs) != "null" {
				seg.lpTokens += lpCount(ch.Logprobs)
			}
			if fin {
				seg.finished = true
			}
			if text != "" {
				seg.tokens++
				sp.tokens++
				sp.text.WriteString(text)
				now := g.now()
				if firstTok.IsZero() {
					firstTok = now
				}
				lastTok = now
			}
			if ch.FinishReason != nil && *ch.FinishReason != "" {
				sp.finish = *ch.FinishReason
			}
			if err := sp.emit(text, ch.Logprobs, ch.FinishReason); err != nil {
				return true
			}
		}
		a.stall.Reset(g.cfg.StallTimeout)
		var err error
		data, err = a.sse.Next()
		if errors.Is(err, io.EOF) {
			if sp.finish == "" {
				sp.finish = openai.FinishStop // [DONE] without a finish reason: a complete answer
			}
			break
		}
		if err != nil {
			seg.broken = true
			break
		}
	}
	o := router.Outcome{OK: !seg.broken, TTFT: a.ttft, TokensOut: seg.tokens}
	if !firstTok.IsZero() {
		o.Decode = lastTok.Sub(firstTok)
	}
	g.done(a.cand.Provider, o)
	return ctx.Err() != nil
}

// mycelExtra is the "mycel" field the gateway adds to the final chunks of a stream (OpenAI
// clients ignore fields they do not know).
type mycelExtra struct {
	Providers []string `json:"providers"` // every provider that served part of the answer, in order
}

type chatChunkExtra struct {
	openai.ChatCompletionChunk
	Mycel *mycelExtra `json:"mycel,omitempty"`
}

type completionChunkExtra struct {
	openai.CompletionChunk
	Mycel *mycelExtra `json:"mycel,omitempty"`
}

// providers lists the providers of sp's segments, in order, each once.
func (sp *splice) providers() []string {
	var out []string
	for _, s := range sp.segs {
		if !slices.Contains(out, s.cand.Provider) {
			out = append(out, s.cand.Provider)
		}
	}
	return out
}

// extra is the "mycel" field of a chunk: set on the chunk that finishes the answer and on the
// usage chunk after it.
func (sp *splice) extra(final bool) *mycelExtra {
	if !final {
		return nil
	}
	return &mycelExtra{Providers: sp.providers()}
}

// emit sends (streaming) or accumulates one piece of the answer.
func (sp *splice) emit(text string, lp json.RawMessage, finish *string) error {
	if finish != nil && *finish == "" {
		finish = nil
	}
	hasLP := len(lp) > 0 && string(lp) != "null"
	if sp.req.kind == kindChat {
		var clp *openai.ChatLogprobs
		if hasLP {
			clp = new(openai.ChatLogprobs)
			if json.Unmarshal(lp, clp) == nil {
				sp.chatLP = append(sp.chatLP, clp.Content...)
			}
		}
		if sp.sse == nil {
			return nil
		}
		if text == "" && finish == nil && clp == nil && sp.roleSent {
			return nil
		}
		d := openai.ChatDelta{Content: text}
		if !sp.roleSent {
			d.Role, sp.roleSent = "assistant", true
		}
		return sp.sse.WriteJSON(chatChunkExtra{openai.ChatCompletionChunk{ID: sp.id, Object: openai.ObjectChatCompletionChunk, Created: sp.created,
			Model: sp.req.model, Choices: []openai.ChatChunkChoice{{Delta: d, Logprobs: clp, FinishReason: finish}}}, sp.extra(finish != nil)})
	}
	var clp *openai.CompletionLogprobs
	if hasLP {
		clp = new(openai.CompletionLogprobs)
		if json.Unmarshal(lp, clp) == nil {
			if n := len(sp.segs); n > 0 && sp.segs[n-1].offset > 0 {
				for i := range clp.TextOffset {
					clp.TextOffset[i] += sp.segs[n-1].offset // a continuation counts from its prefix's end
				}
			}
			if sp.compLP == nil {
				sp.compLP = &openai.CompletionLogprobs{}
			}
			sp.compLP.Tokens = append(sp.compLP.Tokens, clp.Tokens...)
			sp.compLP.TokenLogprobs = append(sp.compLP.TokenLogprobs, clp.TokenLogprobs...)
			sp.compLP.TopLogprobs = append(sp.compLP.TopLogprobs, clp.TopLogprobs...)
			sp.compLP.TextOffset = append(sp.compLP.TextOffset, clp.TextOffset...)
		}
	}
	if sp.sse == nil || (text == "" && finish == nil && clp == nil) {
		return nil
	}
	return sp.sse.WriteJSON(completionChunkExtra{openai.CompletionChunk{ID: sp.id, Object: openai.ObjectTextCompletion, Created: sp.created,
		Model: sp.req.model, Choices: []openai.CompletionChunkChoice{{Text: text, Logprobs: clp, FinishReason: finish}}}, sp.extra(finish != nil)})
}

func (sp *splice) emitUsage(u openai.Usage) {
	if sp.req.kind == kindChat {
		sp.sse.WriteJSON(chatChunkExtra{openai.ChatCompletionChunk{ID: sp.id, Object: openai.ObjectChatCompletionChunk, Created: sp.created,
			Model: sp.req.model, Choices: []openai.ChatChunkChoice{}, Usage: &u}, sp.extra(true)})
		return
	}
	sp.sse.WriteJSON(completionChunkExtra{openai.CompletionChunk{ID: sp.id, Object: openai.ObjectTextCompletion, Created: sp.created,
		Model: sp.req.model, Choices: []openai.CompletionChunkChoice{}, Usage: &u}, sp.extra(true)})
}

func (sp *splice) final(u openai.Usage) any {
	if sp.req.kind == kindChat {
		var lp *openai.ChatLogprobs
		if sp.req.logprobs {
			lp = &openai.ChatLogprobs{Content: sp.chatLP}
		}
		return openai.ChatCompletion{ID: sp.id, Object: openai.ObjectChatCompletion, Created: sp.created, Model: sp.req.model,
			Choices: []openai.ChatChoice{{Message: openai.ChatMessage{Role: "assistant", Content: sp.text.String()}, Logprobs: lp, FinishReason: sp.finish}},
			Usage:   &u}
	}
	return openai.Completion{ID: sp.id, Object: openai.ObjectTextCompletion, Created: sp.created, Model: sp.req.model,
		Choices: []openai.CompletionChoice{{Text: sp.text.String(), Logprobs: sp.compLP, FinishReason: sp.finish}},
		Usage:   &u}
}

// account verifies and logs receipts, bills segments without one for what they delivered,
// and returns the usage paid for and the total cost in umyc. It runs after the client's
// answer (settleLater): a receipt rejected here is not paid and not charged.
func (g *Gateway) account(ctx context.Context, sp *splice) (openai.Usage, uint64) {
	for _, s := range sp.segs {
		if s.pending != nil {
			// Once the segment is paid for (the receipt's cost, or what was delivered).
			defer g.pay.verified(ctx, s.cand.Provider, s.pending)
		}
	}
	prompt := sp.promptTokens()
	var cost uint64
	completion := 0
	for _, s := range sp.segs {
		p := s.cand.Provider
		if s.receipt != nil {
			err := s.checkTokensOut() // never pay for tokens the gateway did not deliver
			if err == nil {
				err = g.verifyReceipt(ctx, s)
			}
			if err == nil {
				g.metrics.receipts.WithLabelValues("ok").Inc()
				cost += s.receipt.Cost
				completion += int(s.receipt.TokensOut)
				if g.deps.Receipts != nil {
					// Under g.mu, so that anchor (which moves the epoch under it too) never
					// computes a root while a receipt of that epoch is still being logged.
					g.mu.Lock()
					_, err := g.deps.Receipts.Append(g.epoch, *s.receipt)
					g.mu.Unlock()
					if err != nil {
						g.log.Error("log receipt", "err", err)
					}
				}
				continue
			}
			g.metrics.receipts.WithLabelValues("rejected").Inc()
			g.log.Warn("receipt rejected", "provider_id", p, "err", err)
			g.stats.Done(p, router.Outcome{OK: false}, g.now())
			g.traffic.providerError(p)
		} else {
			g.metrics.receipts.WithLabelValues("missing").Inc()
		}
		// No valid receipt: pay only for what the gateway saw delivered. The provider may count
		// its prompt differently or have generated a token that never arrived: that much is
		// uncertain, to be settled if it claims it after a 402.
		c, err := channel.Cost(uint64(prompt+s.before), uint64(s.tokens), s.cand.PriceInPerMTok, s.cand.PriceOutPerMTok)
		if err == nil {
			g.pay.bill(p, c)
			cost += c
		}
		if s.receipt == nil {
			if u, err := channel.Cost(uint64(2*(prompt+s.before)+16), uint64(s.tokens+16), s.cand.PriceInPerMTok, s.cand.PriceOutPerMTok); err == nil && u > c {
				g.pay.uncertain(p, u-c)
			}
		}
		completion += s.tokens
	}
	return openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}, cost
}

func (g *Gateway) verifyReceipt(ctx context.Context, s *segment) error {
	pub, err := g.dir.pubkey(ctx, s.cand.Provider)
	if err != nil {
		return fmt.Errorf("provider key: %w", err)
	}
	return g.pay.settle(ctx, s.cand.Provider, pub, *s.receipt, s.reqID, s.bodyHash, s.cand.PriceInPerMTok, s.cand.PriceOutPerMTok)
}
