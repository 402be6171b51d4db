package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

func extAddr(name string) string {
	s := sha256.Sum256([]byte(name))
	return address.FromPubKey(ed25519.NewKeyFromSeed(s[:]).Public().(ed25519.PublicKey))
}

// buildExt parses args as cmdTx does (with --from registered first) and builds the message.
func buildExt(t *testing.T, name string, args ...string) (any, error) {
	t.Helper()
	tc, ok := allTxCommands()[name]
	if !ok {
		t.Fatalf("no tx command %q", name)
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("from", "", "")
	build := tc.flags(fs, func() string { return t.TempDir() })
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return build()
}

func TestTxExtCommands(t *testing.T) {
	v, p1, p2, g := extAddr("v"), extAddr("p1"), extAddr("p2"), extAddr("g")
	seed := strings.Repeat("ab", 32)
	seedBytes, _ := hex.DecodeString(seed)
	leaves := []tx.AnchorLeaf{{Provider: p1, RequestID: "r1"}, {Provider: p2, RequestID: "r2"}}
	leavesJSON, _ := json.Marshal(leaves)
	big := make([]tx.AnchorLeaf, 300)
	for i := range big {
		big[i] = tx.AnchorLeaf{Provider: p1, RequestID: fmt.Sprint("r", i)}
	}
	bigJSON, _ := json.Marshal(big)
	sorted := []tx.ProviderWeight{{Provider: p1, Weight: 3}, {Provider: p2, Weight: 1}}
	if sorted[0].Provider > sorted[1].Provider {
		sorted[0], sorted[1] = sorted[1], sorted[0]
	}
	r := channel.SignReceipt(channel.Receipt{ChainID: "c", RequestID: "r1", Provider: p1, ModelID: "m1",
		TokensIn: 1, TokensOut: 1, PriceInPerMTok: 1, PriceOutPerMTok: 1, Cost: 1, Cumulative: 1}, nil)
	r.Signature = []byte{1, 2, 3}
	receiptJSON, _ := json.Marshal(r)
	tests := []struct {
		name string
		args []string
		want any
	}{
		{"anchor-receipts", []string{"--epoch", "3", "--leaves", string(leavesJSON)},
			tx.AnchorReceipts{Epoch: 3, Root: tx.AnchorRoot(leaves), Count: 2, AuditRoot: tx.AnchorRoot(leaves)}},
		{"anchor-receipts", []string{"--epoch", "3", "--root", strings.Repeat("1", 64), "--leaves", string(leavesJSON)},
			tx.AnchorReceipts{Epoch: 3, Root: strings.Repeat("1", 64), Count: 2, AuditRoot: tx.AnchorRoot(leaves)}},
		{"anchor-receipts", []string{"--epoch", "3", "--root", strings.Repeat("0", 64), "--count", "7"},
			tx.AnchorReceipts{Epoch: 3, Root: strings.Repeat("0", 64), Count: 7}},
		{"commit-audit-seed", []string{"--epoch", "2", "--seed", seed},
			tx.CommitAuditSeed{Epoch: 2, Commitment: tx.AuditSeedCommitment(seedBytes)}},
		{"reveal-audit-seed", []string{"--epoch", "2", "--seed", strings.ToUpper(seed)},
			tx.RevealAuditSeed{Epoch: 2, Seed: seed}},
		{"submit-audit-report", []string{"--epoch", "1", "--anchor", g, "--leaves", string(leavesJSON), "--audited", "1,0", "--failed", "1"},
			tx.SubmitAuditReport{Epoch: 1, Anchor: g, Leaves: leaves, Audited: []uint32{0, 1}, Failed: []uint32{1}}},
		{"submit-audit-report", []string{"--epoch", "1", "--anchor", g, "--chunk", "1", "--all-leaves", string(bigJSON), "--audited", "2"},
			tx.SubmitAuditReport{Epoch: 1, Anchor: g, Chunk: 1, Leaves: big[256:], Proof: tx.AnchorChunkProof(big, 1), Audited: []uint32{2}, Failed: []uint32{}}},
		{"submit-evidence", []string{"--receipt", string(receiptJSON), "--verdict", "truncation", "--positions", "9", "--mismatches", "2", "--bond", "10myc"},
			tx.SubmitEvidence{Receipt: r, Bond: 10_000_000, Summary: tx.EvidenceSummary{PositionsChecked: 9, Mismatches: 2, Verdict: "truncation"}}},
		{"vote-evidence", []string{"--id", "4", "--guilty"}, tx.VoteEvidence{ID: 4, Guilty: true}},
		{"commit-weights", []string{"--from", v, "--epoch", "5", "--weight", p2 + ":1," + p1 + ":3", "--salt", "beef"},
			tx.CommitWeights{Epoch: 5, Hash: tx.WeightsCommitment(5, v, sorted, "beef")}},
		{"reveal-weights", []string{"--epoch", "5", "--weight", p2 + ":1", "--weight", p1 + ":3", "--salt", "beef"},
			tx.RevealWeights{Epoch: 5, Weights: sorted, Salt: "beef"}},
		{"record-capacity", []string{"--provider", p1, "--model", "m1", "--tokens-per-sec", "12.5", "--epoch", "6"},
			tx.RecordCapacity{Provider: p1, ModelID: "m1", TokensPerSecMilli: 12_500, Epoch: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildExt(t, tt.name, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTxExtCommandErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"anchor-receipts", []string{"--epoch", "1"}, "--root and --count"},
		{"commit-audit-seed", []string{"--seed", "abcd"}, "32 bytes"},
		{"commit-weights", []string{"--epoch", "1", "--salt", "aa"}, "--from is required"},
		{"commit-weights", []string{"--from", extAddr("v"), "--weight", "nobody:1", "--salt", "aa"}, "neither an address"},
		{"record-capacity", []string{"--provider", extAddr("p"), "--tokens-per-sec", "1.2345"}, "at most 3 decimals"},
		{"submit-evidence", []string{"--receipt", "{}"}, "--bond is required"},
		{"submit-audit-report", []string{"--anchor", extAddr("g"), "--all-leaves", "[]", "--leaves", "[]"}, "excludes"},
		{"submit-audit-report", []string{"--anchor", extAddr("g"), "--audited", "x"}, "--audited"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildExt(t, tt.name, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestQueryExtPath(t *testing.T) {
	kinds := queryExtKinds()
	a := extAddr("p")
	for _, tt := range []struct {
		name string
		pos  []string
		want string
		err  bool
	}{
		{"evidence", nil, "evidence", false},
		{"evidence", []string{"3"}, "evidence/3", false},
		{"evidence", []string{"x"}, "", true},
		{"reputation", []string{a}, "reputation/" + a, false},
		{"reputation", nil, "", true},
		{"rewards", []string{"12"}, "rewards/12", false},
		{"weights", nil, "weights", false},
		{"weights", []string{"1"}, "", true},
	} {
		got, err := queryExtPath(tt.name, kinds[tt.name], tt.pos, t.TempDir())
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("queryExtPath(%s, %v) = %q, %v; want %q, error %t", tt.name, tt.pos, got, err, tt.want, tt.err)
		}
	}
}
