package cheat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/verifier"
)

// BenchConfig configures Bench: honest providers on every registered file
// and one provider per cheating strategy, audited at rate AuditP.
type BenchConfig struct {
	Honest     []string // registered files served honestly (e.g. mycel-ref, -q8, -q4km)
	Registered string   // the file cheaters claim to serve
	Substitute string   // what the substitute cheater runs
	Quantised  string   // what the quantisation cheater runs
	HonestN    int      // honest requests, spread over Honest
	CheatN     int      // audited answers per strategy (the bootstrap pool)
	TimingN    int      // sequential requests timed for the overhead
	AuditP     float64  // audit probability per request (the floor)
	MaxCheats  int      // horizon of P(caught) curves
	Trials     int      // Monte Carlo runs per strategy
	Workers    int      // concurrent requests
	Seed       uint64
	// Mix is the request parameter distribution of users and shoppers.
	Mix verifier.Mix
	// Reveal has providers reveal the committed logprobs of audited
	// answers (proposed challenge endpoint), so every audit compares
	// logprobs with the reference.
	Reveal       bool
	Peer         string // path of bin/llamapeer; "" skips the llama.cpp peer
	PeerPrompts  int
	PeerMaxToken int
	Progress     func(string) `json:"-"`
}

// ProfileStats summarises honest answers re-checked under one profile.
type ProfileStats struct {
	Profile  verifier.Profile `json:"profile"`
	Answers  int              `json:"answers"`
	Flagged  int              `json:"flagged"`
	ByCheck  map[string]int   `json:"by_check,omitempty"`
	TallyRej int              `json:"tally_rejections"` // honest providers whose combined test rejected
	// Closest approach of each p-value test to its threshold
	// (statistic - threshold, natural log; positive is a pass).
	Margins map[string]float64 `json:"margins"`
}

// StrategyStats summarises one cheating strategy under one profile.
type StrategyStats struct {
	Strategy Strategy         `json:"strategy"`
	Profile  verifier.Profile `json:"profile"`
	Pool     int              `json:"audited_cheats"`
	// Detect is the share of audited cheating answers whose own report
	// fails; ByCheck counts failures per check.
	Detect  float64        `json:"detect_per_audit"`
	ByCheck map[string]int `json:"by_check,omitempty"`
	// Verdicts counts the evidence verdicts (verifier.Summary) of the failing reports.
	Verdicts map[string]int `json:"verdicts,omitempty"`
	// PCaught[n] is P(caught within n cheating requests) at AuditP,
	// counting single-answer failures and the combined tally test.
	PCaught map[int]float64 `json:"p_caught"`
	// MeanCheats is the mean number of cheating requests before being
	// caught (capped at 20*MaxCheats).
	MeanCheats float64 `json:"mean_cheats_to_catch"`
	// SpotterCheatShare is, for the spotter, the share of requests it
	// cheated on; SpotterAuditHit the share of shopper requests among the
	// ones it cheated on (equal to the shopper share when shoppers are
	// indistinguishable).
	SpotterCheatShare float64 `json:"spotter_cheat_share,omitempty"`
}

// PeerStats summarises honest llama.cpp answers re-checked as peer.
type PeerStats struct {
	Model       string  `json:"model"`
	WeightType  string  `json:"weight_type"`
	Answers     int     `json:"answers"`
	Flagged     int     `json:"flagged"`
	MaxAbsDiff  float64 `json:"max_abs_logprob_diff"`
	Tolerance   float64 `json:"tolerance"`
	PromptDiffs int     `json:"prompt_tokenisation_diffs"`
	Error       string  `json:"error,omitempty"`
}

// BenchReport is the outcome of Bench.
type BenchReport struct {
	Config     BenchConfig     `json:"config"`
	Honest     []ProfileStats  `json:"honest"`
	Peer       []PeerStats     `json:"peer"`
	Strategies []StrategyStats `json:"strategies"`
	// Compute: served and re-check seconds of TimingN sequential requests;
	// RecheckRatio = check/serve; OverheadPct = AuditP * RecheckRatio * 100.
	ServeSeconds   float64 `json:"serve_seconds"`
	RecheckSeconds float64 `json:"recheck_seconds"`
	RecheckRatio   float64 `json:"recheck_ratio"`
	OverheadPct    float64 `json:"overhead_pct"`
	// ShopperPct is the verifier's own requests as a share of served
	// compute when every audit is a shopper request (AuditP).
	ShopperPct float64 `json:"shopper_pct"`
	Elapsed    float64 `json:"elapsed_seconds"`
}

// Bench runs the verification benchmark on l (which must be running).
func Bench(ctx context.Context, l *Lab, cfg BenchConfig) (BenchReport, error) {
	start := time.Now()
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string) {}
	}
	rep := BenchReport{Config: cfg}
	rep.Config.Progress = nil
	profiles := []verifier.Profile{verifier.ProfileBuiltin, verifier.ProfilePeer}

	// Honest providers.
	progress(fmt.Sprintf("honest: %d requests over %v", cfg.HonestN, cfg.Honest))
	hs := map[verifier.Profile]*ProfileStats{}
	tallies := map[string]*verifier.Tally{}
	for _, pr := range profiles {
		hs[pr] = &ProfileStats{Profile: pr, ByCheck: map[string]int{}, Margins: map[string]float64{}}
		for _, m := range cfg.Honest {
			tallies[string(pr)+"/"+m] = &verifier.Tally{}
		}
	}
	bands := l.Models[cfg.Registered].Checker.Bands()
	rejected := map[string]bool{}
	var mu sync.Mutex
	err := parallel(ctx, cfg.Workers, cfg.HonestN, func(ctx context.Context, i int) error {
		m := cfg.Honest[i%len(cfg.Honest)]
		p, err := l.Provider(Honest, m, "", cfg.Seed+uint64(i))
		if err != nil {
			return err
		}
		req, err := l.Request(m, cfg.Mix.Draw(cfg.Seed, i))
		if err != nil {
			return err
		}
		s, err := p.Serve(ctx, req)
		if err != nil {
			return err
		}
		for _, pr := range profiles {
			r, err := l.Check(ctx, m, req, reveal(s, cfg.Reveal), s.Claim, pr)
			if err != nil {
				return err
			}
			mu.Lock()
			st := hs[pr]
			st.Answers++
			if !r.Honest {
				st.Flagged++
			}
			for _, f := range r.Failed() {
				st.ByCheck[f]++
			}
			for _, f := range r.Findings {
				switch f.Check {
				case "likelihood_pit", "rank_topk", "finish_stop":
					if f.Threshold == 0 && f.Check == "finish_stop" {
						break // stop string or greedy margin: not a p-value
					}
					if f.Check == "finish_stop" && req.Sampling.Temperature == 0 {
						break
					}
					mg := f.Statistic - f.Threshold
					if old, ok := st.Margins[f.Check]; !ok || mg < old {
						st.Margins[f.Check] = mg
					}
				}
			}
			if rej, _, _ := tallies[string(pr)+"/"+m].Add(r, bands.Alpha); rej {
				rejected[string(pr)+"/"+m] = true
			}
			mu.Unlock()
		}
		if i > 0 && i%1000 == 0 {
			progress(fmt.Sprintf("honest: %d/%d", i, cfg.HonestN))
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("bench honest: %w", err)
	}
	for _, pr := range profiles {
		for _, m := range cfg.Honest {
			if rejected[string(pr)+"/"+m] {
				hs[pr].TallyRej++
			}
		}
		rep.Honest = append(rep.Honest, *hs[pr])
	}

	// llama.cpp as an honest peer provider.
	if cfg.Peer != "" {
		for _, m := range cfg.Honest {
			progress("peer: " + m)
			rep.Peer = append(rep.Peer, peerHonest(ctx, l, cfg, m))
		}
	}

	// Cheaters.
	for _, s := range Strategies() {
		progress(fmt.Sprintf("cheater %s: %d audited cheats", s, cfg.CheatN))
		cheap := ""
		switch s {
		case Substitute, Spotter:
			cheap = cfg.Substitute
		case Quantised:
			cheap = cfg.Quantised
		}
		p, err := l.Provider(s, cfg.Registered, cheap, cfg.Seed^0xc4ea7)
		if err != nil {
			return rep, err
		}
		pools := map[verifier.Profile][]verifier.Report{}
		served, cheated := 0, 0
		i := 0
		// A spotter that guesses every request is an audit never cheats:
		// stop after a bounded number of requests.
		for len(pools[verifier.ProfileBuiltin]) < cfg.CheatN && served < 4*cfg.CheatN {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			req, err := l.Request(cfg.Registered, cfg.Mix.Draw(cfg.Seed^0x5eed, i))
			i++
			if err != nil {
				return rep, err
			}
			sv, err := p.Serve(ctx, req)
			if err != nil {
				return rep, err
			}
			served++
			if !sv.Cheated {
				continue
			}
			cheated++
			for _, pr := range profiles {
				r, err := l.Check(ctx, cfg.Registered, req, reveal(sv, cfg.Reveal), sv.Claim, pr)
				if err != nil {
					return rep, err
				}
				pools[pr] = append(pools[pr], r)
			}
		}
		for _, pr := range profiles {
			st := simulate(pools[pr], cfg, bands.Alpha)
			st.Strategy, st.Profile = s, pr
			if s == Spotter && served > 0 {
				st.SpotterCheatShare = float64(cheated) / float64(served)
			}
			rep.Strategies = append(rep.Strategies, st)
		}
	}

	// Compute: sequential serve vs re-check time.
	progress(fmt.Sprintf("timing: %d sequential requests", cfg.TimingN))
	p, err := l.Provider(Honest, cfg.Registered, "", cfg.Seed^0x71)
	if err != nil {
		return rep, err
	}
	for i := 0; i < cfg.TimingN; i++ {
		t, err := l.Serve(ctx, p, cfg.Registered, cfg.Mix.Draw(cfg.Seed^0x71, i), true, verifier.ProfileBuiltin)
		if err != nil {
			return rep, err
		}
		rep.ServeSeconds += t.ServeTime.Seconds()
		rep.RecheckSeconds += t.CheckTime.Seconds()
	}
	if rep.ServeSeconds > 0 {
		rep.RecheckRatio = rep.RecheckSeconds / rep.ServeSeconds
	}
	rep.OverheadPct = 100 * cfg.AuditP * rep.RecheckRatio
	rep.ShopperPct = 100 * cfg.AuditP
	rep.Elapsed = time.Since(start).Seconds()
	return rep, nil
}

// reveal returns the answer as the verifier sees it after challenging the
// provider for the committed logprobs (when on).
func reveal(s Served, on bool) verifier.Answer {
	a := s.Answer
	if !on {
		return a
	}
	a.Logprobs = make([]float64, len(s.Committed))
	for i, v := range s.Committed {
		a.Logprobs[i] = float64(v)
	}
	a.Revealed = true
	return a
}

// simulate estimates P(caught within n cheats) by resampling the pool of
// audited cheating answers: each cheating request is audited with
// probability AuditP; an audited answer is drawn from the pool; the
// provider is caught when the answer's report fails or the provider's
// combined tally rejects.
func simulate(pool []verifier.Report, cfg BenchConfig, alpha float64) StrategyStats {
	st := StrategyStats{Pool: len(pool), ByCheck: map[string]int{}, Verdicts: map[string]int{}, PCaught: map[int]float64{}}
	if len(pool) == 0 {
		return st
	}
	for _, r := range pool {
		if !r.Honest {
			st.Detect++
			st.Verdicts[verifier.Summary(r, channel.Receipt{}).Verdict]++
		}
		for _, f := range r.Failed() {
			st.ByCheck[f]++
		}
	}
	st.Detect /= float64(len(pool))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5171))
	horizon := 20 * cfg.MaxCheats
	marks := []int{1, 10, 25, 50, 100, cfg.MaxCheats}
	caught := make([]int, len(marks))
	sum := 0.0
	for trial := 0; trial < cfg.Trials; trial++ {
		var tl verifier.Tally
		at := horizon
		for n := 1; n <= horizon; n++ {
			if rng.Float64() >= cfg.AuditP {
				continue
			}
			r := pool[rng.IntN(len(pool))]
			rej, _, _ := tl.Add(r, alpha)
			if !r.Honest || rej {
				at = n
				break
			}
		}
		sum += float64(at)
		for k, m := range marks {
			if at <= m {
				caught[k]++
			}
		}
	}
	for k, m := range marks {
		st.PCaught[m] = float64(caught[k]) / float64(cfg.Trials)
	}
	st.MeanCheats = sum / float64(cfg.Trials)
	return st
}

// peerCompletion is llamapeer generate's output.
type peerCompletion struct {
	PromptTokens []int32 `json:"prompt_tokens"`
	Tokens       []struct {
		ID      int32   `json:"id"`
		Text    string  `json:"text"`
		Logprob float64 `json:"logprob"`
	} `json:"tokens"`
	FinishReason string `json:"finish_reason"`
}

// peerHonest serves greedy pool prompts with llama.cpp on model m and
// re-checks them against m under the peer profile.
func peerHonest(ctx context.Context, l *Lab, cfg BenchConfig, m string) PeerStats {
	lm := l.Models[m]
	ps := PeerStats{Model: m, WeightType: lm.WeightType, Tolerance: lm.Checker.Bands().LogprobTol[lm.WeightType]}
	for i := 0; i < cfg.PeerPrompts; i++ {
		zero := 0.0
		params := verifier.ShopperParams{PoolIndex: uint64(i) * 37, Temperature: &zero, MaxTokens: cfg.PeerMaxToken, Logprobs: true}
		req, err := l.Request(m, params)
		if err != nil {
			ps.Error = err.Error()
			return ps
		}
		sys, user := verifier.PoolPrompt(params.PoolIndex)
		text, err := renderPrompt(lm, sys, user)
		if err != nil {
			ps.Error = err.Error()
			return ps
		}
		cmd := exec.CommandContext(ctx, cfg.Peer, "generate", "--model", lm.Path, "--prompt", text,
			"--max-tokens", fmt.Sprint(cfg.PeerMaxToken), "--logprobs", "1", "--threads", "1")
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			ps.Error = fmt.Sprintf("llamapeer: %v: %s", err, lastLine(stderr.String()))
			return ps
		}
		var pc peerCompletion
		if err := json.Unmarshal(out.Bytes(), &pc); err != nil {
			ps.Error = fmt.Sprintf("llamapeer output: %v", err)
			return ps
		}
		if !equalIDs(pc.PromptTokens, req.Prompt) {
			ps.PromptDiffs++
			req.Prompt = pc.PromptTokens
		}
		ans := verifier.Answer{FinishReason: pc.FinishReason}
		var b []byte
		for _, t := range pc.Tokens {
			ans.IDs = append(ans.IDs, t.ID)
			ans.Logprobs = append(ans.Logprobs, t.Logprob)
			b = append(b, t.Text...)
		}
		ans.Text = string(b)
		claim := verifier.Claim{
			ModelSHA256: lm.SHA256, RequestHash: verifier.HexSHA256(req.Body), OutputHash: verifier.HexSHA256(b),
			TokensIn: uint64(len(pc.PromptTokens)), TokensOut: uint64(len(ans.IDs)), FinishReason: pc.FinishReason,
		}
		r, err := l.Check(ctx, m, req, ans, claim, verifier.ProfilePeer)
		if err != nil {
			ps.Error = err.Error()
			return ps
		}
		ps.Answers++
		if !r.Honest {
			ps.Flagged++
		}
		if f, ok := r.Finding("logprobs_band"); ok {
			ps.MaxAbsDiff = math.Max(ps.MaxAbsDiff, f.Statistic)
		}
	}
	return ps
}

func renderPrompt(lm *LabModel, sys, user string) (string, error) {
	return verifier.PromptText(lm.Format, sys, user)
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func lastLine(s string) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) == 0 {
		return ""
	}
	return string(lines[len(lines)-1])
}

// parallel runs fn(i) for i in [0,n) on workers goroutines.
func parallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	next := make(chan int)
	g.Go(func() error {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for w := 0; w < workers; w++ {
		g.Go(func() error {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// SortedMarks returns the keys of a P(caught) map in order.
func SortedMarks(m map[int]float64) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}
