package channel

import (
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// RevealAnswerDomain prefixes the bytes a provider signs for its logprobs reveal answer
// (docs/spec/channels.md, "Logprobs reveal"; package internal/provider/reveal serves it).
const RevealAnswerDomain = "mycel/logprobs-reveal-answer/v1\x00"

// ErrBadRevealAnswer is wrapped by every VerifyRevealAnswer failure.
var ErrBadRevealAnswer = errors.New("bad reveal answer signature")

// RevealAnswerSignBytes returns the bytes a provider signs for its reveal of requestID:
// "mycel/logprobs-reveal-answer/v1\x00" || u16be(len(chain id)) || chain id ||
// u16be(len(provider)) || provider address || u16be(len(request id)) || request id || the 32
// bytes of LogprobsCommitmentBits(ids, bits). Only the commitment of the values is signed, so
// the signature compares directly with a receipt's logprobs commitment.
func RevealAnswerSignBytes(chainID, provider, requestID string, ids []int32, bits []uint32) []byte {
	c, _ := hex.DecodeString(LogprobsCommitmentBits(ids, bits)) // our own hex: cannot fail
	b := make([]byte, 0, len(RevealAnswerDomain)+6+len(chainID)+len(provider)+len(requestID)+len(c))
	b = append(b, RevealAnswerDomain...)
	for _, s := range []string{chainID, provider, requestID} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return append(b, c...)
}

// VerifyRevealAnswer checks a provider's ed25519 signature sig over its reveal of ids and
// logprob bits (one per id) for requestID on chainID against the provider's public key.
func VerifyRevealAnswer(chainID, provider, requestID string, ids []int32, bits []uint32, sig []byte, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify reveal answer: public key has %d bytes: %w", len(pub), ErrBadRevealAnswer)
	}
	if len(ids) != len(bits) {
		return fmt.Errorf("verify reveal answer: %d ids for %d logprobs: %w", len(ids), len(bits), ErrBadRevealAnswer)
	}
	for _, s := range []string{chainID, provider, requestID} {
		if len(s) > 0xffff {
			return fmt.Errorf("verify reveal answer: field too long: %w", ErrBadRevealAnswer)
		}
	}
	if len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("verify reveal answer: signature has %d bytes: %w", len(sig), ErrBadRevealAnswer)
	}
	if !ed25519.Verify(pub, RevealAnswerSignBytes(chainID, provider, requestID, ids, bits), sig) {
		return fmt.Errorf("verify reveal answer: signature does not match the provider's key: %w", ErrBadRevealAnswer)
	}
	return nil
}
