package tokenizer_test

import (
	"fmt"

	"github.com/mycel-network/mycel/internal/tokenizer"
)

func ExamplePreTokenize() {
	words, err := tokenizer.PreTokenize("qwen2", "Hello, world! 2024")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", words)
	// Output: ["Hello" "," " world" "!" " " "2" "0" "2" "4"]
}

func ExampleEncodeBytes() {
	fmt.Println(tokenizer.EncodeBytes(" world\n"))
	// Output: ĠworldĊ
}
