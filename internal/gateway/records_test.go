package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// get sends GET path to the gateway with the API key secret and returns the response with its
// body read.
func (e *env) get(path, secret string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// record reads the record of request id with the test key.
func (e *env) record(id string) gwapi.Record {
	e.t.Helper()
	resp, b := e.get(gwapi.RecordPath(id), e.secret)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET record %s: status %d: %s", id, resp.StatusCode, b)
	}
	var rec gwapi.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		e.t.Fatalf("record %s: %v", b, err)
	}
	return rec
}

// checkAttempt checks that attempt a of request reqID is what provider name received as its
// n-th request and signed for: its body byte for byte, hashed by the receipt.
func checkAttempt(t *testing.T, e *env, reqID string, a gwapi.Attempt, name string, n int, withReceipt bool) {
	t.Helper()
	bodies := e.provs[name].Bodies()
	if n >= len(bodies) {
		t.Fatalf("%s got %d requests, want at least %d", name, len(bodies), n+1)
	}
	if a.Provider != e.addrs[name] || !strings.HasPrefix(a.ProviderRequestID, reqID+".") {
		t.Errorf("attempt by %s as %q, want %s with a request id under %s", a.Provider, a.ProviderRequestID, e.addrs[name], reqID)
	}
	if a.Body != string(bodies[n]) {
		t.Errorf("attempt body\n%s\nwant what %s received\n%s", a.Body, name, bodies[n])
	}
	if !withReceipt {
		if a.Receipt.Signature != nil || a.Receipt.RequestHash != "" {
			t.Errorf("attempt without a receipt has %+v", a.Receipt)
		}
		return
	}
	sum := sha256.Sum256([]byte(a.Body))
	if got := hex.EncodeToString(sum[:]); got != a.Receipt.RequestHash || a.Receipt.RequestHash == "" {
		t.Errorf("sha256 of the body %s, receipt's request hash %q", got, a.Receipt.RequestHash)
	}
	if a.Receipt.RequestID != a.ProviderRequestID || a.Receipt.Provider != e.addrs[name] {
		t.Errorf("receipt for %q by %s, want %q by %s", a.Receipt.RequestID, a.Receipt.Provider, a.ProviderRequestID, e.addrs[name])
	}
	pub, err := e.gw.dir.pubkey(t.Context(), e.addrs[name])
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Receipt.Verify(pub); err != nil {
		t.Errorf("receipt: %v", err)
	}
}

// TestGatewayRecord: the record of a plain and of a streamed answer is there as soon as the
// client has read the answer's last byte (no wait for settlement), with the exact upstream
// body and the receipt that hashes it; another key or an unknown id gets 404.
func TestGatewayRecord(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	for i, tt := range []struct {
		name, body string
	}{
		{"plain", chatBody("")},
		{"streamed", chatBody(`"stream":true,"seed":5,`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.settled() // no 402 and second try from a lagging voucher
			resp, b := e.post("/v1/chat/completions", tt.body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			id := resp.Header.Get(HeaderRequestID)
			rec := e.record(id) // right after the last byte
			if rec.RequestID != id || rec.Model != testModel || len(rec.Attempts) != 1 {
				t.Fatalf("record %+v, want request %s of %s with one attempt", rec, id, testModel)
			}
			checkAttempt(t, e, id, rec.Attempts[0], "a", i, true)
		})
	}

	// Another key, an unknown id, no key.
	other, _, err := e.keys.Create("other", 0, 0, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := e.post("/v1/chat/completions", chatBody(""))
	id := resp.Header.Get(HeaderRequestID)
	for _, tt := range []struct {
		name, path, secret string
		want               int
	}{
		{"other key", gwapi.RecordPath(id), other, http.StatusNotFound},
		{"unknown id", gwapi.RecordPath("req_0123"), e.secret, http.StatusNotFound},
		{"no key", gwapi.RecordPath(id), "", http.StatusUnauthorized},
		{"other key, reveal", gwapi.RevealPath(id, 0), other, http.StatusNotFound},
	} {
		resp, b := e.get(tt.path, tt.secret)
		if perr := openai.ParseError(resp.StatusCode, b); resp.StatusCode != tt.want || perr.Type == "" {
			t.Errorf("%s: status %d %s, want %d with an OpenAI error", tt.name, resp.StatusCode, b, tt.want)
		}
	}
	if got := e.provs["a"].Reveals(); got != 0 {
		t.Errorf("another key's reveal reached the provider (%d reveals)", got)
	}
}

// TestGatewayRecordFailover: after a mid-stream failover the record holds both providers'
// parts in order: a's, which broke without a receipt, and b's continuation with its receipt.
func TestGatewayRecordFailover(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	resp, b := e.post("/v1/completions", `{"model":"`+testModel+`","prompt":"`+testPrompt+`","stream":true}`)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("[DONE]")) {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	id := resp.Header.Get(HeaderRequestID)
	rec := e.record(id)
	if len(rec.Attempts) != 2 {
		t.Fatalf("record has %d attempts, want a's and b's", len(rec.Attempts))
	}
	checkAttempt(t, e, id, rec.Attempts[0], "a", 0, false)
	checkAttempt(t, e, id, rec.Attempts[1], "b", 0, true)
	if rec.Attempts[0].ProviderRequestID == rec.Attempts[1].ProviderRequestID {
		t.Errorf("both attempts sent as %s", rec.Attempts[0].ProviderRequestID)
	}
}

// lastByteWriter checks, when the gateway writes the last part of an answer ([DONE], or a
// plain answer's body), whether the request's record is already kept.
type lastByteWriter struct {
	http.ResponseWriter
	check func(id string)
}

func (w *lastByteWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("data: [DONE]")) || bytes.HasPrefix(p, []byte(`{"id":`)) {
		w.check(w.Header().Get(HeaderRequestID))
	}
	return w.ResponseWriter.Write(p)
}

func (w *lastByteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestGatewayRecordOrdering: the record is kept before the answer's last part ([DONE], or the
// body of a plain answer) is written, so a client that has read it finds the record.
func TestGatewayRecordOrdering(t *testing.T) {
	e := newEnv(t, Config{}, cheap("a"))
	var mu sync.Mutex
	checked := map[string]bool{} // request id → record kept when its last part was written
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.gw.Handler().ServeHTTP(&lastByteWriter{ResponseWriter: w, check: func(id string) {
			_, ok := e.gw.records.get(id, e.keyID, time.Now())
			mu.Lock()
			checked[id] = ok
			mu.Unlock()
		}}, r)
	}))
	t.Cleanup(srv.Close)
	e.url = srv.URL
	for _, tt := range []struct{ path, body string }{
		{"/v1/chat/completions", chatBody("")},
		{"/v1/chat/completions", chatBody(`"stream":true,`)},
		{"/v1/completions", `{"model":"` + testModel + `","prompt":"` + testPrompt + `"}`},
		{"/v1/completions", `{"model":"` + testModel + `","prompt":"` + testPrompt + `","stream":true}`},
	} {
		e.settled()
		resp, b := e.post(tt.path, tt.body)
		id := resp.Header.Get(HeaderRequestID)
		mu.Lock()
		kept, seen := checked[id]
		mu.Unlock()
		if resp.StatusCode != http.StatusOK || !seen {
			t.Fatalf("%s %s: status %d, last part seen %v: %s", tt.path, tt.body, resp.StatusCode, seen, b)
		}
		if !kept {
			t.Errorf("%s %s: record not kept when the answer's last part was written", tt.path, tt.body)
		}
		if rec := e.record(id); len(rec.Attempts) != 1 {
			t.Errorf("record %+v, want one attempt", rec)
		}
	}
}

// TestGatewayRecordEviction: beyond RecordLimit the oldest record goes; after RecordTTL every
// record goes; RecordLimit -1 keeps none.
func TestGatewayRecordEviction(t *testing.T) {
	e := newEnv(t, Config{RecordLimit: 2, RecordTTL: time.Minute}, cheap("a"))
	var skew atomic.Int64
	e.gw.now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	var ids []string
	for range 3 {
		e.settled()
		resp, b := e.post("/v1/chat/completions", chatBody(""))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		ids = append(ids, resp.Header.Get(HeaderRequestID))
	}
	status := func() []int {
		var out []int
		for _, id := range ids {
			resp, _ := e.get(gwapi.RecordPath(id), e.secret)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	if diff := cmp.Diff([]int{404, 200, 200}, status()); diff != "" {
		t.Errorf("records after 3 requests with a limit of 2 (-want +got):\n%s", diff)
	}
	skew.Store(int64(time.Minute))
	if diff := cmp.Diff([]int{404, 404, 404}, status()); diff != "" {
		t.Errorf("records after their TTL (-want +got):\n%s", diff)
	}
	if n := e.gw.records.len(); n != 0 {
		t.Errorf("%d records kept after their TTL", n)
	}

	off := newEnv(t, Config{RecordLimit: -1}, cheap("a"))
	resp, _ := off.post("/v1/chat/completions", chatBody(""))
	if resp, _ := off.get(gwapi.RecordPath(resp.Header.Get(HeaderRequestID)), off.secret); resp.StatusCode != http.StatusNotFound {
		t.Errorf("RecordLimit -1: record status %d, want 404", resp.StatusCode)
	}
}

// TestRecordsBounds: the record store holds at most limit records and maxBytes of bodies,
// evicting the oldest, and its queue does not grow with the records it has dropped.
func TestRecordsBounds(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	body := make([]byte, 1000)
	size := int64(len(body) + 2*recordOverhead) // one attempt
	s := newRecords(3, time.Hour, 2*size)
	put := func(i int) {
		s.put(&record{id: "r" + string(rune('a'+i%26)) + itoa(uint64(i)), at: t0.Add(time.Duration(i) * time.Second),
			tries: []recordAttempt{{body: body}}})
	}
	for i := range 10_000 {
		put(i)
	}
	if s.len() != 2 || s.bytes != 2*size {
		t.Errorf("kept %d records of %d bytes, want 2 of %d (the byte bound)", s.len(), s.bytes, 2*size)
	}
	if live := len(s.queue) - s.head; live != 2 || cap(s.queue) > 1024 {
		t.Errorf("queue: %d live of %d (cap %d), want 2 live and the dead front reclaimed", live, len(s.queue), cap(s.queue))
	}
	last := "r" + string(rune('a'+9999%26)) + itoa(9999)
	if _, ok := s.get(last, "", t0.Add(10_000*time.Second)); !ok {
		t.Errorf("newest record %s not kept", last)
	}
	if _, ok := s.get(last, "other-key", t0.Add(10_000*time.Second)); ok {
		t.Error("record given to another key")
	}
	s2 := newRecords(3, time.Hour, 1<<30)
	for i := range 5 {
		s2.put(&record{id: itoa(uint64(i)), at: t0})
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, ok := s2.get(itoa(uint64(i)), "", t0); ok != want {
			t.Errorf("record %d kept %v, want %v (limit 3, oldest first)", i, ok, want)
		}
	}
}

// TestGatewayReveal: the gateway fetches the provider's reveal of an attempt signed as the
// paying consumer (the fake provider checks the signature with reveal.Verify) and relays it;
// a provider's refusal is relayed as it is; a bad attempt index is 404; a provider gone, 502.
func TestGatewayReveal(t *testing.T) {
	a := cheap("a")
	a.cfg.BreakAfter = 3
	e := newEnv(t, Config{NoHedge: true}, a, dear("b"))
	resp, b := e.post("/v1/chat/completions", chatBody(""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	id := resp.Header.Get(HeaderRequestID)
	rec := e.record(id)
	if len(rec.Attempts) != 2 {
		t.Fatalf("record has %d attempts, want a's and b's", len(rec.Attempts))
	}

	// b's part: revealed.
	resp, b = e.get(gwapi.RevealPath(id, 1), e.secret)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("reveal of b's part: status %d (%s): %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var rv reveal.Response
	if err := json.Unmarshal(b, &rv); err != nil {
		t.Fatal(err)
	}
	if rv.RequestID != rec.Attempts[1].ProviderRequestID || len(rv.IDs) != 5 || len(rv.Logprobs) != 5 {
		t.Errorf("reveal %+v, want b's 5 tokens of %s", rv, rec.Attempts[1].ProviderRequestID)
	}
	if e.provs["b"].Reveals() != 1 {
		t.Errorf("b answered %d reveals, want 1", e.provs["b"].Reveals())
	}

	// a's part: a broke before its receipt and has nothing to reveal; its 404 is relayed.
	resp, b = e.get(gwapi.RevealPath(id, 0), e.secret)
	if perr := openai.ParseError(resp.StatusCode, b); resp.StatusCode != http.StatusNotFound || perr.Type != openai.TypeNotFound || !strings.Contains(perr.Message, "no receipt") {
		t.Errorf("reveal of a's part: status %d %s, want a's own 404", resp.StatusCode, b)
	}

	// Attempts that do not exist.
	for _, path := range []string{gwapi.RevealPath(id, 2), gwapi.RevealPath(id, -1), gwapi.RecordPath(id) + "/attempts/x/logprobs", gwapi.RevealPath("req_nope", 0)} {
		if resp, b := e.get(path, e.secret); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d %s, want 404", path, resp.StatusCode, b)
		}
	}

	// b gone: 502.
	e.srvs["b"].Close()
	resp, b = e.get(gwapi.RevealPath(id, 1), e.secret)
	if perr := openai.ParseError(resp.StatusCode, b); resp.StatusCode != http.StatusBadGateway || !strings.Contains(perr.Message, e.addrs["b"]) {
		t.Errorf("reveal from a provider gone: status %d %s, want 502 naming it", resp.StatusCode, b)
	}
}
