// Package apikey stores the gateway's API keys: only a SHA-256 of each secret is kept, with
// its name, budget, spend and rate limits. The store is an append-only journal of JSON lines
// (create, revoke, spend) that the gateway and the CLI append to under an flock, so keys
// created or revoked by `mycel gateway keys` while the gateway runs take effect at once, and
// spend survives a restart (each charge is written before the answer ends).
package apikey

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SecretPrefix starts every API key secret.
const SecretPrefix = "sk-mycel-"

// Errors of Authenticate and Revoke.
var (
	ErrUnknownKey = errors.New("unknown api key")
	ErrRevoked    = errors.New("api key revoked")
)

// Key is an API key as stored (never its secret).
type Key struct {
	ID          string `json:"id"`   // first 12 hex digits of the secret's hash; shown in lists
	Hash        string `json:"hash"` // hex sha256 of the secret
	Name        string `json:"name"`
	BudgetUmyc  uint64 `json:"budget_umyc"` // 0 = unlimited
	SpentUmyc   uint64 `json:"spent_umyc"`
	RPM         int    `json:"rpm,omitempty"` // requests per minute, 0 = unlimited
	TPM         int    `json:"tpm,omitempty"` // tokens per minute, 0 = unlimited
	CreatedUnix int64  `json:"created_unix"`
	Revoked     bool   `json:"revoked,omitempty"`
}

// LimitError is a request refused by a key's rate limit or budget.
type LimitError struct {
	Reason     string        // "rpm", "tpm" or "budget"
	RetryAfter time.Duration // when trying again can succeed (budget: 0, never by itself)
	Message    string
}

func (e *LimitError) Error() string { return e.Message }

type entry struct {
	Op   string `json:"op"` // create | revoke | spend
	Key  *Key   `json:"key,omitempty"`
	ID   string `json:"id,omitempty"`
	Umyc uint64 `json:"umyc,omitempty"`
}

// Store is the key journal. It is safe for concurrent use by one process; several processes
// may append to the same file.
type Store struct {
	path string

	mu     sync.Mutex
	f      *os.File
	offset int64 // journal bytes applied
	keys   map[string]*Key
	byHash map[string]*Key
	usage  map[string]*window
	// reserved is per key the umyc held by requests in flight (Reserve); in memory only: a
	// restart ends every request that held some.
	reserved map[string]uint64
}

type window struct {
	reqs   []time.Time
	tokens []tokenAt
}

type tokenAt struct {
	t time.Time
	n int
}

// Open opens (creating if needed) the journal at path and replays it.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open key store: %w", err)
	}
	s := &Store{path: path, f: f, keys: map[string]*Key{}, byHash: map[string]*Key{}, usage: map[string]*window{}, reserved: map[string]uint64{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// catchUp applies journal lines appended since the last call (by this or another process).
func (s *Store) catchUp() error {
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	if st.Size() <= s.offset {
		return nil
	}
	buf := make([]byte, st.Size()-s.offset)
	n, err := s.f.ReadAt(buf, s.offset)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("key store: read journal: %w", err)
	}
	buf = buf[:n]
	end := bytes.LastIndexByte(buf, '\n')
	if end < 0 {
		return nil // a line still being written
	}
	sc := bufio.NewScanner(bytes.NewReader(buf[:end+1]))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("key store: corrupt journal line at byte %d: %w", s.offset, err)
		}
		s.apply(e)
	}
	s.offset += int64(end + 1)
	return nil
}

func (s *Store) apply(e entry) {
	switch e.Op {
	case "create":
		if e.Key != nil && s.keys[e.Key.ID] == nil {
			k := *e.Key
			s.keys[k.ID] = &k
			s.byHash[k.Hash] = &k
		}
	case "revoke":
		if k := s.keys[e.ID]; k != nil {
			k.Revoked = true
		}
	case "spend":
		if k := s.keys[e.ID]; k != nil {
			k.SpentUmyc += e.Umyc
		}
	}
}

// appendEntry writes e under an exclusive flock, after applying what others appended, and
// applies it.
func (s *Store) appendEntry(e entry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("key store: %w", err)
	}
	line = append(line, '\n')
	fd := int(s.f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("key store: lock: %w", err)
	}
	defer syscall.Flock(fd, syscall.LOCK_UN)
	if err := s.catchUp(); err != nil {
		return err
	}
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("key store: append: %w", err)
	}
	s.apply(e)
	s.offset += int64(len(line))
	return nil
}

// Hash returns the stored hash of a secret.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a new key and returns its secret (shown once) and record. budget is in umyc
// (0 = unlimited); rpm and tpm 0 mean unlimited. The journal is fsynced.
func (s *Store) Create(name string, budget uint64, rpm, tpm int, now time.Time) (string, Key, error) {
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "\n\r\t") {
		return "", Key{}, errors.New("create key: name must have 1..64 characters and no control characters")
	}
	if rpm < 0 || tpm < 0 {
		return "", Key{}, errors.New("create key: rpm and tpm must not be negative")
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Key{}, fmt.Errorf("create key: %w", err)
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	h := Hash(secret)
	k := Key{ID: h[:12], Hash: h, Name: name, BudgetUmyc: budget, RPM: rpm, TPM: tpm, CreatedUnix: now.Unix()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.appendEntry(entry{Op: "create", Key: &k}); err != nil {
		return "", Key{}, err
	}
	if err := s.f.Sync(); err != nil {
		return "", Key{}, fmt.Errorf("create key: sync: %w", err)
	}
	return secret, k, nil
}

// List returns all keys, revoked ones included, by creation time then id.
func (s *Store) List() ([]Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(); err != nil {
		return nil, err
	}
	out := make([]Key, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b Key) int {
		if a.CreatedUnix != b.CreatedUnix {
			return int(a.CreatedUnix - b.CreatedUnix)
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Revoke revokes the key with this id or name (a name must be unambiguous).
func (s *Store) Revoke(idOrName string) (Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUp(); err != nil {
		return Key{}, err
	}
	k := s.keys[idOrName]
	if k == nil {
		for _, c := range s.keys {
			if c.Name == idOrName {
				if k != nil {
					return Key{}, fmt.Errorf("revoke %q: several keys have this name; give the id", idOrName)
				}
				k = c
			}
		}
	}
	if k == nil {
		return Key{}, fmt.Errorf("revoke %q: %w", idOrName, ErrUnknownKey)
	}
	if err := s.appendEntry(entry{Op: "revoke", ID: k.ID}); err != nil {
		return Key{}, err
	}
	if err := s.f.Sync(); err != nil {
		return Key{}, fmt.Errorf("revoke: sync: %w", err)
	}
	return *k, nil
}

// Authenticate returns the key whose secret this is.
func (s *Store) Authenticate(secret string) (Key, error) {
	h := Hash(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another process may have created or revoked keys since (one fstat when it has not).
	if err := s.catchUp(); err != nil {
		return Key{}, err
	}
	k := s.byHash[h]
	switch {
	case k == nil:
		return Key{}, ErrUnknownKey
	case k.Revoked:
		return Key{}, ErrRevoked
	}
	return *k, nil
}

// Admit checks the key's budget and rate limits at now and, if the request may run, counts it
// against the requests-per-minute limit.
func (s *Store) Admit(id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return ErrUnknownKey
	}
	if k.Revoked {
		return ErrRevoked
	}
	if k.BudgetUmyc > 0 && k.SpentUmyc >= k.BudgetUmyc {
		return &LimitError{Reason: "budget", Message: fmt.Sprintf("api key %s has spent its budget of %d umyc", k.ID, k.BudgetUmyc)}
	}
	w := s.usage[id]
	if w == nil {
		w = &window{}
		s.usage[id] = w
	}
	cut := now.Add(-time.Minute)
	i := 0
	for i < len(w.reqs) && !w.reqs[i].After(cut) {
		i++
	}
	w.reqs = w.reqs[i:]
	j := 0
	for j < len(w.tokens) && !w.tokens[j].t.After(cut) {
		j++
	}
	w.tokens = w.tokens[j:]
	if k.RPM > 0 && len(w.reqs) >= k.RPM {
		return &LimitError{Reason: "rpm", RetryAfter: w.reqs[0].Sub(cut), Message: fmt.Sprintf("rate limit of %d requests per minute reached for api key %s", k.RPM, k.ID)}
	}
	if k.TPM > 0 {
		used := 0
		for _, t := range w.tokens {
			used += t.n
		}
		if used >= k.TPM {
			return &LimitError{Reason: "tpm", RetryAfter: w.tokens[0].t.Sub(cut), Message: fmt.Sprintf("rate limit of %d tokens per minute reached for api key %s", k.TPM, k.ID)}
		}
	}
	w.reqs = append(w.reqs, now)
	return nil
}

// Charge adds umyc to the key's spend (written to the journal before it returns) and counts
// tokens against its tokens-per-minute limit.
func (s *Store) Charge(id string, umyc uint64, tokens int, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return ErrUnknownKey
	}
	if tokens > 0 {
		w := s.usage[id]
		if w == nil {
			w = &window{}
			s.usage[id] = w
		}
		w.tokens = append(w.tokens, tokenAt{now, tokens})
	}
	if umyc == 0 {
		return nil
	}
	if err := s.appendEntry(entry{Op: "spend", ID: id, Umyc: umyc}); err != nil {
		return err
	}
	return nil
}

// Reservation is budget held for one request in flight. Release it once the request's cost
// has been charged (or the request failed); releasing twice, or a nil Reservation, is a no-op.
type Reservation struct {
	s    *Store
	id   string
	umyc uint64
	once sync.Once
}

// Reserve holds umyc of the key's budget for a request, so that concurrent requests cannot
// together spend more than the budget: it refuses with a LimitError (reason "budget") when
// budget − spent − reserved < umyc. A key without a budget needs no reservation (nil). When
// the request would fit once the requests in flight have settled, RetryAfter is a second.
func (s *Store) Reserve(id string, umyc uint64) (*Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[id]
	if k == nil {
		return nil, ErrUnknownKey
	}
	if k.BudgetUmyc == 0 {
		return nil, nil
	}
	held := s.reserved[id]
	left := k.BudgetUmyc - min(k.SpentUmyc, k.BudgetUmyc)
	if left < held || left-held < umyc {
		e := &LimitError{Reason: "budget", Message: fmt.Sprintf("api key %s has %d umyc of its budget left, %d held by requests in flight, and this request may cost up to %d umyc",
			k.ID, left, held, umyc)}
		if left >= umyc {
			e.RetryAfter = time.Second
		}
		return nil, e
	}
	s.reserved[id] = held + umyc
	return &Reservation{s: s, id: id, umyc: umyc}, nil
}

// Release returns the reservation's umyc to the key's budget.
func (r *Reservation) Release() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		r.s.mu.Lock()
		defer r.s.mu.Unlock()
		r.s.reserved[r.id] -= min(r.umyc, r.s.reserved[r.id])
		if r.s.reserved[r.id] == 0 {
			delete(r.s.reserved, r.id)
		}
	})
}

// Reserved returns the umyc held for the key by requests in flight.
func (s *Store) Reserved(id string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserved[id]
}
