package channel

import (
	"crypto/ed25519"
	"errors"
	"math"
	"testing"
)

// TestRevealAnswer: the integer-only commitment equals LogprobsCommitment of the same
// values; a provider's reveal signature verifies, and fails for another key, chain,
// provider, request, id or logprob bit, a length mismatch and a short signature.
func TestRevealAnswer(t *testing.T) {
	ids, lps := []int32{3, 1, 4}, []float32{-0.1, -2, float32(math.Inf(-1))}
	bits := []uint32{math.Float32bits(lps[0]), math.Float32bits(lps[1]), math.Float32bits(lps[2])}
	if LogprobsCommitmentBits(ids, bits) != LogprobsCommitment(ids, lps) {
		t.Fatal("LogprobsCommitmentBits differs from LogprobsCommitment")
	}
	k := key("provider")
	pub := k.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(k, RevealAnswerSignBytes("c", "prov", "r1", ids, bits))
	if err := VerifyRevealAnswer("c", "prov", "r1", ids, bits, sig, pub); err != nil {
		t.Fatal(err)
	}
	flip := func(b []uint32, i int) []uint32 {
		out := append([]uint32(nil), b...)
		out[i] ^= 1
		return out
	}
	for name, err := range map[string]error{
		"other key":      VerifyRevealAnswer("c", "prov", "r1", ids, bits, sig, key("other").Public().(ed25519.PublicKey)),
		"other chain":    VerifyRevealAnswer("d", "prov", "r1", ids, bits, sig, pub),
		"other provider": VerifyRevealAnswer("c", "prov2", "r1", ids, bits, sig, pub),
		"other request":  VerifyRevealAnswer("c", "prov", "r2", ids, bits, sig, pub),
		"other id":       VerifyRevealAnswer("c", "prov", "r1", []int32{3, 1, 5}, bits, sig, pub),
		"other bit":      VerifyRevealAnswer("c", "prov", "r1", ids, flip(bits, 2), sig, pub),
		"length":         VerifyRevealAnswer("c", "prov", "r1", ids[:2], bits, sig, pub),
		"short sig":      VerifyRevealAnswer("c", "prov", "r1", ids, bits, sig[:10], pub),
	} {
		if !errors.Is(err, ErrBadRevealAnswer) {
			t.Errorf("%s: err %v, want ErrBadRevealAnswer", name, err)
		}
	}
}
