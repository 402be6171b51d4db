// Package tx defines Mycel transactions: the canonical JSON wire format, domain-separated sign
// bytes, signing and verification, the typed message union and stateless (ValidateBasic) checks.
// It is pure: no I/O, no clock.
package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/mycel-network/mycel/internal/address"
)

// Limits enforced by Decode and ValidateBasic.
const (
	MaxTxBytes   = 64 << 10 // encoded transaction size limit
	MaxMsgs      = 16       // messages per transaction
	MaxMemoBytes = 256      // memo length in bytes
	MaxChainID   = 64       // chain id length in bytes
)

// SignDomain prefixes the bytes a sender signs for a transaction body.
const SignDomain = "mycel/tx/v1\x00"

// Errors returned by this package; match them with errors.Is.
var (
	ErrMalformed  = errors.New("malformed transaction")
	ErrTooLarge   = errors.New("transaction too large")
	ErrUnknownMsg = errors.New("unknown message type")
	ErrSignature  = errors.New("invalid signature")
	ErrInvalid    = errors.New("invalid")
)

// Tx is a signed transaction. Its wire form is Encode(t): encoding/json without indentation.
type Tx struct {
	Body      Body   `json:"body"`
	PubKey    []byte `json:"pub_key"`   // ed25519, 32 bytes
	Signature []byte `json:"signature"` // over SignBytes(Body)
}

// Body is the signed part of a transaction.
type Body struct {
	ChainID string `json:"chain_id"`
	Sender  string `json:"sender"`         // must equal address.FromPubKey(PubKey)
	Nonce   uint64 `json:"nonce"`          // must equal the account's current nonce; +1 on success
	Fee     uint64 `json:"fee"`            // umyc, >= params.min_fee, paid into the reward pool
	Msgs    []Msg  `json:"msgs"`           // 1..16
	Memo    string `json:"memo,omitempty"` // <= 256 bytes
}

// SignBytes returns "mycel/tx/v1\x00" followed by the canonical JSON of b. If b cannot be
// encoded (a Msg value that is not JSON) it returns nil, which no signature verifies against.
func SignBytes(b Body) []byte {
	sb, err := signBytes(b)
	if err != nil {
		return nil
	}
	return sb
}

func signBytes(b Body) ([]byte, error) {
	j, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode body: %w", err)
	}
	out := make([]byte, 0, len(SignDomain)+len(j))
	out = append(out, SignDomain...)
	return append(out, j...), nil
}

// Sign signs b with k and returns the transaction. The caller fills b.Sender (normally
// address.FromPubKey(k.Public())).
func Sign(b Body, k ed25519.PrivateKey) (Tx, error) {
	if len(k) != ed25519.PrivateKeySize {
		return Tx{}, fmt.Errorf("sign: private key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
	}
	sb, err := signBytes(b)
	if err != nil {
		return Tx{}, fmt.Errorf("sign: %w", err)
	}
	pub := k.Public().(ed25519.PublicKey)
	return Tx{Body: b, PubKey: bytes.Clone(pub), Signature: ed25519.Sign(k, sb)}, nil
}

// Encode returns the canonical wire bytes of t.
func Encode(t Tx) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode tx: %w", err)
	}
	return b, nil
}

// Decode parses wire bytes strictly: it rejects oversize input, unknown fields, trailing bytes
// and any encoding that is not byte-identical to Encode of the result, so every transaction has
// exactly one encoding. It does not validate contents; see ValidateBasic and VerifySignature.
// Errors match ErrMalformed (or ErrTooLarge) with errors.Is.
func Decode(raw []byte) (Tx, error) {
	if len(raw) > MaxTxBytes {
		return Tx{}, tooLargef("transaction too large: %d bytes, limit %d", len(raw), MaxTxBytes)
	}
	if !utf8.Valid(raw) {
		return Tx{}, malformedf("malformed transaction: invalid utf-8")
	}
	var t Tx
	if err := strictUnmarshal(raw, &t); err != nil {
		return Tx{}, fmt.Errorf("malformed transaction: %w", err)
	}
	again, err := Encode(t)
	if err != nil {
		return Tx{}, malformedf("malformed transaction: %v", err)
	}
	if !bytes.Equal(again, raw) {
		return Tx{}, malformedf("malformed transaction: not in canonical encoding")
	}
	return t, nil
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields and nothing after it.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return malformedf("%v", err)
	}
	if dec.InputOffset() != int64(len(raw)) {
		return malformedf("trailing bytes after json value")
	}
	return nil
}

// Hash returns sha256(raw), the hash CometBFT shows for a transaction.
func Hash(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}

// VerifySignature checks that PubKey is a 32-byte ed25519 key whose address is Body.Sender and
// that Signature signs SignBytes(Body). Errors wrap ErrSignature.
func (t Tx) VerifySignature() error {
	if len(t.PubKey) != ed25519.PublicKeySize {
		return signaturef("public key has %d bytes, want %d", len(t.PubKey), ed25519.PublicKeySize)
	}
	if got := address.FromPubKey(t.PubKey); got != t.Body.Sender {
		return signaturef("public key belongs to %s, not sender %s", got, t.Body.Sender)
	}
	if len(t.Signature) != ed25519.SignatureSize {
		return signaturef("signature has %d bytes, want %d", len(t.Signature), ed25519.SignatureSize)
	}
	sb, err := signBytes(t.Body)
	if err != nil {
		return signaturef("%v", err)
	}
	if !ed25519.Verify(t.PubKey, sb, t.Signature) {
		return signaturef("signature does not verify")
	}
	return nil
}

// ValidateBasic checks everything about the transaction that needs no state except the
// signature: chain id, sender address, message count, memo length and every message's own
// ValidateBasic. Errors wrap ErrInvalid, ErrUnknownMsg or ErrMalformed.
func (t Tx) ValidateBasic() error {
	b := t.Body
	if b.ChainID == "" || len(b.ChainID) > MaxChainID {
		return invalidf("chain id must have 1..%d bytes", MaxChainID)
	}
	if err := address.Validate(b.Sender); err != nil {
		return invalidf("sender: %v", err)
	}
	if len(b.Msgs) == 0 || len(b.Msgs) > MaxMsgs {
		return invalidf("%d messages, want 1..%d", len(b.Msgs), MaxMsgs)
	}
	if len(b.Memo) > MaxMemoBytes {
		return invalidf("memo has %d bytes, limit %d", len(b.Memo), MaxMemoBytes)
	}
	for i, m := range b.Msgs {
		v, err := m.Decode()
		if err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
		if err := v.(Message).ValidateBasic(); err != nil {
			return fmt.Errorf("message %d (%s): %w", i, m.Type, err)
		}
	}
	return nil
}

// kindError is an error message that matches one of the package's sentinel errors with
// errors.Is without repeating the sentinel's text.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func invalidf(format string, args ...any) error {
	return &kindError{ErrInvalid, fmt.Sprintf(format, args...)}
}
func malformedf(format string, args ...any) error {
	return &kindError{ErrMalformed, fmt.Sprintf(format, args...)}
}
func signaturef(format string, args ...any) error {
	return &kindError{ErrSignature, fmt.Sprintf(format, args...)}
}
func tooLargef(format string, args ...any) error {
	return &kindError{ErrTooLarge, fmt.Sprintf(format, args...)}
}
func unknownf(format string, args ...any) error {
	return &kindError{ErrUnknownMsg, fmt.Sprintf(format, args...)}
}
