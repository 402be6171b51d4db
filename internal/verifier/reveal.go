package verifier

import (
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

// errRevealContradicts marks a reveal whose values do not hash to the receipt's commitment
// but carry the provider's valid signature: the provider signed two contradicting statements,
// which evidence material proves to every verifier.
var errRevealContradicts = errors.New("signed reveal contradicts the receipt")

// AccountKeys is implemented by a ShopperLedger that reads account public keys from the
// ledger (the keys that sign receipts). The shopper needs it to keep a provider's signature
// over a reveal (reveal.VerifyAnswer); without it no reveal signature is kept.
type AccountKeys interface {
	PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error)
}

// fetchReveal asks the provider at endpoint (address providerAddr) for the ids and logprobs
// behind the logprobs commitment of requestID, signed by the paying consumer's key, and
// checks that they hash to commitment. Its answer's Signature is kept only when it verifies
// under the provider's account key (else ""). A nil error means the values hash to the
// commitment. A validly signed answer whose values do not comes back with an error wrapping
// errRevealContradicts: it is kept as proof. Any other error means the provider did not
// reveal (after retries for transient failures), or revealed values it did not sign that do
// not match its commitment.
func (s *HTTPShopper) fetchReveal(ctx context.Context, endpoint, providerAddr, requestID, commitment string, k ed25519.PrivateKey) (reveal.Response, error) {
	r, err := retryReveal(ctx, requestID, func() (reveal.Response, bool, error) {
		r, err := s.getReveal(ctx, endpoint, providerAddr, requestID, k)
		return r, !errors.Is(err, errRevealRefused), err
	})
	if err != nil {
		return reveal.Response{}, err
	}
	return judgeReveal(r, requestID, commitment, func(r reveal.Response) error {
		return s.verifyRevealSignature(ctx, providerAddr, r)
	}, s.logger())
}

// retryReveal calls get up to revealAttempts times, revealRetryWait apart, while it fails
// with retry set (a transport error, a 5xx or 429: a network blip must not fail an honest
// provider; a refusal is final).
func retryReveal(ctx context.Context, id string, get func() (r reveal.Response, retry bool, err error)) (reveal.Response, error) {
	var last error
	for i := 0; i < revealAttempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return reveal.Response{}, fmt.Errorf("reveal %s: %w (last: %w)", id, ctx.Err(), last)
			case <-time.After(revealRetryWait):
			}
		}
		r, retry, err := get()
		if err == nil {
			return r, nil
		}
		last = err
		if !retry {
			break
		}
	}
	return reveal.Response{}, last
}

// useReveal puts a judged reveal (judgeReveal's result) into a: the values of a reveal that
// hashes to the commitment, or of a signed one that contradicts it, kept with its signature as
// proof. Any other failure leaves a without ids or logprobs.
func (a *Answer) useReveal(r reveal.Response, err error) {
	if err != nil && !errors.Is(err, errRevealContradicts) {
		return
	}
	a.IDs, a.Logprobs, a.RevealSignature = r.IDs, make([]float64, len(r.Logprobs)), r.Signature
	for i, v := range r.Float32s() {
		a.Logprobs[i] = float64(v)
	}
}

// judgeReveal checks a provider's reveal r of requestID against the receipt's commitment.
// r's Signature is kept only when verify accepts it (else ""). A nil error means the values
// hash to the commitment; a validly signed r whose values do not comes back with an error
// wrapping errRevealContradicts (it is kept as proof); any other error means no usable
// reveal.
func judgeReveal(r reveal.Response, requestID, commitment string, verify func(reveal.Response) error, log *slog.Logger) (reveal.Response, error) {
	if r.RequestID != requestID {
		return reveal.Response{}, fmt.Errorf("reveal %s: provider revealed request %q", requestID, r.RequestID)
	}
	if len(r.IDs) != len(r.Logprobs) {
		return reveal.Response{}, fmt.Errorf("reveal %s: %d ids for %d logprobs", requestID, len(r.IDs), len(r.Logprobs))
	}
	if r.Signature != "" {
		if err := verify(r); err != nil {
			log.Info("reveal signature not kept", "request_id", requestID, "err", err)
			r.Signature = ""
		}
	}
	if got := channel.LogprobsCommitment(r.IDs, r.Float32s()); !strings.EqualFold(got, commitment) {
		err := fmt.Errorf("reveal %s: revealed values hash to %s, the receipt commits to %s", requestID, got, commitment)
		if r.Signature == "" {
			return reveal.Response{}, err
		}
		return r, fmt.Errorf("%w: %w", errRevealContradicts, err)
	}
	return r, nil
}

// verifyRevealSignature checks r's signature under providerAddr's account key on the ledger.
func (s *HTTPShopper) verifyRevealSignature(ctx context.Context, providerAddr string, r reveal.Response) error {
	ak, ok := s.ledger().(AccountKeys)
	if !ok {
		return errors.New("the shopper's ledger reads no public keys")
	}
	pub, err := ak.PubKey(ctx, providerAddr)
	if err != nil {
		return fmt.Errorf("public key of provider %s: %w", providerAddr, err)
	}
	return r.Verify(s.ChainID, providerAddr, pub)
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
