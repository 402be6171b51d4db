package provider

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
)

// BenchmarkServeChat is the provider's per-request CPU cost without HTTP transport or disk:
// the handler called directly, a synthetic 16-token backend, an in-memory store.
func BenchmarkServeChat(b *testing.B) {
	h := newHarnessStore(b, StoreOptions{InMemory: true, NoSync: true}, nil)
	h.openChannel(1, 1<<60)
	h.p.cfg.CreditUmyc = 1 << 40
	h.p.pay.credit = 1 << 40
	body := []byte(`{"model":"synthetic","messages":[{"role":"user","content":"Say something."}],"max_tokens":16}`)
	handler := h.p.Handler()
	var paid uint64
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		v := h.voucher(1, paid)
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body))
		req.Header.Set(channel.HeaderVoucher, v)
		rec := httptest.NewRecorder()
		b.StartTimer()
		handler.ServeHTTP(rec, req)
		b.StopTimer()
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		rc, err := channel.DecodeReceiptHeader(rec.Header().Get(channel.HeaderReceipt))
		if err != nil {
			b.Fatal(err)
		}
		paid = rc.Cumulative
		b.StartTimer()
	}
}

// BenchmarkLogVoucher is the cost the voucher journal adds to a request bringing a new
// voucher: encode and one write(2) to a file on disk (no fsync).
func BenchmarkLogVoucher(b *testing.B) {
	s, err := OpenStore(b.TempDir(), StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	k, _ := testKey("alice")
	v := channel.SignVoucher(testChain, 1, 12345, k)
	b.ReportAllocs()
	for b.Loop() {
		v.Amount++
		if err := s.LogVoucher(v); err != nil {
			b.Fatal(err)
		}
	}
}
