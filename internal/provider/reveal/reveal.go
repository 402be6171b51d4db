// Package reveal defines the logprobs reveal: GET /mycel/v1/logprobs/{request_id}, by which
// the consumer who paid for a request obtains from its provider the token ids and float32
// log-probabilities behind the receipt's logprobs commitment (channel.LogprobsCommitment).
// It is pure: the message the consumer signs to ask, the answer's JSON form and the
// provider's signature over the answer, which makes a reveal that contradicts the receipt
// provable to anyone holding both.
package reveal

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/channel"
)

// Domain prefixes the bytes a consumer signs to ask for a reveal.
const Domain = "mycel/logprobs-reveal/v1\x00"

// Header carries base64url (unpadded) of the consumer's ed25519 signature over SignBytes.
const Header = "X-Mycel-Reveal-Signature"

// Path returns the request path of the reveal of requestID.
func Path(requestID string) string { return "/mycel/v1/logprobs/" + requestID }

// ErrBadSignature is wrapped by every Verify failure.
var ErrBadSignature = errors.New("bad reveal signature")

// SignBytes returns the bytes the consumer signs:
// "mycel/logprobs-reveal/v1\x00" || u16be(len(chain id)) || chain id || u16be(len(provider))
// || provider address || u16be(len(request id)) || request id.
func SignBytes(chainID, provider, requestID string) []byte {
	b := make([]byte, 0, len(Domain)+6+len(chainID)+len(provider)+len(requestID))
	b = append(b, Domain...)
	for _, s := range []string{chainID, provider, requestID} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// Sign returns the Header value that asks provider on chainID for the reveal of requestID.
func Sign(chainID, provider, requestID string, k ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(k, SignBytes(chainID, provider, requestID)))
}

// Verify checks a Header value against the consumer's public key.
func Verify(chainID, provider, requestID, header string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify reveal request: public key has %d bytes: %w", len(pub), ErrBadSignature)
	}
	for _, s := range []string{chainID, provider, requestID} {
		if len(s) > 0xffff {
			return fmt.Errorf("verify reveal request: field too long: %w", ErrBadSignature)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(header, "="))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("verify reveal request: malformed %s header: %w", Header, ErrBadSignature)
	}
	if !ed25519.Verify(pub, SignBytes(chainID, provider, requestID), sig) {
		return fmt.Errorf("verify reveal request: signature does not match the consumer's key: %w", ErrBadSignature)
	}
	return nil
}

// Response is the answer of the reveal endpoint. Logprobs[i] is the float32 log-probability
// of token Ids[i], exactly as committed. Signature is the provider's over the answer
// (SignAnswer): a provider that reveals values other than those its receipt commits to has
// signed two contradicting statements.
type Response struct {
	RequestID string    `json:"request_id"`
	IDs       []int32   `json:"ids"`
	Logprobs  []Logprob `json:"logprobs"`
	Signature string    `json:"signature,omitempty"` // base64url (unpadded) ed25519
}

// AnswerSignBytes returns the bytes a provider signs for its reveal of requestID
// (channel.RevealAnswerSignBytes):
// "mycel/logprobs-reveal-answer/v1\x00" || u16be(len(chain id)) || chain id ||
// u16be(len(provider)) || provider address || u16be(len(request id)) || request id ||
// the 32 bytes of channel.LogprobsCommitment(ids, logprobs).
func AnswerSignBytes(chainID, provider, requestID string, ids []int32, logprobs []float32) []byte {
	return channel.RevealAnswerSignBytes(chainID, provider, requestID, ids, float32Bits(logprobs))
}

func float32Bits(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, f := range v {
		out[i] = math.Float32bits(f)
	}
	return out
}

// SignAnswer returns the provider key k's signature (base64url, unpadded) over its reveal
// of ids and logprobs for requestID on chainID.
func SignAnswer(chainID, provider, requestID string, ids []int32, logprobs []float32, k ed25519.PrivateKey) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(k, AnswerSignBytes(chainID, provider, requestID, ids, logprobs)))
}

// VerifyAnswer checks a provider's signature sig (SignAnswer) over its reveal of ids and
// logprobs (one per id) for requestID against the provider's public key. Every failure
// wraps ErrBadSignature.
func VerifyAnswer(chainID, provider, requestID string, ids []int32, logprobs []float32, sig string, pub ed25519.PublicKey) error {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(sig, "="))
	if err != nil {
		return fmt.Errorf("verify reveal answer: malformed signature: %w", ErrBadSignature)
	}
	if err := channel.VerifyRevealAnswer(chainID, provider, requestID, ids, float32Bits(logprobs), raw, pub); err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	return nil
}

// Sign sets r's Signature: provider's (key k) on chainID over r's request id, ids and
// logprobs.
func (r Response) Sign(chainID, provider string, k ed25519.PrivateKey) Response {
	r.Signature = SignAnswer(chainID, provider, r.RequestID, r.IDs, r.Float32s(), k)
	return r
}

// Verify checks r's Signature against the public key of provider on chainID.
func (r Response) Verify(chainID, provider string, pub ed25519.PublicKey) error {
	return VerifyAnswer(chainID, provider, r.RequestID, r.IDs, r.Float32s(), r.Signature, pub)
}

// Float32s returns the logprobs as float32.
func (r Response) Float32s() []float32 {
	out := make([]float32, len(r.Logprobs))
	for i, v := range r.Logprobs {
		out[i] = float32(v)
	}
	return out
}

// Logprob is a float32 whose JSON form round-trips bit-exactly: the shortest decimal that
// parses back to the same float32 for finite values, and the string "bits:" followed by
// the 8 hex digits of its IEEE-754 bits otherwise (JSON has no infinities or NaNs).
type Logprob float32

// MarshalJSON implements json.Marshaler.
func (l Logprob) MarshalJSON() ([]byte, error) {
	f := float32(l)
	if math.IsInf(float64(f), 0) || math.IsNaN(float64(f)) {
		return []byte(fmt.Sprintf(`"bits:%08x"`, math.Float32bits(f))), nil
	}
	return strconv.AppendFloat(nil, float64(f), 'g', -1, 32), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (l *Logprob) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("logprob: %w", err)
		}
		hex, ok := strings.CutPrefix(s, "bits:")
		v, err := strconv.ParseUint(hex, 16, 32)
		if !ok || len(hex) != 8 || err != nil {
			return fmt.Errorf("logprob: bad value %q", s)
		}
		*l = Logprob(math.Float32frombits(uint32(v)))
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 32)
	if err != nil {
		return fmt.Errorf("logprob: %w", err)
	}
	*l = Logprob(float32(v))
	return nil
}
