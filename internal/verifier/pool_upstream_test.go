package verifier

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// gatewayUpstream builds the body a gateway sends a provider for a client's chat body, as
// internal/gateway's upstreamBody does: a body without "stream takes the fast path (fields
// prepended to the client's bytes), any other is decoded into a map, given the fields and
// re-encoded (sorted keys). A seed is added when the client set none.
func gatewayUpstream(client []byte, seed int64) ([]byte, error) {
	var probe struct {
		Seed *int64 `json:"seed"`
	}
	if err := json.Unmarshal(client, &probe); err != nil {
		return nil, err
	}
	if !bytes.Contains(client, []byte(`"stream`)) {
		add := `{"stream":true,"stream_options":{"include_usage":true},`
		if probe.Seed == nil {
			add += `"seed":` + strconv.FormatInt(seed, 10) + `,`
		}
		rest := bytes.TrimLeft(client, " \t\r\n")
		return append([]byte(add), rest[1:]...), nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(client, &m); err != nil {
		return nil, err
	}
	m["stream"] = json.RawMessage("true")
	m["stream_options"] = json.RawMessage(`{"include_usage":true}`)
	if probe.Seed == nil {
		m["seed"] = json.RawMessage(strconv.FormatInt(seed, 10))
	}
	return json.Marshal(m)
}

// TestParseUpstreamBody: the bodies a gateway sends upstream for shopper requests (both of
// its encodings, with its seed or the client's) parse back to the shopper's prompt and
// sampling, the gateway's seed included; other fields and shapes stay refused.
func TestParseUpstreamBody(t *testing.T) {
	const gwSeed = 4242
	for i := 0; i < 64; i++ {
		p := DefaultMix().Draw(7, i)
		sys, user := PoolPrompt(p.PoolIndex)
		client := RequestBody("mycel-ref", p, sys, user)
		up, err := gatewayUpstream(client, gwSeed)
		if err != nil {
			t.Fatal(err)
		}
		model, gotSys, gotUser, got, err := ParseRequestBody(up)
		if err != nil {
			t.Fatalf("request %d: %s: %v", i, up, err)
		}
		if model != "mycel-ref" || gotSys != sys || gotUser != user {
			t.Fatalf("request %d: got %q %q %q, want mycel-ref %q %q", i, model, gotSys, gotUser, sys, user)
		}
		wantSeed := int64(gwSeed)
		if p.Seed != nil {
			wantSeed = *p.Seed
		}
		if got.Seed == nil || *got.Seed != wantSeed {
			t.Errorf("request %d: seed %v, want %d", i, got.Seed, wantSeed)
		}
		if !got.Stream || got.MaxTokens != p.MaxTokens || got.Logprobs != p.Logprobs ||
			!sameFloat(got.Temperature, p.Temperature) || !sameFloat(got.TopP, p.TopP) {
			t.Errorf("request %d: parsed %+v from %s, want the drawn %+v streamed", i, got, up, p)
		}
	}
	for name, body := range map[string]string{
		"unknown stream option": `{"stream":true,"stream_options":{"include_usage":true,"x":1},"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		"unknown field":         `{"stream":true,"stream_options":{"include_usage":true},"seed":1,"model":"m","n":2,"messages":[{"role":"user","content":"hi"}]}`,
		"two user messages":     `{"stream":true,"seed":1,"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
		"stream options string": `{"stream_options":"yes","model":"m","messages":[{"role":"user","content":"hi"}]}`,
	} {
		if _, _, _, _, err := ParseRequestBody([]byte(body)); err == nil {
			t.Errorf("%s: %s accepted", name, body)
		}
	}
}

func sameFloat(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
