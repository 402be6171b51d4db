package ledger

import (
	"errors"
	"fmt"
)

// Codespace is the ABCI codespace of every non-zero Result code.
const Codespace = "mycel"

// Result codes, one table for CheckTx, DeliverTx and Query. The numbers are part of the wire
// contract: append, never renumber.
const (
	CodeOK                uint32 = 0
	CodeDecode            uint32 = 1  // malformed, oversize or non-canonical transaction bytes
	CodeSignature         uint32 = 2  // bad public key, signature, or voucher signature
	CodeChainID           uint32 = 3  // transaction or voucher for another chain
	CodeNonce             uint32 = 4  // nonce differs from the account's
	CodeUnknownMsg        uint32 = 5  // message type this ledger does not know
	CodeOverflow          uint32 = 6  // an amount sum exceeds 2^64-1 umyc
	CodeInsufficientFunds uint32 = 7  // balance, stake or deposit too small
	CodeStaleVoucher      uint32 = 8  // voucher pays nothing new (old or double redeem)
	CodeInvalid           uint32 = 9  // stateless or stateful validation failed
	CodeNotFound          uint32 = 10 // account, model, provider, verifier or channel missing
	CodeUnauthorized      uint32 = 11 // sender may not do this (not the channel's party)
	CodeFee               uint32 = 12 // fee below params.min_fee
	CodeJailed            uint32 = 13 // the provider or verifier is jailed
	CodeInternal          uint32 = 14 // misuse of the Ledger API (e.g. DeliverTx outside a block)
)

var codeNames = map[uint32]string{
	CodeOK:                "ok",
	CodeDecode:            "decode",
	CodeSignature:         "signature",
	CodeChainID:           "chain_id",
	CodeNonce:             "nonce",
	CodeUnknownMsg:        "unknown_msg",
	CodeOverflow:          "overflow",
	CodeInsufficientFunds: "insufficient_funds",
	CodeStaleVoucher:      "stale_voucher",
	CodeInvalid:           "invalid",
	CodeNotFound:          "not_found",
	CodeUnauthorized:      "unauthorized",
	CodeFee:               "fee",
	CodeJailed:            "jailed",
	CodeInternal:          "internal",
}

// CodeName returns the short snake_case name of a code ("insufficient_funds"), or "code_<n>".
func CodeName(code uint32) string {
	if n, ok := codeNames[code]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", code)
}

// Errors returned by Query, Slash and the block methods; match them with errors.Is and map
// them to codes with ErrorCode.
var (
	ErrNotFound   = errors.New("not found")
	ErrBadQuery   = errors.New("bad query")
	ErrState      = errors.New("ledger not in the right state for this call")
	ErrBadGenesis = errors.New("invalid genesis")
)

// Error is a failure carrying a result code. DeliverTx and CheckTx report them as Results;
// other methods may return them as errors.
type Error struct {
	Code uint32
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func fail(code uint32, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrorCode maps an error from this package to its result code: the code of an *Error,
// CodeNotFound for ErrNotFound, CodeInvalid for other errors, CodeOK for nil.
func ErrorCode(err error) uint32 {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrNotFound) {
		return CodeNotFound
	}
	if errors.Is(err, ErrState) {
		return CodeInternal
	}
	return CodeInvalid
}
