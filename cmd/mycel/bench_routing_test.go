package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
)

// TestBenchRoutingProven: --proven gives the fleet capacity proofs, which change what balanced
// does and leave the policies that rank by one criterion alone (requests run one at a time).
func TestBenchRoutingProven(t *testing.T) {
	run := func(extra ...string) map[string]routingRow {
		t.Helper()
		var out bytes.Buffer
		args := append([]string{"--providers", "20", "--requests", "1000", "--output", "json"}, extra...)
		if err := benchRouting(context.Background(), args, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var res struct {
			Proven bool         `json:"proven"`
			Rows   []routingRow `json:"rows"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatal(err)
		}
		if res.Proven != (len(extra) > 0) {
			t.Fatalf("proven = %v with args %v", res.Proven, extra)
		}
		rows := map[string]routingRow{}
		for _, r := range res.Rows {
			if !r.Hedging {
				rows[r.Strategy] = r
			}
		}
		return rows
	}
	plain, proven := run(), run("--proven")
	if plain["cheapest"] != proven["cheapest"] || plain["fastest"] != proven["fastest"] {
		t.Errorf("cheapest or fastest changed with proofs:\n%+v\n%+v", plain, proven)
	}
	if plain["balanced"].CostPerMTok == proven["balanced"].CostPerMTok {
		t.Errorf("balanced cost %v with and without proofs: the proofs were not used", plain["balanced"].CostPerMTok)
	}
}
