package provider

import (
	"crypto/ed25519"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
)

// TestSignedJSON: the signed receipt JSON built from the unsigned one is exactly what
// encoding/json writes for the signed receipt, and it verifies.
func TestSignedJSON(t *testing.T) {
	k, _ := testKey("provider")
	r := channel.Receipt{ChainID: "c\"hain<>", RequestID: "r1", ChannelID: 3, TokensIn: 7, TokensOut: 2, PriceInPerMTok: 1_000_000, PriceOutPerMTok: 1_000_000,
		Cost: 9, Cumulative: 9, FinishReason: "stop", TimeUnixMs: 1}
	unsigned, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	signed := channel.SignReceipt(r, k)
	want, _ := json.Marshal(signed)
	got := signedJSON(unsigned, signed.Signature)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("signed JSON (-want +got):\n%s", diff)
	}
	var back channel.Receipt
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(k.Public().(ed25519.PublicKey)); err != nil {
		t.Error(err)
	}
}
