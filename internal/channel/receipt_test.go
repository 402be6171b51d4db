package channel

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func hexSum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func sampleReceipt() Receipt {
	return Receipt{
		ChainID: "mycel-test", RequestID: "req-1", Provider: "myc1provider", Consumer: "myc1consumer", ChannelID: 7,
		ModelID: "mycel-ref", ModelSHA256: hexSum("model"), RequestHash: hexSum("req"), OutputHash: hexSum("out"),
		TokensIn: 1000, TokensOut: 250, PriceInPerMTok: 300, PriceOutPerMTok: 1200, Cost: 1, Cumulative: 10,
		QueueMs: 1, TTFTMs: 2, DurationMs: 30, LogprobsCommitment: LogprobsCommitment([]int32{1}, []float32{-0.5}),
		FinishReason: "stop", TimeUnixMs: 1_700_000_000_000,
	}
}

func TestReceiptVerify(t *testing.T) {
	prov, other := key("provider"), key("other")
	r := sampleReceipt()
	cost, err := Cost(r.TokensIn, r.TokensOut, r.PriceInPerMTok, r.PriceOutPerMTok)
	if err != nil {
		t.Fatal(err)
	}
	r.Cost = cost // 0.3 + 0.3 = 0.6 → 1
	if cost != 1 {
		t.Fatalf("Cost = %d, want 1", cost)
	}
	good := SignReceipt(r, prov)
	pub := prov.Public().(ed25519.PublicKey)
	mutate := func(f func(*Receipt)) Receipt { c := good; f(&c); return c }
	tests := []struct {
		name string
		r    Receipt
		pub  ed25519.PublicKey
		ok   bool
	}{
		{"valid", good, pub, true},
		{"wrong key", good, other.Public().(ed25519.PublicKey), false},
		{"no key", good, nil, false},
		{"unsigned", r, pub, false},
		{"tokens out changed", mutate(func(c *Receipt) { c.TokensOut++ }), pub, false},
		{"output hash changed", mutate(func(c *Receipt) { c.OutputHash = hexSum("other") }), pub, false},
		{"request id changed", mutate(func(c *Receipt) { c.RequestID = "req-2" }), pub, false},
		{"timing changed", mutate(func(c *Receipt) { c.TTFTMs = 0 }), pub, false},
		{"rate added", mutate(func(c *Receipt) { c.MilliTokensPerSec = 1 }), pub, false},
		{"wrong cost signed", SignReceipt(mutate(func(c *Receipt) { c.Cost = 2 }), prov), pub, false},
		{"cumulative below cost", SignReceipt(mutate(func(c *Receipt) { c.Cumulative = 0 }), prov), pub, false},
		{"bad hash signed", SignReceipt(mutate(func(c *Receipt) { c.OutputHash = "zz" }), prov), pub, false},
		{"overflowing price signed", SignReceipt(mutate(func(c *Receipt) { c.PriceOutPerMTok = math.MaxUint64 }), prov), pub, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Verify(tt.pub)
			if tt.ok && err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrBadReceipt) {
				t.Fatalf("Verify = %v, want ErrBadReceipt", err)
			}
		})
	}
}

func TestReceiptJSONRoundTrip(t *testing.T) {
	prov := key("provider")
	r := sampleReceipt()
	r.Cost = 1
	signed := SignReceipt(r, prov)
	b, err := json.Marshal(signed)
	if err != nil {
		t.Fatal(err)
	}
	var got Receipt
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(signed, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if err := got.Verify(prov.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("decoded receipt: Verify = %v", err)
	}
	sb := string(r.SignBytes())
	if !strings.HasPrefix(sb, ReceiptDomain+`{"chain_id":"mycel-test","request_id":"req-1",`) || strings.Contains(sb, "signature") {
		t.Errorf("SignBytes = %q: want domain, canonical JSON in field order, no signature", sb)
	}
	if string(signed.SignBytes()) != sb {
		t.Error("SignBytes depends on the signature")
	}
}

func TestCost(t *testing.T) {
	tests := []struct {
		in, out, pin, pout uint64
		want               uint64
		err                bool
	}{
		{0, 0, 100, 100, 0, false},
		{1, 0, 1, 0, 1, false},             // ceil(1e-6)
		{1_000_000, 0, 5, 0, 5, false},     // exact
		{1_000_001, 0, 5, 0, 6, false},     // ceil
		{500_000, 500_000, 1, 1, 1, false}, // sum before ceil
		{math.MaxUint64, 0, 1, 0, math.MaxUint64/1_000_000 + 1, false},
		{math.MaxUint64, 0, math.MaxUint64, 0, 0, true},
		{math.MaxUint64, math.MaxUint64, 1_000_000, 1_000_000, 0, true},
	}
	for _, tt := range tests {
		got, err := Cost(tt.in, tt.out, tt.pin, tt.pout)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Cost(%d, %d, %d, %d) = %d, %v; want %d, error %v", tt.in, tt.out, tt.pin, tt.pout, got, err, tt.want, tt.err)
		}
	}
}

// TestCostReference compares Cost with math/big on random inputs of all magnitudes.
func TestCostReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	val := func() uint64 { return rng.Uint64() >> rng.IntN(64) }
	million := big.NewInt(1_000_000)
	for i := 0; i < 20000; i++ {
		in, out, pin, pout := val(), val(), val(), val()
		sum := new(big.Int).Mul(new(big.Int).SetUint64(in), new(big.Int).SetUint64(pin))
		sum.Add(sum, new(big.Int).Mul(new(big.Int).SetUint64(out), new(big.Int).SetUint64(pout)))
		sum.Add(sum, big.NewInt(999_999))
		sum.Quo(sum, million)
		got, err := Cost(in, out, pin, pout)
		if !sum.IsUint64() {
			if err == nil {
				t.Fatalf("Cost(%d, %d, %d, %d) = %d, want overflow", in, out, pin, pout, got)
			}
			continue
		}
		if err != nil || got != sum.Uint64() {
			t.Fatalf("Cost(%d, %d, %d, %d) = %d, %v; want %d", in, out, pin, pout, got, err, sum.Uint64())
		}
	}
}

func TestLogprobsCommitment(t *testing.T) {
	ids := []int32{5, -1, 70000}
	lps := []float32{-0.25, 0, float32(math.Inf(-1))}
	var want []byte
	want = append(want, "mycel/logprobs/v1\x00"...)
	for i := range ids {
		want = binary.BigEndian.AppendUint32(want, uint32(ids[i]))
		want = binary.BigEndian.AppendUint32(want, math.Float32bits(lps[i]))
	}
	sum := sha256.Sum256(want)
	if got := LogprobsCommitment(ids, lps); got != hex.EncodeToString(sum[:]) {
		t.Errorf("LogprobsCommitment = %s, want %x", got, sum)
	}
	if LogprobsCommitment(ids, lps) == LogprobsCommitment(ids, []float32{-0.25, 0, -1e30}) {
		t.Error("commitment ignores logprob values")
	}
	empty := sha256.Sum256([]byte(LogprobsDomain))
	if got := LogprobsCommitment(nil, nil); got != hex.EncodeToString(empty[:]) {
		t.Errorf("empty commitment = %s, want %x", got, empty)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	alice := key("alice")
	v := SignVoucher("mycel-test", 3, 1234, alice)
	s, err := EncodeHeader(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeVoucherHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, got); diff != "" {
		t.Errorf("voucher (-want +got):\n%s", diff)
	}
	if _, err := DecodeVoucherHeader(s + "=="); err != nil {
		t.Errorf("padded value rejected: %v", err)
	}
	r := SignReceipt(sampleReceipt(), key("p"))
	s, _ = EncodeHeader(r)
	gr, err := DecodeReceiptHeader(s)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, gr); diff != "" {
		t.Errorf("receipt (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "!!!", "bm90IGpzb24", strings.Repeat("A", MaxHeaderValue+1)} {
		if _, err := DecodeVoucherHeader(bad); err == nil {
			t.Errorf("DecodeVoucherHeader(%.20q) succeeded", bad)
		}
	}
}

func FuzzDecodeVoucherHeader(f *testing.F) {
	s, _ := EncodeHeader(SignVoucher("c", 1, 2, key("alice")))
	f.Add(s)
	f.Add("eyJjaGFpbl9pZCI6MX0")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := DecodeVoucherHeader(s)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to something that decodes to the same voucher.
		again, err := EncodeHeader(v)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := DecodeVoucherHeader(again)
		if err != nil || !cmp.Equal(v, v2) {
			t.Fatalf("round trip: %+v → %+v (%v)", v, v2, err)
		}
	})
}

// TestReceiptSignBytesV1 pins the sign bytes of a receipt: the optional output rate, when 0,
// leaves them as they were before it existed, so receipts signed then still verify; when set
// it is signed like every other field.
func TestReceiptSignBytesV1(t *testing.T) {
	r := sampleReceipt()
	want := ReceiptDomain + `{"chain_id":"mycel-test","request_id":"req-1","provider":"myc1provider","consumer":"myc1consumer","channel_id":7,` +
		`"model_id":"mycel-ref","model_sha256":"` + hexSum("model") + `","request_hash":"` + hexSum("req") + `","output_hash":"` + hexSum("out") + `",` +
		`"tokens_in":1000,"tokens_out":250,"price_in_per_mtok":300,"price_out_per_mtok":1200,"cost":1,"cumulative":10,` +
		`"queue_ms":1,"ttft_ms":2,"duration_ms":30,"logprobs_commitment":"` + r.LogprobsCommitment + `","finish_reason":"stop","time_unix_ms":1700000000000}`
	if got := string(r.SignBytes()); got != want {
		t.Errorf("SignBytes:\n got %s\nwant %s", got, want)
	}
	r.MilliTokensPerSec = 12_500
	rated := strings.Replace(want, `"duration_ms":30,`, `"duration_ms":30,"milli_tokens_per_s":12500,`, 1)
	if got := string(r.SignBytes()); got != rated {
		t.Errorf("SignBytes with a rate:\n got %s\nwant %s", got, rated)
	}
	prov := key("provider")
	b, err := json.Marshal(SignReceipt(r, prov))
	if err != nil {
		t.Fatal(err)
	}
	var got Receipt
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(prov.Public().(ed25519.PublicKey)); err != nil || got.MilliTokensPerSec != 12_500 {
		t.Errorf("decoded rated receipt: rate %d, Verify = %v", got.MilliTokensPerSec, err)
	}
}
