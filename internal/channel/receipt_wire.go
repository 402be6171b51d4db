package channel

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// HTTP headers of the provider API (docs/spec/channels.md).
const (
	HeaderVoucher   = "X-Mycel-Voucher"    // base64url(JSON Voucher), sent by the consumer
	HeaderRequestID = "X-Mycel-Request-Id" // consumer-chosen request id, echoed in the receipt
	HeaderReceipt   = "X-Mycel-Receipt"    // base64url(JSON Receipt), non-streaming answers
)

// ReceiptEventObject is the "object" of the SSE event that carries the receipt of a streamed
// answer, right before "data: [DONE]".
const ReceiptEventObject = "mycel.receipt"

// ReceiptEvent is the SSE event {"object":"mycel.receipt","receipt":{…}}.
type ReceiptEvent struct {
	Object  string  `json:"object"`
	Receipt Receipt `json:"receipt"`
}

// MaxHeaderValue bounds a voucher or receipt header value accepted by the decoders.
const MaxHeaderValue = 16 << 10

// EncodeHeader returns base64url (unpadded) of v's JSON: the value of X-Mycel-Voucher or
// X-Mycel-Receipt.
func EncodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode header: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// DecodeVoucherHeader decodes an X-Mycel-Voucher value (base64url, padded or not).
func DecodeVoucherHeader(s string) (Voucher, error) {
	var v Voucher
	if err := decodeHeader(s, &v); err != nil {
		return Voucher{}, fmt.Errorf("decode voucher header: %w", err)
	}
	return v, nil
}

// DecodeReceiptHeader decodes an X-Mycel-Receipt value (base64url, padded or not).
func DecodeReceiptHeader(s string) (Receipt, error) {
	var r Receipt
	if err := decodeHeader(s, &r); err != nil {
		return Receipt{}, fmt.Errorf("decode receipt header: %w", err)
	}
	return r, nil
}

func decodeHeader(s string, v any) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > MaxHeaderValue {
		return fmt.Errorf("%d bytes, limit %d", len(s), MaxHeaderValue)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return fmt.Errorf("base64url: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return nil
}
