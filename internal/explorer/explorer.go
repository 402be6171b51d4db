// Package explorer serves the Mycel network explorer: one web page (embedded
// HTML, CSS and plain JavaScript, nothing fetched from the internet) at
// /explorer and its JSON API under /explorer/api/. It shows the chain
// (height, blocks, transactions decoded with internal/tx, search), the
// providers and verifiers as the ledger reports them, the money (channels,
// rewards, slashes with their evidence) and, when a gateway is attached, its
// traffic. Live updates come as server-sent events from /explorer/api/events;
// the page falls back to polling when they fail.
//
// `mycel node` and the gateway mount Handler; it keeps no state and starts
// no goroutines beyond those of the requests it serves.
package explorer

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/mycel-network/mycel/internal/ledger"
)

//go:embed static
var staticFS embed.FS

// ChainRPC is the part of CometBFT's RPC the explorer reads. The HTTP client
// (rpc/client/http) and the in-process one (rpc/client/local) implement it.
type ChainRPC interface {
	Status(ctx context.Context) (*ctypes.ResultStatus, error)
	ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error)
	BlockchainInfo(ctx context.Context, minHeight, maxHeight int64) (*ctypes.ResultBlockchainInfo, error)
	Tx(ctx context.Context, hash []byte, prove bool) (*ctypes.ResultTx, error)
	TxSearch(ctx context.Context, query string, prove bool, page, perPage *int, orderBy string) (*ctypes.ResultTxSearch, error)
}

// Traffic is what a gateway reports about the requests it routes, for the
// traffic charts. Implementations must be safe for concurrent use and cheap
// to call (the page asks about once a second).
type Traffic interface {
	// Traffic returns the totals since the gateway started.
	Traffic() TrafficSnapshot
}

// TrafficSnapshot is a gateway's cumulative traffic. The page derives rates
// (requests/s, tokens/s) from successive snapshots.
type TrafficSnapshot struct {
	Requests  uint64            `json:"requests"`   // API requests answered
	Errors    uint64            `json:"errors"`     // of which failed (status ≥ 400)
	Failovers uint64            `json:"failovers"`  // answers continued on another provider
	Hedges    uint64            `json:"hedges"`     // requests also sent to a second provider
	TokensIn  uint64            `json:"tokens_in"`  // prompt tokens
	TokensOut uint64            `json:"tokens_out"` // tokens served
	SpendUmyc uint64            `json:"spend_umyc"` // owed to providers
	TTFTMs    Histogram         `json:"ttft_ms"`    // all providers
	Providers []ProviderTraffic `json:"providers"`
}

// ProviderTraffic is one provider's share of a gateway's traffic.
type ProviderTraffic struct {
	Address      string    `json:"address"`
	Requests     uint64    `json:"requests"`
	Errors       uint64    `json:"errors"`
	TokensOut    uint64    `json:"tokens_out"`
	TTFTMs       Histogram `json:"ttft_ms"`
	TokensPerSec Histogram `json:"tokens_per_sec"`
}

// Histogram is a distribution: Counts[i] observations were ≤ Bounds[i] (and
// above Bounds[i-1]); Counts has one more entry than Bounds, for the
// observations above the last bound. The zero value is an empty histogram.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
}

// Deps are the explorer's sources.
type Deps struct {
	// Chain reads blocks, transactions and ledger state; required.
	Chain ChainRPC
	// Traffic is the attached gateway's; nil means "no gateway attached".
	Traffic Traffic
	// Names labels well-known addresses (a devnet's demo accounts); may be nil.
	Names map[string]string
	// Poll is how often the event stream looks for a new block (default 500 ms).
	Poll time.Duration
	// Logger receives request errors; nil discards them.
	Logger *slog.Logger
}

// Prefix is where Handler serves the page; the API is under Prefix+"/api/".
const Prefix = "/explorer"

type server struct {
	chain   ChainRPC
	traffic Traffic
	names   map[string]string
	poll    time.Duration
	log     *slog.Logger
	static  http.Handler
}

// Handler serves the explorer at /explorer, /explorer/ and below. Mount it
// for both "/explorer" and "/explorer/" on a mux.
func Handler(d Deps) http.Handler {
	s := &server{chain: d.Chain, traffic: d.Traffic, names: map[string]string{}, poll: d.Poll, log: d.Logger}
	for a, n := range d.Names {
		s.names[a] = n
	}
	if s.poll <= 0 {
		s.poll = 500 * time.Millisecond
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	s.static = http.StripPrefix(Prefix+"/static/", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix, s.index)
	mux.HandleFunc("GET "+Prefix+"/{$}", s.index)
	mux.Handle("GET "+Prefix+"/static/", s.static)
	api := func(pattern string, h func(*http.Request) (any, error)) {
		mux.HandleFunc("GET "+Prefix+"/api/"+pattern, s.json(h))
	}
	api("overview", s.overview)
	api("blocks", s.blocks)
	api("txs", s.txs)
	api("tx/{hash}", s.tx)
	api("search", s.search)
	api("traffic", s.trafficAPI)
	for _, p := range []string{"providers", "verifiers", "channels", "slashes", "evidence", "models", "epoch", "supply", "params"} {
		api(p, s.ledgerList(p))
	}
	api("rewards", s.rewards)
	api("names", func(*http.Request) (any, error) { return s.names, nil })
	mux.HandleFunc("GET "+Prefix+"/api/events", s.events)
	mux.HandleFunc(Prefix+"/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API path")
	})
	return mux
}

func (s *server) index(w http.ResponseWriter, r *http.Request) {
	b, err := staticFS.ReadFile("static/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "index missing")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

// httpError is an error with the status the client should see.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(msg string) error { return &httpError{http.StatusBadRequest, msg} }
func notFound(msg string) error   { return &httpError{http.StatusNotFound, msg} }

// json adapts a handler that returns a value or an error; errors are mapped
// to responses here and nowhere else.
func (s *server) json(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r)
		if err != nil {
			var he *httpError
			switch {
			case errors.As(err, &he):
				writeError(w, he.status, he.msg)
			case errors.Is(err, ledger.ErrNotFound):
				writeError(w, http.StatusNotFound, err.Error())
			default:
				s.log.Warn("explorer api", "path", r.URL.Path, "err", err)
				writeError(w, http.StatusBadGateway, err.Error())
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if raw, ok := v.(json.RawMessage); ok {
			w.Write(raw)
			return
		}
		json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// query runs a ledger query and returns its JSON answer as is, so that the
// page shows whatever fields this ledger version has.
func (s *server) query(ctx context.Context, path string, data []byte) (json.RawMessage, error) {
	res, err := s.chain.ABCIQuery(ctx, "/"+path, data)
	if err != nil {
		return nil, err
	}
	if res.Response.Code != 0 {
		if res.Response.Code == ledger.CodeNotFound {
			return nil, notFound(res.Response.Log)
		}
		return nil, &httpError{http.StatusBadRequest, res.Response.Log}
	}
	return json.RawMessage(res.Response.Value), nil
}

func (s *server) ledgerList(path string) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) {
		return s.query(r.Context(), path, nil)
	}
}

// rewards returns the reward records of the last n (≤ 20, default 8) epochs
// that have one, newest first.
func (s *server) rewards(r *http.Request) (any, error) {
	var ep ledger.EpochView
	raw, err := s.query(r.Context(), "epoch", nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &ep); err != nil {
		return nil, err
	}
	n := intParam(r, "limit", 8, 20)
	out := []json.RawMessage{}
	for e := int64(ep.Number); e >= 0 && len(out) < n && int64(ep.Number)-e < 64; e-- {
		rec, err := s.query(r.Context(), "rewards/"+itoa(e), nil)
		var he *httpError
		if errors.As(err, &he) && he.status == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func (s *server) trafficAPI(r *http.Request) (any, error) {
	if s.traffic == nil {
		return map[string]any{"attached": false}, nil
	}
	return struct {
		Attached bool  `json:"attached"`
		TimeMs   int64 `json:"time_ms"`
		TrafficSnapshot
	}{true, time.Now().UnixMilli(), s.traffic.Traffic()}, nil
}

func intParam(r *http.Request, name string, def, max int) int {
	v := strings.TrimSpace(r.URL.Query().Get(name))
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' || n > max {
			return def
		}
		n = n*10 + int(c-'0')
	}
	if v == "" || n <= 0 {
		return def
	}
	return min(n, max)
}
