package reveal

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func key(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(s[:])
}

func TestSignVerify(t *testing.T) {
	k := key("alice")
	pub := k.Public().(ed25519.PublicKey)
	h := Sign("c", "prov", "req1", k)
	if err := Verify("c", "prov", "req1", h, pub); err != nil {
		t.Fatal(err)
	}
	other := key("bob").Public().(ed25519.PublicKey)
	for name, err := range map[string]error{
		"other key":      Verify("c", "prov", "req1", h, other),
		"other chain":    Verify("d", "prov", "req1", h, pub),
		"other provider": Verify("c", "prov2", "req1", h, pub),
		"other request":  Verify("c", "prov", "req2", h, pub),
		"malformed":      Verify("c", "prov", "req1", "!!", pub),
		"empty":          Verify("c", "prov", "req1", "", pub),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err %v, want ErrBadSignature", name, err)
		}
	}
	// The length prefixes keep field boundaries: moving a byte across them changes the message.
	if string(SignBytes("ab", "c", "d")) == string(SignBytes("a", "bc", "d")) {
		t.Fatal("sign bytes ambiguous")
	}
}

func TestLogprobRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, float32(math.Copysign(0, -1)), -1e-45, -3.4028235e38, float32(math.Inf(-1)), float32(math.Inf(1)), math.Float32frombits(0x7fc00001)}
	for i := 0; i < 10000; i++ {
		vals = append(vals, math.Float32frombits(r.Uint32()))
	}
	in := Response{RequestID: "r", IDs: make([]int32, len(vals)), Logprobs: make([]Logprob, len(vals))}
	for i, v := range vals {
		in.Logprobs[i] = Logprob(v)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Response
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	got := out.Float32s()
	for i, v := range vals {
		if math.Float32bits(got[i]) != math.Float32bits(v) {
			t.Fatalf("value %d: %08x came back as %08x", i, math.Float32bits(v), math.Float32bits(got[i]))
		}
	}
	for _, bad := range []string{`"bits:zz"`, `"bits:1"`, `"x"`, `1e99`} {
		var l Logprob
		if json.Unmarshal([]byte(bad), &l) == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
