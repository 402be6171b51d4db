package ledger

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPurity scans the non-test sources of the ledger and its dependencies for what a
// deterministic state machine must not use: I/O, networking, randomness, CometBFT, the wall
// clock, goroutines and floating point.
func TestPurity(t *testing.T) {
	forbidden := []string{"net", "net/http", "os", "os/exec", "io/ioutil", "math/rand", "math/rand/v2",
		"crypto/rand", "unsafe", "reflect", "syscall", "runtime", "plugin", "log"}
	forbiddenPrefix := []string{"github.com/cometbft/", "net/http/", "os/"}
	clock := map[string]bool{"Now": true, "Since": true, "Until": true, "Tick": true, "After": true,
		"AfterFunc": true, "NewTimer": true, "NewTicker": true, "Sleep": true}
	allowedDeps := map[string]bool{
		"github.com/mycel-network/mycel/internal/tx":      true,
		"github.com/mycel-network/mycel/internal/channel": true,
		"github.com/mycel-network/mycel/internal/address": true,
		"github.com/btcsuite/btcd/btcutil/bech32":         true,
	}
	for _, dir := range []string{".", "../tx", "../channel", "../address"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			n++
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			timeName := ""
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden {
					if p == bad {
						t.Errorf("%s imports %q", path, p)
					}
				}
				for _, bad := range forbiddenPrefix {
					if strings.HasPrefix(p, bad) {
						t.Errorf("%s imports %q", path, p)
					}
				}
				if strings.Contains(p, ".") && !allowedDeps[p] {
					t.Errorf("%s imports %q, not in the allowed dependency list", path, p)
				}
				if p == "time" {
					timeName = "time"
					if imp.Name != nil {
						timeName = imp.Name.Name
					}
				}
			}
			// Float-using helpers of dependencies the ledger never calls: the logprobs commitment
			// hashes the bits of float32 values for providers and verifiers.
			var exempt [][2]token.Pos
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && dir == "../channel" && fd.Name.Name == "LogprobsCommitment" {
					exempt = append(exempt, [2]token.Pos{fd.Pos(), fd.End()})
				}
			}
			floatOK := func(p token.Pos) bool {
				for _, r := range exempt {
					if p >= r[0] && p < r[1] {
						return true
					}
				}
				return false
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.SelectorExpr:
					if id, ok := n.X.(*ast.Ident); ok && timeName != "" && id.Name == timeName && clock[n.Sel.Name] {
						t.Errorf("%s: uses time.%s", fset.Position(n.Pos()), n.Sel.Name)
					}
				case *ast.GoStmt:
					t.Errorf("%s: starts a goroutine", fset.Position(n.Pos()))
				case *ast.Ident:
					if (n.Name == "float32" || n.Name == "float64") && !floatOK(n.Pos()) {
						t.Errorf("%s: uses %s", fset.Position(n.Pos()), n.Name)
					}
				case *ast.BasicLit:
					if n.Kind == token.FLOAT && !floatOK(n.Pos()) {
						t.Errorf("%s: float literal %s", fset.Position(n.Pos()), n.Value)
					}
				}
				return true
			})
		}
		if n == 0 {
			t.Errorf("no sources found in %s", dir)
		}
	}
}
