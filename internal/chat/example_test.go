package chat_test

import (
	"fmt"

	"github.com/mycel-network/mycel/internal/chat"
)

func ExampleFormat_Render() {
	f, err := chat.Detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}")
	if err != nil {
		panic(err)
	}
	prompt, err := f.Render([]chat.Message{{Role: "user", Content: "Hi"}}, true)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %q\n", f, prompt)
	// Output: chatml: "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
}
