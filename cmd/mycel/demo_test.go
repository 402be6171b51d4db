package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/tx"
)

// TestDemo runs `mycel demo` in-process and checks that every step of the
// story happened, with the figures the ledger and the gateway reported:
// the cheater served traffic, evidence against it was filed and the slash
// that followed names that evidence, it was jailed and got no more
// requests, an epoch paid honest providers and verifiers but not it, and
// a killed provider's answer was completed by another.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole network for about a minute; skipped with -short")
	}
	if raceEnabled {
		t.Skip("model generation and the engine take minutes under -race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	start := time.Now()
	rep, err := runDemo(ctx, demoConfig{Home: t.TempDir(), Cheater: "substitute", StepTimeout: 2 * time.Minute}, &out)
	t.Logf("demo took %s; its report:\n%s", time.Since(start).Round(time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("demo: %v", err)
	}
	if len(rep.Steps) != 7 {
		t.Fatalf("%d steps ran, want 7", len(rep.Steps))
	}
	for _, st := range rep.Steps {
		if st.Err != nil {
			t.Errorf("step %q: %v", st.Title, st.Err)
		}
		if !strings.Contains(out.String(), "== "+st.Title) {
			t.Errorf("the report has no heading for step %q", st.Title)
		}
	}
	ch := rep.Cheater
	if ch == "" {
		t.Fatal("no cheater")
	}
	// 1–2: the gateway counted the requests, some went to the cheater.
	var attempts uint64
	for _, n := range rep.Served {
		attempts += n
	}
	if rep.GatewayRequests != rep.Sent || attempts < rep.Sent || rep.Served[ch] == 0 {
		t.Errorf("step 1: sent %d, gateway counted %d requests, attempts %v; want all counted and some on the cheater %s",
			rep.Sent, rep.GatewayRequests, rep.Served, ch)
	}
	// 3–4: evidence, and a slash naming it.
	if rep.Evidence.Provider != ch || rep.Evidence.Summary.Verdict == "" || rep.Evidence.Submitter == "" {
		t.Errorf("step 3: evidence %+v, want one against the cheater with a verdict", rep.Evidence)
	}
	if rep.Slash.Address != ch || rep.Slash.Amount == 0 || !strings.HasPrefix(rep.Slash.Reason, "evidence ") {
		t.Errorf("step 4: slash %+v, want the cheater slashed for evidence", rep.Slash)
	}
	if !rep.CheaterAfter.Jailed || rep.CheaterAfter.Active || rep.CheaterAfter.Stake >= rep.CheaterBefore.Stake {
		t.Errorf("step 4: cheater before %+v after %+v slash %d: want jailed, inactive, stake reduced by the slash",
			rep.CheaterBefore.Provider, rep.CheaterAfter.Provider, rep.Slash.Amount)
	}
	for _, fig := range []string{fmt.Sprintf("evidence #%d", rep.Evidence.ID), tx.FormatAmount(rep.Slash.Amount), rep.Slash.Reason} {
		if !strings.Contains(out.String(), fig) {
			t.Errorf("the report does not state %q", fig)
		}
	}
	// 5: no more requests to it.
	var after uint64
	for _, n := range rep.After {
		after += n
	}
	if after == 0 || rep.After[ch] != 0 {
		t.Errorf("step 5: attempts after the slash %v, want some, none on the cheater", rep.After)
	}
	// 6: the epoch paid honest providers and verifiers, not the cheater.
	var honest, verifiers uint64
	for _, p := range rep.Reward.Providers {
		if p.Provider == ch && p.Amount > 0 {
			t.Errorf("step 6: the cheater was paid %d", p.Amount)
		}
		if p.Provider != ch {
			honest += p.Amount
		}
	}
	for _, v := range rep.Reward.Verifiers {
		verifiers += v.Amount
	}
	if honest == 0 || verifiers == 0 || honest+verifiers != rep.Reward.ToProviders+rep.Reward.ToVerifiers {
		t.Errorf("step 6: reward %+v: want honest providers and verifiers paid what the record totals", rep.Reward)
	}
	// 7: another provider finished the killed one's answer.
	fo := rep.Failover
	if fo.Killed == "" || fo.Finisher == "" || fo.Finisher == fo.Killed || fo.Failovers == 0 || fo.FinisherTokens == 0 || fo.FinishReason == "" {
		t.Errorf("step 7: failover %+v, want another provider to finish the answer", fo)
	}
	if !strings.Contains(out.String(), "All 7 steps happened") {
		t.Error("the report does not end with all steps done")
	}
}
