// Package channel defines the off-chain objects of payment channels: vouchers a consumer signs
// to promise a provider a cumulative amount. It is pure: no I/O, no clock.
package channel

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// VoucherDomain prefixes the bytes a consumer signs for a voucher.
const VoucherDomain = "mycel/voucher/v1\x00"

// ErrBadVoucher is wrapped by every Verify failure.
var ErrBadVoucher = errors.New("bad voucher")

// Voucher is a consumer's signed promise that it owes the provider of ChannelID a cumulative
// Amount of umyc. A newer voucher carries a larger Amount and supersedes older ones.
type Voucher struct {
	ChainID   string `json:"chain_id"`
	ChannelID uint64 `json:"channel_id"`
	Amount    uint64 `json:"amount"`    // cumulative umyc the consumer owes the provider
	Signature []byte `json:"signature"` // consumer's ed25519 over SignBytes
}

// SignBytes returns the bytes the consumer signs:
// "mycel/voucher/v1\x00" || u16be(len(chain id)) || chain id || u64be(channel id) || u64be(amount).
// The length prefix keeps the encoding unambiguous for any chain id.
func (v Voucher) SignBytes() []byte {
	b := make([]byte, 0, len(VoucherDomain)+2+len(v.ChainID)+16)
	b = append(b, VoucherDomain...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.ChainID)))
	b = append(b, v.ChainID...)
	b = binary.BigEndian.AppendUint64(b, v.ChannelID)
	b = binary.BigEndian.AppendUint64(b, v.Amount)
	return b
}

// SignVoucher returns a voucher for channelID on chainID over the cumulative amount, signed by k.
func SignVoucher(chainID string, channelID, amount uint64, k ed25519.PrivateKey) Voucher {
	v := Voucher{ChainID: chainID, ChannelID: channelID, Amount: amount}
	if len(k) == ed25519.PrivateKeySize {
		v.Signature = ed25519.Sign(k, v.SignBytes())
	}
	return v
}

// Verify checks that the voucher is signed by pub. It does not check chain id, channel id or
// amount against any state; the ledger does that.
func (v Voucher) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify voucher: public key has %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrBadVoucher)
	}
	if len(v.ChainID) > 0xffff {
		return fmt.Errorf("verify voucher: chain id too long: %w", ErrBadVoucher)
	}
	if len(v.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("verify voucher: signature has %d bytes, want %d: %w", len(v.Signature), ed25519.SignatureSize, ErrBadVoucher)
	}
	if !ed25519.Verify(pub, v.SignBytes(), v.Signature) {
		return fmt.Errorf("verify voucher: signature does not match consumer key: %w", ErrBadVoucher)
	}
	return nil
}
