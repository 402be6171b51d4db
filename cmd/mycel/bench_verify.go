package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// defaultAuditFloorBps is the audit probability of a provider with a long
// clean record (issue 6: from 100% for a new provider down to this floor);
// the ledger's audit_floor_bps parameter has the same default.
const defaultAuditFloorBps = 500

// evidenceVoteBlocks is the ledger's default evidence_vote_blocks.
const evidenceVoteBlocks = 50

// benchVerify runs honest providers and every cheating strategy against the
// re-check, and reports false accusations, P(caught) and overhead.
func benchVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	models := fs.String("models", "", "directory with the demo models (generated if missing; default a temporary directory)")
	honest := fs.Int("honest", 10000, "honest requests, spread over mycel-ref, -q8 and -q4km")
	cheats := fs.Int("cheats", 200, "audited cheating answers per strategy")
	timing := fs.Int("timing", 200, "sequential requests timed for the verification overhead")
	trials := fs.Int("trials", 20000, "Monte Carlo runs per strategy")
	maxCheats := fs.Int("max-cheats", 100, "horizon of the P(caught) curve")
	auditBps := fs.Uint64("audit-bps", defaultAuditFloorBps, "audit probability in basis points (the ledger's audit floor)")
	workers := fs.Int("workers", 4, "concurrent honest requests")
	peer := fs.String("peer", "bin/llamapeer", "llama.cpp peer binary (skipped if missing)")
	peerPrompts := fs.Int("peer-prompts", 40, "greedy prompts per model served by llama.cpp")
	seed := fs.Uint64("seed", 1, "seed of the request streams")
	seededShare := fs.Float64("seeded-share", 1, "share of requests reaching providers with a seed (1: through a gateway, which seeds every request without one; the devnet phase's users send the users' mix and its gateway seeds the rest)")
	logprobsShare := fs.Float64("logprobs-share", verifier.DefaultMix().LogprobsShare, "share of requests asking for logprobs")
	reveal := fs.Bool("reveal", true, "providers reveal the committed logprobs of answers without logprobs to the paying consumer (GET /mycel/v1/logprobs/{id})")
	format := fs.String("output", "text", "output format: text or json")
	dn := addDevnetFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("bench verify: unknown output format %q", *format)
	}
	params := ledger.DefaultParams()
	p := float64(*auditBps) / 10000
	if !(p > 0 && p <= 1) {
		return fmt.Errorf("bench verify: audit probability %v outside (0,1]", p)
	}
	dir := *models
	if dir == "" {
		tmp, err := os.MkdirTemp("", "mycel-bench-verify")
		if err != nil {
			return fmt.Errorf("bench verify: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if _, err := demomodel.Generate(ctx, dir, nil); err != nil {
		return fmt.Errorf("bench verify: models: %w", err)
	}
	mix := verifier.DefaultMix()
	mix.SeedShare, mix.LogprobsShare = *seededShare, *logprobsShare
	// The devnet's users send client bodies: the users' seeds (its gateway seeds the rest)
	// unless --seeded-share says otherwise.
	dmix := mix
	seededSet := false
	fs.Visit(func(f *flag.Flag) { seededSet = seededSet || f.Name == "seeded-share" })
	if !seededSet {
		dmix.SeedShare = verifier.DefaultMix().SeedShare
	}
	if *dn.only {
		rep, err := runDevnetPhase(ctx, dn, dir, dmix, *seed, stderr)
		if err != nil {
			return err
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(struct {
				Devnet devnetBenchReport `json:"devnet"`
			}{rep}); err != nil {
				return err
			}
		} else if err := printDevnetReport(stdout, rep); err != nil {
			return err
		}
		return devnetFailure(rep)
	}
	peerPath := *peer
	if _, err := os.Stat(peerPath); err != nil {
		fmt.Fprintf(stderr, "bench verify: no llama.cpp peer at %s (build it with scripts/build-peer.sh); skipping it\n", peerPath)
		peerPath = ""
	} else if abs, err := filepath.Abs(peerPath); err == nil {
		peerPath = abs
	}
	lab, err := cheat.OpenLab(cheat.LabConfig{
		Dir:   dir,
		Names: []string{"mycel-ref", "mycel-ref-q8", "mycel-ref-q4km", "mycel-sub"},
		Bands: verifier.DefaultBands(),
	})
	if err != nil {
		return fmt.Errorf("bench verify: %w", err)
	}
	defer lab.Close()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lab.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	rep, err := cheat.Bench(ctx, lab, cheat.BenchConfig{
		Mix:          mix,
		Reveal:       *reveal,
		Honest:       []string{"mycel-ref", "mycel-ref-q8", "mycel-ref-q4km"},
		Registered:   "mycel-ref",
		Substitute:   "mycel-sub",
		Quantised:    "mycel-ref-q4km",
		HonestN:      *honest,
		CheatN:       *cheats,
		TimingN:      *timing,
		AuditP:       p,
		MaxCheats:    *maxCheats,
		Trials:       *trials,
		Workers:      *workers,
		Seed:         *seed,
		Peer:         peerPath,
		PeerPrompts:  *peerPrompts,
		PeerMaxToken: 32,
		Progress:     func(s string) { fmt.Fprintln(stderr, s) },
	})
	if err != nil {
		return fmt.Errorf("bench verify: %w", err)
	}
	eq := equilibrium(params, p, rep)
	var dev *devnetBenchReport
	if *dn.on {
		d, err := runDevnetPhase(ctx, dn, dir, dmix, *seed, stderr)
		if err != nil {
			return err
		}
		dev = &d
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			cheat.BenchReport
			Equilibrium equilibriumCheck   `json:"equilibrium"`
			Devnet      *devnetBenchReport `json:"devnet,omitempty"`
		}{rep, eq, dev}); err != nil {
			return err
		}
	} else {
		err := printVerifyReport(stdout, rep, eq)
		if dev != nil {
			fmt.Fprintln(stdout)
			if perr := printDevnetReport(stdout, *dev); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
	}
	if !eq.Holds {
		return errors.New("bench verify: equilibrium does not hold")
	}
	if dev != nil {
		return devnetFailure(*dev)
	}
	return nil
}

// equilibriumCheck is the spot-check game p >= C/(R+S) for one request.
type equilibriumCheck struct {
	AuditP      float64 `json:"audit_p"`
	MinDetect   float64 `json:"min_detect_per_audit"` // worst strategy, builtin profile
	EffectiveP  float64 `json:"effective_p"`          // AuditP * MinDetect
	RewardR     float64 `json:"reward_r_umyc"`        // price of the request
	SavedC      float64 `json:"saved_c_umyc"`         // at most the whole price
	SlashS      float64 `json:"slash_s_umyc"`         // slash fraction of the minimum stake
	RequiredP   float64 `json:"required_p"`           // C/(R+S)
	Holds       bool    `json:"holds"`
	Description string  `json:"description"`
}

func equilibrium(params ledger.Params, p float64, rep cheat.BenchReport) equilibriumCheck {
	// A 64+64-token request at 2 myc per million tokens each way.
	const pricePerMTok, tokens = 2_000_000, 128
	r := float64(pricePerMTok) * tokens / 1e6
	s := float64(params.MinProviderStake) * float64(params.SlashFractionBps) / 10000
	minD := 1.0
	for _, st := range rep.Strategies {
		// A strategy that never cheated (a spotter that took every request
		// for an audit) is honest: it does not bound the game.
		if st.Profile == verifier.ProfileBuiltin && st.Pool > 0 && st.Detect < minD {
			minD = st.Detect
		}
	}
	e := equilibriumCheck{AuditP: p, MinDetect: minD, EffectiveP: p * minD, RewardR: r, SavedC: r, SlashS: s}
	e.RequiredP = e.SavedC / (e.RewardR + e.SlashS)
	e.Holds = e.EffectiveP >= e.RequiredP
	e.Description = "C = the whole price (a cheater cannot save more than it is paid); S = slash_fraction x min_provider_stake"
	return e
}

func printVerifyReport(w io.Writer, rep cheat.BenchReport, eq equilibriumCheck) error {
	c := rep.Config
	fmt.Fprintf(w, "audit probability p = %.3g (ledger floor), %d honest requests, %d audited cheats per strategy, %d Monte Carlo runs, seeded share %.2f, logprobs share %.2f, reveal %v\n\n",
		c.AuditP, c.HonestN, c.CheatN, c.Trials, c.Mix.SeedShare, c.Mix.LogprobsShare, c.Reveal)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HONEST (mycel engine)\tANSWERS\tFLAGGED\tTALLY REJECTS\tCLOSEST MARGINS (ln)")
	for _, h := range rep.Honest {
		var ms []string
		for _, k := range []string{"likelihood_pit", "rank_topk", "finish_stop"} {
			if v, ok := h.Margins[k]; ok {
				ms = append(ms, fmt.Sprintf("%s %+.1f", k, v))
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d %v\t%d\t%s\n", h.Profile, h.Answers, h.Flagged, h.ByCheck, h.TallyRej, strings.Join(ms, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(rep.Peer) == 0 {
		fmt.Fprintln(w, "llama.cpp peer: not run (no bin/llamapeer)")
	} else {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HONEST llama.cpp (peer)\tWEIGHTS\tANSWERS\tFLAGGED\tMAX |dlogprob|\tBAND\tERROR")
		for _, p := range rep.Peer {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.3g\t%.3g\t%s\n", p.Model, p.WeightType, p.Answers, p.Flagged, p.MaxAbsDiff, p.Tolerance, p.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	marks := []int{}
	if len(rep.Strategies) > 0 {
		marks = cheat.SortedMarks(rep.Strategies[0].PCaught)
	}
	hdr := "STRATEGY\tPROFILE\tDETECT/AUDIT"
	for _, m := range marks {
		hdr += fmt.Sprintf("\tP(<=%d)", m)
	}
	fmt.Fprintln(tw, hdr+"\tMEAN CHEATS TO CATCH\tFAILED CHECKS\tVERDICTS")
	for _, s := range rep.Strategies {
		if s.Pool == 0 {
			fmt.Fprintf(tw, "%s\t%s\tnever cheated (every request looked like an audit)\n", s.Strategy, s.Profile)
			continue
		}
		line := fmt.Sprintf("%s\t%s\t%.3f", s.Strategy, s.Profile, s.Detect)
		for _, m := range marks {
			line += fmt.Sprintf("\t%.4f", s.PCaught[m])
		}
		extra := ""
		if s.Strategy == cheat.Spotter {
			extra = fmt.Sprintf(" (cheats on %.0f%% of requests)", 100*s.SpotterCheatShare)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%v%s\t%v\n", line, s.MeanCheats, s.ByCheck, extra, s.Verdicts)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntime to slash: mean cheats to catch / the provider's request rate, plus the evidence vote window (%d blocks)\n", evidenceVoteBlocks)
	fmt.Fprintf(w, "verification compute: re-check %.2fs vs serve %.2fs over %d requests (ratio %.3f) -> %.2f%% of served compute at p=%.3g (shopper requests themselves: %.1f%% of traffic)\n",
		rep.RecheckSeconds, rep.ServeSeconds, c.TimingN, rep.RecheckRatio, rep.OverheadPct, c.AuditP, rep.ShopperPct)
	fmt.Fprintf(w, "equilibrium p*d >= C/(R+S): %.4g*%.3f = %.4g >= %.0f/(%.0f+%.0f) = %.3g: %v (%s)\n",
		eq.AuditP, eq.MinDetect, eq.EffectiveP, eq.SavedC, eq.RewardR, eq.SlashS, eq.RequiredP, eq.Holds, eq.Description)
	fmt.Fprintf(w, "elapsed %.0fs\n", rep.Elapsed)
	return nil
}
