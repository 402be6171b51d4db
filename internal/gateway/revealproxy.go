package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// revealTimeout bounds the gateway's request for a provider's reveal.
const revealTimeout = 30 * time.Second

// maxRevealBytes bounds the reveal relayed (ids and logprobs of one answer: well under it).
const maxRevealBytes = 16 << 20

// handleReveal answers GET gwapi.RevealPath(id, i): it asks the provider of attempt i of the
// record for its logprobs reveal, signed as the paying consumer (the gateway's account), and
// relays the provider's status, Content-Type and body unchanged. A provider it cannot reach
// (or that breaks off its answer) gives 502.
func (g *Gateway) handleReveal(w http.ResponseWriter, r *http.Request, key *apikey.Key) *openai.Error {
	rec, e := g.lookup(r, key)
	if e != nil {
		return e
	}
	i, e := attemptIndex(r, rec)
	if e != nil {
		return e
	}
	a := rec.tries[i]
	chainID, err := g.pay.getChainID(r.Context())
	if err != nil {
		return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Message: "ledger unavailable: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(r.Context(), revealTimeout)
	defer cancel()
	resp, err := g.fetchReveal(ctx, chainID, a)
	if err != nil {
		return &openai.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "provider_unreachable",
			Message: fmt.Sprintf("Cannot fetch the reveal of attempt %d from provider %s: %v", i, a.provider, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRevealBytes+1))
	if err == nil && len(body) > maxRevealBytes {
		err = fmt.Errorf("answer larger than %d bytes", maxRevealBytes)
	}
	if err != nil {
		return &openai.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: "provider_unreachable",
			Message: fmt.Sprintf("Reading the reveal of attempt %d from provider %s: %v", i, a.provider, err)}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return nil
}

// fetchReveal sends the provider of a the signed reveal request of its request id.
func (g *Gateway) fetchReveal(ctx context.Context, chainID string, a recordAttempt) (*http.Response, error) {
	if a.endpoint == "" {
		return nil, fmt.Errorf("no endpoint known")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.endpoint, "/")+reveal.Path(a.reqID), nil)
	if err != nil {
		return nil, fmt.Errorf("reveal request: %w", err)
	}
	req.Header.Set(reveal.Header, reveal.Sign(chainID, a.provider, a.reqID, g.deps.ConsumerKey))
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reveal request: %w", err)
	}
	return resp, nil
}
