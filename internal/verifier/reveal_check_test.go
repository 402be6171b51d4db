package verifier_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/verifier"
)

// TestCheckRevealRefused: an answer whose provider did not reveal values matching its
// commitment reaches the checker as HTTPShopper leaves it (revealed, no logprobs, ids from
// the text's tokenisation): exactly logprobs_reveal fails, on an otherwise honest answer.
func TestCheckRevealRefused(t *testing.T) {
	l := lab(t)
	for _, profile := range []verifier.Profile{verifier.ProfileBuiltin, verifier.ProfilePeer} {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: 5, Temperature: ptr(0.8), Seed: ptr(int64(42)), MaxTokens: 24})
		s.Answer.Logprobs, s.Answer.Revealed = nil, true
		r, err := l.Check(context.Background(), "mycel-ref", req, s.Answer, s.Claim, profile)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"logprobs_reveal"}, r.Failed()); diff != "" {
			t.Errorf("%s: failed checks (-want +got):\n%s", profile, diff)
		}
	}
}

// TestCheckRevealOutsideVocabulary: revealed ids the model does not have make the audit
// fail (token_vocab, and logprobs_reveal when they contradict the commitment), not the
// re-check error out: the provider is lying about its output.
func TestCheckRevealOutsideVocabulary(t *testing.T) {
	l := lab(t)
	vocab := l.Models["mycel-ref"].Tokenizer.VocabSize()
	for _, id := range []int32{int32(vocab), -1} {
		for _, profile := range []verifier.Profile{verifier.ProfileBuiltin, verifier.ProfilePeer} {
			req, s := served(t, l, verifier.ShopperParams{PoolIndex: 5, Temperature: ptr(0.0), MaxTokens: 12})
			s.Answer.Revealed = true
			s.Answer.IDs = append([]int32(nil), s.Answer.IDs...)
			s.Answer.IDs[len(s.Answer.IDs)/2] = id
			r, err := l.Check(context.Background(), "mycel-ref", req, s.Answer, s.Claim, profile)
			if err != nil {
				t.Fatalf("id %d, %s: re-check error %v, want a failed audit", id, profile, err)
			}
			if r.Honest {
				t.Fatalf("id %d, %s: audit passed", id, profile)
			}
			if diff := cmp.Diff([]string{"logprobs_reveal", "token_vocab"}, r.Failed()); diff != "" {
				t.Errorf("id %d, %s: failed checks (-want +got):\n%s", id, profile, diff)
			}
		}
	}
}
