package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/mycel-network/mycel/internal/router"
)

// simProvider is one provider of the simulated fleet, with its true (hidden) behaviour.
type simProvider struct {
	Name         string  `json:"name"`
	PriceIn      uint64  `json:"price_in_per_mtok"`
	PriceOut     uint64  `json:"price_out_per_mtok"`
	TTFTMs       float64 `json:"ttft_median_ms"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	FailRate     float64 `json:"fail_rate"`  // fails before the first token
	BreakRate    float64 `json:"break_rate"` // stream breaks midway
	TailRate     float64 `json:"tail_rate"`  // first token 10× late
}

// simDraw is one request's realised behaviour on one provider (common random numbers: every
// strategy sees the same world).
type simDraw struct {
	ttft   float64 // ms
	fail   bool
	breakK float64 // fraction of the answer delivered before a break; 0 = no break
}

type simRequest struct {
	in, out int
	draws   []simDraw
}

type routingRow struct {
	Strategy     string  `json:"strategy"`
	Hedging      bool    `json:"hedging"`
	CostPerMTok  float64 `json:"cost_per_mtok_umyc"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	TTFTP50Ms    float64 `json:"ttft_p50_ms"`
	TTFTP99Ms    float64 `json:"ttft_p99_ms"`
	ExtraTokens  float64 `json:"extra_tokens_fraction"` // tokens processed by cancelled hedges
	Failovers    int     `json:"failovers"`
	Retries      int     `json:"retries"`
	HindsightOpt float64 `json:"hindsight_cost_per_mtok_at_same_p99"`
}

func makeFleet(rng *rand.Rand, n int) []simProvider {
	fleet := make([]simProvider, n)
	for i := range fleet {
		// Cheaper providers tend to be slower, flakier and with worse tails; with noise.
		q := float64(i) / float64(n-1) // 0 = cheapest tier … 1 = premium
		out := uint64(100 + 1900*q*(0.7+0.6*rng.Float64()))
		fleet[i] = simProvider{
			Name:         fmt.Sprintf("p%02d", i),
			PriceIn:      out / 2,
			PriceOut:     out,
			TTFTMs:       (600 - 450*q) * (0.6 + 0.8*rng.Float64()),
			TokensPerSec: (20 + 100*q) * (0.6 + 0.8*rng.Float64()),
			FailRate:     0.12 * (1 - q) * rng.Float64(),
			BreakRate:    0.06 * (1 - q) * rng.Float64(),
			TailRate:     0.01 + 0.08*(1-q)*rng.Float64(),
		}
	}
	return fleet
}

func makeWorkload(rng *rand.Rand, fleet []simProvider, n int) []simRequest {
	reqs := make([]simRequest, n)
	for i := range reqs {
		r := simRequest{in: 100 + rng.IntN(900), out: 50 + rng.IntN(250), draws: make([]simDraw, len(fleet))}
		for j, p := range fleet {
			d := simDraw{ttft: p.TTFTMs * math.Exp(0.25*rng.NormFloat64())}
			if rng.Float64() < p.TailRate {
				d.ttft *= 10
			}
			d.fail = rng.Float64() < p.FailRate
			if rng.Float64() < p.BreakRate {
				d.breakK = 0.1 + 0.8*rng.Float64()
			}
			r.draws[j] = d
		}
		reqs[i] = r
	}
	return reqs
}

const simFailDetectMs = 50 // an error answer arrives this long after the request

// simOutcome is what happened to one request.
type simOutcome struct {
	latency            float64 // ms until the last token
	ttft               float64 // ms until the first token
	cost               float64 // umyc paid
	tokens             int     // tokens the client got (in + out)
	extra              int     // tokens processed by cancelled hedges
	failovers, retries int
}

// chooser returns providers in order of preference for request i.
type chooser func(i int, r simRequest) []int

func simulate(fleet []simProvider, reqs []simRequest, choose chooser, stats *router.Stats, hedge bool) []simOutcome {
	out := make([]simOutcome, len(reqs))
	now := time.Unix(0, 0)
	for i, r := range reqs {
		now = now.Add(50 * time.Millisecond)
		order := choose(i, r)
		var o simOutcome
		t := 0.0       // ms since the request arrived
		delivered := 0 // output tokens the client has
		next := 0
		for delivered < r.out && next < len(order) {
			pi := order[next]
			next++
			p, d := fleet[pi], r.draws[pi]
			in := r.in + delivered
			stats.Start(p.Name)
			if d.fail {
				t += simFailDetectMs
				o.retries++
				stats.Done(p.Name, router.Outcome{OK: false}, now)
				continue
			}
			ttft := d.ttft
			// Hedge: when the first token is later than p95, start the next provider.
			if p95 := float64(stats.P95TTFT(p.Name)) / float64(time.Millisecond); hedge && p95 > 0 && ttft > p95 && next < len(order) {
				hi := order[next]
				h, hd := fleet[hi], r.draws[hi]
				if !hd.fail && p95+hd.ttft < ttft {
					// The hedge wins: the primary is cancelled after processing the prompt
					// (as in the gateway, a cancelled loser records no outcome).
					stats.Cancel(p.Name)
					stats.ObserveTTFT(p.Name, time.Duration((p95+hd.ttft)*float64(time.Millisecond)))
					stats.Start(h.Name)
					o.extra += in
					o.cost += float64(in) * float64(p.PriceIn) / 1e6
					next++
					p, d, pi, ttft = h, hd, hi, p95+hd.ttft
				} else {
					o.extra += in // the hedge lost and is cancelled after its prompt
					o.cost += float64(in) * float64(h.PriceIn) / 1e6
				}
			}
			_ = pi
			want := r.out - delivered
			got := want
			if d.breakK > 0 {
				got = int(float64(want) * d.breakK)
			}
			decode := float64(got) / p.TokensPerSec * 1000
			if delivered == 0 {
				o.ttft = t + ttft
			}
			t += ttft + decode
			o.cost += (float64(in)*float64(p.PriceIn) + float64(got)*float64(p.PriceOut)) / 1e6
			delivered += got
			ok := got == want
			stats.Done(p.Name, router.Outcome{OK: ok, TTFT: time.Duration(ttft * float64(time.Millisecond)), TokensOut: got,
				Decode: time.Duration(decode * float64(time.Millisecond))}, now)
			if !ok {
				o.failovers++
			}
		}
		o.latency = t
		o.tokens = r.in + delivered
		out[i] = o
	}
	return out
}

func summarise(name string, hedge bool, os []simOutcome) routingRow {
	var cost float64
	var tokens, extra int
	lat := make([]float64, len(os))
	ttft := make([]float64, len(os))
	row := routingRow{Strategy: name, Hedging: hedge}
	for i, o := range os {
		cost += o.cost
		tokens += o.tokens
		extra += o.extra
		lat[i] = o.latency
		ttft[i] = o.ttft
		row.Failovers += o.failovers
		row.Retries += o.retries
	}
	slices.Sort(lat)
	slices.Sort(ttft)
	row.TTFTP50Ms = ttft[len(ttft)/2]
	row.TTFTP99Ms = ttft[(len(ttft)*99+99)/100-1]
	row.CostPerMTok = cost / float64(tokens) * 1e6
	row.P50Ms = lat[len(lat)/2]
	row.P99Ms = lat[(len(lat)*99+99)/100-1]
	row.ExtraTokens = float64(extra) / float64(tokens)
	return row
}

func benchRouting(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench routing", stderr)
	nProv := fs.Int("providers", 24, "providers in the simulated fleet (at least 20)")
	nReq := fs.Int("requests", 20000, "requests per strategy")
	seed := fs.Uint64("seed", 1, "random seed of the fleet and the workload")
	output := fs.String("output", "text", "text or json")
	proven := fs.Bool("proven", false, "give every provider a capacity proof equal to its true decode speed (the router then bounds each one's share of the traffic by it, docs/ROUTING.md)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *nProv < 20 {
		return fmt.Errorf("bench routing: --providers %d: want at least 20", *nProv)
	}
	rng := rand.New(rand.NewPCG(*seed, 42))
	fleet := makeFleet(rng, *nProv)
	reqs := makeWorkload(rng, fleet, *nReq)
	cands := func(stats *router.Stats, now time.Time) []router.Candidate {
		cs := make([]router.Candidate, len(fleet))
		for i, p := range fleet {
			cs[i] = router.Candidate{Provider: p.Name, PriceInPerMTok: p.PriceIn, PriceOutPerMTok: p.PriceOut, Stake: 1000}
			if *proven {
				cs[i].ProvenTPS = p.TokensPerSec
			}
			stats.Fill(&cs[i], now)
			cs[i].CircuitOpen = false // the simulation has no wall clock for breakers to cool down on
		}
		return cs
	}
	index := map[string]int{}
	for i, p := range fleet {
		index[p.Name] = i
	}
	var rows []routingRow
	for _, hedge := range []bool{false, true} {
		strategies := []struct {
			name string
			mk   func(*router.Stats) chooser
		}{
			{"random", func(*router.Stats) chooser {
				r := rand.New(rand.NewPCG(*seed, 7))
				return func(int, simRequest) []int { return r.Perm(len(fleet)) }
			}},
			{"round-robin", func(*router.Stats) chooser {
				return func(i int, _ simRequest) []int {
					o := make([]int, len(fleet))
					for k := range o {
						o[k] = (i + k) % len(fleet)
					}
					return o
				}
			}},
		}
		for _, name := range []string{router.NameCheapest, router.NameFastest, router.NameBalanced} {
			pol, _ := router.ByName(name)
			strategies = append(strategies, struct {
				name string
				mk   func(*router.Stats) chooser
			}{name, func(stats *router.Stats) chooser {
				shares := router.NewShares(0)
				return func(i int, r simRequest) []int {
					cs := cands(stats, time.Unix(0, 0))
					for k := range cs {
						shares.Fill("m", &cs[k])
					}
					ranked, _ := router.Select(pol, cs, router.Request{TokensIn: r.in, TokensOut: 175})
					if len(ranked) > 0 {
						shares.Add("m", ranked[0].Provider, 175) // as the gateway does, the first choice
					}
					o := make([]int, len(ranked))
					for k, c := range ranked {
						o[k] = index[c.Provider]
					}
					return o
				}
			}})
		}
		for _, s := range strategies {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			stats := router.NewStats(router.StatsConfig{})
			rows = append(rows, summarise(s.name, hedge, simulate(fleet, reqs, s.mk(stats), stats, hedge)))
		}
	}
	// Hindsight: every request to one fixed provider, knowing the world; failures and breaks
	// fall over to the provider that is cheapest among those that never fail in this world.
	var single []routingRow
	for i := range fleet {
		order := []int{i}
		rest := make([]int, 0, len(fleet))
		for j := range fleet {
			if j != i {
				rest = append(rest, j)
			}
		}
		slices.SortFunc(rest, func(a, b int) int { return int(fleet[a].PriceOut) - int(fleet[b].PriceOut) })
		order = append(order, rest...)
		stats := router.NewStats(router.StatsConfig{})
		single = append(single, summarise(fleet[i].Name, false, simulate(fleet, reqs, func(int, simRequest) []int { return order }, stats, false)))
	}
	for i := range rows {
		best := math.Inf(1)
		for _, s := range single {
			if s.P99Ms <= rows[i].P99Ms && s.CostPerMTok < best {
				best = s.CostPerMTok
			}
		}
		rows[i].HindsightOpt = best
	}
	if *output == "json" {
		return writeJSON(stdout, struct {
			Benchmark string        `json:"benchmark"`
			Seed      uint64        `json:"seed"`
			Proven    bool          `json:"proven"`
			Requests  int           `json:"requests"`
			Fleet     []simProvider `json:"fleet"`
			Rows      []routingRow  `json:"rows"`
		}{"routing", *seed, *proven, *nReq, fleet, rows})
	}
	proof := ""
	if *proven {
		proof = ", every provider proven at its decode speed"
	}
	fmt.Fprintf(stdout, "routing quality: %d simulated providers, %d requests per strategy, seed %d%s\n\n", len(fleet), *nReq, *seed, proof)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\thedging\tumyc/1M tok\tp50 ms\tp99 ms\tTTFT p50\tTTFT p99\textra tokens\tretries\tfailovers\thindsight umyc/1M at ≤ p99\tvs hindsight\t")
	for _, r := range rows {
		vs := "n/a"
		if !math.IsInf(r.HindsightOpt, 1) {
			vs = fmt.Sprintf("%+.1f%%", (r.CostPerMTok/r.HindsightOpt-1)*100)
		}
		fmt.Fprintf(tw, "%s\t%v\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f%%\t%d\t%d\t%.1f\t%s\t\n", r.Strategy, r.Hedging, r.CostPerMTok, r.P50Ms, r.P99Ms, r.TTFTP50Ms, r.TTFTP99Ms, r.ExtraTokens*100, r.Retries, r.Failovers, r.HindsightOpt, vs)
	}
	return tw.Flush()
}
