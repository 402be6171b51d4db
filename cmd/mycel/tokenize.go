package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// tokenizeJSON is the output of `mycel tokenize --output json`.
type tokenizeJSON struct {
	Model  string              `json:"model"`
	Count  int                 `json:"count"`
	IDs    []int32             `json:"ids"`
	Tokens []tokenizeJSONToken `json:"tokens"`
}

type tokenizeJSONToken struct {
	ID    int32  `json:"id"`
	Piece string `json:"piece"` // vocabulary entry as stored in the model
	Bytes []byte `json:"bytes"` // raw bytes the token stands for (base64)
}

func cmdTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: mycel tokenize --model FILE [flags] TEXT...  (TEXT from stdin if omitted)")
		fs.PrintDefaults()
	}
	model := fs.String("model", "", "GGUF model file (required)")
	verbose := fs.Bool("verbose", false, "print one token per line with its text")
	output := fs.String("output", "text", "text or json")
	noBOS := fs.Bool("no-bos", false, "do not add BOS/EOS even if the model asks for them")
	noParseSpecial := fs.Bool("no-parse-special", false, "treat control tokens such as <|im_start|> in the text as plain text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return errors.New("tokenize: --model is required")
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("tokenize: --output %q: want text or json", *output)
	}
	text := strings.Join(fs.Args(), " ")
	if fs.NArg() == 0 {
		st, err := os.Stdin.Stat()
		if err != nil || st.Mode()&os.ModeCharDevice != 0 {
			fs.Usage()
			return errors.New("tokenize: no text given")
		}
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("tokenize: read stdin: %w", err)
		}
		text = string(b)
	}

	f, err := gguf.Open(*model)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return fmt.Errorf("tokenize: %s: %w", *model, err)
	}
	ids, err := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: !*noBOS, ParseSpecial: !*noParseSpecial})
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}

	if *output == "json" {
		out := tokenizeJSON{Model: *model, Count: len(ids), IDs: ids, Tokens: make([]tokenizeJSONToken, len(ids))}
		for i, id := range ids {
			b, err := tok.TokenBytes(id)
			if err != nil {
				return fmt.Errorf("tokenize: %w", err)
			}
			out.Tokens[i] = tokenizeJSONToken{ID: id, Piece: tok.TokenText(id), Bytes: b}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if *verbose {
		for _, id := range ids {
			b, err := tok.TokenBytes(id)
			if err != nil {
				return fmt.Errorf("tokenize: %w", err)
			}
			fmt.Fprintf(stdout, "%6d -> %q\n", id, b)
		}
		fmt.Fprintf(stdout, "%d tokens\n", len(ids))
		return nil
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	fmt.Fprintln(stdout, "["+strings.Join(parts, ", ")+"]")
	return nil
}
