package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
)

// TestGatewayMux: `mycel gateway` serves the explorer at /explorer and /explorer/, fed the
// gateway's own traffic, next to the OpenAI API.
func TestGatewayMux(t *testing.T) {
	key, addr := gatewaytest.Key("gateway")
	gw, err := gateway.New(gateway.Config{}, gateway.Deps{Chain: gatewaytest.NewLedger("mycel-test"), ConsumerKey: key, ConsumerAddress: addr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gatewayMux(gw, nil, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// A generation request the gateway refuses (no such model) is counted.
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"none","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("unknown model answered %s", resp.Status)
	}
	for _, p := range []string{"/explorer", "/explorer/"} {
		if code, body := get(p); code != http.StatusOK || !strings.Contains(body, "<html") {
			t.Errorf("GET %s: %d %.80q, want the explorer page", p, code, body)
		}
	}
	code, body := get("/explorer/api/traffic")
	var tr struct {
		Attached         bool
		Requests, Errors uint64
	}
	if err := json.Unmarshal([]byte(body), &tr); err != nil || code != http.StatusOK {
		t.Fatalf("traffic: %d %s (%v)", code, body, err)
	}
	if !tr.Attached || tr.Requests != 1 || tr.Errors != 1 {
		t.Errorf("traffic %+v, want the gateway attached with 1 request, 1 error", tr)
	}
	if code, _ := get("/v1/models"); code != http.StatusOK {
		t.Errorf("GET /v1/models: %d", code)
	}
}
