package gateway

import (
	"crypto/ed25519"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/router"
)

type ed25519PublicKey = ed25519.PublicKey

func routerOutcome(ttft time.Duration) router.Outcome {
	return router.Outcome{OK: true, TTFT: ttft, TokensOut: 8, Decode: time.Millisecond}
}

type testWriter struct{ t interface{ Log(...any) } }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func strconvFormat(v uint64) string { return strconv.FormatUint(v, 10) }

// newServer serves g's API on a test server and returns its URL.
func newServer(t *testing.T, g *Gateway) string {
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}
