package apikey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCreateAuthenticateSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	secret, k, err := s.Create("alice", 1000, 0, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, SecretPrefix) || k.Hash != Hash(secret) || k.ID != k.Hash[:12] {
		t.Fatalf("secret %q / key %+v: want prefix, hash and id derived from the secret", secret, k)
	}
	if err := s.Charge(k.ID, 300, 10, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Charge(k.ID, 200, 10, now); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Authenticate(secret)
	if err != nil {
		t.Fatal(err)
	}
	want := k
	want.SpentUmyc = 500
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
	if _, err := s2.Authenticate(secret + "x"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("wrong secret: err = %v, want ErrUnknownKey", err)
	}
}

func TestSecretNotStored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	secret, _, err := s.Create("k", 0, 0, 0, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b, secret) || strings.Contains(b, strings.TrimPrefix(secret, SecretPrefix)) {
		t.Error("journal contains the secret")
	}
}

// TestTwoProcesses has a second store (the CLI) create and revoke keys while the first (the
// gateway) runs: the first sees both without reopening.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.jsonl")
	gw, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	cli, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	now := time.Unix(100, 0)
	secret, k, err := cli.Create("bob", 0, 0, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Authenticate(secret); err != nil {
		t.Fatalf("gateway does not see the key the CLI created: %v", err)
	}
	if err := gw.Charge(k.ID, 7, 1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.Authenticate(secret); !errors.Is(err, ErrRevoked) {
		t.Errorf("after revoke: err = %v, want ErrRevoked", err)
	}
	list, err := cli.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].SpentUmyc != 7 || !list[0].Revoked {
		t.Errorf("CLI list = %+v, want one revoked key that spent 7", list)
	}
}

func TestAdmitLimits(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name       string
		budget     uint64
		rpm, tpm   int
		spend      uint64
		tokens     int
		requests   int
		at         time.Time
		wantReason string
		wantRetry  time.Duration
	}{
		{name: "unlimited", requests: 100, at: t0},
		{name: "rpm reached", rpm: 3, requests: 3, at: t0.Add(10 * time.Second), wantReason: "rpm", wantRetry: 50 * time.Second},
		{name: "rpm window slides", rpm: 3, requests: 3, at: t0.Add(61 * time.Second)},
		{name: "tpm reached", tpm: 100, tokens: 100, at: t0.Add(time.Second), wantReason: "tpm", wantRetry: 59 * time.Second},
		{name: "tpm below", tpm: 100, tokens: 99, at: t0.Add(time.Second)},
		{name: "budget spent", budget: 50, spend: 50, at: t0, wantReason: "budget"},
		{name: "budget left", budget: 50, spend: 49, at: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(filepath.Join(t.TempDir(), "keys.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, k, err := s.Create("k", tt.budget, tt.rpm, tt.tpm, t0)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.requests; i++ {
				if err := s.Admit(k.ID, t0); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if err := s.Charge(k.ID, tt.spend, tt.tokens, t0); err != nil {
				t.Fatal(err)
			}
			err = s.Admit(k.ID, tt.at)
			var le *LimitError
			gotReason, gotRetry := "", time.Duration(0)
			if errors.As(err, &le) {
				gotReason, gotRetry = le.Reason, le.RetryAfter
			} else if err != nil {
				t.Fatal(err)
			}
			if gotReason != tt.wantReason || gotRetry != tt.wantRetry {
				t.Errorf("Admit = (%q, %v), want (%q, %v)", gotReason, gotRetry, tt.wantReason, tt.wantRetry)
			}
		})
	}
}

func TestCreateRejectsBadInput(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range []string{"", "a\nb", strings.Repeat("x", 65)} {
		if _, _, err := s.Create(name, 0, 0, 0, time.Unix(1, 0)); err == nil {
			t.Errorf("Create(%q) = nil error", name)
		}
	}
	if _, _, err := s.Create("ok", 0, -1, 0, time.Unix(1, 0)); err == nil {
		t.Error("Create with negative rpm = nil error")
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

func TestReserve(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_700_000_000, 0)
	_, k, err := s.Create("k", 100, 0, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	r1, err := s.Reserve(k.ID, 60)
	if err != nil {
		t.Fatal(err)
	}
	// 40 left beyond the reservation: 50 waits for it (Retry-After), 40 fits.
	var le *LimitError
	if _, err := s.Reserve(k.ID, 50); !errors.As(err, &le) || le.Reason != "budget" || le.RetryAfter == 0 {
		t.Fatalf("Reserve(50) = %v, want a budget limit with RetryAfter", err)
	}
	r2, err := s.Reserve(k.ID, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Charge(k.ID, 30, 0, now); err != nil {
		t.Fatal(err)
	}
	r1.Release()
	r1.Release() // twice is once
	if got := s.Reserved(k.ID); got != 40 {
		t.Errorf("reserved = %d, want 40", got)
	}
	// 70 left: 71 will not fit even once the 40 held are released.
	if _, err := s.Reserve(k.ID, 71); !errors.As(err, &le) || le.RetryAfter != 0 {
		t.Errorf("Reserve(71) = %v, want a budget limit without RetryAfter", err)
	}
	r2.Release()
	if r, err := s.Reserve(k.ID, 70); err != nil || r == nil {
		t.Errorf("Reserve(70) after releases = %v, %v", r, err)
	}
	// A key without a budget needs no reservation.
	_, u, _ := s.Create("u", 0, 0, 0, now)
	if r, err := s.Reserve(u.ID, 1<<40); r != nil || err != nil {
		t.Errorf("unlimited key: Reserve = %v, %v, want nil, nil", r, err)
	}
	var nilRes *Reservation
	nilRes.Release()
}
