package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/provider/reveal"
	"github.com/mycel-network/mycel/internal/tx"
)

// testSeed is the 32-byte audit seed a scenario names by a word.
func testSeed(word string) []byte {
	s := sha256.Sum256([]byte("mycel-test-seed/" + word))
	return s[:]
}

// parseLeaves parses PROVIDER:REQ,… into anchor leaves.
func (d *driver) parseLeaves(s string) ([]tx.AnchorLeaf, error) {
	var out []tx.AnchorLeaf
	for _, part := range strings.Split(s, ",") {
		p, r, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("leaf %q: want PROVIDER:REQUEST", part)
		}
		out = append(out, tx.AnchorLeaf{Provider: d.addr(p), RequestID: r})
	}
	return out, nil
}

// parseWeights parses PROVIDER:WEIGHT,… into a weight vector sorted by address.
func (d *driver) parseWeights(s string) ([]tx.ProviderWeight, error) {
	out := []tx.ProviderWeight{}
	if s == "" || s == "none" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		p, w, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("weight %q: want PROVIDER:WEIGHT", part)
		}
		n, err := strconv.ParseUint(w, 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, tx.ProviderWeight{Provider: d.addr(p), Weight: uint32(n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out, nil
}

func parseIndices(s string, n int) ([]uint32, error) {
	out := []uint32{}
	switch s {
	case "", "none":
		return out, nil
	case "all":
		for i := range n {
			out = append(out, uint32(i))
		}
		return out, nil
	}
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		out = append(out, uint32(v))
	}
	return out, nil
}

// verifyMsg builds the verification messages of the scenario language:
//
//	anchor FROM EPOCH leaves=P:REQ,… [no-audit-root=1] | root=HEX count=N
//	commit-seed FROM EPOCH seed=WORD       reveal-seed FROM EPOCH seed=WORD
//	audit-report FROM EPOCH ANCHOR [leaves=P:REQ,…|published] [audited=all|none|I,…] [failed=I,…]
//	evidence FROM PROVIDER REQUEST [bond=AMOUNT] [verdict=V] [receipt-signer=NAME] [receipt-chain=C] [cost=N]
//	vote FROM ID guilty|innocent
//	commit-weights FROM EPOCH P:W,…|none [salt=HEX] [hash-epoch=N]
//	reveal-weights FROM EPOCH P:W,…|none [salt=HEX]
//	capacity FROM PROVIDER MODEL TOKENS_PER_SEC_MILLI EPOCH
func (d *driver) verifyMsg(cmd string, pos []string, opts map[string]string, id func(int) uint64, arg func(int) string) (interface{ Type() string }, error) {
	from := pos[0]
	epoch := func(i int) uint64 { return id(i) }
	switch cmd {
	case "anchor":
		e := epoch(1)
		if s, ok := opts["leaves"]; ok {
			ls, err := d.parseLeaves(s)
			if err != nil {
				return nil, err
			}
			m := tx.AnchorReceipts{Epoch: e, Root: hexSum("receipts:" + s), Count: uint64(len(ls)), AuditRoot: tx.AnchorRoot(ls)}
			if _, ok := opts["no-audit-root"]; ok {
				m.AuditRoot = ""
			}
			return m, nil
		}
		n, err := strconv.ParseUint(opts["count"], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("anchor: count: %w", err)
		}
		return tx.AnchorReceipts{Epoch: e, Root: opts["root"], Count: n}, nil
	case "commit-seed":
		return tx.CommitAuditSeed{Epoch: epoch(1), Commitment: tx.AuditSeedCommitment(testSeed(opts["seed"]))}, nil
	case "reveal-seed":
		return tx.RevealAuditSeed{Epoch: epoch(1), Seed: hex.EncodeToString(testSeed(opts["seed"]))}, nil
	case "audit-report":
		m := tx.SubmitAuditReport{Epoch: epoch(1), Anchor: d.addr(arg(2))}
		n := 0
		if s, ok := opts["leaves"]; ok {
			ls, err := d.parseLeaves(s)
			if err != nil {
				return nil, err
			}
			m.Leaves, n = ls, len(ls)
		} else if ls, ok, _ := getJSON[[]tx.AnchorLeaf](d.l.block, keyAnchorLeaves(m.Epoch, m.Anchor, 0)); ok {
			n = len(ls)
		}
		var err error
		if m.Audited, err = parseIndices(opts["audited"], n); err != nil {
			return nil, err
		}
		if m.Failed, err = parseIndices(opts["failed"], n); err != nil {
			return nil, err
		}
		return m, nil
	case "evidence":
		prov := d.addr(arg(1))
		r := channel.Receipt{ChainID: testChain, RequestID: arg(2), Provider: prov, Consumer: d.addr("carol"),
			ChannelID: 1, ModelID: "m1", ModelSHA256: hexSum("m1"), RequestHash: hexSum("req"), OutputHash: hexSum("out"),
			TokensIn: 100, TokensOut: 200, PriceInPerMTok: 1000, PriceOutPerMTok: 2000, Cost: 1, Cumulative: 1,
			LogprobsCommitment: hexSum("lp"), FinishReason: "stop", TimeUnixMs: 1}
		if c, ok := opts["receipt-chain"]; ok {
			r.ChainID = c
		}
		signer := arg(1)
		if s, ok := opts["receipt-signer"]; ok {
			signer = s
		}
		r = channel.SignReceipt(r, testKey(signer))
		bond := uint64(10_000_000)
		if s, ok := opts["bond"]; ok {
			var err error
			if bond, err = parseAmount(s); err != nil {
				return nil, err
			}
		}
		verdict := tx.VerdictSubstitution
		if v, ok := opts["verdict"]; ok {
			verdict = v
		}
		m := tx.SubmitEvidence{Receipt: r, Bond: bond, Summary: tx.EvidenceSummary{
			PositionsChecked: 200, Mismatches: 150, MaxLogprobDevMicro: 4_500_000,
			ExpectedTokens: 200, ClaimedTokens: 200, Verdict: verdict}}
		if s, ok := opts["reveal-signer"]; ok {
			// Material with a reveal signed by s (values that contradict the receipt).
			ids, lps := []int32{1, 2}, []float32{-0.5, -1.5}
			m.Material = &tx.EvidenceMaterial{Request: "req", Output: "out", TokenIDs: ids,
				LogprobBits:     []uint32{math.Float32bits(lps[0]), math.Float32bits(lps[1])},
				RevealSignature: reveal.SignAnswer(r.ChainID, prov, r.RequestID, ids, lps, testKey(s))}
		}
		return m, nil
	case "vote":
		switch arg(2) {
		case "guilty":
			return tx.VoteEvidence{ID: id(1), Guilty: true}, nil
		case "innocent":
			return tx.VoteEvidence{ID: id(1), Guilty: false}, nil
		}
		return nil, fmt.Errorf("vote: want guilty or innocent, got %q", arg(2))
	case "commit-weights", "reveal-weights":
		e := epoch(1)
		ws, err := d.parseWeights(arg(2))
		if err != nil {
			return nil, err
		}
		salt := "00ff"
		if s, ok := opts["salt"]; ok {
			salt = s
		}
		if cmd == "reveal-weights" {
			return tx.RevealWeights{Epoch: e, Weights: ws, Salt: salt}, nil
		}
		he := e
		if s, ok := opts["hash-epoch"]; ok {
			if he, err = strconv.ParseUint(s, 10, 64); err != nil {
				return nil, err
			}
		}
		return tx.CommitWeights{Epoch: e, Hash: tx.WeightsCommitment(he, d.addr(from), ws, salt)}, nil
	case "capacity":
		tps := id(3)
		return tx.RecordCapacity{Provider: d.addr(arg(1)), ModelID: arg(2), TokensPerSecMilli: tps, Epoch: epoch(4)}, nil
	}
	return nil, fmt.Errorf("unknown command %q", cmd)
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
