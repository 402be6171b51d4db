package channel

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// ReceiptDomain prefixes the bytes a provider signs for a receipt.
const ReceiptDomain = "mycel/receipt/v1\x00"

// LogprobsDomain prefixes the bytes hashed into a logprobs commitment.
const LogprobsDomain = "mycel/logprobs/v1\x00"

// ErrBadReceipt is wrapped by every Receipt.Verify failure.
var ErrBadReceipt = errors.New("bad receipt")

// ErrCostOverflow is returned by Cost when the price of a request does not fit in uint64.
var ErrCostOverflow = errors.New("cost overflows uint64")

// Receipt is a provider's signed account of one served request.
type Receipt struct {
	ChainID   string `json:"chain_id"`
	RequestID string `json:"request_id"`
	Provider  string `json:"provider"`
	Consumer  string `json:"consumer"`
	ChannelID uint64 `json:"channel_id"`

	ModelID     string `json:"model_id"`
	ModelSHA256 string `json:"model_sha256"` // hex sha256 of the model file served

	RequestHash string `json:"request_hash"` // hex sha256 of the request body as received
	OutputHash  string `json:"output_hash"`  // hex sha256 of the output text

	TokensIn        uint64 `json:"tokens_in"`
	TokensOut       uint64 `json:"tokens_out"`
	PriceInPerMTok  uint64 `json:"price_in_per_mtok"`
	PriceOutPerMTok uint64 `json:"price_out_per_mtok"`
	Cost            uint64 `json:"cost"`       // umyc for this request: Cost(tokens, prices)
	Cumulative      uint64 `json:"cumulative"` // provider's delivered total on the channel, this request included

	QueueMs    uint64 `json:"queue_ms"`
	TTFTMs     uint64 `json:"ttft_ms"`
	DurationMs uint64 `json:"duration_ms"`
	// MilliTokensPerSec is the output rate after the first token, in thousandths of a token
	// per second: (delivered tokens − 1) / (time of the last token − time of the first). 0,
	// and absent from the JSON, when fewer than two tokens were delivered (and in receipts
	// made before the field existed, whose sign bytes it therefore leaves unchanged).
	MilliTokensPerSec uint64 `json:"milli_tokens_per_s,omitempty"`

	LogprobsCommitment string `json:"logprobs_commitment"` // LogprobsCommitment(ids, logprobs), hex
	FinishReason       string `json:"finish_reason"`
	TimeUnixMs         int64  `json:"time_unix_ms"`

	Signature []byte `json:"signature,omitempty"` // provider's ed25519 over SignBytes
}

// SignBytes returns "mycel/receipt/v1\x00" followed by the receipt's JSON encoding with the
// signature left out. The encoding is canonical: fields in declaration order, encoding/json's
// string escaping, no whitespace.
func (r Receipt) SignBytes() []byte {
	r.Signature = nil
	b, err := json.Marshal(r)
	if err != nil {
		// Only strings and integers: json.Marshal cannot fail.
		panic(fmt.Sprintf("channel: marshal receipt: %v", err))
	}
	out := make([]byte, 0, len(ReceiptDomain)+len(b))
	out = append(out, ReceiptDomain...)
	return append(out, b...)
}

// SignReceipt returns r signed by the provider key k.
func SignReceipt(r Receipt, k ed25519.PrivateKey) Receipt {
	r.Signature = nil
	if len(k) == ed25519.PrivateKeySize {
		r.Signature = ed25519.Sign(k, r.SignBytes())
	}
	return r
}

// Verify checks the provider's signature and the receipt's arithmetic: Cost equals
// Cost(TokensIn, TokensOut, prices) and Cumulative is at least Cost. Hashes, when present,
// must be 64 hex digits.
func (r Receipt) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify receipt: public key has %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrBadReceipt)
	}
	if len(r.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("verify receipt: signature has %d bytes, want %d: %w", len(r.Signature), ed25519.SignatureSize, ErrBadReceipt)
	}
	if !ed25519.Verify(pub, r.SignBytes(), r.Signature) {
		return fmt.Errorf("verify receipt: signature does not match provider key: %w", ErrBadReceipt)
	}
	return r.CheckArithmetic()
}

// CheckArithmetic checks everything Verify does except the signature.
func (r Receipt) CheckArithmetic() error {
	cost, err := Cost(r.TokensIn, r.TokensOut, r.PriceInPerMTok, r.PriceOutPerMTok)
	if err != nil {
		return fmt.Errorf("verify receipt: %w: %w", err, ErrBadReceipt)
	}
	if cost != r.Cost {
		return fmt.Errorf("verify receipt: cost %d, want %d for %d+%d tokens: %w", r.Cost, cost, r.TokensIn, r.TokensOut, ErrBadReceipt)
	}
	if r.Cumulative < r.Cost {
		return fmt.Errorf("verify receipt: cumulative %d below cost %d: %w", r.Cumulative, r.Cost, ErrBadReceipt)
	}
	for _, f := range [...]struct{ name, h string }{
		{"model_sha256", r.ModelSHA256}, {"request_hash", r.RequestHash},
		{"output_hash", r.OutputHash}, {"logprobs_commitment", r.LogprobsCommitment},
	} {
		name, h := f.name, f.h
		if h == "" {
			continue
		}
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("verify receipt: %s is not 64 hex digits: %w", name, ErrBadReceipt)
		}
	}
	return nil
}

// Cost returns the umyc price of a request: ceil((tokensIn·priceIn + tokensOut·priceOut) / 1e6),
// or ErrCostOverflow.
func Cost(tokensIn, tokensOut, priceInPerMTok, priceOutPerMTok uint64) (uint64, error) {
	hi1, lo1 := bits.Mul64(tokensIn, priceInPerMTok)
	hi2, lo2 := bits.Mul64(tokensOut, priceOutPerMTok)
	lo, carry := bits.Add64(lo1, lo2, 0)
	hi, carry2 := bits.Add64(hi1, hi2, carry)
	if carry2 != 0 {
		return 0, ErrCostOverflow
	}
	// Ceil division of the 128-bit sum by 1e6: add 1e6-1 first.
	lo, carry = bits.Add64(lo, 1_000_000-1, 0)
	hi, carry2 = bits.Add64(hi, 0, carry)
	if carry2 != 0 || hi >= 1_000_000 {
		return 0, ErrCostOverflow
	}
	q, _ := bits.Div64(hi, lo, 1_000_000)
	return q, nil
}

// LogprobsCommitment returns the hex sha256 of "mycel/logprobs/v1\x00" followed, for each
// generated token, by its id and the IEEE-754 bits of its log-probability, both 32-bit big
// endian. Extra entries of the longer slice are ignored. No tokens give the hash of the
// domain alone.
func LogprobsCommitment(ids []int32, logprobs []float32) string {
	bits := make([]uint32, len(logprobs))
	for i, v := range logprobs {
		bits[i] = math.Float32bits(v)
	}
	return LogprobsCommitmentBits(ids, bits)
}

// LogprobsCommitmentBits is LogprobsCommitment of the logprobs' IEEE-754 bits.
func LogprobsCommitmentBits(ids []int32, bits []uint32) string {
	n := min(len(ids), len(bits))
	h := sha256.New()
	h.Write([]byte(LogprobsDomain))
	var buf [8]byte
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(buf[0:4], uint32(ids[i]))
		binary.BigEndian.PutUint32(buf[4:8], bits[i])
		h.Write(buf[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
