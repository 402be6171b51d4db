package verifier_test

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/mycel-network/mycel/internal/verifier"
)

// FuzzCheck feeds arbitrary answers and claims to the checker: it must
// return a report or an error, never panic.
func FuzzCheck(f *testing.F) {
	f.Add([]byte{1, 0, 2, 0}, "ab", "stop", 0.7, 8, 3.0, true, "x")
	f.Add([]byte{}, "", "length", 0.0, 0, -1.0, false, "")
	f.Add([]byte{0xff, 0xff, 0, 0, 5, 0}, "\xff", "content_filter", 1e300, -3, math.NaN(), true, "\n")
	l := lab(f) // before fuzzing: loading takes seconds
	f.Fuzz(func(t *testing.T, raw []byte, text, finish string, temp float64, maxTok int, lp float64, seeded bool, stop string) {
		req, err := l.Request("mycel-ref", verifier.ShopperParams{PoolIndex: 1, MaxTokens: 8})
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for len(raw) >= 2 && len(ids) < 32 {
			ids = append(ids, int32(binary.LittleEndian.Uint16(raw))%5000-10)
			raw = raw[2:]
		}
		ans := verifier.Answer{IDs: ids, Text: text, FinishReason: finish}
		if lp != -1 {
			ans.Logprobs = make([]float64, len(ids))
			for i := range ans.Logprobs {
				ans.Logprobs[i] = lp
			}
		}
		req.Sampling = verifier.Sampling{Temperature: temp, MaxTokens: maxTok % 64, Stop: []string{stop}}
		if seeded {
			s := int64(maxTok)
			req.Sampling.Seed = &s
		}
		claim := verifier.Claim{ModelSHA256: l.Models["mycel-ref"].SHA256, TokensOut: uint64(len(ids))}
		for _, prof := range []verifier.Profile{verifier.ProfileBuiltin, verifier.ProfilePeer} {
			r, err := l.Check(context.Background(), "mycel-ref", req, ans, claim, prof)
			if err == nil && r.Tokens != len(ids) {
				t.Errorf("report covers %d tokens, answer has %d", r.Tokens, len(ids))
			}
		}
	})
}
