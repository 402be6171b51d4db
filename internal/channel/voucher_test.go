package channel

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
)

func key(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(s[:])
}

func TestVoucherVerify(t *testing.T) {
	alice, mallory := key("alice"), key("mallory")
	good := SignVoucher("chain-a", 7, 1000, alice)
	tests := []struct {
		name string
		v    Voucher
		pub  ed25519.PublicKey
		ok   bool
	}{
		{"valid", good, alice.Public().(ed25519.PublicKey), true},
		{"wrong signer", good, mallory.Public().(ed25519.PublicKey), false},
		{"forged by other key", SignVoucher("chain-a", 7, 1000, mallory), alice.Public().(ed25519.PublicKey), false},
		{"amount changed", Voucher{ChainID: good.ChainID, ChannelID: 7, Amount: 1001, Signature: good.Signature}, alice.Public().(ed25519.PublicKey), false},
		{"channel changed", Voucher{ChainID: good.ChainID, ChannelID: 8, Amount: 1000, Signature: good.Signature}, alice.Public().(ed25519.PublicKey), false},
		{"chain changed", Voucher{ChainID: "chain-b", ChannelID: 7, Amount: 1000, Signature: good.Signature}, alice.Public().(ed25519.PublicKey), false},
		{"short signature", Voucher{ChainID: "chain-a", ChannelID: 7, Amount: 1000, Signature: good.Signature[:10]}, alice.Public().(ed25519.PublicKey), false},
		{"no public key", good, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.v.Verify(tt.pub)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadVoucher) {
				t.Fatalf("Verify = %v, want ErrBadVoucher", err)
			}
		})
	}
}

func TestSignBytesUnambiguous(t *testing.T) {
	a := Voucher{ChainID: "ab", ChannelID: 1, Amount: 2}.SignBytes()
	b := Voucher{ChainID: "a", ChannelID: 1, Amount: 2}.SignBytes()
	if bytes.Equal(a, b) {
		t.Fatal("different chain ids give equal sign bytes")
	}
	if !bytes.HasPrefix(a, []byte(VoucherDomain)) {
		t.Fatalf("sign bytes %q lack the domain prefix", a)
	}
}
