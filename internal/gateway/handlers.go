package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/router"
)

// Request and response headers of the gateway.
const (
	HeaderRequestID = "X-Request-Id"
	// HeaderProvider names the provider that served the answer. A stream declares it as a
	// trailer too: the header names the provider that started the answer, the trailer every
	// provider that served part of it (comma-separated, in order), as does the "mycel":
	// {"providers": [...]} field of its final chunks.
	HeaderProvider = "X-Mycel-Provider"
	HeaderPolicy   = "X-Mycel-Policy"    // balanced | cheapest | fastest
	HeaderMaxPrice = "X-Mycel-Max-Price" // umyc per 1M tokens, both prices
	HeaderMaxTTFT  = "X-Mycel-Max-Ttft-Ms"
)

// Handler returns the HTTP API: /v1/models, /v1/chat/completions, /v1/completions, the
// request records and reveals of gwapi, /healthz, /metrics.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1/models", g.api("models", g.handleModels))
	mux.Handle("GET /v1/models/{id...}", g.api("model", g.handleModel))
	mux.Handle("POST /v1/chat/completions", g.api("chat", func(w http.ResponseWriter, r *http.Request, k *apikey.Key) *openai.Error {
		return g.handleGenerate(w, r, k, kindChat)
	}))
	mux.Handle("POST /v1/completions", g.api("completions", func(w http.ResponseWriter, r *http.Request, k *apikey.Key) *openai.Error {
		return g.handleGenerate(w, r, k, kindCompletion)
	}))
	// The records of answered requests and the reveal of their attempts (gwapi).
	mux.Handle("GET "+gwapi.RecordPath("{id}"), g.api("record", g.handleRecord))
	mux.Handle("GET "+gwapi.RecordPath("{id}")+"/attempts/{attempt}/logprobs", g.api("reveal", g.handleReveal))
	// /healthz is 200 {"status":"ok"} while the gateway can serve, else 503 with the reason:
	// the ledger did not answer the last refresh, or no provider passed its health probe.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if why := g.dir.health(r.Context()); why != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	var gatherer prometheus.Gatherer = prometheus.DefaultGatherer
	if gr, ok := g.deps.Registerer.(prometheus.Gatherer); ok {
		gatherer = gr
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		openai.WriteError(w, &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest,
			Message: fmt.Sprintf("unknown path %s %s", r.Method, r.URL.Path)})
	})
	// Every answer carries an x-request-id.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderRequestID, newID("req_"))
		mux.ServeHTTP(w, r)
	})
}

type apiFunc func(w http.ResponseWriter, r *http.Request, k *apikey.Key) *openai.Error

// statusWriter records the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// api wraps a handler: request id, authentication, and the one place errors become responses.
func (g *Gateway) api(route string, f apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		var key *apikey.Key
		e := g.authenticate(r, &key)
		if e == nil {
			e = f(sw, r, key)
		}
		if e != nil {
			if sw.status != 0 {
				// Headers already went out (a stream): nothing more can be said in-band.
				g.log.Warn("error after response started", "route", route, "err", e)
			} else {
				openai.WriteError(sw, e)
			}
		}
		g.metrics.requests.WithLabelValues(route, strconv.Itoa(max(sw.status, 200))).Inc()
		if route == "chat" || route == "completions" {
			g.traffic.request(max(sw.status, 200))
		}
	})
}

func (g *Gateway) authenticate(r *http.Request, key **apikey.Key) *openai.Error {
	if g.deps.Keys == nil {
		return nil
	}
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return &openai.Error{Status: http.StatusUnauthorized, Type: openai.TypeInvalidRequest, Code: openai.CodeInvalidAPIKey,
			Message: "You didn't provide an API key. Send it as Authorization: Bearer sk-mycel-…"}
	}
	k, err := g.deps.Keys.Authenticate(strings.TrimSpace(secret))
	if err != nil {
		msg := "Incorrect API key provided."
		if errors.Is(err, apikey.ErrRevoked) {
			msg = "This API key has been revoked."
		} else if !errors.Is(err, apikey.ErrUnknownKey) {
			return &openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Message: "key store: " + err.Error()}
		}
		return &openai.Error{Status: http.StatusUnauthorized, Type: openai.TypeInvalidRequest, Code: openai.CodeInvalidAPIKey, Message: msg}
	}
	*key = &k
	return nil
}

// admit enforces the key's budget and rate limits.
func (g *Gateway) admit(k *apikey.Key) *openai.Error {
	if k == nil {
		return nil
	}
	err := g.deps.Keys.Admit(k.ID, g.now())
	if err == nil {
		return nil
	}
	return limitError(err)
}

// limitError is the answer to a request refused by Admit or Reserve: 429 with Retry-After for
// a rate limit or a budget (an hour when the budget is spent; a second when it is only held
// by requests in flight), 401 for a key revoked meanwhile.
func limitError(err error) *openai.Error {
	var le *apikey.LimitError
	if errors.As(err, &le) {
		e := &openai.Error{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Code: openai.CodeRateLimited, Message: le.Message}
		if le.Reason == "budget" {
			e.Type, e.Code = "insufficient_quota", "insufficient_quota"
		}
		switch {
		case le.RetryAfter > 0:
			e.RetryAfter = max(1, int((le.RetryAfter+time.Second-1)/time.Second))
		case le.Reason == "budget":
			e.RetryAfter = 3600
		default:
			e.RetryAfter = 1
		}
		return e
	}
	return &openai.Error{Status: http.StatusUnauthorized, Type: openai.TypeInvalidRequest, Code: openai.CodeInvalidAPIKey, Message: err.Error()}
}

// reserve holds the most the request may cost on any of cands against key's budget (nil
// when the key has none). The bound is the one vouchers use (maxCost: twice the estimated
// prompt plus 16 tokens in, max_tokens or DefaultMaxTokens out) at the dearest candidate,
// since retries, hedges and failovers may land on any. Not covered: an answer longer than
// DefaultMaxTokens when the client set no max_tokens, and the partial answer a mid-stream
// failover re-sends as prompt; those are charged when settled (the providers were paid).
func (g *Gateway) reserve(key *apikey.Key, cands []candInfo, rr router.Request) (*apikey.Reservation, *openai.Error) {
	if key == nil || key.BudgetUmyc == 0 {
		return nil, nil
	}
	var need uint64
	for _, c := range cands {
		need = max(need, maxCost(c.Candidate, rr))
	}
	res, err := g.deps.Keys.Reserve(key.ID, need)
	if err != nil {
		return nil, limitError(err)
	}
	return res, nil
}

// ModelInfo is one entry of GET /v1/models: OpenAI's model object plus the network's view.
type ModelInfo struct {
	openai.Model
	SHA256          string `json:"sha256,omitempty"`
	Providers       int    `json:"providers"`
	PriceInPerMTok  Range  `json:"price_in_per_mtok"` // umyc per 1M prompt tokens over providers
	PriceOutPerMTok Range  `json:"price_out_per_mtok"`
}

// Range is a min–max price range.
type Range struct {
	Min uint64 `json:"min"`
	Max uint64 `json:"max"`
}

// ModelList is the answer of GET /v1/models.
type ModelList struct {
	Object string      `json:"object"`
	Data   []ModelInfo `json:"data"`
}

func (g *Gateway) modelInfos(ctx context.Context) ([]ModelInfo, *openai.Error) {
	if err := g.dir.ensure(ctx); err != nil {
		return nil, &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Message: "ledger unavailable: " + err.Error()}
	}
	ps, models, _ := g.dir.snapshot()
	byID := map[string]*ModelInfo{}
	for _, p := range ps {
		if !p.Active {
			continue
		}
		for _, m := range p.Models {
			mi := byID[m.ModelID]
			if mi == nil {
				mi = &ModelInfo{Model: openai.Model{ID: m.ModelID, Object: openai.ObjectModel, OwnedBy: "mycel"},
					PriceInPerMTok: Range{m.PriceInPerMTok, m.PriceInPerMTok}, PriceOutPerMTok: Range{m.PriceOutPerMTok, m.PriceOutPerMTok}}
				if lm, ok := models[m.ModelID]; ok {
					mi.SHA256 = lm.SHA256
					mi.Created = lm.Height
				}
				byID[m.ModelID] = mi
			}
			mi.Providers++
			mi.PriceInPerMTok.Min = min(mi.PriceInPerMTok.Min, m.PriceInPerMTok)
			mi.PriceInPerMTok.Max = max(mi.PriceInPerMTok.Max, m.PriceInPerMTok)
			mi.PriceOutPerMTok.Min = min(mi.PriceOutPerMTok.Min, m.PriceOutPerMTok)
			mi.PriceOutPerMTok.Max = max(mi.PriceOutPerMTok.Max, m.PriceOutPerMTok)
		}
	}
	out := make([]ModelInfo, 0, len(byID))
	for _, mi := range byID {
		out = append(out, *mi)
	}
	slices.SortFunc(out, func(a, b ModelInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (g *Gateway) handleModels(w http.ResponseWriter, r *http.Request, _ *apikey.Key) *openai.Error {
	ms, e := g.modelInfos(r.Context())
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, ModelList{Object: openai.ObjectList, Data: ms})
	return nil
}

func (g *Gateway) handleModel(w http.ResponseWriter, r *http.Request, _ *apikey.Key) *openai.Error {
	ms, e := g.modelInfos(r.Context())
	if e != nil {
		return e
	}
	id := r.PathValue("id")
	for _, m := range ms {
		if m.ID == id {
			writeJSON(w, http.StatusOK, m)
			return nil
		}
	}
	return modelNotFound(id)
}

func modelNotFound(id string) *openai.Error {
	return &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Param: "model", Code: openai.CodeModelNotFound,
		Message: fmt.Sprintf("The model '%s' does not exist or no provider serves it", id)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		openai.WriteError(w, &openai.Error{Status: http.StatusInternalServerError, Message: "encode response: " + err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// limits reads the x-mycel-* request headers.
func (g *Gateway) limits(r *http.Request) (router.Policy, router.Limits, *openai.Error) {
	name := r.Header.Get(HeaderPolicy)
	if name == "" {
		name = g.cfg.Policy
	}
	p, err := router.ByName(name)
	if err != nil {
		return nil, router.Limits{}, &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "x-mycel-policy", Message: err.Error()}
	}
	var l router.Limits
	if s := r.Header.Get(HeaderMaxPrice); s != "" {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, l, &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "x-mycel-max-price", Message: "x-mycel-max-price must be an integer number of umyc per 1M tokens"}
		}
		l.MaxPricePerMTok = v
	}
	if s := r.Header.Get(HeaderMaxTTFT); s != "" {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return nil, l, &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "x-mycel-max-ttft-ms", Message: "x-mycel-max-ttft-ms must be a positive number of milliseconds"}
		}
		l.MaxTTFTMs = v
	}
	return p, l, nil
}
