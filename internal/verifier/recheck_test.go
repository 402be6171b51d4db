package verifier_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// The demo models are generated and loaded once per test binary, on first
// use (the pure tests run without them).
var (
	labOnce   sync.Once
	labDir    string
	labErr    error
	theLab    *cheat.Lab
	labCancel context.CancelFunc = func() {}
	labDone                      = make(chan error, 1)
)

func TestMain(m *testing.M) {
	code := m.Run()
	labCancel()
	if theLab != nil {
		<-labDone
		theLab.Close()
	}
	if labDir != "" {
		os.RemoveAll(labDir)
	}
	os.Exit(code)
}

func lab(t testing.TB) *cheat.Lab {
	t.Helper()
	labOnce.Do(func() {
		var ctx context.Context
		ctx, labCancel = context.WithCancel(context.Background())
		if labDir, labErr = os.MkdirTemp("", "verifier"); labErr != nil {
			return
		}
		if _, labErr = demomodel.Generate(ctx, labDir, nil); labErr != nil {
			return
		}
		theLab, labErr = cheat.OpenLab(cheat.LabConfig{Dir: labDir, Names: []string{"mycel-ref", "mycel-sub", "mycel-ref-q8"}, Bands: verifier.DefaultBands()})
		if labErr == nil {
			go func() { labDone <- theLab.Run(ctx) }()
		}
	})
	if labErr != nil {
		t.Fatalf("lab: %v", labErr)
	}
	return theLab
}

func ptr[T any](v T) *T { return &v }

// served returns an honest answer of the reference to params, with the
// request it answers.
func served(t *testing.T, l *cheat.Lab, params verifier.ShopperParams) (cheat.Request, cheat.Served) {
	t.Helper()
	p, err := l.Provider(cheat.Honest, "mycel-ref", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	req, err := l.Request("mycel-ref", params)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Serve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return req, s
}

// TestCheckTampering changes one thing at a time in an honest answer and
// its receipt and wants exactly the matching checks to fail.
func TestCheckTampering(t *testing.T) {
	l := lab(t)
	greedy := verifier.ShopperParams{PoolIndex: 3, Temperature: ptr(0.0), MaxTokens: 24, Logprobs: true}
	sampled := verifier.ShopperParams{PoolIndex: 5, Temperature: ptr(0.8), Seed: ptr(int64(42)), MaxTokens: 24, Logprobs: true}
	tests := []struct {
		name    string
		params  verifier.ShopperParams
		profile verifier.Profile
		tamper  func(req *cheat.Request, s *cheat.Served)
		want    []string // failed checks
	}{
		{"honest greedy", greedy, verifier.ProfileBuiltin, nil, nil},
		{"honest greedy peer", greedy, verifier.ProfilePeer, nil, nil},
		{"honest seeded", sampled, verifier.ProfileBuiltin, nil, nil},
		{"honest seeded peer", sampled, verifier.ProfilePeer, nil, nil},
		{"other model hash", greedy, verifier.ProfileBuiltin, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.ModelSHA256 = "00" + s.Claim.ModelSHA256[2:]
		}, []string{"model_hash"}},
		{"tampered prompt", greedy, verifier.ProfilePeer, func(r *cheat.Request, _ *cheat.Served) {
			r.Body = append([]byte(nil), r.Body...)
			r.Body[len(r.Body)-3] ^= 1
		}, []string{"request_hash"}},
		{"inflated tokens out", sampled, verifier.ProfileBuiltin, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.TokensOut++
		}, []string{"tokens_out"}},
		{"inflated tokens in", greedy, verifier.ProfileBuiltin, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.TokensIn++
		}, []string{"tokens_in"}},
		{"peer tokens in within slack", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.TokensIn++
		}, nil},
		{"peer tokens in beyond slack", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.TokensIn += 2
		}, []string{"tokens_in"}},
		{"wrong commitment", sampled, verifier.ProfileBuiltin, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.LogprobsCommitment = channel.LogprobsCommitment(s.Answer.IDs, nil)
		}, []string{"logprobs_commitment"}},
		{"logprob off by 1e-3 builtin", sampled, verifier.ProfileBuiltin, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Logprobs[0] += 1e-3
		}, []string{"logprobs_band"}},
		{"logprob off by 1e-3 peer", sampled, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Logprobs[0] += 1e-3
		}, nil},
		{"logprob off by 0.5 peer", sampled, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Logprobs[0] -= 0.5
		}, []string{"logprobs_band"}},
		{"revealed logprobs match", sampled, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Logprobs, s.Answer.Revealed = float64s(s.Committed), true
		}, nil},
		{"revealed logprobs changed", sampled, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Logprobs, s.Answer.Revealed = float64s(s.Committed), true
			s.Answer.Logprobs[1] += 1e-3
		}, []string{"logprobs_reveal"}},
		{"text edited", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.Text += "!"
			s.Claim.OutputHash = hexSHA(s.Answer.Text)
		}, []string{"text_tokens"}},
		{"output hash", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.OutputHash = hexSHA("other")
		}, []string{"output_hash"}},
		{"finish reason mismatch", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Claim.FinishReason = "other"
		}, []string{"finish_reason"}},
		{"unknown finish", greedy, verifier.ProfilePeer, func(_ *cheat.Request, s *cheat.Served) {
			s.Answer.FinishReason, s.Claim.FinishReason = "content_filter", "content_filter"
		}, []string{"finish_reason_known"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, s := served(t, l, tt.params)
			if len(s.Answer.IDs) < 2 {
				t.Fatalf("reference answered %d tokens; pick another prompt", len(s.Answer.IDs))
			}
			if tt.tamper != nil {
				tt.tamper(&req, &s)
			}
			r, err := l.Check(context.Background(), "mycel-ref", req, s.Answer, s.Claim, tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, r.Failed()); diff != "" {
				t.Errorf("failed checks (-want +got):\n%s\nfindings: %+v", diff, r.Findings)
			}
			if r.Honest != (len(tt.want) == 0) {
				t.Errorf("Honest = %v with failures %v", r.Honest, r.Failed())
			}
		})
	}
}

// TestCheckStructural covers edits that change the tokens themselves.
func TestCheckStructural(t *testing.T) {
	l := lab(t)
	ctx := context.Background()
	t.Run("greedy token swapped", func(t *testing.T) {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: 3, Temperature: ptr(0.0), MaxTokens: 24})
		ids := append([]int32(nil), s.Answer.IDs...)
		ids[1] = (ids[1] + 1) % 4000
		s.Answer.IDs = ids
		s.Answer.Text = decode(t, l, ids)
		s.Claim.OutputHash = hexSHA(s.Answer.Text)
		r, err := l.Check(ctx, "mycel-ref", req, s.Answer, s.Claim, verifier.ProfilePeer)
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := r.Finding("greedy_argmax"); !f.Failed {
			t.Errorf("greedy_argmax passed a swapped token: %+v", f)
		}
	})
	t.Run("length below max tokens", func(t *testing.T) {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: 9, Temperature: ptr(1.0), MaxTokens: 16, Seed: ptr(int64(3))})
		if s.Answer.FinishReason != "length" {
			t.Skipf("reference stopped early (%s)", s.Answer.FinishReason)
		}
		req.Sampling.MaxTokens = 40
		r, err := l.Check(ctx, "mycel-ref", req, s.Answer, s.Claim, verifier.ProfilePeer)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"finish_length"}, r.Failed()); diff != "" {
			t.Errorf("failed checks (-want +got):\n%s", diff)
		}
	})
	t.Run("padded beyond max tokens", func(t *testing.T) {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: 9, Temperature: ptr(1.0), MaxTokens: 16, Seed: ptr(int64(3))})
		req.Sampling.MaxTokens = len(s.Answer.IDs) - 1
		r, err := l.Check(ctx, "mycel-ref", req, s.Answer, s.Claim, verifier.ProfilePeer)
		if err != nil {
			t.Fatal(err)
		}
		if f, _ := r.Finding("max_tokens"); !f.Failed {
			t.Errorf("max_tokens passed: %+v", f)
		}
	})
	t.Run("bad input is an error", func(t *testing.T) {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: 3, Temperature: ptr(0.0), MaxTokens: 8})
		// A token id outside the vocabulary is the provider's lie, not bad input: the
		// audit fails (see TestCheckRevealOutsideVocabulary).
		s.Answer.IDs = append([]int32{-5}, s.Answer.IDs...)
		if r, err := l.Check(ctx, "mycel-ref", req, s.Answer, s.Claim, verifier.ProfilePeer); err != nil || r.Honest {
			t.Errorf("negative token id: honest %v, err %v; want a failed audit", r.Honest, err)
		}
		s.Answer.IDs = s.Answer.IDs[1:]
		s.Answer.Logprobs = []float64{1}
		if _, err := l.Check(ctx, "mycel-ref", req, s.Answer, s.Claim, verifier.ProfilePeer); err == nil {
			t.Error("logprobs of another length: no error")
		}
	})
}

// TestCheatersCaught serves each cheating strategy and wants every answer
// of the exact profile flagged, and the honest provider never.
func TestCheatersCaught(t *testing.T) {
	l := lab(t)
	ctx := context.Background()
	tests := []struct {
		s     cheat.Strategy
		cheap string
		want  string // a check that must fail on every cheated answer ("" any)
	}{
		{cheat.Substitute, "mycel-sub", "logprobs_commitment"},
		{cheat.Inflate, "", "tokens_out"},
		// The Q8_0 file claimed as the F32 one: same tokens mostly, other
		// numbers, which the bit-exact commitment sees on every answer.
		{cheat.Quantised, "mycel-ref-q8", "logprobs_commitment"},
		// Stops early claiming a natural stop: the tokens are the
		// reference's own, so only the stop itself is wrong. Greedy (EOS is
		// not the argmax) and seeded (the seeded sampler goes on where the
		// answer stops) answers fail finish_stop exactly; an unseeded sampled
		// answer only fails when EOS is very unlikely where it stopped
		// (docs/VERIFICATION.md), so the requests here are greedy or seeded.
		{cheat.Truncate, "", "finish_stop"},
		// Honest to requests that look like audits (asking for logprobs),
		// substituting otherwise.
		{cheat.Spotter, "mycel-sub", "logprobs_commitment"},
	}
	for _, tt := range tests {
		t.Run(string(tt.s), func(t *testing.T) {
			p, err := l.Provider(tt.s, "mycel-ref", tt.cheap, 5)
			if err != nil {
				t.Fatal(err)
			}
			// An honest twin with the same randomness tells which answers
			// the truncating cheater actually cut.
			twin, err := l.Provider(cheat.Honest, "mycel-ref", "", 5)
			if err != nil {
				t.Fatal(err)
			}
			cheated := 0
			for i := 0; i < 8; i++ {
				params := verifier.DrawParams(77, i)
				if tt.s == cheat.Truncate {
					if i%2 == 0 {
						params.Temperature, params.Seed = ptr(0.0), nil
					} else if params.Seed == nil {
						params.Seed = ptr(int64(1000 + i))
					}
				}
				tr, err := l.Serve(ctx, p, "mycel-ref", params, true, verifier.ProfileBuiltin)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := l.Serve(ctx, twin, "mycel-ref", params, false, verifier.ProfileBuiltin)
				if err != nil {
					t.Fatal(err)
				}
				if !tr.Served.Cheated || len(tr.Served.Answer.IDs) == 0 {
					if !tr.Report.Honest {
						t.Errorf("request %d: honest answer flagged: %v", i, tr.Report.Failed())
					}
					continue
				}
				if tt.s == cheat.Truncate && len(tr.Served.Answer.IDs) >= len(ref.Served.Answer.IDs) {
					continue // nothing to cut
				}
				cheated++
				if tr.Report.Honest {
					t.Errorf("request %d: cheated answer passes (%+v)", i, tr.Report.Findings)
				}
				if f, _ := tr.Report.Finding(tt.want); tt.want != "" && !f.Failed {
					t.Errorf("request %d: %s not flagged (%+v)", i, tt.want, tr.Report.Failed())
				}
			}
			if cheated < 2 {
				t.Fatalf("only %d cheated answers in 8 requests: the test proves little", cheated)
			}
		})
	}
}

func decode(t *testing.T, l *cheat.Lab, ids []int32) string {
	t.Helper()
	s, err := l.Models["mycel-ref"].Tokenizer.Decode(ids)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hexSHA(s string) string {
	return verifier.HexSHA256([]byte(s))
}

func float64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestPeerTokensOutSlack: a peer engine (Ollama, llama.cpp) that stopped on
// end-of-generation may bill that token too; one more is an inflation. The
// built-in profile, and answers cut by length, get no slack.
func TestPeerTokensOutSlack(t *testing.T) {
	l := lab(t)
	ctx := context.Background()
	var stop, length *cheat.Served
	var stopReq, lengthReq cheat.Request
	for i := 0; i < 64 && (stop == nil || length == nil); i++ {
		req, s := served(t, l, verifier.ShopperParams{PoolIndex: uint64(i), Temperature: ptr(1.0), Seed: ptr(int64(i)), MaxTokens: 48})
		switch {
		case s.Answer.FinishReason == "stop" && stop == nil && len(s.Answer.IDs) > 1:
			stop, stopReq = &s, req
		case s.Answer.FinishReason == "length" && length == nil:
			length, lengthReq = &s, req
		}
	}
	if stop == nil || length == nil {
		t.Fatalf("no answers ending in both stop and length among 64 prompts")
	}
	for _, tc := range []struct {
		name    string
		req     cheat.Request
		s       cheat.Served
		extra   uint64
		profile verifier.Profile
		fail    bool
	}{
		{"peer stop, end token billed", stopReq, *stop, 1, verifier.ProfilePeer, false},
		{"peer stop, two more", stopReq, *stop, 2, verifier.ProfilePeer, true},
		{"builtin stop, one more", stopReq, *stop, 1, verifier.ProfileBuiltin, true},
		{"peer length, one more", lengthReq, *length, 1, verifier.ProfilePeer, true},
	} {
		claim := tc.s.Claim
		claim.TokensOut += tc.extra
		r, err := l.Check(ctx, "mycel-ref", tc.req, tc.s.Answer, claim, tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := r.Finding("tokens_out")
		if f.Failed != tc.fail {
			t.Errorf("%s: tokens_out failed = %v, want %v (%+v)", tc.name, f.Failed, tc.fail, f)
		}
	}
}

// TestSummaryVerdict: a failing report's verdict tells a quantised file (tokens off the
// reference, logprobs within quantisation noise) from another model (logprobs off by nats).
func TestSummaryVerdict(t *testing.T) {
	for _, tt := range []struct {
		name     string
		findings []verifier.Finding
		want     string
	}{
		{"another model", []verifier.Finding{{Check: "seeded_regen", Failed: true}, {Check: "likelihood_pit", Failed: true}, {Check: "logprobs_band", Statistic: 3.2, Failed: true}}, tx.VerdictSubstitution},
		{"a quantised file", []verifier.Finding{{Check: "seeded_regen", Failed: true}, {Check: "logprobs_band", Statistic: 0.21, Failed: true}}, tx.VerdictQuantization},
		{"greedy, quantised", []verifier.Finding{{Check: "greedy_argmax", Statistic: 2, Failed: true}, {Check: "logprobs_band", Statistic: 0.08, Failed: true}}, tx.VerdictQuantization},
		{"no logprobs to tell", []verifier.Finding{{Check: "likelihood_pit", Failed: true}}, tx.VerdictSubstitution},
		{"only the numbers", []verifier.Finding{{Check: "logprobs_commitment", Failed: true}}, tx.VerdictQuantization},
		{"the numbers of another model", []verifier.Finding{{Check: "logprobs_commitment", Failed: true}, {Check: "logprobs_band", Statistic: 4.0, Failed: true}}, tx.VerdictSubstitution},
		{"a reveal contradicting the receipt", []verifier.Finding{{Check: "logprobs_reveal", Failed: true}}, tx.VerdictMismatch},
		{"truncated", []verifier.Finding{{Check: "finish_stop", Failed: true}, {Check: "logprobs_band", Statistic: 0}}, tx.VerdictTruncation},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifier.Summary(verifier.Report{Findings: tt.findings}, channel.Receipt{}).Verdict; got != tt.want {
				t.Errorf("verdict %q, want %q", got, tt.want)
			}
		})
	}
}
