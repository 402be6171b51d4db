package provider

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/backend"
)

// MaxRequestIDLen bounds X-Mycel-Request-Id.
const MaxRequestIDLen = 128

func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { p.serveGenerate(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { p.serveGenerate(w, r, false) })
	mux.HandleFunc("GET /v1/models", p.serveModels)
	mux.HandleFunc("POST /mycel/v1/voucher", p.serveVoucher)
	mux.HandleFunc("GET /mycel/v1/channels/{id}", p.serveChannel)
	mux.HandleFunc("GET /mycel/v1/receipts/{channel}/{request}", p.serveReceipt)
	mux.HandleFunc("GET /mycel/v1/logprobs/{request}", p.serveReveal)
	mux.HandleFunc("GET /mycel/v1/info", p.serveInfo)
	mux.HandleFunc("GET /healthz", p.serveHealth)
	if p.gather != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(p.gather, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		openai.WriteError(w, &openai.Error{Status: http.StatusNotFound, Type: openai.TypeNotFound, Message: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		openai.WriteError(w, &openai.Error{Status: 500, Type: openai.TypeServer, Message: "encode answer"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(s string) bool {
	if s == "" || len(s) > MaxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == '/' {
			return false
		}
	}
	return true
}

// readBody reads at most limit bytes; a larger body is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *openai.Error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &openai.Error{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest, Code: openai.CodeBodyTooLarge,
				Message: fmt.Sprintf("request body larger than %d bytes", limit)}
		}
		return nil, &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "read request body: " + err.Error()}
	}
	return body, nil
}

// genRequest is one inference request being served.
type genRequest struct {
	chat      bool
	model     *model
	reqID     string
	body      []byte
	start     time.Time
	stream    bool
	usage     bool // stream_options.include_usage
	logprobs  bool
	breq      backend.Request
	st        *chanState
	channelID uint64
	consumer  string
}

func (p *Provider) fail(w http.ResponseWriter, mid, kind string, e *openai.Error) {
	if mid == "" {
		mid = "unknown"
	}
	p.metrics.Errors.WithLabelValues(mid, kind).Inc()
	p.metrics.Requests.WithLabelValues(mid, strconv.Itoa(e.Status)).Inc()
	openai.WriteError(w, e)
}

func (p *Provider) serveGenerate(w http.ResponseWriter, r *http.Request, chat bool) {
	g := genRequest{chat: chat, start: p.now()}
	body, e := readBody(w, r, p.cfg.MaxBodyBytes)
	if e != nil {
		p.fail(w, "", "bad_request", e)
		return
	}
	g.body = body
	var modelID string
	if chat {
		req, e := openai.DecodeChatRequest(body)
		if e != nil {
			p.fail(w, "", "bad_request", e)
			return
		}
		modelID, g.stream, g.usage, g.logprobs = req.Model, req.Stream, req.IncludeUsage(), req.Logprobs
		n, _ := req.MaxOutputTokens()
		g.breq = backend.Request{Chat: true, Messages: req.Messages, MaxTokens: n, Temperature: req.Temperature, TopP: req.TopP,
			Seed: req.Seed, Stop: req.Stop, Logprobs: req.Logprobs,
			ContinueFinal: req.ContinueFinalMessage, NoGenerationPrompt: !req.GenerationPrompt()}
		if req.TopLogprobs != nil {
			g.breq.TopLogprobs = *req.TopLogprobs
		}
	} else {
		req, e := openai.DecodeCompletionRequest(body)
		if e != nil {
			p.fail(w, "", "bad_request", e)
			return
		}
		if req.Echo {
			p.fail(w, req.Model, "bad_request", &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Param: "echo", Code: openai.CodeUnsupportedValue, Message: "echo is not supported"})
			return
		}
		modelID, g.stream, g.usage = req.Model, req.Stream, req.IncludeUsage()
		n, ok := req.MaxOutputTokens()
		if !ok {
			n = 16 // OpenAI's default for completions
		}
		g.breq = backend.Request{Prompt: req.Prompt.Text(), MaxTokens: n, Temperature: req.Temperature, TopP: req.TopP, Seed: req.Seed, Stop: req.Stop}
		if req.Logprobs != nil {
			g.logprobs, g.breq.Logprobs, g.breq.TopLogprobs = true, true, *req.Logprobs
		}
	}
	m := p.models[modelID]
	if m == nil {
		p.fail(w, "", "bad_request", &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Param: "model", Code: openai.CodeModelNotFound,
			Message: fmt.Sprintf("The model '%s' does not exist or is not served by this provider (serving: %s).", modelID, strings.Join(p.order, ", "))})
		return
	}
	g.model = m
	if !m.healthy.Load() {
		p.fail(w, modelID, "unhealthy", &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: openai.CodeModelUnhealthy, RetryAfter: 5,
			Message: fmt.Sprintf("model %s is unavailable: its engine does not answer", modelID)})
		return
	}
	g.reqID = r.Header.Get(channel.HeaderRequestID)
	if g.reqID == "" {
		g.reqID = randomID()
	} else if !validRequestID(g.reqID) {
		p.fail(w, modelID, "bad_request", &openai.Error{Status: 400, Type: openai.TypeInvalidRequest,
			Message: fmt.Sprintf("%s must be 1..%d printable characters without '/'", channel.HeaderRequestID, MaxRequestIDLen)})
		return
	}
	hv := r.Header.Get(channel.HeaderVoucher)
	if hv == "" {
		p.fail(w, modelID, "payment", payErr("missing %s header: attach a voucher of your payment channel with this provider", channel.HeaderVoucher))
		return
	}
	v, err := channel.DecodeVoucherHeader(hv)
	if err != nil {
		p.fail(w, modelID, "payment", payErr("malformed %s header: %v", channel.HeaderVoucher, err))
		return
	}
	st, e := p.pay.admit(r.Context(), v)
	if e != nil {
		if d, ok := p.pay.delivered(v.ChannelID); ok && e.Status == http.StatusPaymentRequired {
			w.Header().Set(HeaderDelivered, strconv.FormatUint(d, 10))
		}
		p.fail(w, modelID, "payment", e)
		return
	}
	g.st, g.channelID = st, v.ChannelID
	st.mu.Lock()
	g.consumer = st.ch.Consumer
	st.mu.Unlock()
	if dup, err := p.deps.Store.HasReceipt(g.channelID, g.reqID); err != nil || dup {
		e := &openai.Error{Status: http.StatusConflict, Type: openai.TypeInvalidRequest, Message: fmt.Sprintf("request id %s was already served on channel %d; fetch its receipt from /mycel/v1/receipts/%d/%s", g.reqID, g.channelID, g.channelID, g.reqID)}
		if err != nil {
			e = &openai.Error{Status: 500, Type: openai.TypeServer, Message: "provider store: " + err.Error()}
		}
		p.fail(w, modelID, "bad_request", e)
		return
	}
	if err := m.b.Prepare(&g.breq); err != nil {
		var be *openai.Error
		if !errors.As(err, &be) {
			be = &openai.Error{Status: 500, Type: openai.TypeServer, Message: err.Error()}
		}
		p.fail(w, modelID, "bad_request", be)
		return
	}
	p.generate(w, r, &g)
}

// generate serves an admitted request: it charges the prompt, waits for a slot, streams or
// collects the output while charging every chunk, then settles and sends the receipt.
func (p *Provider) generate(w http.ResponseWriter, r *http.Request, g *genRequest) {
	m := g.model
	mid := m.cfg.ID
	pin, pout := m.cfg.PriceInPerMTok, m.cfg.PriceOutPerMTok
	tokensIn := uint64(g.breq.PromptTokens)
	charged, err := channel.Cost(tokensIn, 0, pin, pout)
	if err == nil {
		err = p.pay.charge(g.st, charged)
		if errors.Is(err, errNoDeposit) && p.pay.refresh(r.Context(), g.st) == nil {
			err = p.pay.charge(g.st, charged) // the consumer may have topped the channel up
		}
	}
	if err != nil {
		p.fail(w, mid, "payment", p.chargeError(err, g.channelID))
		return
	}
	w.Header().Set(channel.HeaderRequestID, g.reqID)
	ctx := r.Context()
	qstart := p.now()
	if err := m.sched.acquire(ctx, g.consumer); err != nil {
		p.pay.refund(g.st, charged)
		if errors.Is(err, errQueueFull) {
			p.fail(w, mid, "queue_full", &openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Code: openai.CodeRateLimited, RetryAfter: 1,
				Message: fmt.Sprintf("model %s is at capacity (%d running, %d queued); retry shortly", mid, m.cfg.MaxConcurrent, m.cfg.QueueLength)})
		} else {
			p.metrics.Errors.WithLabelValues(mid, "client_gone").Inc()
		}
		return
	}
	queued := p.now().Sub(qstart)

	var (
		sse       *openai.SSEWriter
		sseErr    error
		id        = "chatcmpl-" + g.reqID
		created   = g.start.Unix()
		out       strings.Builder
		delivered uint64 // output tokens delivered
		ids       []int32
		lps       []float32
		chatLP    []openai.TokenLogprob
		cmplLP    openai.CompletionLogprobs
		firstAt   time.Time // when the first and the last delivered chunk were produced
		lastAt    time.Time
		stopped   error // why we stopped generation ourselves
		clientErr error
	)
	if !g.chat {
		id = "cmpl-" + g.reqID
	}
	startStream := func() bool {
		if sse != nil || sseErr != nil {
			return sseErr == nil
		}
		sse, sseErr = openai.NewSSEWriter(w)
		if sseErr == nil && g.chat {
			sseErr = sse.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Created: created, Model: mid,
				Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Role: "assistant"}}}})
		}
		return sseErr == nil
	}
	emit := func(c backend.Chunk) error {
		at := p.now()
		cost, err := channel.Cost(tokensIn, delivered+uint64(c.N), pin, pout)
		if err != nil {
			stopped = err
			return err
		}
		if cost > charged {
			if err := p.pay.charge(g.st, cost-charged); err != nil {
				stopped = err
				return err
			}
			charged = cost
		}
		var clp []openai.TokenLogprob
		var kl *openai.CompletionLogprobs
		for _, t := range c.Tokens {
			ids, lps = append(ids, t.ID), append(lps, t.Logprob)
			if !g.logprobs {
				continue
			}
			if g.chat {
				tl := openai.TokenLogprob{Token: t.Text, Logprob: float64(t.Logprob), Bytes: openai.TokenBytes(t.Text), TopLogprobs: []openai.TopLogprob{}}
				for _, a := range t.Top {
					tl.TopLogprobs = append(tl.TopLogprobs, openai.TopLogprob{Token: a.Text, Logprob: float64(a.Logprob), Bytes: openai.TokenBytes(a.Text)})
				}
				clp = append(clp, tl)
			} else {
				if kl == nil {
					kl = &openai.CompletionLogprobs{}
				}
				top := map[string]float64{}
				for _, a := range t.Top {
					top[a.Text] = float64(a.Logprob)
				}
				kl.Tokens = append(kl.Tokens, t.Text)
				kl.TokenLogprobs = append(kl.TokenLogprobs, float64(t.Logprob))
				kl.TopLogprobs = append(kl.TopLogprobs, top)
				kl.TextOffset = append(kl.TextOffset, out.Len())
			}
		}
		if g.stream {
			if !startStream() {
				clientErr = sseErr
				return sseErr
			}
			var err error
			if g.chat {
				var lp *openai.ChatLogprobs
				if clp != nil {
					lp = &openai.ChatLogprobs{Content: clp}
				}
				err = sse.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Created: created, Model: mid,
					Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Content: c.Text}, Logprobs: lp}}})
			} else {
				err = sse.WriteJSON(openai.CompletionChunk{ID: id, Object: openai.ObjectTextCompletion, Created: created, Model: mid,
					Choices: []openai.CompletionChunkChoice{{Text: c.Text, Logprobs: kl}}})
			}
			if err != nil {
				clientErr = err
				return err
			}
		} else {
			chatLP = append(chatLP, clp...)
			if kl != nil {
				cmplLP.Tokens = append(cmplLP.Tokens, kl.Tokens...)
				cmplLP.TokenLogprobs = append(cmplLP.TokenLogprobs, kl.TokenLogprobs...)
				cmplLP.TopLogprobs = append(cmplLP.TopLogprobs, kl.TopLogprobs...)
				cmplLP.TextOffset = append(cmplLP.TextOffset, kl.TextOffset...)
			}
		}
		if firstAt.IsZero() {
			firstAt = at
		}
		lastAt = at
		delivered += uint64(c.N)
		out.WriteString(c.Text)
		return nil
	}
	res, genErr := m.b.Generate(ctx, &g.breq, emit)
	m.sched.release()

	finish := res.FinishReason
	var failure *openai.Error
	switch {
	case genErr == nil:
	case stopped != nil && genErr == stopped:
		// Credit or deposit ran out: the answer ends here, billed for what was delivered.
		finish = openai.FinishLength
		p.log.Debug("generation stopped by payment limit", "request_id", g.reqID, "channel_id", g.channelID, "reason", stopped)
	case clientErr != nil || ctx.Err() != nil:
		// The client went away: bill what it received (nothing if it got nothing). A
		// non-streaming client receives nothing, so it pays nothing, prompt included
		// (docs/spec/channels.md: "A cancelled non-streaming request is free").
		p.metrics.Errors.WithLabelValues(mid, "client_gone").Inc()
		if delivered == 0 || !g.stream {
			p.pay.refund(g.st, charged)
			return
		}
		finish = "cancel"
	default:
		if errors.As(genErr, &failure) && failure.Code == openai.CodeModelUnhealthy {
			p.setHealthy(m, genErr) // the engine does not answer: unhealthy until a probe succeeds
		}
		if failure == nil {
			failure = &openai.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: openai.CodeBackendError, Message: "generation failed: " + genErr.Error()}
		}
		if delivered == 0 {
			p.pay.refund(g.st, charged)
			p.fail(w, mid, "backend", failure)
			return
		}
		finish = openai.FinishLength
	}

	// What the client is billed for: the backend's usage when it finished normally and the
	// charge fits, else what the provider counted as delivered.
	tokensOut := delivered
	if genErr == nil && (res.CompletionTokens > 0 && uint64(res.CompletionTokens) != delivered || res.PromptTokens > 0 && uint64(res.PromptTokens) != tokensIn) {
		in, outN := tokensIn, delivered
		if res.PromptTokens > 0 {
			in = uint64(res.PromptTokens)
		}
		if res.CompletionTokens > 0 {
			outN = uint64(res.CompletionTokens)
		}
		if c, err := channel.Cost(in, outN, pin, pout); err == nil {
			if c <= charged || p.pay.charge(g.st, c-charged) == nil {
				charged = max(charged, c)
				tokensIn, tokensOut = in, outN
			}
		}
	}
	cost, _ := channel.Cost(tokensIn, tokensOut, pin, pout) // ≤ charged: charged before delivery
	reqHash := sha256.Sum256(g.body)
	outHash := sha256.Sum256([]byte(out.String()))
	now := p.now()
	ttft := time.Duration(0)
	if !firstAt.IsZero() {
		ttft = firstAt.Sub(g.start)
	}
	rcJSON, err := p.pay.settle(g.st, charged, cost, p.deps.PrivKey, ids, lps, func(cum uint64) channel.Receipt {
		return channel.Receipt{
			ChainID: p.chainID, RequestID: g.reqID, Provider: p.deps.Address, Consumer: g.consumer, ChannelID: g.channelID,
			ModelID: mid, ModelSHA256: m.sha, RequestHash: hex.EncodeToString(reqHash[:]), OutputHash: hex.EncodeToString(outHash[:]),
			TokensIn: tokensIn, TokensOut: tokensOut, PriceInPerMTok: pin, PriceOutPerMTok: pout, Cost: cost, Cumulative: cum,
			QueueMs: uint64(queued.Milliseconds()), TTFTMs: uint64(ttft.Milliseconds()), DurationMs: uint64(now.Sub(g.start).Milliseconds()),
			MilliTokensPerSec:  milliTokensPerSec(delivered, lastAt.Sub(firstAt)),
			LogprobsCommitment: channel.LogprobsCommitment(ids, lps), FinishReason: finish, TimeUnixMs: now.UnixMilli(),
		}
	})
	if err != nil {
		p.log.Error("persist receipt", "request_id", g.reqID, "err", err)
		if sse == nil {
			p.fail(w, mid, "store", &openai.Error{Status: 500, Type: openai.TypeServer, Message: "provider could not persist the receipt; nothing was billed"})
		} else {
			_ = sse.WriteJSON(&openai.Error{Status: 500, Type: openai.TypeServer, Message: "provider could not persist the receipt; nothing was billed"})
		}
		return
	}
	p.metrics.Tokens.WithLabelValues(mid, "in").Add(float64(tokensIn))
	p.metrics.Tokens.WithLabelValues(mid, "out").Add(float64(tokensOut))
	p.metrics.EarnedUmyc.Add(float64(cost))
	p.metrics.Duration.WithLabelValues(mid).Observe(now.Sub(g.start).Seconds())
	if finish == "cancel" {
		p.metrics.Requests.WithLabelValues(mid, "499").Inc()
		return // the receipt is stored; the client can fetch it
	}
	usage := &openai.Usage{PromptTokens: int(tokensIn), CompletionTokens: int(tokensOut), TotalTokens: int(tokensIn + tokensOut)}
	if !g.stream {
		w.Header().Set(channel.HeaderReceipt, base64.RawURLEncoding.EncodeToString(rcJSON))
		var v any
		if g.chat {
			var lp *openai.ChatLogprobs
			if g.logprobs {
				lp = &openai.ChatLogprobs{Content: chatLP}
				if lp.Content == nil {
					lp.Content = []openai.TokenLogprob{}
				}
			}
			v = openai.ChatCompletion{ID: id, Object: openai.ObjectChatCompletion, Created: created, Model: mid,
				Choices: []openai.ChatChoice{{Message: openai.ChatMessage{Role: "assistant", Content: out.String()}, Logprobs: lp, FinishReason: finish}}, Usage: usage}
		} else {
			var lp *openai.CompletionLogprobs
			if g.logprobs {
				lp = &cmplLP
			}
			v = openai.Completion{ID: id, Object: openai.ObjectTextCompletion, Created: created, Model: mid,
				Choices: []openai.CompletionChoice{{Text: out.String(), Logprobs: lp, FinishReason: finish}}, Usage: usage}
		}
		p.metrics.Requests.WithLabelValues(mid, "200").Inc()
		writeJSON(w, http.StatusOK, v)
		return
	}
	if !startStream() {
		return
	}
	if failure != nil {
		_ = sse.WriteJSON(failure)
	}
	if g.chat {
		_ = sse.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Created: created, Model: mid,
			Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{}, FinishReason: openai.Ptr(finish)}}})
		if g.usage {
			_ = sse.WriteJSON(openai.ChatCompletionChunk{ID: id, Object: openai.ObjectChatCompletionChunk, Created: created, Model: mid, Choices: []openai.ChatChunkChoice{}, Usage: usage})
		}
	} else {
		_ = sse.WriteJSON(openai.CompletionChunk{ID: id, Object: openai.ObjectTextCompletion, Created: created, Model: mid,
			Choices: []openai.CompletionChunkChoice{{Text: "", FinishReason: openai.Ptr(finish)}}})
		if g.usage {
			_ = sse.WriteJSON(openai.CompletionChunk{ID: id, Object: openai.ObjectTextCompletion, Created: created, Model: mid, Choices: []openai.CompletionChunkChoice{}, Usage: usage})
		}
	}
	_ = sse.WriteData(append(append([]byte(`{"object":"`+channel.ReceiptEventObject+`","receipt":`), rcJSON...), '}'))
	_ = sse.WriteDone()
	p.metrics.Requests.WithLabelValues(mid, "200").Inc()
}

// milliTokensPerSec is the receipt's output rate: the tokens after the first over the time
// from the first to the last, in thousandths of a token per second (0 when undefined).
func milliTokensPerSec(tokens uint64, d time.Duration) uint64 {
	if tokens < 2 || d <= 0 {
		return 0
	}
	r := float64(tokens-1) * 1e12 / float64(d.Nanoseconds())
	if r >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(r)
}

func (p *Provider) chargeError(err error, channelID uint64) *openai.Error {
	switch {
	case errors.Is(err, errBadVoucher):
		return payErr("the latest voucher of channel %d does not verify (%v); send a valid voucher covering what was delivered", channelID, err)
	case errors.Is(err, errNoDeposit):
		return payErr("payment channel %d is exhausted: its deposit cannot pay for this request; top it up or open a new channel", channelID)
	case errors.Is(err, errNoCredit):
		return payErr("voucher of channel %d does not leave credit for this request: sign a voucher covering everything delivered", channelID)
	}
	return payErr("payment: %v", err)
}

func (p *Provider) serveModels(w http.ResponseWriter, r *http.Request) {
	ml := openai.ModelList{Object: openai.ObjectList, Data: []openai.Model{}}
	for _, mid := range p.order {
		ml.Data = append(ml.Data, openai.Model{ID: mid, Object: openai.ObjectModel, OwnedBy: p.deps.Address})
	}
	writeJSON(w, http.StatusOK, ml)
}

// serveVoucher takes a voucher without a request (settling, paying ahead).
func (p *Provider) serveVoucher(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(w, r, 16<<10)
	if e != nil {
		openai.WriteError(w, e)
		return
	}
	var v channel.Voucher
	if err := json.Unmarshal(body, &v); err != nil {
		openai.WriteError(w, &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "voucher: " + err.Error()})
		return
	}
	st, e := p.pay.admit(r.Context(), v)
	if e != nil {
		if d, ok := p.pay.delivered(v.ChannelID); ok && e.Status == http.StatusPaymentRequired {
			w.Header().Set(HeaderDelivered, strconv.FormatUint(d, 10))
		}
		openai.WriteError(w, e)
		return
	}
	// A voucher sent on its own is meant to settle: check it now.
	st.mu.Lock()
	if st.rec.Latest.Amount > st.verified {
		if err := p.pay.verify(st, st.rec.Latest); err != nil {
			p.pay.forget(st)
			st.mu.Unlock()
			openai.WriteError(w, payErr("voucher for channel %d: %v", v.ChannelID, err))
			return
		}
		st.acceptVerified(st.rec.Latest)
		_ = p.deps.Store.SaveChannelSync(st.rec)
	}
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, p.pay.info(st))
}

func (p *Provider) serveChannel(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		openai.WriteError(w, &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "channel id must be a positive integer"})
		return
	}
	st, e := p.pay.state(r.Context(), id)
	if e != nil {
		if e.Status == http.StatusPaymentRequired {
			e.Status = http.StatusNotFound
		}
		openai.WriteError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, p.pay.info(st))
}

func (p *Provider) serveReceipt(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("channel"), 10, 64)
	if err != nil {
		openai.WriteError(w, &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "channel id must be a positive integer"})
		return
	}
	rc, ok, err := p.deps.Store.Receipt(id, r.PathValue("request"))
	switch {
	case err != nil:
		openai.WriteError(w, &openai.Error{Status: 500, Type: openai.TypeServer, Message: err.Error()})
	case !ok:
		openai.WriteError(w, &openai.Error{Status: 404, Type: openai.TypeNotFound, Message: "no such receipt"})
	default:
		// Stored unsigned (see payments.settle); the signature is deterministic.
		writeJSON(w, http.StatusOK, channel.SignReceipt(rc, p.deps.PrivKey))
	}
}

// Info is the answer of GET /mycel/v1/info.
type Info struct {
	Address string      `json:"address"`
	ChainID string      `json:"chain_id"`
	Models  []ModelInfo `json:"models"`
	Healthy bool        `json:"healthy"`
	Credit  uint64      `json:"credit_umyc"`
}

// ModelInfo is one served model in Info.
type ModelInfo struct {
	ID              string `json:"id"`
	SHA256          string `json:"sha256"`
	PriceInPerMTok  uint64 `json:"price_in_per_mtok"`
	PriceOutPerMTok uint64 `json:"price_out_per_mtok"`
	ContextLength   int    `json:"context_length,omitempty"`
	Healthy         bool   `json:"healthy"`
	MaxConcurrent   int    `json:"max_concurrent"`
	QueueLength     int    `json:"queue_length"` // requests that may wait beyond max_concurrent before a 429
	Queued          int    `json:"queued"`
}

func (p *Provider) info() Info {
	in := Info{Address: p.deps.Address, ChainID: p.chainID, Healthy: true, Credit: p.cfg.CreditUmyc, Models: []ModelInfo{}}
	for _, mid := range p.order {
		m := p.models[mid]
		h := m.healthy.Load()
		in.Healthy = in.Healthy && h
		in.Models = append(in.Models, ModelInfo{ID: mid, SHA256: m.sha, PriceInPerMTok: m.cfg.PriceInPerMTok, PriceOutPerMTok: m.cfg.PriceOutPerMTok,
			ContextLength: m.b.Info().ContextLength, Healthy: h, MaxConcurrent: m.cfg.MaxConcurrent, QueueLength: m.cfg.QueueLength, Queued: m.sched.depth()})
	}
	return in
}

func (p *Provider) serveInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, p.info())
}

func (p *Provider) serveHealth(w http.ResponseWriter, r *http.Request) {
	in := p.info()
	models := map[string]string{}
	for _, m := range in.Models {
		models[m.ID] = "ok"
		if !m.Healthy {
			models[m.ID] = "unhealthy"
		}
	}
	status, code := "ok", http.StatusOK
	if !in.Healthy {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": status, "models": models})
}
