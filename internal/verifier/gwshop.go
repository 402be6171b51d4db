package verifier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// ProviderKeys returns the public key of a provider's account, to verify its receipts.
type ProviderKeys interface {
	PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error)
}

// PubKey implements ProviderKeys from the ledger's accounts.
func (c LedgerChain) PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error) {
	a, err := c.Client.Account(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("public key of %s: %w", addr, err)
	}
	if len(a.PubKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("account %s has no public key on the ledger", addr)
	}
	return ed25519.PublicKey(a.PubKey), nil
}

// GatewayShopper sends shopper requests through a gateway's public OpenAI API with an
// ordinary API key, so that they reach providers exactly as users' requests do: the
// gateway pays for them from its own channels and sends the provider the same upstream body
// it builds for everyone (always streamed, with a gateway-drawn seed). The request is pinned
// to the audited provider (gwapi.HeaderPinProvider); afterwards the shopper reads back the
// request's record (gwapi.Record: the exact upstream body and the provider's signed
// receipt) and, for answers without logprobs, the provider's logprobs reveal relayed by
// the gateway. What the shopper cannot tie together (a record of another provider or of
// several attempts, a receipt that does not bind the body or the answer) is the gateway's
// or the connection's fault as much as the provider's: an error, never evidence.
type GatewayShopper struct {
	GatewayURL string // base URL, without /v1
	APIKey     string
	ChainID    string       // receipts must name it; "" accepts any
	Keys       ProviderKeys // providers' public keys
	HTTP       *http.Client
	Models     *ModelDir // for token ids from logprobs bytes
	Logger     *slog.Logger
}

// Shop implements Shopper.
func (s *GatewayShopper) Shop(ctx context.Context, p ledger.ProviderView, model string, params ShopperParams) (Shopped, error) {
	sys, user := PoolPrompt(params.PoolIndex)
	body := RequestBody(model, params, sys, user)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url("/v1/chat/completions"), bytes.NewReader(body))
	if err != nil {
		return Shopped{}, fmt.Errorf("shop via gateway: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(gwapi.HeaderPinProvider, p.Address)
	start := time.Now()
	resp, err := s.do(req)
	if err != nil {
		return Shopped{}, fmt.Errorf("shop via gateway: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return Shopped{}, fmt.Errorf("shop via gateway: answered %s: %.200s", resp.Status, raw)
	}
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		return Shopped{}, errors.New("shop via gateway: answer without X-Request-Id")
	}
	var (
		text, finish string
		entries      []LogprobEntry
		logp         bool
	)
	if params.Stream {
		text, finish, entries, logp, _, err = scanStream(io.LimitReader(resp.Body, 8<<20))
	} else {
		var raw []byte
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, 8<<20)); err == nil {
			text, finish, entries, logp, err = parseCompletion(raw)
		}
	}
	dur := time.Since(start)
	if err != nil {
		return Shopped{}, fmt.Errorf("shop via gateway: request %s: %w", id, err)
	}
	at, err := s.attempt(ctx, id, p.Address, model)
	if err != nil {
		return Shopped{}, err
	}
	rc := at.Receipt
	if got := HexSHA256([]byte(text)); !strings.EqualFold(got, rc.OutputHash) {
		return Shopped{}, fmt.Errorf("shop via gateway: request %s: the answer hashes to %s, the receipt of %s to %s", id, got, p.Address, rc.OutputHash)
	}
	upModel, upSys, upUser, up, err := ParseRequestBody([]byte(at.Body))
	if err != nil {
		return Shopped{}, fmt.Errorf("shop via gateway: request %s: upstream body: %w", id, err)
	}
	if err := sameRequest(model, sys, user, params, upModel, upSys, upUser, up); err != nil {
		return Shopped{}, fmt.Errorf("shop via gateway: request %s: the gateway sent another request upstream: %w", id, err)
	}
	up.PoolIndex = params.PoolIndex
	ans := Answer{Text: text, FinishReason: finish}
	if logp {
		ids, lps, err := s.Models.IDsFromBytes(rc.ModelSHA256, entries)
		if err != nil {
			return Shopped{}, fmt.Errorf("shop via gateway: request %s: %w", id, err)
		}
		ans.IDs, ans.Logprobs = ids, lps
	} else {
		// As HTTPShopper: the ids and logprobs behind the receipt's commitment, fetched by
		// the gateway as the paying consumer. A refusal or unsigned values that do not hash
		// to the commitment leave the answer revealed without logprobs (logprobs_reveal
		// fails); values the provider signed are kept with the signature, matching or not.
		ans.Revealed = true
		r, err := s.fetchReveal(ctx, id, p.Address, rc)
		if err != nil {
			s.logger().Info("provider did not reveal its committed logprobs", "provider_id", p.Address, "request_id", id, "err", err)
		}
		ans.useReveal(r, err)
	}
	return Shopped{Body: []byte(at.Body), System: upSys, User: upUser, Params: up, Answer: ans, Receipt: rc, Duration: dur}, nil
}

// attempt reads the record of gateway request id and returns its one attempt, checked to
// be provider's, for model, with a receipt the provider signed over the body sent.
func (s *GatewayShopper) attempt(ctx context.Context, id, provider, model string) (gwapi.Attempt, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(gwapi.RecordPath(id)), nil)
	if err != nil {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: %w", id, err)
	}
	resp, err := s.do(req)
	if err != nil {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return gwapi.Attempt{}, fmt.Errorf("record of %s: gateway answered %s: %.200s", id, resp.Status, raw)
	}
	var rec gwapi.Record
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&rec); err != nil {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: decode: %w", id, err)
	}
	switch {
	case rec.RequestID != id:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: the gateway sent the record of %q", id, rec.RequestID)
	case len(rec.Attempts) != 1:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: %d attempts, want one (pinned to %s)", id, len(rec.Attempts), provider)
	}
	at := rec.Attempts[0]
	rc := at.Receipt
	switch {
	case at.Provider != provider || rc.Provider != provider:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: attempt by %s with a receipt of %s, want %s", id, at.Provider, rc.Provider, provider)
	case rc.ModelID != model:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: receipt for model %q, want %q", id, rc.ModelID, model)
	case s.ChainID != "" && rc.ChainID != s.ChainID:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: receipt on chain %q, want %q", id, rc.ChainID, s.ChainID)
	case at.ProviderRequestID != "" && rc.RequestID != at.ProviderRequestID:
		return gwapi.Attempt{}, fmt.Errorf("record of %s: receipt of request %q, the attempt was %q", id, rc.RequestID, at.ProviderRequestID)
	}
	if s.Keys == nil {
		return gwapi.Attempt{}, errors.New("record: no provider keys to verify receipts with")
	}
	pub, err := s.Keys.PubKey(ctx, provider)
	if err != nil {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: %w", id, err)
	}
	if err := rc.Verify(pub); err != nil {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: %w", id, err)
	}
	if got := HexSHA256([]byte(at.Body)); !strings.EqualFold(got, rc.RequestHash) {
		return gwapi.Attempt{}, fmt.Errorf("record of %s: the upstream body hashes to %s, the receipt binds %s", id, got, rc.RequestHash)
	}
	return at, nil
}

// sameRequest checks that an upstream body asks what the shopper asked: the prompt, model
// and sampling, the seed when the shopper set one (the gateway adds its own otherwise).
// Streaming and usage are the gateway's choice.
func sameRequest(model, sys, user string, p ShopperParams, upModel, upSys, upUser string, up ShopperParams) error {
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	switch {
	case upModel != model:
		return fmt.Errorf("model %q, want %q", upModel, model)
	case upSys != sys || upUser != user:
		return fmt.Errorf("messages %q/%q, want %q/%q", upSys, upUser, sys, user)
	case !eq(up.Temperature, p.Temperature) || !eq(up.TopP, p.TopP):
		return errors.New("temperature or top_p changed")
	case up.MaxTokens != p.MaxTokens || up.Logprobs != p.Logprobs:
		return errors.New("max_tokens or logprobs changed")
	case p.Seed != nil && (up.Seed == nil || *up.Seed != *p.Seed):
		return errors.New("seed changed")
	}
	return nil
}

// fetchReveal asks the gateway for the provider's reveal of attempt 0 of request id and
// judges it against the receipt's logprobs commitment (judgeReveal), retrying transient
// failures.
func (s *GatewayShopper) fetchReveal(ctx context.Context, id, provider string, rc channel.Receipt) (reveal.Response, error) {
	r, err := retryReveal(ctx, id, func() (reveal.Response, bool, error) { return s.getReveal(ctx, id) })
	if err != nil {
		return reveal.Response{}, err
	}
	return judgeReveal(r, rc.RequestID, rc.LogprobsCommitment, func(r reveal.Response) error {
		pub, err := s.Keys.PubKey(ctx, provider)
		if err != nil {
			return err
		}
		return r.Verify(rc.ChainID, provider, pub)
	}, s.logger())
}

// getReveal fetches the reveal once; retry reports a failure worth another try (transport,
// 5xx, 429).
func (s *GatewayShopper) getReveal(ctx context.Context, id string) (r reveal.Response, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url(gwapi.RevealPath(id, 0)), nil)
	if err != nil {
		return r, false, fmt.Errorf("reveal of %s: %w", id, err)
	}
	resp, err := s.do(req)
	if err != nil {
		return r, true, fmt.Errorf("reveal of %s: %w", id, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return r, retry, fmt.Errorf("reveal of %s: answered %s: %.200s", id, resp.Status, raw)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil {
		return r, false, fmt.Errorf("reveal of %s: decode: %w", id, err)
	}
	return r, false, nil
}

func (s *GatewayShopper) url(path string) string { return strings.TrimRight(s.GatewayURL, "/") + path }

// do sends req with the API key.
func (s *GatewayShopper) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+s.APIKey)
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	return client.Do(req)
}

func (s *GatewayShopper) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}
