package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
)

// Message type names of the verification and incentive messages (issue 6) and receipt
// anchors (issue 5).
const (
	TypeAnchorReceipts    = "anchor_receipts"
	TypeCommitAuditSeed   = "commit_audit_seed"
	TypeRevealAuditSeed   = "reveal_audit_seed"
	TypeSubmitAuditReport = "submit_audit_report"
	TypeSubmitEvidence    = "submit_evidence"
	TypeVoteEvidence      = "vote_evidence"
	TypeCommitWeights     = "commit_weights"
	TypeRevealWeights     = "reveal_weights"
	TypeRecordCapacity    = "record_capacity"
)

// Limits on verification message fields.
const (
	MaxWeights       = 256 // providers in one weight vector
	AuditChunkLeaves = 256 // leaves per chunk of an audit root; an audit report covers one chunk
	MaxReportLeaves  = AuditChunkLeaves
	MaxProofHashes   = 56  // sibling hashes in a chunk proof (covers 2^64 leaves)
	MaxRequestIDLen  = 128 // bytes of a request id
	MaxVerdictLen    = 64  // bytes of an evidence verdict
	AuditSeedBytes   = 32  // an audit seed is 32 bytes (64 hex digits)
	MaxSaltBytes     = 64  // a weights salt is 1..64 bytes (hex)
)

// Domains of the hashes defined here.
const (
	AnchorLeafDomain = "mycel/anchor-leaf/v1\x00"
	AnchorNodeDomain = "mycel/anchor-node/v1\x00"
	WeightsDomain    = "mycel/weights/v1\x00"
)

func isHex32(s string) bool {
	if len(s) != 64 {
		return false
	}
	return strings.Trim(s, "0123456789abcdef") == ""
}

func validateHex32(field, s string) error {
	if !isHex32(s) {
		return invalidf("%s must be 64 lower-case hex digits", field)
	}
	return nil
}

// ValidateRequestID checks a request id: 1..128 printable ASCII bytes, no spaces.
func ValidateRequestID(id string) error {
	if id == "" || len(id) > MaxRequestIDLen {
		return invalidf("request id must have 1..%d bytes", MaxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= 0x20 || id[i] >= 0x7f {
			return invalidf("request id contains byte %#x; want printable ASCII without spaces", id[i])
		}
	}
	return nil
}

// AnchorReceipts anchors the Merkle root of the sender's receipts for an epoch: one anchor
// per sender and epoch. Root is the anchorer's receipts root (the gateway's RFC 6962 tree over
// whole receipts, for inclusion proofs); AuditRoot, optional, is AnchorRoot over the same
// receipts' (provider, request id) in the same order. Only anchors with an AuditRoot can bind
// verifiers' audits (SubmitAuditReport).
type AnchorReceipts struct {
	Epoch     uint64 `json:"epoch"`
	Root      string `json:"root"`                 // 64 lower-case hex digits
	Count     uint64 `json:"count"`                // number of receipts
	AuditRoot string `json:"audit_root,omitempty"` // AnchorRoot of the leaves, 64 lower-case hex digits
}

// Type implements Message.
func (AnchorReceipts) Type() string { return TypeAnchorReceipts }

// ValidateBasic implements Message.
func (m AnchorReceipts) ValidateBasic() error {
	if err := validateHex32("root", m.Root); err != nil {
		return err
	}
	if m.Count == 0 {
		return invalidf("count must be positive")
	}
	if m.AuditRoot != "" {
		return validateHex32("audit root", m.AuditRoot)
	}
	return nil
}

// AnchorLeaf is one receipt in an anchored root: the provider that served the request and the
// request id.
type AnchorLeaf struct {
	Provider  string `json:"provider"`
	RequestID string `json:"request_id"`
}

// Hash returns sha256("mycel/anchor-leaf/v1\x00" || provider || "\x00" || request id).
func (l AnchorLeaf) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(AnchorLeafDomain))
	h.Write([]byte(l.Provider))
	h.Write([]byte{0})
	h.Write([]byte(l.RequestID))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// AnchorRoot returns the hex Merkle root of leaves in the given order: the leaf hashes form the
// bottom level; each level pairs neighbours as sha256("mycel/anchor-node/v1\x00" || left ||
// right) and promotes an odd last node unchanged. No leaves give sha256 of the node domain.
func AnchorRoot(leaves []AnchorLeaf) string {
	if len(leaves) == 0 {
		s := sha256.Sum256([]byte(AnchorNodeDomain))
		return hex.EncodeToString(s[:])
	}
	levels := anchorLevels(leaves)
	root := levels[len(levels)-1][0]
	return hex.EncodeToString(root[:])
}

func nodeHash(l, r [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(AnchorNodeDomain))
	h.Write(l[:])
	h.Write(r[:])
	var n [32]byte
	h.Sum(n[:0])
	return n
}

// anchorLevels returns the tree levels of AnchorRoot, leaves first.
func anchorLevels(leaves []AnchorLeaf) [][][32]byte {
	level := make([][32]byte, len(leaves))
	for i, l := range leaves {
		level[i] = l.Hash()
	}
	levels := [][][32]byte{level}
	for len(level) > 1 {
		next := make([][32]byte, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
			} else {
				next = append(next, nodeHash(level[i], level[i+1]))
			}
		}
		levels = append(levels, next)
		level = next
	}
	return levels
}

// chunkLevel is log2(AuditChunkLeaves): chunk k of an audit root is the tree node at this
// level and index k, covering leaves [k·256, (k+1)·256).
const chunkLevel = 8

// AnchorChunks returns the number of audit chunks of count leaves.
func AnchorChunks(count uint64) uint64 {
	return (count + AuditChunkLeaves - 1) / AuditChunkLeaves
}

// AnchorChunkProof returns, for chunk k of leaves, the hex sibling hashes from the chunk's
// node up to the root (bottom-up, levels without a sibling skipped): what SubmitAuditReport
// carries in Proof. It returns nil for a chunk out of range or a single-chunk root.
func AnchorChunkProof(leaves []AnchorLeaf, chunk uint64) []string {
	if chunk >= AnchorChunks(uint64(len(leaves))) {
		return nil
	}
	levels := anchorLevels(leaves)
	var out []string
	i := chunk
	for k := chunkLevel; k < len(levels)-1; k++ {
		if sib := i ^ 1; sib < uint64(len(levels[k])) {
			out = append(out, hex.EncodeToString(levels[k][sib][:]))
		}
		i >>= 1
	}
	return out
}

// VerifyAnchorChunk checks that chunkLeaves are chunk k of an audit root over count leaves:
// the right number of leaves for that chunk, hashing with proof (AnchorChunkProof) to root.
func VerifyAnchorChunk(chunkLeaves []AnchorLeaf, chunk, count uint64, proof []string, root string) error {
	chunks := AnchorChunks(count)
	if chunk >= chunks {
		return invalidf("chunk %d out of range: %d leaves make %d chunks", chunk, count, chunks)
	}
	want := min(uint64(AuditChunkLeaves), count-chunk*AuditChunkLeaves)
	if uint64(len(chunkLeaves)) != want {
		return invalidf("chunk %d of an audit root over %d leaves must have %d leaves, got %d", chunk, count, want, len(chunkLeaves))
	}
	levels := anchorLevels(chunkLeaves)
	h := levels[len(levels)-1][0]
	i, width, used := chunk, chunks, 0
	for width > 1 {
		if sib := i ^ 1; sib < width {
			if used == len(proof) {
				return invalidf("chunk proof too short")
			}
			b, err := hex.DecodeString(proof[used])
			if err != nil || len(b) != 32 {
				return invalidf("chunk proof hash %d is not 64 hex digits", used)
			}
			var s [32]byte
			copy(s[:], b)
			used++
			if i&1 == 0 {
				h = nodeHash(h, s)
			} else {
				h = nodeHash(s, h)
			}
		}
		i >>= 1
		width = (width + 1) / 2
	}
	if used != len(proof) {
		return invalidf("chunk proof has %d extra hashes", len(proof)-used)
	}
	if hex.EncodeToString(h[:]) != root {
		return invalidf("leaves of chunk %d hash to another root than %s", chunk, root)
	}
	return nil
}

// AuditSeedCommitment returns the hex sha256 of a secret audit seed, what CommitAuditSeed
// carries.
func AuditSeedCommitment(seed []byte) string {
	s := sha256.Sum256(seed)
	return hex.EncodeToString(s[:])
}

// CommitAuditSeed commits an active verifier to sha256(seed) of its secret audit seed for
// Epoch, during that epoch.
type CommitAuditSeed struct {
	Epoch      uint64 `json:"epoch"`
	Commitment string `json:"commitment"` // AuditSeedCommitment(seed)
}

// Type implements Message.
func (CommitAuditSeed) Type() string { return TypeCommitAuditSeed }

// ValidateBasic implements Message.
func (m CommitAuditSeed) ValidateBasic() error { return validateHex32("commitment", m.Commitment) }

// RevealAuditSeed reveals the seed committed for Epoch, during the next epoch.
type RevealAuditSeed struct {
	Epoch uint64 `json:"epoch"`
	Seed  string `json:"seed"` // hex of the 32-byte seed
}

// Type implements Message.
func (RevealAuditSeed) Type() string { return TypeRevealAuditSeed }

// ValidateBasic implements Message.
func (m RevealAuditSeed) ValidateBasic() error { return validateHex32("seed", m.Seed) }

// SubmitAuditReport reports, for one chunk of an anchored audit root (the AnchorReceipts of
// Anchor for Epoch), which of its leaves the sender audited. An audit root's leaves form
// chunks of AuditChunkLeaves (256) leaves; a root of at most 256 leaves is one chunk (0) with
// an empty proof. Leaves is the chunk's full leaf list and Proof its AnchorChunkProof (the
// ledger checks them against the audit root); both may be left empty once the chunk is on the
// ledger (an earlier report published it). Audited and Failed are ascending indices into the
// chunk's leaves; Failed ⊆ Audited lists audits whose re-check failed.
type SubmitAuditReport struct {
	Epoch   uint64       `json:"epoch"`
	Anchor  string       `json:"anchor"` // address that anchored the root
	Chunk   uint64       `json:"chunk,omitempty"`
	Leaves  []AnchorLeaf `json:"leaves"`
	Proof   []string     `json:"proof,omitempty"` // hex sibling hashes, bottom-up
	Audited []uint32     `json:"audited"`
	Failed  []uint32     `json:"failed"`
}

// Type implements Message.
func (SubmitAuditReport) Type() string { return TypeSubmitAuditReport }

func ascending(field string, idx []uint32, n int) error {
	for i, v := range idx {
		if i > 0 && v <= idx[i-1] {
			return invalidf("%s indices must be strictly ascending", field)
		}
		if n >= 0 && int(v) >= n {
			return invalidf("%s index %d out of range (%d leaves)", field, v, n)
		}
	}
	return nil
}

// ValidateBasic implements Message.
func (m SubmitAuditReport) ValidateBasic() error {
	if err := address.Validate(m.Anchor); err != nil {
		return invalidf("anchor: %v", err)
	}
	if len(m.Leaves) > MaxReportLeaves {
		return invalidf("%d leaves, limit %d", len(m.Leaves), MaxReportLeaves)
	}
	for i, l := range m.Leaves {
		if err := address.Validate(l.Provider); err != nil {
			return invalidf("leaf %d provider: %v", i, err)
		}
		if err := ValidateRequestID(l.RequestID); err != nil {
			return invalidf("leaf %d: %v", i, err)
		}
	}
	if len(m.Proof) > MaxProofHashes {
		return invalidf("%d proof hashes, limit %d", len(m.Proof), MaxProofHashes)
	}
	for i, h := range m.Proof {
		if !isHex32(h) {
			return invalidf("proof hash %d must be 64 lower-case hex digits", i)
		}
	}
	n := -1
	if len(m.Leaves) > 0 {
		n = len(m.Leaves)
	}
	if len(m.Audited) > MaxReportLeaves {
		return invalidf("%d audited indices, limit %d", len(m.Audited), MaxReportLeaves)
	}
	if err := ascending("audited", m.Audited, n); err != nil {
		return err
	}
	if err := ascending("failed", m.Failed, n); err != nil {
		return err
	}
	j := 0
	for _, f := range m.Failed {
		for j < len(m.Audited) && m.Audited[j] < f {
			j++
		}
		if j == len(m.Audited) || m.Audited[j] != f {
			return invalidf("failed index %d is not audited", f)
		}
	}
	return nil
}

// Verdicts of an evidence summary.
const (
	VerdictSubstitution   = "substitution"    // another model served
	VerdictQuantization   = "quantization"    // another quantisation served
	VerdictTruncation     = "truncation"      // output cut short
	VerdictPadding        = "padding"         // output padded
	VerdictInflatedTokens = "inflated_tokens" // more tokens billed than produced
	VerdictTamperedPrompt = "tampered_prompt" // the prompt was changed
	VerdictMismatch       = "mismatch"        // exact re-check differs (seeded or greedy)
)

var verdicts = map[string]bool{VerdictSubstitution: true, VerdictQuantization: true, VerdictTruncation: true,
	VerdictPadding: true, VerdictInflatedTokens: true, VerdictTamperedPrompt: true, VerdictMismatch: true}

// EvidenceSummary is a verifier's re-check result of one receipt. Log-probability deviations
// are fixed-point in micro-nats (1e-6).
type EvidenceSummary struct {
	PositionsChecked   uint64 `json:"positions_checked"`
	Mismatches         uint64 `json:"mismatches"`
	MaxLogprobDevMicro uint64 `json:"max_logprob_dev_micro"`
	ExpectedTokens     uint64 `json:"expected_tokens"`
	ClaimedTokens      uint64 `json:"claimed_tokens"`
	Verdict            string `json:"verdict"`
}

// SubmitEvidence accuses the provider of Receipt (signed by it) of cheating, with the
// sender's re-check summary, and locks Bond until the vote ends. Material, when present, makes
// the accusation self-contained: every verifier can re-check it and vote.
type SubmitEvidence struct {
	Receipt  channel.Receipt   `json:"receipt"`
	Summary  EvidenceSummary   `json:"summary"`
	Bond     uint64            `json:"bond"`
	Material *EvidenceMaterial `json:"material,omitempty"`
}

// Limits on evidence material.
const (
	MaxEvidenceRequest = 24 << 10 // bytes of the request body
	MaxEvidenceOutput  = 24 << 10 // bytes of the answer text
	MaxEvidenceTokens  = 4096     // answer token ids (and logprobs)
)

// EvidenceMaterial is what a re-check needs besides the receipt: the request body as sent
// (its sha256 must be the receipt's request hash), the answer text (its sha256 must be the
// receipt's output hash), the answer's token ids and, when the request asked for them, the
// per-token logprobs returned, as the IEEE-754 bits of their float32 values (what the
// receipt's logprobs commitment hashes). Ids and logprobs are bound by the commitment when
// they hash to it; a verifier ignores logprobs that do not, and holds ids that do not to the
// text (see docs/VERIFICATION.md).
//
// RevealSignature, when present, says that TokenIDs and LogprobBits (one per id) are the
// provider's reveal of the receipt's request, signed by the provider (reveal.SignAnswer,
// base64url): the ledger verifies it against the provider's key (VerifyReveal). Such values
// are the provider's word: when they do not hash to the receipt's commitment the provider
// signed two contradicting statements.
type EvidenceMaterial struct {
	Request         string   `json:"request"`
	Output          string   `json:"output"`
	TokenIDs        []int32  `json:"token_ids"`
	LogprobBits     []uint32 `json:"logprob_bits,omitempty"`
	RevealSignature string   `json:"reveal_signature,omitempty"`
}

// VerifyReveal checks RevealSignature, when present, as the signature of r's provider (public
// key pub) over its reveal of TokenIDs and LogprobBits for r's request on r's chain
// (channel.VerifyRevealAnswer); a failure wraps channel.ErrBadRevealAnswer. No signature is
// no claim and passes.
func (m EvidenceMaterial) VerifyReveal(r channel.Receipt, pub ed25519.PublicKey) error {
	if m.RevealSignature == "" {
		return nil
	}
	sig, err := base64.RawURLEncoding.DecodeString(m.RevealSignature)
	if err != nil {
		return fmt.Errorf("evidence material: reveal signature is not unpadded base64url: %w", channel.ErrBadRevealAnswer)
	}
	if err := channel.VerifyRevealAnswer(r.ChainID, r.Provider, r.RequestID, m.TokenIDs, m.LogprobBits, sig, pub); err != nil {
		return fmt.Errorf("evidence material: %w", err)
	}
	return nil
}

// SignedRevealContradicts reports whether the material carries a provider-signed reveal (its
// signature verified by VerifyReveal) whose values do not hash to r's logprobs commitment (a
// receipt without a commitment contradicts nothing).
func (m EvidenceMaterial) SignedRevealContradicts(r channel.Receipt) bool {
	return m.RevealSignature != "" && r.LogprobsCommitment != "" && len(m.LogprobBits) == len(m.TokenIDs) &&
		!strings.EqualFold(channel.LogprobsCommitmentBits(m.TokenIDs, m.LogprobBits), r.LogprobsCommitment)
}

// Check verifies the material against the receipt's request and output hashes and its
// limits.
func (m EvidenceMaterial) Check(r channel.Receipt) error {
	if len(m.Request) > MaxEvidenceRequest || len(m.Output) > MaxEvidenceOutput {
		return invalidf("evidence material: request %d bytes (limit %d), output %d bytes (limit %d)",
			len(m.Request), MaxEvidenceRequest, len(m.Output), MaxEvidenceOutput)
	}
	if len(m.TokenIDs) > MaxEvidenceTokens {
		return invalidf("evidence material: %d token ids, limit %d", len(m.TokenIDs), MaxEvidenceTokens)
	}
	if len(m.LogprobBits) != 0 && len(m.LogprobBits) != len(m.TokenIDs) {
		return invalidf("evidence material: %d logprobs for %d token ids", len(m.LogprobBits), len(m.TokenIDs))
	}
	if m.RevealSignature == "" {
		// A signed reveal's ids are the provider's word, whatever they are: a negative
		// one is part of what it is held to.
		for i, id := range m.TokenIDs {
			if id < 0 {
				return invalidf("evidence material: token id %d is negative", i)
			}
		}
	}
	if m.RevealSignature != "" {
		if len(m.LogprobBits) != len(m.TokenIDs) {
			return invalidf("evidence material: a signed reveal needs one logprob per token id, got %d for %d", len(m.LogprobBits), len(m.TokenIDs))
		}
		if sig, err := base64.RawURLEncoding.DecodeString(m.RevealSignature); err != nil || len(sig) != ed25519.SignatureSize {
			return invalidf("evidence material: reveal signature must be %d bytes in unpadded base64url", ed25519.SignatureSize)
		}
	}
	if h := sha256.Sum256([]byte(m.Request)); hex.EncodeToString(h[:]) != r.RequestHash {
		return invalidf("evidence material: the request does not hash to the receipt's request hash")
	}
	if h := sha256.Sum256([]byte(m.Output)); hex.EncodeToString(h[:]) != r.OutputHash {
		return invalidf("evidence material: the output does not hash to the receipt's output hash")
	}
	return nil
}

// Type implements Message.
func (SubmitEvidence) Type() string { return TypeSubmitEvidence }

// ValidateBasic implements Message.
func (m SubmitEvidence) ValidateBasic() error {
	r := m.Receipt
	if r.ChainID == "" || len(r.ChainID) > MaxChainID {
		return invalidf("receipt chain id must have 1..%d bytes", MaxChainID)
	}
	if err := ValidateRequestID(r.RequestID); err != nil {
		return invalidf("receipt: %v", err)
	}
	if err := address.Validate(r.Provider); err != nil {
		return invalidf("receipt provider: %v", err)
	}
	if err := ValidateModelID(r.ModelID); err != nil {
		return invalidf("receipt: %v", err)
	}
	// Hashes are checked here (not only by Receipt.Verify) so every failure is reported the
	// same way, in a fixed order.
	for _, f := range []struct{ name, v string }{
		{"model_sha256", r.ModelSHA256}, {"request_hash", r.RequestHash},
		{"output_hash", r.OutputHash}, {"logprobs_commitment", r.LogprobsCommitment},
	} {
		if f.v != "" && !isHex32(f.v) {
			return invalidf("receipt %s must be 64 lower-case hex digits", f.name)
		}
	}
	if len(r.Signature) == 0 {
		return invalidf("receipt is not signed")
	}
	if err := r.CheckArithmetic(); err != nil {
		return invalidf("%v", err)
	}
	if !verdicts[m.Summary.Verdict] {
		return invalidf("verdict %.64q: want one of substitution, quantization, truncation, padding, inflated_tokens, tampered_prompt, mismatch", m.Summary.Verdict)
	}
	if m.Summary.Mismatches > m.Summary.PositionsChecked {
		return invalidf("mismatches %d exceed positions checked %d", m.Summary.Mismatches, m.Summary.PositionsChecked)
	}
	if m.Bond == 0 {
		return invalidf("bond must be positive")
	}
	if m.Material != nil {
		return m.Material.Check(r)
	}
	return nil
}

// VoteEvidence is an active verifier's vote on open evidence ID.
type VoteEvidence struct {
	ID     uint64 `json:"id"`
	Guilty bool   `json:"guilty"`
}

// Type implements Message.
func (VoteEvidence) Type() string { return TypeVoteEvidence }

// ValidateBasic implements Message.
func (m VoteEvidence) ValidateBasic() error {
	if m.ID == 0 {
		return invalidf("evidence id must be positive")
	}
	return nil
}

// ProviderWeight is one entry of a verifier's weight vector.
type ProviderWeight struct {
	Provider string `json:"provider"`
	Weight   uint32 `json:"weight"` // relative; the ledger normalises each vector
}

// WeightsCommitment returns the hex sha256 that CommitWeights carries for a weight vector:
// sha256("mycel/weights/v1\x00" || JSON {"epoch","verifier","weights","salt"}). The verifier
// address is inside, so copying another verifier's commitment is useless.
func WeightsCommitment(epoch uint64, verifier string, weights []ProviderWeight, salt string) string {
	if weights == nil {
		weights = []ProviderWeight{}
	}
	b, err := json.Marshal(struct {
		Epoch    uint64           `json:"epoch"`
		Verifier string           `json:"verifier"`
		Weights  []ProviderWeight `json:"weights"`
		Salt     string           `json:"salt"`
	}{epoch, verifier, weights, salt})
	if err != nil { // strings and integers only
		return ""
	}
	h := sha256.New()
	h.Write([]byte(WeightsDomain))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// CommitWeights commits an active verifier to WeightsCommitment of its weight vector for
// Epoch, during that epoch.
type CommitWeights struct {
	Epoch uint64 `json:"epoch"`
	Hash  string `json:"hash"`
}

// Type implements Message.
func (CommitWeights) Type() string { return TypeCommitWeights }

// ValidateBasic implements Message.
func (m CommitWeights) ValidateBasic() error { return validateHex32("hash", m.Hash) }

// RevealWeights reveals the weight vector committed for Epoch, during the next epoch. Weights
// are sorted by provider address, each provider once.
type RevealWeights struct {
	Epoch   uint64           `json:"epoch"`
	Weights []ProviderWeight `json:"weights"`
	Salt    string           `json:"salt"` // hex, 1..64 bytes
}

// Type implements Message.
func (RevealWeights) Type() string { return TypeRevealWeights }

// ValidateBasic implements Message.
func (m RevealWeights) ValidateBasic() error {
	if len(m.Weights) > MaxWeights {
		return invalidf("%d weights, limit %d", len(m.Weights), MaxWeights)
	}
	for i, w := range m.Weights {
		if err := address.Validate(w.Provider); err != nil {
			return invalidf("weight %d provider: %v", i, err)
		}
		if i > 0 && w.Provider <= m.Weights[i-1].Provider {
			return invalidf("weights must be sorted by provider, each provider once")
		}
	}
	if b, err := hex.DecodeString(m.Salt); err != nil || len(b) == 0 || len(b) > MaxSaltBytes || strings.ToLower(m.Salt) != m.Salt {
		return invalidf("salt must be 1..%d bytes of lower-case hex", MaxSaltBytes)
	}
	return nil
}

// RecordCapacity records throughput an active verifier measured with a seeded benchmark job
// on Provider's ModelID during Epoch, in thousandths of a token per second.
type RecordCapacity struct {
	Provider          string `json:"provider"`
	ModelID           string `json:"model_id"`
	TokensPerSecMilli uint64 `json:"tokens_per_sec_milli"`
	Epoch             uint64 `json:"epoch"`
}

// Type implements Message.
func (RecordCapacity) Type() string { return TypeRecordCapacity }

// ValidateBasic implements Message.
func (m RecordCapacity) ValidateBasic() error {
	if err := address.Validate(m.Provider); err != nil {
		return invalidf("provider: %v", err)
	}
	if err := ValidateModelID(m.ModelID); err != nil {
		return err
	}
	return nil
}
