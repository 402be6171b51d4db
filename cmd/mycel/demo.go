package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/tx"
)

// cmdDemo runs `mycel demo`: the network's story on a fresh devnet, with
// every figure read back from the ledger and the gateway.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	home := fs.String("home", "", "devnet directory (default: a fresh temporary one, removed afterwards)")
	cheater := fs.String("cheater", "substitute", "how the cheating provider cheats: substitute|quantised|truncate|inflate|spotter")
	wait := fs.Duration("step-timeout", 3*time.Minute, "longest wait for the ledger in one step")
	logLevel := fs.String("log-level", "error", "log level of the daemons: debug|info|warn|error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("demo", pos); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	dir := *home
	if dir == "" {
		if dir, err = os.MkdirTemp("", "mycel-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	d, err := devnet.New(devnet.Config{
		Dir: dir, Logger: logger,
		// Short epochs and vote windows, so the story takes minutes, not hours.
		Genesis: func(g *ledger.Genesis) error {
			g.Params.EpochLength = 40
			g.Params.EvidenceVoteBlocks = 10
			return nil
		},
		Tune: func(c *cmtcfg.Config) { c.Consensus.TimeoutCommit = 300 * time.Millisecond },
	})
	if err != nil {
		return err
	}
	// The chain outlives the daemons: providers redeem vouchers as they stop.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	chainCtx, stopChain := context.WithCancel(context.WithoutCancel(ctx))
	chainDone := make(chan error, 1)
	go func() {
		chainDone <- d.Run(chainCtx)
		cancel()
	}()
	defer func() { stopChain(); <-chainDone }()
	if err := d.WaitHeight(runCtx, 0, 1); err != nil {
		return fmt.Errorf("demo: chain did not start: %w", err)
	}
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("Mycel demo: a fresh devnet in %s", dir)
	fl, err := fleet.New(runCtx, fleet.Config{Devnet: d, GatewayAddr: "127.0.0.1:0", Cheater: *cheater, Logger: logger,
		Progress: func(msg string) { say("  · %s", msg) }})
	if err != nil {
		return err
	}
	fleetDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { fleetDone <- fl.Run(runCtx, func() { close(ready) }) }()
	defer func() { cancel(); <-fleetDone }()
	select {
	case <-ready:
	case err := <-fleetDone:
		return fmt.Errorf("demo: %w", err)
	}
	client, err := d.Client(0)
	if err != nil {
		return err
	}
	s := &story{ctx: runCtx, out: stdout, fl: fl, d: d, client: client, wait: *wait, names: map[string]string{}}
	for addr, name := range fl.Names() {
		s.names[addr] = name
	}
	cheaterAddr := ""
	for _, p := range fl.Providers() {
		if p.Cheat != "" {
			cheaterAddr = p.Address
		}
	}
	say("\nGateway %s/v1, explorer %s\n", fl.GatewayURL(), fl.ExplorerURL())
	steps := []struct {
		title string
		run   func() error
	}{
		{"1. Traffic through the OpenAI API", func() error { return s.traffic(8) }},
		{"2. A provider substitutes a cheaper model", func() error { return s.cheating(cheaterAddr, *cheater) }},
		{"3. The verifier catches it", func() error { return s.caught(cheaterAddr) }},
		{"4. The ledger slashes and jails it", func() error { return s.slashed(cheaterAddr) }},
		{"5. The router stops using it", func() error { return s.avoided(cheaterAddr) }},
		{"6. The epoch pays the honest providers and the verifiers", s.rewards},
		{"7. A provider killed mid-stream; another completes the answer", s.failover},
	}
	failed := 0
	for _, st := range steps {
		say("\n== %s", st.title)
		if err := st.run(); err != nil {
			failed++
			say("   ✗ %v", err)
		}
		if runCtx.Err() != nil {
			return runCtx.Err()
		}
	}
	if failed > 0 {
		return fmt.Errorf("demo: %d of %d steps did not happen as the story says", failed, len(steps))
	}
	say("\nAll %d steps happened; figures above are read from the ledger and the gateway.", len(steps))
	return nil
}

// story holds what the demo steps share.
type story struct {
	ctx    context.Context
	out    io.Writer
	fl     *fleet.Fleet
	d      *devnet.Devnet
	client *chainclient.Client
	wait   time.Duration
	names  map[string]string
	served map[string]int // provider address → requests in step 1
}

func (s *story) say(format string, a ...any) { fmt.Fprintf(s.out, "   "+format+"\n", a...) }

func (s *story) name(addr string) string {
	if n, ok := s.names[addr]; ok {
		return n
	}
	return addr
}

// chat sends one non-streaming chat completion through the gateway and
// returns the serving provider(s) and the completion tokens.
func (s *story) chat(prompt string, maxTokens int) (string, int, error) {
	body, _ := json.Marshal(map[string]any{"model": fleet.ServedModel, "max_tokens": maxTokens,
		"messages": []map[string]string{{"role": "user", "content": prompt}}})
	req, err := http.NewRequestWithContext(s.ctx, "POST", s.fl.GatewayURL()+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.fl.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", 0, fmt.Errorf("gateway answered %s: %.300s", resp.Status, raw)
	}
	var cc struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(raw, &cc); err != nil {
		return "", 0, fmt.Errorf("decode completion: %w", err)
	}
	return resp.Header.Get("X-Mycel-Provider"), cc.Usage.CompletionTokens, nil
}

var demoPrompts = []string{
	"Explain what a payment channel is.", "Write a haiku about mushrooms.", "What does a verifier do?",
	"List three open models.", "Summarise the Go memory model.", "Why are receipts signed?",
	"What is an epoch?", "Say hello in French.",
}

func (s *story) traffic(n int) error {
	s.served = map[string]int{}
	tokens := 0
	for i := range n {
		prov, toks, err := s.chat(demoPrompts[i%len(demoPrompts)], 24)
		if err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		s.served[prov]++
		tokens += toks
	}
	t := s.fl.Traffic()
	s.say("sent %d chat completions (%d completion tokens); the gateway counts %d requests, %d errors, %s owed to providers",
		n, tokens, t.Requests, t.Errors, tx.FormatAmount(t.SpendUmyc))
	for _, addr := range sortedKeys(s.served) {
		s.say("  %-10s served %d", s.name(addr), s.served[addr])
	}
	var chans []ledger.Channel
	gw, _ := s.d.Key("gateway")
	if err := s.client.Query(s.ctx, "channels", []byte(gw.Address), &chans); err != nil {
		return err
	}
	var deposit uint64
	for _, c := range chans {
		deposit += c.Deposit
	}
	s.say("ledger: the gateway holds %d payment channels with %s deposited", len(chans), tx.FormatAmount(deposit))
	if t.Requests < uint64(n) {
		return fmt.Errorf("the gateway counted %d requests, want %d", t.Requests, n)
	}
	return nil
}

func (s *story) cheating(addr, how string) error {
	var pv ledger.ProviderView
	if err := s.client.Query(s.ctx, "provider/"+addr, nil, &pv); err != nil {
		return err
	}
	var model ledger.Model
	if err := s.client.Query(s.ctx, "model/"+fleet.ServedModel, nil, &model); err != nil {
		return err
	}
	s.say("%s is registered serving %s (sha256 %.12s…) with stake %s, but its engine cheats: %s",
		s.name(addr), fleet.ServedModel, model.SHA256, tx.FormatAmount(pv.Stake), how)
	s.say("it served %d of the requests in step 1", s.served[addr])
	return nil
}

// poll calls f until it reports done or the step times out.
func (s *story) poll(what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.wait)
	defer cancel()
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %s", what, s.wait)
		case <-t.C:
		}
	}
}

func (s *story) caught(addr string) error {
	var ev ledger.Evidence
	err := s.poll("evidence against the cheater", func() (bool, error) {
		var evs []ledger.Evidence
		if err := s.client.Query(s.ctx, "evidence", nil, &evs); err != nil {
			return false, err
		}
		for _, e := range evs {
			if e.Provider == addr {
				ev = e
				return true, nil
			}
		}
		return false, nil
	})
	s.reportEvidence()
	if err != nil {
		return err
	}
	s.say("evidence %d against %s filed by %s at height %d: verdict %s, %d of %d positions mismatched",
		ev.ID, s.name(ev.Provider), s.name(ev.Submitter), ev.Height, ev.Summary.Verdict, ev.Summary.Mismatches, ev.Summary.PositionsChecked)
	return nil
}

// reportEvidence lists every evidence record, so false accusations show too.
func (s *story) reportEvidence() {
	var evs []ledger.Evidence
	if err := s.client.Query(s.ctx, "evidence", nil, &evs); err != nil {
		s.say("evidence: %v", err)
		return
	}
	s.say("ledger: %d evidence records", len(evs))
	for _, e := range evs {
		s.say("  #%d %-10s verdict %-16s status %-8s claimed %d tokens, expected %d", e.ID, s.name(e.Provider), e.Summary.Verdict, e.Status, e.Summary.ClaimedTokens, e.Summary.ExpectedTokens)
	}
}

func (s *story) slashed(addr string) error {
	var rec ledger.SlashRecord
	err := s.poll("a slash of the cheater", func() (bool, error) {
		var ss []ledger.SlashRecord
		if err := s.client.Query(s.ctx, "slashes", nil, &ss); err != nil {
			return false, err
		}
		for _, r := range ss {
			if r.Address == addr {
				rec = r
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	var pv ledger.ProviderView
	if err := s.client.Query(s.ctx, "provider/"+addr, nil, &pv); err != nil {
		return err
	}
	s.say("slashed %s at height %d (%s); %s went to the reporters", tx.FormatAmount(rec.Amount), rec.Height, rec.Reason, tx.FormatAmount(rec.Rewarded))
	s.say("%s: stake now %s, jailed %v (until epoch %d), active %v", s.name(addr), tx.FormatAmount(pv.Stake), pv.Jailed, pv.JailedUntilEpoch, pv.Active)
	if !pv.Jailed {
		return errors.New("the cheater is not jailed")
	}
	return nil
}

func (s *story) avoided(addr string) error {
	// The gateway re-reads the provider list periodically; give it one refresh.
	time.Sleep(6 * time.Second)
	after := map[string]int{}
	for i := range 6 {
		prov, _, err := s.chat(demoPrompts[i%len(demoPrompts)], 16)
		if err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		for _, p := range strings.Split(prov, ",") {
			after[p]++
		}
	}
	for _, a := range sortedKeys(after) {
		s.say("  %-10s served %d", s.name(a), after[a])
	}
	if after[addr] > 0 {
		return fmt.Errorf("the router still sent %d requests to %s", after[addr], s.name(addr))
	}
	s.say("none of 6 new requests went to %s", s.name(addr))
	return nil
}

func (s *story) rewards() error {
	// An epoch's weights are committed during it and revealed in the next,
	// so its reward record appears one boundary later: wait for a new one.
	have := func() (ledger.RewardRecord, bool, error) {
		var ep ledger.EpochView
		if err := s.client.Query(s.ctx, "epoch", nil, &ep); err != nil {
			return ledger.RewardRecord{}, false, err
		}
		for e := int64(ep.Number); e >= 0; e-- {
			var rec ledger.RewardRecord
			err := s.client.Query(s.ctx, fmt.Sprintf("rewards/%d", e), nil, &rec)
			if errors.Is(err, ledger.ErrNotFound) {
				continue
			}
			return rec, err == nil, err
		}
		return ledger.RewardRecord{}, false, nil
	}
	old, hadOld, err := have()
	if err != nil {
		return err
	}
	var rec ledger.RewardRecord
	err = s.poll("a reward record", func() (bool, error) {
		r, ok, err := have()
		if err != nil || !ok || (hadOld && r.Epoch == old.Epoch) {
			return false, err
		}
		rec = r
		return true, nil
	})
	if err != nil {
		var ep ledger.EpochView
		if qerr := s.client.Query(s.ctx, "epoch", nil, &ep); qerr == nil {
			s.say("ledger: now epoch %d at height %d; reward pool %s", ep.Number, ep.Height, tx.FormatAmount(ep.RewardPool))
		}
		return err
	}
	s.say("epoch %d (paid at height %d): pool %s, %s to providers, %s to verifiers, %s carried", rec.Epoch, rec.Height, tx.FormatAmount(rec.Pool),
		tx.FormatAmount(rec.ToProviders), tx.FormatAmount(rec.ToVerifiers), tx.FormatAmount(rec.Carried))
	for _, p := range rec.Providers {
		s.say("  provider %-10s %s", s.name(p.Provider), tx.FormatAmount(p.Amount))
	}
	for _, v := range rec.Verifiers {
		s.say("  verifier %-10s %s", s.name(v.Verifier), tx.FormatAmount(v.Amount))
	}
	return nil
}

func (s *story) failover() error {
	before := s.fl.Traffic()
	// Greedy, so the answer is the same every run: this prompt's answer on
	// the demo model runs far past the kill (internal/devnet/fleet's
	// TestKilledMidStream holds it to the uninterrupted text).
	body, _ := json.Marshal(map[string]any{"model": fleet.ServedModel, "max_tokens": 400, "temperature": 0, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": "Tell a long story"}}})
	req, err := http.NewRequestWithContext(s.ctx, "POST", s.fl.GatewayURL()+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+s.fl.APIKey())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("gateway answered %s: %.300s", resp.Status, raw)
	}
	first := resp.Header.Get("X-Mycel-Provider")
	r := openai.NewSSEReader(resp.Body)
	chunks, killedAt := 0, 0
	var finish string
	for {
		data, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("stream broke after %d chunks: %w", chunks, err)
		}
		var c struct {
			Choices []struct {
				Delta        struct{ Content string } `json:"delta"`
				FinishReason *string                  `json:"finish_reason"`
			} `json:"choices"`
		}
		if json.Unmarshal(data, &c) != nil || len(c.Choices) == 0 {
			continue
		}
		if c.Choices[0].Delta.Content != "" {
			chunks++
		}
		if c.Choices[0].FinishReason != nil {
			finish = *c.Choices[0].FinishReason
		}
		if chunks == 4 && killedAt == 0 {
			killedAt = chunks
			if err := s.fl.KillProvider(first); err != nil {
				return err
			}
			s.say("killed %s after %d streamed chunks", s.name(first), chunks)
		}
	}
	after := s.fl.Traffic()
	s.say("the client received %d content chunks and finish_reason %q", chunks, finish)
	s.say("gateway: failovers %d → %d", before.Failovers, after.Failovers)
	if killedAt == 0 {
		return fmt.Errorf("the answer ended after %d chunks, before the kill", chunks)
	}
	if after.Failovers <= before.Failovers || finish == "" {
		return errors.New("the gateway did not complete the answer on another provider")
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
