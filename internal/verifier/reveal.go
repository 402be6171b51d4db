package verifier

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// revealAttempts bounds the tries of a reveal that meets a transport error or a 5xx/429: a
// network blip must not fail an honest provider; a provider that keeps refusing fails.
const revealAttempts = 3

// revealRetryWait is the pause between reveal attempts.
var revealRetryWait = 500 * time.Millisecond

// errRevealRefused marks a reveal the provider answered with a 4xx other than 429: it
// refused, retrying does not help.
var errRevealRefused = errors.New("reveal refused")

// fetchReveal asks the provider at endpoint (address providerAddr) for the ids and logprobs
// behind the logprobs commitment of requestID, signed by the paying consumer's key, and
// checks that they hash to commitment. An error means the provider did not reveal values
// matching its commitment (after retries for transient failures).
func (s *HTTPShopper) fetchReveal(ctx context.Context, endpoint, providerAddr, requestID, commitment string, k ed25519.PrivateKey) ([]int32, []float32, error) {
	var last error
	for i := 0; i < revealAttempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("reveal %s: %w (last: %w)", requestID, ctx.Err(), last)
			case <-time.After(revealRetryWait):
			}
		}
		r, err := s.getReveal(ctx, endpoint, providerAddr, requestID, k)
		if err != nil {
			last = err
			if errors.Is(err, errRevealRefused) {
				break
			}
			continue
		}
		if r.RequestID != requestID {
			return nil, nil, fmt.Errorf("reveal %s: provider revealed request %q", requestID, r.RequestID)
		}
		lps := r.Float32s()
		if len(r.IDs) != len(lps) {
			return nil, nil, fmt.Errorf("reveal %s: %d ids for %d logprobs", requestID, len(r.IDs), len(lps))
		}
		if got := channel.LogprobsCommitment(r.IDs, lps); !strings.EqualFold(got, commitment) {
			return nil, nil, fmt.Errorf("reveal %s: revealed values hash to %s, the receipt commits to %s", requestID, got, commitment)
		}
		return r.IDs, lps, nil
	}
	return nil, nil, last
}

func (s *HTTPShopper) getReveal(ctx context.Context, endpoint, providerAddr, requestID string, k ed25519.PrivateKey) (reveal.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(endpoint, "/")+reveal.Path(requestID), nil)
	if err != nil {
		return reveal.Response{}, fmt.Errorf("reveal %s: %w", requestID, err)
	}
	req.Header.Set(reveal.Header, reveal.Sign(s.ChainID, providerAddr, requestID, k))
	client := s.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return reveal.Response{}, fmt.Errorf("reveal %s: %w", requestID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		err := fmt.Errorf("reveal %s: provider answered %s: %.200s", requestID, resp.Status, raw)
		if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			err = fmt.Errorf("%w: %w", errRevealRefused, err)
		}
		return reveal.Response{}, err
	}
	var r reveal.Response
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil {
		return reveal.Response{}, fmt.Errorf("reveal %s: decode: %w", requestID, err)
	}
	return r, nil
}
