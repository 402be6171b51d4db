package cheat

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/peercheck"
	"github.com/mycel-network/mycel/internal/verifier"
)

// TestRequantize re-encodes mycel-ref in every Requants type: the file
// declares the type (peercheck.WeightType), its matrices carry it, the
// built-in engine loads it, and the verifier has a band for it (a checker
// can be built). With MYCEL_REQUANT_OUT=DIR the demo models and the
// re-encoded files are written to DIR, for the peer check that measures the
// bands (docs/VERIFICATION.md).
func TestRequantize(t *testing.T) {
	dir := os.Getenv("MYCEL_REQUANT_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := demomodel.Generate(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "mycel-ref.gguf")
	for _, r := range Requants {
		t.Run(r.Name, func(t *testing.T) {
			dst := filepath.Join(dir, "mycel-ref-"+r.Name+".gguf")
			if err := Requantize(src, dst, r); err != nil {
				t.Fatal(err)
			}
			wt, err := peercheck.WeightType(dst)
			if err != nil {
				t.Fatal(err)
			}
			if wt != r.Name {
				t.Errorf("weight type %q, want %q", wt, r.Name)
			}
			f, err := gguf.Open(dst)
			if err != nil {
				t.Fatal(err)
			}
			matrices := 0
			for _, ti := range f.Tensors {
				if len(ti.Dims) >= 2 && ti.Dims[1] > 1 {
					matrices++
					if ti.Type != r.Type {
						t.Errorf("tensor %s is %v, want %v", ti.Name, ti.Type, r.Type)
					}
				}
			}
			f.Close()
			if matrices == 0 {
				t.Fatal("no matrices")
			}
			m, err := engine.Load(dst, engine.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e := engine.New(m, engine.Config{Threads: 1})
			if _, err := verifier.NewChecker(e, m.Tokenizer(), "sha", wt, verifier.DefaultBands()); err != nil {
				t.Errorf("checker: %v", err)
			}
		})
	}
}
