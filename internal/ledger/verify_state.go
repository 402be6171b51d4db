package ledger

import (
	"fmt"
	"math/bits"
	"sort"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// State keys of the verification, incentive and anchor records. Epochs are %020d so keys of
// one epoch are contiguous and sorted by epoch.
func ep20(e uint64) string { return fmt.Sprintf("%020d", e) }

func keyAnchor(addr string, e uint64) string { return "anchor/" + addr + "/" + ep20(e) } // Anchor
func keyAnchorLeaves(e uint64, a string, chunk uint64) string {
	return fmt.Sprintf("aleaves/%s/%s/%010d", ep20(e), a, chunk) // []tx.AnchorLeaf of one chunk
}
func keyAuditReport(e uint64, anchor string, chunk uint64, v string) string {
	return fmt.Sprintf("areport/%s/%s/%010d/%s", ep20(e), anchor, chunk, v) // AuditReport
}
func keyAuditSeed(e uint64, v string) string    { return "aseed/" + ep20(e) + "/" + v }   // AuditSeed
func keyWeightCommit(e uint64, v string) string { return "wcommit/" + ep20(e) + "/" + v } // WeightCommit
func keyWeightReveal(e uint64, v string) string { return "wreveal/" + ep20(e) + "/" + v } // WeightReveal
func keyBonds(v string) string                  { return "ybond/" + v }                   // []BondEntry
func keyEvidence(id uint64) string              { return fmt.Sprintf("evid/%020d", id) }  // Evidence
func keyEvidenceQueue(h int64) string           { return fmt.Sprintf("evidq/%020d", h) }  // []uint64
func keyEvidenceByReceipt(p, req string) string { return "evidr/" + p + "/" + req }       // uint64 id
func keyReputation(p string) string             { return "rep/" + p }                     // Reputation
func keyVerifierStats(v string) string          { return "vstat/" + v }                   // VerifierStats
func keyRewards(e uint64) string                { return "rewards/" + ep20(e) }           // RewardRecord
func keyCapacity(p string) string               { return "cap/" + p }                     // Capacity
func keyCapacityRecord(e uint64, p, m, v string) string {
	return "capr/" + ep20(e) + "/" + p + "/" + m + "/" + v // CapacityRecord
}

// Anchor is an account's anchored receipts root for an epoch (see tx.AnchorReceipts).
type Anchor struct {
	Address   string `json:"address"`
	Epoch     uint64 `json:"epoch"`
	Root      string `json:"root"`
	Count     uint64 `json:"count"`
	AuditRoot string `json:"audit_root,omitempty"`
	Height    int64  `json:"height"`
}

// AuditSeed is a verifier's committed (and later revealed) audit seed for an epoch.
type AuditSeed struct {
	Verifier     string `json:"verifier"`
	Epoch        uint64 `json:"epoch"`
	Commitment   string `json:"commitment"`
	Seed         string `json:"seed,omitempty"` // hex, set by the reveal
	CommitHeight int64  `json:"commit_height"`
	RevealHeight int64  `json:"reveal_height,omitempty"`
}

// AuditReport is what a verifier reported for one chunk of an anchored audit root.
type AuditReport struct {
	Verifier string   `json:"verifier"`
	Epoch    uint64   `json:"epoch"`
	Anchor   string   `json:"anchor"`
	Chunk    uint64   `json:"chunk"`
	Audited  []uint32 `json:"audited"`
	Failed   []uint32 `json:"failed"`
	Height   int64    `json:"height"`
}

// WeightCommit is a verifier's weights commitment for an epoch.
type WeightCommit struct {
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
}

// WeightReveal is a verifier's revealed weight vector for an epoch.
type WeightReveal struct {
	Verifier string              `json:"verifier"`
	Epoch    uint64              `json:"epoch"`
	Weights  []tx.ProviderWeight `json:"weights"`
	Height   int64               `json:"height"`
}

// BondEntry is a verifier's Yuma bond on a provider, fixed-point (Scale = 1).
type BondEntry struct {
	Provider string `json:"provider"`
	Bond     uint64 `json:"bond"`
}

// Evidence statuses.
const (
	EvidenceOpen     = "open"
	EvidenceGuilty   = "guilty"
	EvidenceRejected = "rejected"
)

// EvidenceVote is one verifier's vote.
type EvidenceVote struct {
	Voter  string `json:"voter"`
	Guilty bool   `json:"guilty"`
	Height int64  `json:"height"`
}

// Evidence is an accusation against a provider and its vote.
type Evidence struct {
	ID        uint64             `json:"id"`
	Submitter string             `json:"submitter"`
	Provider  string             `json:"provider"`
	RequestID string             `json:"request_id"`
	Receipt   channel.Receipt    `json:"receipt"`
	Summary   tx.EvidenceSummary `json:"summary"`
	// Material is the request and answer behind the receipt, for other verifiers' re-checks
	// (absent on evidence filed without it).
	Material *tx.EvidenceMaterial `json:"material,omitempty"`
	Bond     uint64               `json:"bond"`
	Height   int64                `json:"height"`
	Deadline int64                `json:"deadline"` // last height at which votes count
	Votes    []EvidenceVote       `json:"votes"`
	Status   string               `json:"status"`
	// Set on resolution.
	ResolvedHeight int64  `json:"resolved_height,omitempty"`
	GuiltyStake    uint64 `json:"guilty_stake,omitempty"`
	TotalStake     uint64 `json:"total_stake,omitempty"`
	Slashed        uint64 `json:"slashed,omitempty"`  // taken from the provider
	Rewarded       uint64 `json:"rewarded,omitempty"` // paid to the reporters
	Burned         uint64 `json:"burned,omitempty"`   // slashed − rewarded
	BondToPool     uint64 `json:"bond_to_pool,omitempty"`
}

// Reputation is a provider's verification record. AuditBps is its audit probability in the
// current epoch, PrevAuditBps in the previous one (what audit reports of that epoch use).
type Reputation struct {
	Provider        string `json:"provider"`
	CleanEpochs     uint64 `json:"clean_epochs"`
	AuditsPassed    uint64 `json:"audits_passed"`
	AuditsFailed    uint64 `json:"audits_failed"`
	EvidenceAgainst uint64 `json:"evidence_against"` // upheld evidence
	Slashes         uint64 `json:"slashes"`
	AuditBps        uint64 `json:"audit_bps"`
	PrevAuditBps    uint64 `json:"prev_audit_bps"`
	EpochPassed     uint64 `json:"epoch_passed"` // audits passed in the current epoch
	EpochFailed     uint64 `json:"epoch_failed"`
	EpochSlashed    bool   `json:"epoch_slashed"`
	Earnings        uint64 `json:"earnings"` // incentive paid, umyc
}

// VerifierStats counts a verifier's work and rewards.
type VerifierStats struct {
	Verifier         string `json:"verifier"`
	Reports          uint64 `json:"reports"`
	Audits           uint64 `json:"audits"`
	AuditsFailed     uint64 `json:"audits_failed"`
	EvidenceFiled    uint64 `json:"evidence_filed"`
	EvidenceUpheld   uint64 `json:"evidence_upheld"`
	EvidenceRejected uint64 `json:"evidence_rejected"`
	SkippedEpochs    uint64 `json:"skipped_epochs"` // epochs without dividends for missed audits
	Dividends        uint64 `json:"dividends"`      // umyc
	EvidenceRewards  uint64 `json:"evidence_rewards"`
}

// CapacityRecord is one verifier's throughput measurement.
type CapacityRecord struct {
	Verifier          string `json:"verifier"`
	TokensPerSecMilli uint64 `json:"tokens_per_sec_milli"`
	Height            int64  `json:"height"`
}

// ModelCapacity is a provider's proven throughput on one model: the stake-weighted median of
// the verifiers' records of an epoch.
type ModelCapacity struct {
	ModelID           string `json:"model_id"`
	TokensPerSecMilli uint64 `json:"tokens_per_sec_milli"`
	Records           uint64 `json:"records"`
}

// Capacity is a provider's proven capacity as of Epoch.
type Capacity struct {
	Provider string          `json:"provider"`
	Epoch    uint64          `json:"epoch"`
	Models   []ModelCapacity `json:"models"`
}

// Total is the provider's proven capacity over its models (thousandths of tokens/s).
func (c Capacity) Total() uint64 {
	var t uint64
	for _, m := range c.Models {
		t = satAdd(t, m.TokensPerSecMilli)
	}
	return t
}

// ProviderReward is one provider's share of an epoch's pool.
type ProviderReward struct {
	Provider  string `json:"provider"`
	Consensus uint64 `json:"consensus"`          // C_j, Scale = 1
	Incentive uint64 `json:"incentive"`          // I_j, Scale = 1
	Capacity  uint64 `json:"capacity,omitempty"` // K_j, proven tokens/s (thousandths) that capped the amount
	Amount    uint64 `json:"amount"`
}

// VerifierReward is one verifier's share of an epoch's pool.
type VerifierReward struct {
	Verifier string `json:"verifier"`
	Stake    uint64 `json:"stake"`    // counted in consensus (0 if it did not reveal)
	Trust    uint64 `json:"trust"`    // Σ_j min(W_ij, C_j), Scale = 1
	Dividend uint64 `json:"dividend"` // D_i, Scale = 1
	Eligible bool   `json:"eligible"` // active and did every demanded audit
	Amount   uint64 `json:"amount"`
}

// RewardRecord is the outcome of Yuma consensus at the end of epoch Epoch+1 on the weights of
// Epoch.
type RewardRecord struct {
	Epoch       uint64           `json:"epoch"`  // the weights' epoch
	Height      int64            `json:"height"` // boundary height
	Pool        uint64           `json:"pool"`
	ToProviders uint64           `json:"to_providers"`
	ToVerifiers uint64           `json:"to_verifiers"`
	Carried     uint64           `json:"carried"` // left in the pool (no recipients, rounding)
	Providers   []ProviderReward `json:"providers"`
	Verifiers   []VerifierReward `json:"verifiers"`
}

// kvPair is one key and value of a prefix scan.
type kvPair struct {
	key string
	val []byte
}

// scanPrefix returns every key under prefix visible through g (a store or overlays on one),
// sorted by key.
func scanPrefix(g getter, prefix string) []kvPair {
	switch g := g.(type) {
	case *store:
		var out []kvPair
		g.scan(prefix, func(k string, v []byte) bool {
			out = append(out, kvPair{k, v})
			return true
		})
		return out
	case *overlay:
		base := scanPrefix(g.parent, prefix)
		var mine []string
		for k := range g.w {
			if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				mine = append(mine, k)
			}
		}
		if len(mine) == 0 {
			return base
		}
		m := make(map[string][]byte, len(base)+len(mine))
		for _, kv := range base {
			m[kv.key] = kv.val
		}
		for _, k := range mine {
			if e := g.w[k]; e.del {
				delete(m, k)
			} else {
				m[k] = e.val
			}
		}
		out := make([]kvPair, 0, len(m))
		for k, v := range m {
			out = append(out, kvPair{k, v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
		return out
	}
	return nil
}

// mulDiv returns floor(a·b/c), 0 when c is 0, saturating at 2^64−1.
func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return 0
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return 1<<64 - 1
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// geq2of3 reports whether 3·part ≥ 2·total without overflow.
func geq2of3(part, total uint64) bool {
	h1, l1 := bits.Mul64(part, 3)
	h2, l2 := bits.Mul64(total, 2)
	return h1 > h2 || h1 == h2 && l1 >= l2
}
