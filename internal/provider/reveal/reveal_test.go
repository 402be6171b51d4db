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

// TestSignVerifyAnswer: a provider-signed reveal answer verifies, survives its JSON round
// trip, and fails after any change to the chain, provider, request, an id, a logprob's bits
// (even -0 for 0) or the key.
func TestSignVerifyAnswer(t *testing.T) {
	k := key("provider")
	pub := k.Public().(ed25519.PublicKey)
	in := Response{RequestID: "req1", IDs: []int32{5, 7, 11}, Logprobs: []Logprob{-0.5, 0, -2.25}}.Sign("c", "prov", k)
	if in.Signature == "" {
		t.Fatal("Sign left no signature")
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify("c", "prov", pub); err != nil {
		t.Fatalf("round-tripped answer: %v", err)
	}
	if err := VerifyAnswer("c", "prov", "req1", r.IDs, r.Float32s(), r.Signature, pub); err != nil {
		t.Fatalf("VerifyAnswer: %v", err)
	}
	tamper := func(f func(*Response)) Response {
		c := Response{RequestID: r.RequestID, IDs: append([]int32(nil), r.IDs...),
			Logprobs: append([]Logprob(nil), r.Logprobs...), Signature: r.Signature}
		f(&c)
		return c
	}
	negZero := Logprob(float32(math.Copysign(0, -1)))
	other := key("other").Public().(ed25519.PublicKey)
	for name, err := range map[string]error{
		"other chain":    r.Verify("d", "prov", pub),
		"other provider": r.Verify("c", "prov2", pub),
		"other key":      r.Verify("c", "prov", other),
		"short key":      r.Verify("c", "prov", pub[:5]),
		"other request":  tamper(func(c *Response) { c.RequestID = "req2" }).Verify("c", "prov", pub),
		"other id":       tamper(func(c *Response) { c.IDs[1] = 8 }).Verify("c", "prov", pub),
		"dropped token":  tamper(func(c *Response) { c.IDs, c.Logprobs = c.IDs[:2], c.Logprobs[:2] }).Verify("c", "prov", pub),
		"other logprob":  tamper(func(c *Response) { c.Logprobs[2] = -2.5 }).Verify("c", "prov", pub),
		"-0 for 0":       tamper(func(c *Response) { c.Logprobs[1] = negZero }).Verify("c", "prov", pub),
		"missing value":  tamper(func(c *Response) { c.Logprobs = c.Logprobs[:2] }).Verify("c", "prov", pub),
		"no signature":   tamper(func(c *Response) { c.Signature = "" }).Verify("c", "prov", pub),
		"malformed":      tamper(func(c *Response) { c.Signature = "!!" }).Verify("c", "prov", pub),
		"consumer's signature over the request": tamper(func(c *Response) {
			c.Signature = Sign("c", "prov", "req1", k)
		}).Verify("c", "prov", pub),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err %v, want ErrBadSignature", name, err)
		}
	}
}
