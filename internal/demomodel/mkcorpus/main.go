// Command mkcorpus writes the text corpus that the demo models are trained
// on: the Go specification and memory model (HTML stripped of tags) and the
// documentation of a fixed list of standard-library packages, all taken from
// a Go distribution (BSD licence, see ../corpus/LICENSE-go).
//
// The output is committed (gzipped) and embedded, so every machine trains on
// the same bytes. Regenerate with:
//
//	go run ./internal/demomodel/mkcorpus -goroot /usr/local/go -out internal/demomodel/corpus/corpus.txt.gz
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc"
	"go/parser"
	"go/printer"
	"go/token"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// packages are the standard-library packages whose documentation goes into
// the corpus, in this order.
var packages = []string{
	"fmt", "strings", "bytes", "strconv", "errors", "io", "bufio", "os", "sort", "slices", "maps",
	"time", "context", "sync", "sync/atomic", "math", "math/big", "math/rand/v2", "unicode/utf8",
	"encoding/json", "encoding/binary", "encoding/hex", "encoding/base64", "encoding/csv",
	"net/http", "net/url", "net", "path", "path/filepath", "regexp", "text/template", "html/template",
	"flag", "log", "log/slog", "testing", "crypto/sha256", "crypto/ed25519", "hash", "container/heap",
	"container/list", "compress/gzip", "archive/tar", "io/fs", "embed", "runtime", "reflect",
	"unicode", "iter", "cmp",
}

// htmlDocs are the HTML documents under $GOROOT/doc that go in first.
var htmlDocs = []string{"go_spec.html", "go_mem.html"}

func main() {
	goroot := flag.String("goroot", "/usr/local/go", "Go distribution to read")
	out := flag.String("out", "corpus.txt.gz", "output file (gzip)")
	flag.Parse()
	if err := run(*goroot, *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkcorpus: %v\n", err)
		os.Exit(1)
	}
}

func run(goroot, out string) error {
	var text bytes.Buffer
	for _, name := range htmlDocs {
		b, err := os.ReadFile(filepath.Join(goroot, "doc", name))
		if err != nil {
			return fmt.Errorf("read doc: %w", err)
		}
		text.WriteString(stripHTML(string(b)))
		text.WriteString("\n\n")
	}
	for _, p := range packages {
		s, err := packageDoc(filepath.Join(goroot, "src", filepath.FromSlash(p)), p)
		if err != nil {
			return fmt.Errorf("package %s: %w", p, err)
		}
		text.WriteString(s)
		text.WriteString("\n\n")
	}
	corpus := collapseBlank(text.String())

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write([]byte(corpus)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, gz.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	fmt.Printf("%d bytes of text, %d gzipped\n", len(corpus), gz.Len())
	return nil
}

var (
	reComment = regexp.MustCompile(`(?s)<!--.*?-->`)
	reScript  = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>`)
	reTag     = regexp.MustCompile(`(?s)<[^>]*>`)
)

func stripHTML(s string) string {
	s = reComment.ReplaceAllString(s, "")
	s = reScript.ReplaceAllString(s, "")
	s = reTag.ReplaceAllString(s, "")
	return html.UnescapeString(s)
}

// collapseBlank trims trailing spaces and squeezes runs of blank lines.
func collapseBlank(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	var b strings.Builder
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			if blank > 0 {
				b.WriteString("\n\n")
			} else {
				b.WriteString("\n")
			}
		}
		blank = 0
		b.WriteString(l)
	}
	b.WriteString("\n")
	return b.String()
}

// packageDoc renders the package comment and the documented exported
// declarations (signature then comment) of one package as plain text.
func packageDoc(dir, importPath string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	// Only the files of one fixed platform: files for other systems
	// redeclare the same functions, and go/doc would then pick one of them
	// in map order.
	bctx := build.Default
	bctx.GOOS, bctx.GOARCH, bctx.CgoEnabled = "linux", "amd64", false
	bctx.BuildTags, bctx.ToolTags, bctx.ReleaseTags = nil, nil, build.Default.ReleaseTags
	fset := token.NewFileSet()
	var files []*ast.File
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		ok, err := bctx.MatchFile(dir, n)
		if err != nil {
			return "", err
		}
		if ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.ParseComments)
		if err != nil {
			return "", err
		}
		if f.Name.Name == "main" || strings.HasSuffix(f.Name.Name, "_test") {
			continue
		}
		files = append(files, f)
	}
	pkg, err := doc.NewFromFiles(fset, files, importPath)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "package %s // import %q\n\n", pkg.Name, importPath)
	b.Write(pkg.Text(pkg.Doc))
	decl := func(node ast.Node, comment string) {
		if comment == "" {
			return
		}
		var sig bytes.Buffer
		if err := printer.Fprint(&sig, fset, node); err != nil {
			return
		}
		b.WriteString("\n")
		b.WriteString(sig.String())
		b.WriteString("\n")
		b.Write(pkg.Text(comment))
	}
	fn := func(f *doc.Func) {
		d := *f.Decl
		d.Body = nil
		d.Doc = nil
		decl(&d, f.Doc)
	}
	for _, f := range pkg.Funcs {
		fn(f)
	}
	for _, t := range pkg.Types {
		d := *t.Decl
		d.Doc = nil
		if len(d.Specs) == 1 {
			if ts, ok := d.Specs[0].(*ast.TypeSpec); ok && isStruct(ts) {
				// Struct bodies are long; the name is enough.
				decl(&ast.Ident{Name: "type " + ts.Name.Name + " struct{ ... }"}, t.Doc)
			} else {
				decl(&d, t.Doc)
			}
		}
		for _, f := range t.Funcs {
			fn(f)
		}
		for _, f := range t.Methods {
			fn(f)
		}
	}
	return b.String(), nil
}

func isStruct(ts *ast.TypeSpec) bool {
	_, ok := ts.Type.(*ast.StructType)
	return ok
}
