package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/router"
)

type kind int

const (
	kindChat kind = iota
	kindCompletion
)

func (k kind) path() string {
	if k == kindChat {
		return "/v1/chat/completions"
	}
	return "/v1/completions"
}

// genRequest is a validated client request.
type genRequest struct {
	kind         kind
	body         []byte // the client's body as received; unknown fields pass through
	model        string
	stream       bool
	includeUsage bool
	maxTokens    int // 0: not set
	prompt       string
	estIn        int // estimated prompt tokens
	logprobs     bool
	// seed is the gateway's seed for the request, drawn once per client request and sent on
	// every attempt (hedges, retries, continuations) when the client's body has none (absent
	// or null): a seeded answer can be regenerated exactly by a verifier, and every request
	// looks alike, verifiers' and users'.
	seed int64
	// pin is the provider the client pinned the request to (gwapi.HeaderPinProvider), or "".
	pin string
	// hold is the API key's budget reserved for the request, released once its cost has
	// been charged (settleNow) or when it fails before an answer.
	hold *apikey.Reservation
}

// candInfo is a routable provider with what the gateway needs to call and pay it.
type candInfo struct {
	router.Candidate
	endpoint string
	pinned   bool // the client pinned the request to it: its breaker does not stop it
}

func (g *Gateway) handleGenerate(w http.ResponseWriter, r *http.Request, key *apikey.Key, k kind) *openai.Error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &openai.Error{Status: http.StatusRequestEntityTooLarge, Type: openai.TypeInvalidRequest, Code: openai.CodeBodyTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", g.cfg.MaxBodyBytes)}
		}
		return &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "read body: " + err.Error()}
	}
	req, e := decodeRequest(k, body)
	if e != nil {
		return e
	}
	req.seed = newSeed()
	req.pin = strings.TrimSpace(r.Header.Get(gwapi.HeaderPinProvider))
	if e := g.admit(key); e != nil {
		return e
	}
	policy, limits, e := g.limits(r)
	if e != nil {
		return e
	}
	out := req.maxTokens
	if out == 0 {
		out = g.cfg.DefaultMaxTokens
	}
	rr := router.Request{TokensIn: req.estIn, TokensOut: out, Limits: limits}
	cands, e := g.candidates(r.Context(), req.model, req.pin, policy, rr)
	if req.pin != "" {
		cands, e = pinned(cands, e, req.model, req.pin)
	}
	if e != nil {
		return e
	}
	if req.hold, e = g.reserve(key, cands, rr); e != nil {
		return e
	}
	reqID := w.Header().Get(HeaderRequestID)
	// serve settles (and releases the hold) whenever it answers; on an error nothing was
	// answered and nothing is charged.
	if e := g.serve(w, r, key, req, cands, rr, reqID); e != nil {
		req.hold.Release()
		return e
	}
	return nil
}

// maxSeed bounds the seeds the gateway draws: [0, 2^31) is a seed every engine takes (some
// read it as a 32-bit signed integer).
const maxSeed = 1 << 31

// newSeed draws a gateway-assigned seed, uniform in [0, maxSeed).
func newSeed() int64 { return rand.Int64N(maxSeed) }

// pinned restricts the routable candidates (or candidates' error e) to the provider pin: the
// one candidate, so that no other provider is tried, hedged or failed over to. A pinned
// provider that is not among them gives 503 no_provider naming it; an unknown model stays a
// 404.
func pinned(cands []candInfo, e *openai.Error, model, pin string) ([]candInfo, *openai.Error) {
	if e != nil && e.Code == openai.CodeModelNotFound {
		return nil, e
	}
	for _, c := range cands {
		if c.Provider == pin {
			return []candInfo{c}, nil
		}
	}
	why := "it is unknown, does not serve the model, or is not routable within the request's limits"
	if e != nil {
		why = e.Message
	}
	return nil, &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: "no_provider", RetryAfter: 1,
		Message: fmt.Sprintf("The pinned provider %s (%s) cannot serve model '%s': %s", pin, gwapi.HeaderPinProvider, model, why)}
}

func decodeRequest(k kind, body []byte) (genRequest, *openai.Error) {
	req := genRequest{kind: k}
	if k == kindChat {
		c, e := openai.DecodeChatRequest(body)
		if e != nil {
			return req, e
		}
		req.model, req.stream, req.includeUsage, req.logprobs = c.Model, c.Stream, c.IncludeUsage(), c.Logprobs
		if n, ok := c.MaxOutputTokens(); ok {
			req.maxTokens = n
		}
		var sb strings.Builder
		for _, m := range c.Messages {
			sb.WriteString(m.Content)
		}
		req.prompt = sb.String()
		req.estIn = len(c.Messages)*4 + len(req.prompt)/4
	} else {
		c, e := openai.DecodeCompletionRequest(body)
		if e != nil {
			return req, e
		}
		req.model, req.stream, req.includeUsage, req.logprobs = c.Model, c.Stream, c.IncludeUsage(), c.Logprobs != nil
		if n, ok := c.MaxOutputTokens(); ok {
			req.maxTokens = n
		}
		req.prompt = c.Prompt.Text()
		req.estIn = 1 + len(req.prompt)/4
	}
	req.body = body
	return req, nil
}

// candidates returns the ranked providers for model, or the 404/503 that says why none. With a
// pin, only that provider is a candidate: its share bound is then its own (a pinned request,
// such as a verifier's capacity job, is limited by the provider's free slots only).
func (g *Gateway) candidates(ctx context.Context, model, pin string, p router.Policy, rr router.Request) ([]candInfo, *openai.Error) {
	if err := g.dir.ensure(ctx); err != nil {
		return nil, &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Message: "ledger unavailable: " + err.Error()}
	}
	ps, models, unhealthy := g.dir.snapshot()
	slots := g.dir.capacities()
	now := g.now()
	var cs []router.Candidate
	endpoints := map[string]string{}
	for _, pv := range ps {
		sm, ok := served(pv, model)
		if !ok || (pin != "" && pv.Address != pin) {
			continue
		}
		// Capacity is what the provider advertises it takes for the model (max_concurrent
		// running plus queue_length waiting, read by the health probe from GET
		// /mycel/v1/info; 0 = unknown, no limit): a request beyond that would get the
		// provider's 429, so the router sends it elsewhere, or the 503 says at_capacity. It
		// can only lower what a provider gets: its share of traffic and of requests in flight
		// is bounded by ProvenTPS, the ledger's proven capacity on the model, relative to the
		// other candidates' (router.Bounds). In-flight and Routed count only this gateway's
		// requests.
		c := router.Candidate{Provider: pv.Address, PriceInPerMTok: sm.PriceInPerMTok, PriceOutPerMTok: sm.PriceOutPerMTok,
			Stake: pv.Stake, Jailed: pv.Jailed, Unhealthy: !pv.Active && !pv.Jailed,
			Reputation: reputation(pv), Capacity: slots[pv.Address][model], ProvenTPS: provenTPS(pv, model)}
		if _, bad := unhealthy[pv.Address]; bad {
			c.Unhealthy = true
		}
		g.stats.Fill(&c, now)
		if pin != "" {
			// A pinned request asks for this provider whatever the gateway thinks of it (a
			// verifier audits exactly the providers that misbehave): its breaker and health
			// probe do not turn it away; full slots and a jail still do.
			c.CircuitOpen, c.Unhealthy = false, !pv.Active && !pv.Jailed
		}
		g.dir.shares.Fill(model, &c)
		cs = append(cs, c)
		endpoints[pv.Address] = pv.Endpoint
	}
	if len(cs) == 0 {
		if _, ok := models[model]; ok {
			return nil, &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: "no_provider",
				Message: fmt.Sprintf("No provider serves the model '%s' right now", model)}
		}
		return nil, modelNotFound(model)
	}
	ranked, rejected := router.Select(p, cs, rr)
	if len(ranked) == 0 {
		return nil, noMatch(model, rejected, nil)
	}
	// The first choice is given the request for the share bounds, whether or not a retry,
	// hedge or failover ends up serving part of it.
	g.dir.shares.Add(model, ranked[0].Provider, rr.TokensOut)
	out := make([]candInfo, len(ranked))
	for i, c := range ranked {
		out[i] = candInfo{Candidate: c, endpoint: endpoints[c.Provider], pinned: pin != ""}
	}
	return out, nil
}

// provenTPS is p's proven capacity on model in tokens/s (the stake-weighted median of the
// verifiers' benchmark measurements, from the last epoch in which verifiers recorded any for
// the provider), 0 without a proof on this model.
func provenTPS(p ledger.ProviderView, model string) float64 {
	if p.ProvenCapacity == nil {
		return 0
	}
	for _, m := range p.ProvenCapacity.Models {
		if m.ModelID == model {
			return float64(m.TokensPerSecMilli) / 1000
		}
	}
	return 0
}

// reputation is the router's Reputation of a provider from its ledger record, in (0, 1], or
// 0 (unknown) when nothing has happened to it yet. It is the audit pass rate (1 before the
// first audit), discounted by up to 10% while the provider has fewer than 10 clean epochs
// behind it, and halved for every upheld piece of evidence or slash against it. It never
// rounds down to 0, which the router reads as unknown (slightly better than a poor record).
func reputation(p ledger.ProviderView) float64 {
	if p.Reputation == nil && p.AuditPassRateBps == nil {
		return 0
	}
	rate := 1.0
	if p.AuditPassRateBps != nil {
		rate = float64(min(*p.AuditPassRateBps, 10_000)) / 10_000
	}
	if r := p.Reputation; r != nil {
		rate *= 0.9 + 0.1*float64(min(r.CleanEpochs, 10))/10
		rate /= math.Pow(2, float64(min(r.EvidenceAgainst+r.Slashes, 16)))
	}
	return max(rate, 0.001)
}

func served(p ledger.ProviderView, model string) (struct{ PriceInPerMTok, PriceOutPerMTok uint64 }, bool) {
	for _, m := range p.Models {
		if m.ModelID == model {
			return struct{ PriceInPerMTok, PriceOutPerMTok uint64 }{m.PriceInPerMTok, m.PriceOutPerMTok}, true
		}
	}
	return struct{ PriceInPerMTok, PriceOutPerMTok uint64 }{}, false
}

// noMatch is the 503 that says, per candidate, why it could not serve ("why no match").
func noMatch(model string, rejected []router.Rejection, failed []string) *openai.Error {
	var parts []string
	for _, r := range rejected {
		parts = append(parts, fmt.Sprintf("%s: %s (%s)", r.Provider, r.Reason, r.Detail))
	}
	parts = append(parts, failed...)
	return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: "no_provider",
		Message: fmt.Sprintf("No provider can serve model '%s': %s", model, strings.Join(parts, "; ")), RetryAfter: 1}
}

// upstreamBody is the client's request as sent to a provider: always streamed with usage
// (a non-streaming client's answer is assembled from the stream, so that it too gets hedging,
// mid-stream failover, a measured TTFT and the per-token receipt check), with the gateway's
// seed when the client gave none (absent or null), and for a continuation the partial answer
// as an assistant prefix (chat) or prompt suffix.
func upstreamBody(req genRequest, prefix string, delivered int) ([]byte, error) {
	if prefix == "" && !bytes.Contains(req.body, []byte(`"stream`)) && !bytes.Contains(req.body, []byte(`"seed"`)) {
		// The common plain request: add the three fields without decoding the body (it is a
		// JSON object with at least "model", checked by decodeRequest). A "seed" anywhere,
		// even nested, takes the path below, which looks at the top level only.
		rest := bytes.TrimLeft(req.body, " \t\r\n")
		if len(rest) > 0 && rest[0] == '{' {
			const add = `{"stream":true,"stream_options":{"include_usage":true},"seed":`
			b := make([]byte, 0, len(add)+11+len(rest))
			b = strconv.AppendInt(append(b, add...), req.seed, 10)
			return append(append(b, ','), rest[1:]...), nil
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(req.body, &raw); err != nil {
		return nil, fmt.Errorf("upstream body: %w", err)
	}
	m := make(map[string]json.RawMessage, len(raw)+3)
	for k, v := range raw {
		m[k] = v
	}
	m["stream"] = json.RawMessage("true")
	m["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	if s, ok := m["seed"]; !ok || bytes.Equal(bytes.TrimSpace(s), []byte("null")) {
		m["seed"] = strconv.AppendInt(nil, req.seed, 10)
	}
	if prefix != "" {
		if req.kind == kindChat {
			var msgs []json.RawMessage
			if err := json.Unmarshal(raw["messages"], &msgs); err != nil {
				return nil, fmt.Errorf("continuation: messages: %w", err)
			}
			b, _ := json.Marshal(openai.ChatMessage{Role: "assistant", Content: prefix})
			msgs = append(msgs, b)
			mb, _ := json.Marshal(msgs)
			m["messages"] = mb
			// vLLM's and SGLang's names for "the last message is a prefix to continue": the
			// provider must not close the assistant turn.
			m["continue_final_message"] = json.RawMessage("true")
			m["add_generation_prompt"] = json.RawMessage("false")
		} else {
			b, _ := json.Marshal(req.prompt + prefix)
			m["prompt"] = b
			delete(m, "echo")
		}
		for _, f := range []string{"max_tokens", "max_completion_tokens"} {
			if _, ok := m[f]; ok && req.maxTokens > 0 {
				m[f] = json.RawMessage(fmt.Sprint(max(req.maxTokens-delivered, 1)))
			}
		}
	}
	return json.Marshal(m)
}

// attempt is one request to one provider whose first event has arrived.
type attempt struct {
	cand     candInfo
	id       string // request id sent to the provider
	bodyHash string
	body     []byte // sent to the provider
	resp     *http.Response
	sse      *openai.SSEReader
	br       *bufio.Reader // sse's buffer, from sseBufs
	cancel   context.CancelFunc
	stall    *time.Timer
	start    time.Time
	ttft     time.Duration
	first    []byte // first SSE event
}

func (a *attempt) close() {
	a.stall.Stop()
	a.cancel()
	a.resp.Body.Close()
	if a.br != nil {
		a.br.Reset(nil)
		sseBufs.Put(a.br)
		a.br = nil
	}
}

// sseBufs recycles the 64 KiB read buffers of provider streams: allocating (and zeroing) one
// per attempt was a tenth of the gateway's CPU per request. openai.NewSSEReader uses a
// *bufio.Reader of its size as it is. An event's data is a copy, so nothing refers to a
// buffer once its attempt is closed.
var sseBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, sseBufSize) }}

const sseBufSize = 64 << 10

type dialError struct {
	provider string
	status   int
	err      error
	sent     bool   // the provider accepted the request (200) before it failed: it may bill
	maxCost  uint64 // what the request could have cost
}

func (e *dialError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("%s: status %d: %v", e.provider, e.status, e.err)
	}
	return fmt.Sprintf("%s: %v", e.provider, e.err)
}

// dial sends body to c and waits for the first event.
func (g *Gateway) dial(ctx context.Context, c candInfo, k kind, body []byte, id string, maxCost uint64) (*attempt, error) {
	sum := sha256.Sum256(body)
	a := &attempt{cand: c, id: id, bodyHash: hex.EncodeToString(sum[:]), body: body, start: g.now()}
	for try := 0; ; try++ {
		v, err := g.pay.voucher(ctx, c.Provider, maxCost, g.now())
		if err != nil {
			return nil, &dialError{provider: c.Provider, err: err}
		}
		hv, _ := channel.EncodeHeader(v)
		actx, cancel := context.WithCancel(ctx)
		req, err := http.NewRequestWithContext(actx, http.MethodPost, strings.TrimRight(c.endpoint, "/")+k.path(), strings.NewReader(string(body)))
		if err != nil {
			cancel()
			return nil, &dialError{provider: c.Provider, err: err}
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set(channel.HeaderVoucher, hv)
		req.Header.Set(channel.HeaderRequestID, id)
		stall := time.AfterFunc(g.cfg.StallTimeout, cancel)
		resp, err := g.client.Do(req)
		if err != nil {
			stall.Stop()
			cancel()
			return nil, &dialError{provider: c.Provider, err: err}
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			stall.Stop()
			cancel()
			perr := openai.ParseError(resp.StatusCode, b)
			if resp.StatusCode == http.StatusPaymentRequired && try == 0 {
				// Receipts of earlier answers may still be being verified: once they are, the
				// voucher covers them.
				if err := g.pay.drain(ctx, c.Provider); err == nil && g.reconcile(ctx, c) {
					continue // the voucher now covers what the provider delivered; try once more
				}
			}
			return nil, &dialError{provider: c.Provider, status: resp.StatusCode, err: errors.New(perr.Message)}
		}
		a.resp, a.cancel, a.stall = resp, cancel, stall
		a.br = sseBufs.Get().(*bufio.Reader)
		a.br.Reset(resp.Body)
		a.sse = openai.NewSSEReader(a.br)
		first, err := a.sse.Next()
		if err != nil {
			a.close()
			return nil, &dialError{provider: c.Provider, err: fmt.Errorf("before first event: %w", err), sent: true, maxCost: maxCost}
		}
		a.stall.Reset(g.cfg.StallTimeout)
		a.first = first
		a.ttft = g.now().Sub(a.start)
		return a, nil
	}
}

// reconcile asks the provider what it has delivered on the channel after a 402.
func (g *Gateway) reconcile(ctx context.Context, c candInfo) bool {
	id := g.pay.channelID(c.Provider)
	if id == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/mycel/v1/channels/%d", strings.TrimRight(c.endpoint, "/"), id), nil)
	if err != nil {
		return false
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var st struct {
		Delivered uint64 `json:"delivered"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st) != nil {
		return false
	}
	ok, beyond := g.pay.reconcile(c.Provider, st.Delivered, g.cfg.ReconcileSlackUmyc)
	switch {
	case !ok:
		g.log.Warn("provider claims more than its receipts", "provider_id", c.Provider, "claimed_umyc", st.Delivered, "beyond_umyc", beyond)
	case beyond > 0:
		g.log.Info("provider's claim adopted within the slack", "provider_id", c.Provider, "claimed_umyc", st.Delivered, "beyond_umyc", beyond)
	}
	return ok
}

// postVoucher sends a voucher without a request (final settlement before closing).
func (g *Gateway) postVoucher(ctx context.Context, endpoint, chainID string, id, amount uint64) error {
	v := channel.SignVoucher(chainID, id, amount, g.deps.ConsumerKey)
	b, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+"/mycel/v1/voucher", strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func maxCost(c router.Candidate, rr router.Request) uint64 {
	cost, err := channel.Cost(uint64(rr.TokensIn)*2+16, uint64(rr.TokensOut), c.PriceInPerMTok, c.PriceOutPerMTok)
	if err != nil {
		return ^uint64(0) / 4
	}
	return cost
}

type dialResult struct {
	a     *attempt
	err   error
	hedge bool
	n     int // launch index
}

// firstByte starts the request on cands in order until one delivers its first event:
// failures before the first byte move on to the next candidate (at most MaxAttempts), and when
// the primary's first event is later than its p95 TTFT a hedge starts on the next candidate;
// whichever streams first wins and the other is cancelled. It returns the winner and the
// candidates not yet tried.
func (g *Gateway) firstByte(ctx context.Context, cands []candInfo, k kind, body func() ([]byte, error), reqID string, rr router.Request, seq *int) (*attempt, []candInfo, []string, error) {
	b, err := body()
	if err != nil {
		return nil, cands, nil, err
	}
	results := make(chan dialResult, len(cands))
	pending, launched := 0, 0
	var failed []string
	var cancels []context.CancelFunc
	var launchedAt []time.Time
	var launchedTo []string
	next := 0
	launch := func(hedge bool) bool {
		for next < len(cands) && launched < g.cfg.MaxAttempts+1 {
			c := cands[next]
			next++
			if !c.pinned && !g.stats.Allow(c.Provider, g.now()) {
				failed = append(failed, fmt.Sprintf("%s: %s (circuit breaker open)", c.Provider, router.CircuitOpen))
				continue
			}
			*seq++
			id := fmt.Sprintf("%s.%d", reqID, *seq)
			n := launched
			launched++
			pending++
			g.stats.Start(c.Provider)
			lctx, cancel := context.WithCancel(ctx)
			cancels = append(cancels, cancel)
			launchedAt, launchedTo = append(launchedAt, g.now()), append(launchedTo, c.Provider)
			go func() {
				a, err := g.dial(lctx, c, k, b, id, maxCost(c.Candidate, rr))
				results <- dialResult{a, err, hedge, n}
			}()
			return true
		}
		return false
	}
	if !launch(false) {
		return nil, nil, failed, errors.New("no candidate left")
	}
	var hedgeC <-chan time.Time
	if !g.cfg.NoHedge && next < len(cands) {
		if p95 := g.stats.P95TTFT(cands[0].Provider); p95 > 0 {
			t := time.NewTimer(max(p95, g.cfg.HedgeMin))
			defer t.Stop()
			hedgeC = t.C
		}
	}
	hedged := false
	for pending > 0 {
		select {
		case <-hedgeC:
			hedgeC = nil
			if launch(true) {
				hedged = true
			}
		case res := <-results:
			pending--
			if res.err != nil {
				g.metrics.attempts.WithLabelValues("failed").Inc()
				var de *dialError
				if errors.As(res.err, &de) {
					g.done(de.provider, router.Outcome{OK: false})
					if de.sent {
						g.pay.uncertain(de.provider, de.maxCost)
					}
				}
				failed = append(failed, res.err.Error())
				if pending == 0 && ctx.Err() == nil {
					launch(false) // retry before the first byte
				}
				continue
			}
			g.metrics.attempts.WithLabelValues("ok").Inc()
			if hedged {
				w := "primary"
				if res.hedge {
					w = "hedge"
					// The primary has not answered yet: its first token is at least this late.
					g.stats.ObserveTTFT(launchedTo[0], g.now().Sub(launchedAt[0]))
				}
				g.metrics.hedges.WithLabelValues(w).Inc()
				g.traffic.add(0, 1, 0, 0, 0)
			}
			if pending > 0 {
				for i, cancel := range cancels {
					if i != res.n {
						cancel()
					}
				}
				go func(n int) { // cancel and drain the losers
					for ; n > 0; n-- {
						r := <-results
						if r.a != nil {
							g.stats.Cancel(r.a.cand.Provider)
							r.a.close()
							g.pay.uncertain(r.a.cand.Provider, maxCost(r.a.cand.Candidate, rr))
						} else if de := new(dialError); errors.As(r.err, &de) {
							g.stats.Cancel(de.provider)
							switch {
							case de.sent:
								g.pay.uncertain(de.provider, de.maxCost)
							case de.status == 0:
								// Cancelled before its answer's headers arrived: the provider may
								// have started streaming (and billing) all the same.
								for _, c := range cands {
									if c.Provider == de.provider {
										g.pay.uncertain(de.provider, maxCost(c.Candidate, rr))
										break
									}
								}
							}
						}
					}
				}(pending)
			}
			return res.a, cands[next:], failed, nil
		}
	}
	return nil, nil, failed, errors.New("every provider failed")
}
