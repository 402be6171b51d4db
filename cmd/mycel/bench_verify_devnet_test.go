package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/verifier"
)

// TestBenchVerifyDevnetSubstitute runs the devnet phase for the substitute
// cheater: the ledger must slash and jail it, on evidence against it alone,
// within the caps, and the table must say so.
func TestBenchVerifyDevnetSubstitute(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole network for about 40 s; skipped with -short")
	}
	if raceEnabled {
		t.Skip("model generation and the engine take minutes under -race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	rep := benchVerifyDevnet(ctx, devnetBenchConfig{
		// The verifier shops every second (the bench's default is 3 s) so that the cheater
		// meets dozens of audits within the cap: a substituted answer without logprobs is
		// caught only statistically, and the test must not depend on a lucky few.
		Cheaters: []string{"substitute"}, MaxRequests: 150, MaxDuration: 90 * time.Second, Rate: 5, ShopEvery: time.Second,
		ModelsDir: t.TempDir(), Mix: verifier.DefaultMix(), Seed: 1,
		Progress: func(s string) { progress.WriteString(s + "\n") },
	})
	t.Logf("progress:\n%s", progress.String())
	if len(rep.Cheaters) != 1 || rep.Honest != nil {
		t.Fatalf("report %+v: want one cheater run and no honest run", rep)
	}
	r := rep.Cheaters[0]
	if r.Error != "" {
		t.Fatalf("run failed: %s", r.Error)
	}
	if !r.Caught || r.SlashHeight == 0 || r.Evidence == 0 || r.Verdict == "" {
		t.Errorf("substitute not caught: %+v", r)
	}
	if r.HonestEvidence != 0 || r.HonestSlashed != 0 {
		t.Errorf("honest providers accused: %d evidence records, %d slashes", r.HonestEvidence, r.HonestSlashed)
	}
	if r.Served+r.Audited == 0 || r.FirstServedHeight == 0 || r.BlocksToSlash <= 0 || r.SecondsToSlash <= 0 {
		t.Errorf("no time to slash measured: %+v", r)
	}
	if r.SlashHeight < r.EvidenceHeight {
		t.Errorf("slash at height %d before the evidence at %d", r.SlashHeight, r.EvidenceHeight)
	}
	if err := devnetFailure(rep); err != nil {
		t.Error(err)
	}
	var out bytes.Buffer
	if err := printDevnetReport(&out, rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("table:\n%s", out.String())
	if !strings.Contains(out.String(), "substitute  true") {
		t.Errorf("the table does not report the substitute caught:\n%s", out.String())
	}
}

// TestDevnetFailure: the verdict fails on a cheater not caught and on any
// accusation of an honest provider.
func TestDevnetFailure(t *testing.T) {
	ok := devnetBenchReport{Cheaters: []devnetCheatRun{{Strategy: "substitute", Caught: true}}, Honest: &devnetHonestRun{}}
	if err := devnetFailure(ok); err != nil {
		t.Errorf("clean report: %v", err)
	}
	for name, rep := range map[string]devnetBenchReport{
		"not caught":     {Cheaters: []devnetCheatRun{{Strategy: "spotter"}}},
		"honest accused": {Cheaters: []devnetCheatRun{{Strategy: "inflate", Caught: true, HonestEvidence: 1}}},
		"honest run":     {Honest: &devnetHonestRun{Slashed: 1}},
	} {
		if err := devnetFailure(rep); err == nil {
			t.Errorf("%s: no failure", name)
		}
	}
}
