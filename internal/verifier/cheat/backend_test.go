package cheat

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/provider/backend"
)

// run generates req with b and returns the text, the billed tokens (sum of
// chunk N) and the result.
func run(t *testing.T, b backend.Backend, req backend.Request) (string, int, backend.Result) {
	t.Helper()
	if err := b.Prepare(&req); err != nil {
		t.Fatal(err)
	}
	text, billed := "", 0
	res, err := b.Generate(context.Background(), &req, func(c backend.Chunk) error {
		text += c.Text
		billed += c.N
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return text, billed, res
}

func TestBackendStrategies(t *testing.T) {
	honest := &backend.Synthetic{}
	cheap := constBackend{}
	seed := int64(1)
	tests := []struct {
		name       string
		b          *Backend
		req        backend.Request
		wantText   string
		wantBilled int
		wantFinish string
	}{
		{"honest", &Backend{Strategy: Honest, Honest: honest}, backend.Request{MaxTokens: 4},
			"t0 t1 t2 t3", 4, "length"},
		{"truncate", &Backend{Strategy: Truncate, Honest: honest, TruncateAfter: 2}, backend.Request{MaxTokens: 6},
			"t0 t1", 2, "stop"},
		{"inflate", &Backend{Strategy: Inflate, Honest: honest}, backend.Request{MaxTokens: 8},
			"t0 t1 t2 t3 t4 t5 t6 t7", 10, "length"},
		{"substitute uses the cheap backend", &Backend{Strategy: Substitute, Honest: honest, Cheap: cheap}, backend.Request{},
			"xxx", 3, "stop"},
		{"spotter honest to logprobs", &Backend{Strategy: Spotter, Honest: honest, Cheap: cheap}, backend.Request{Logprobs: true},
			"t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 t10 t11 t12 t13 t14 t15", 16, "length"},
		{"spotter cheats on seeded (the gateway seeds all)", &Backend{Strategy: Spotter, Honest: honest, Cheap: cheap}, backend.Request{Seed: &seed},
			"xxx", 3, "stop"},
		{"spotter cheats otherwise", &Backend{Strategy: Spotter, Honest: honest, Cheap: cheap}, backend.Request{},
			"xxx", 3, "stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, billed, res := run(t, tt.b, tt.req)
			got := []any{text, billed, res.FinishReason}
			want := []any{tt.wantText, tt.wantBilled, tt.wantFinish}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("text, billed, finish (-want +got):\n%s", diff)
			}
		})
	}
}

// constBackend answers "xxx" in three tokens.
type constBackend struct{}

func (constBackend) Info() backend.Info             { return backend.Info{} }
func (constBackend) Prepare(*backend.Request) error { return nil }
func (constBackend) Health(context.Context) error   { return nil }
func (constBackend) Generate(_ context.Context, _ *backend.Request, emit func(backend.Chunk) error) (backend.Result, error) {
	for i := 0; i < 3; i++ {
		if err := emit(backend.Chunk{Text: "x", N: 1}); err != nil {
			return backend.Result{}, err
		}
	}
	return backend.Result{CompletionTokens: 3, FinishReason: "stop"}, nil
}
