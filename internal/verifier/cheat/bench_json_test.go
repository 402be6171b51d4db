package cheat

import (
	"encoding/json"
	"testing"
)

// TestBenchReportJSON: `mycel bench verify --output json` encodes the
// report with its config, whose Progress callback must not break it.
func TestBenchReportJSON(t *testing.T) {
	rep := BenchReport{Config: BenchConfig{Registered: "mycel-ref", Progress: func(string) {}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back struct {
		Config struct{ Registered string } `json:"config"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Config.Registered != "mycel-ref" {
		t.Fatalf("round trip of %s: %+v, %v", b, back, err)
	}
}
