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
	Fee     uint64 `json:"fee"`            // umyc, >= params.min_fee, burned
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
// Errors wrap ErrMalformed (or ErrTooLarge).
func Decode(raw []byte) (Tx, error) {
	if len(raw) > MaxTxBytes {
		return Tx{}, fmt.Errorf("decode tx: %d bytes, limit %d: %w", len(raw), MaxTxBytes, ErrTooLarge)
	}
	if !utf8.Valid(raw) {
		return Tx{}, fmt.Errorf("decode tx: invalid utf-8: %w", ErrMalformed)
	}
	var t Tx
	if err := strictUnmarshal(raw, &t); err != nil {
		return Tx{}, fmt.Errorf("decode tx: %w", err)
	}
	again, err := Encode(t)
	if err != nil {
		return Tx{}, fmt.Errorf("decode tx: %v: %w", err, ErrMalformed)
	}
	if !bytes.Equal(again, raw) {
		return Tx{}, fmt.Errorf("decode tx: not in canonical encoding: %w", ErrMalformed)
	}
	return t, nil
}

// strictUnmarshal decodes exactly one JSON value with no unknown fields and nothing after it.
func strictUnmarshal(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if dec.InputOffset() != int64(len(raw)) {
		return fmt.Errorf("trailing bytes after json value: %w", ErrMalformed)
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
		return fmt.Errorf("public key has %d bytes, want %d: %w", len(t.PubKey), ed25519.PublicKeySize, ErrSignature)
	}
	if got := address.FromPubKey(t.PubKey); got != t.Body.Sender {
		return fmt.Errorf("public key belongs to %s, not sender %s: %w", got, t.Body.Sender, ErrSignature)
	}
	if len(t.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("signature has %d bytes, want %d: %w", len(t.Signature), ed25519.SignatureSize, ErrSignature)
	}
	sb, err := signBytes(t.Body)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrSignature)
	}
	if !ed25519.Verify(t.PubKey, sb, t.Signature) {
		return fmt.Errorf("signature does not verify: %w", ErrSignature)
	}
	return nil
}

// ValidateBasic checks everything about the transaction that needs no state except the
// signature: chain id, sender address, message count, memo length and every message's own
// ValidateBasic. Errors wrap ErrInvalid, ErrUnknownMsg or ErrMalformed.
func (t Tx) ValidateBasic() error {
	b := t.Body
	if b.ChainID == "" || len(b.ChainID) > MaxChainID {
		return fmt.Errorf("chain id must have 1..%d bytes: %w", MaxChainID, ErrInvalid)
	}
	if err := address.Validate(b.Sender); err != nil {
		return fmt.Errorf("sender: %v: %w", err, ErrInvalid)
	}
	if len(b.Msgs) == 0 || len(b.Msgs) > MaxMsgs {
		return fmt.Errorf("%d messages, want 1..%d: %w", len(b.Msgs), MaxMsgs, ErrInvalid)
	}
	if len(b.Memo) > MaxMemoBytes {
		return fmt.Errorf("memo has %d bytes, limit %d: %w", len(b.Memo), MaxMemoBytes, ErrInvalid)
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
