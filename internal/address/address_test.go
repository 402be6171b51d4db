package address

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil/bech32"
)

func TestFromPubKeyRoundTrip(t *testing.T) {
	seed := sha256.Sum256([]byte("alice"))
	pub := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	a := FromPubKey(pub)
	if !strings.HasPrefix(a, Prefix+"1") {
		t.Fatalf("FromPubKey = %q, want prefix %q", a, Prefix+"1")
	}
	if err := Validate(a); err != nil {
		t.Fatalf("Validate(%q) = %v", a, err)
	}
	raw, err := Bytes(a)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pub)
	if string(raw) != string(sum[:20]) {
		t.Errorf("Bytes = %x, want sha256(pub)[:20] = %x", raw, sum[:20])
	}
}

func encode(t *testing.T, hrp string, raw []byte, m bool) string {
	t.Helper()
	conv, err := bech32.ConvertBits(raw, 8, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if m {
		s, err = bech32.EncodeM(hrp, conv)
	} else {
		s, err = bech32.Encode(hrp, conv)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidateErrors(t *testing.T) {
	good := FromBytes(make([]byte, 20))
	flipped := []byte(good)
	last := len(flipped) - 1
	if flipped[last] == 'q' {
		flipped[last] = 'p'
	} else {
		flipped[last] = 'q'
	}
	tests := []struct {
		name string
		addr string
		want error
	}{
		{"empty", "", ErrFormat},
		{"bad checksum", string(flipped), ErrChecksum},
		{"wrong prefix", encode(t, "cosmos", make([]byte, 20), false), ErrPrefix},
		{"short", encode(t, Prefix, make([]byte, 19), false), ErrLength},
		{"long", encode(t, Prefix, make([]byte, 32), false), ErrLength},
		{"upper case", strings.ToUpper(good), ErrFormat},
		{"bech32m", encode(t, Prefix, make([]byte, 20), true), ErrFormat},
		{"garbage", "myc1!!!", ErrFormat},
		{"too long", Prefix + "1" + strings.Repeat("q", 100), ErrLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.addr)
			if !errors.Is(err, tt.want) {
				t.Errorf("Validate(%q) = %v, want %v", tt.addr, err, tt.want)
			}
		})
	}
	if err := Validate(good); err != nil {
		t.Errorf("Validate(%q) = %v, want nil", good, err)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add(FromBytes(make([]byte, 20)))
	f.Add("myc1qqqq")
	f.Fuzz(func(t *testing.T, s string) {
		raw, err := Bytes(s)
		if err != nil {
			return
		}
		if got := FromBytes(raw); got != s {
			t.Fatalf("valid address %q re-encodes as %q", s, got)
		}
	})
}
