package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Limits on what the decoders accept.
const (
	MaxStop        = 4  // stop sequences, as OpenAI
	MaxTopLogprobs = 20 // chat top_logprobs, as OpenAI
	MaxLogprobs    = 5  // completion logprobs, as OpenAI
)

var chatRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true}

// DecodeChatRequest decodes and validates a chat completion request body. Unknown fields are
// ignored; a value of the wrong type or out of range gives a 400 Error naming the parameter.
func DecodeChatRequest(body []byte) (ChatCompletionRequest, *Error) {
	var r ChatCompletionRequest
	fields, e := decodeObject(body)
	if e != nil {
		return r, e
	}
	if r.Model, e = requiredString(fields, "model"); e != nil {
		return r, e
	}
	raw, ok := fields["messages"]
	if !ok || isNull(raw) {
		return r, errorf("messages", "Missing required parameter: 'messages'.")
	}
	var msgs []json.RawMessage
	if kind(raw) != "array" || json.Unmarshal(raw, &msgs) != nil {
		return r, typeErr("messages", "an array", raw)
	}
	if len(msgs) == 0 {
		return r, errorf("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.")
	}
	r.Messages = make([]ChatMessage, len(msgs))
	for i, m := range msgs {
		if r.Messages[i], e = decodeMessage(m, fmt.Sprintf("messages[%d]", i)); e != nil {
			return r, e
		}
	}
	if e = decodeSampling(fields, &samplingTarget{
		stream: &r.Stream, streamOptions: &r.StreamOptions, temperature: &r.Temperature, topP: &r.TopP,
		maxTokens: &r.MaxTokens, maxCompletionTokens: &r.MaxCompletionTokens, stop: &r.Stop, seed: &r.Seed,
		user: &r.User, n: &r.N,
	}); e != nil {
		return r, e
	}
	if raw, ok := fields["logprobs"]; ok && !isNull(raw) {
		if r.Logprobs, e = boolValue(raw, "logprobs"); e != nil {
			return r, e
		}
	}
	if r.TopLogprobs, e = optInt(fields, "top_logprobs", 0, MaxTopLogprobs); e != nil {
		return r, e
	}
	if r.TopLogprobs != nil && !r.Logprobs {
		return r, errorf("top_logprobs", "Invalid value for 'top_logprobs': 'logprobs' must be set to true if 'top_logprobs' is used.")
	}
	if raw, ok := fields["continue_final_message"]; ok && !isNull(raw) {
		if r.ContinueFinalMessage, e = boolValue(raw, "continue_final_message"); e != nil {
			return r, e
		}
	}
	if raw, ok := fields["add_generation_prompt"]; ok && !isNull(raw) {
		v, e := boolValue(raw, "add_generation_prompt")
		if e != nil {
			return r, e
		}
		r.AddGenerationPrompt = &v
	}
	if r.ContinueFinalMessage {
		// As vLLM: the two cannot both be set, and only an assistant message is continued.
		if r.AddGenerationPrompt != nil && *r.AddGenerationPrompt {
			return r, errorf("continue_final_message", "Invalid value for 'continue_final_message': it cannot be used together with 'add_generation_prompt'.")
		}
		if last := r.Messages[len(r.Messages)-1]; last.Role != "assistant" {
			return r, errorf("continue_final_message", "Invalid value for 'continue_final_message': the last message must be an assistant message to continue, not a '%s' message.", last.Role)
		}
	}
	return r, nil
}

// DecodeCompletionRequest decodes and validates a completion request body.
func DecodeCompletionRequest(body []byte) (CompletionRequest, *Error) {
	var r CompletionRequest
	fields, e := decodeObject(body)
	if e != nil {
		return r, e
	}
	if r.Model, e = requiredString(fields, "model"); e != nil {
		return r, e
	}
	raw, ok := fields["prompt"]
	if !ok || isNull(raw) {
		return r, errorf("prompt", "Missing required parameter: 'prompt'.")
	}
	if r.Prompt, e = decodePrompt(raw, "prompt"); e != nil {
		return r, e
	}
	if e = decodeSampling(fields, &samplingTarget{
		stream: &r.Stream, streamOptions: &r.StreamOptions, temperature: &r.Temperature, topP: &r.TopP,
		maxTokens: &r.MaxTokens, maxCompletionTokens: &r.MaxCompletionTokens, stop: &r.Stop, seed: &r.Seed,
		user: &r.User, n: &r.N,
	}); e != nil {
		return r, e
	}
	if r.Logprobs, e = optInt(fields, "logprobs", 0, MaxLogprobs); e != nil {
		return r, e
	}
	if raw, ok := fields["echo"]; ok && !isNull(raw) {
		if r.Echo, e = boolValue(raw, "echo"); e != nil {
			return r, e
		}
	}
	if raw, ok := fields["best_of"]; ok && !isNull(raw) {
		v, e := intValue(raw, "best_of")
		if e != nil {
			return r, e
		}
		if v != 1 {
			return r, &Error{Status: 400, Type: TypeInvalidRequest, Param: "best_of", Code: CodeUnsupportedValue, Message: "Unsupported value: 'best_of' must be 1."}
		}
	}
	return r, nil
}

type samplingTarget struct {
	stream              *bool
	streamOptions       **StreamOptions
	temperature, topP   **float64
	maxTokens           **int
	maxCompletionTokens **int
	stop                *StopList
	seed                **int64
	user                *string
	n                   **int
}

func decodeSampling(f map[string]json.RawMessage, t *samplingTarget) *Error {
	var e *Error
	if raw, ok := f["stream"]; ok && !isNull(raw) {
		if *t.stream, e = boolValue(raw, "stream"); e != nil {
			return e
		}
	}
	if raw, ok := f["stream_options"]; ok && !isNull(raw) {
		so, e := decodeObject(raw)
		if e != nil {
			return typeErr("stream_options", "an object", raw)
		}
		opts := &StreamOptions{}
		if raw, ok := so["include_usage"]; ok && !isNull(raw) {
			if opts.IncludeUsage, e = boolValue(raw, "stream_options.include_usage"); e != nil {
				return e
			}
		}
		if !*t.stream {
			return errorf("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
		}
		*t.streamOptions = opts
	}
	if *t.temperature, e = optFloat(f, "temperature", 0, 2); e != nil {
		return e
	}
	if *t.topP, e = optFloat(f, "top_p", 0, 1); e != nil {
		return e
	}
	if *t.maxTokens, e = optInt(f, "max_tokens", 1, math.MaxInt32); e != nil {
		return e
	}
	if *t.maxCompletionTokens, e = optInt(f, "max_completion_tokens", 1, math.MaxInt32); e != nil {
		return e
	}
	if raw, ok := f["stop"]; ok {
		if *t.stop, e = decodeStop(raw, "stop"); e != nil {
			return e
		}
	}
	if raw, ok := f["seed"]; ok && !isNull(raw) {
		v, e := intValue(raw, "seed")
		if e != nil {
			return e
		}
		*t.seed = &v
	}
	if raw, ok := f["user"]; ok && !isNull(raw) {
		if *t.user, e = stringValue(raw, "user"); e != nil {
			return e
		}
	}
	if *t.n, e = optInt(f, "n", 1, 128); e != nil {
		return e
	}
	if *t.n != nil && **t.n != 1 {
		return &Error{Status: 400, Type: TypeInvalidRequest, Param: "n", Code: CodeUnsupportedValue, Message: "Unsupported value: 'n' must be 1; only one choice per request is served."}
	}
	return nil
}

func decodeObject(b []byte) (map[string]json.RawMessage, *Error) {
	if kind(b) != "object" {
		return nil, errorf("", "We could not parse the JSON body of your request: expected a JSON object.")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errorf("", "We could not parse the JSON body of your request: %v.", err)
	}
	return m, nil
}

func decodeMessage(b []byte, param string) (ChatMessage, *Error) {
	var m ChatMessage
	f, e := decodeObject(b)
	if e != nil {
		return m, typeErr(param, "an object", b)
	}
	raw, ok := f["role"]
	if !ok || isNull(raw) {
		return m, errorf(param+".role", "Missing required parameter: '%s.role'.", param)
	}
	if m.Role, e = stringValue(raw, param+".role"); e != nil {
		return m, e
	}
	if !chatRoles[m.Role] {
		return m, errorf(param+".role", "Invalid value: '%s'. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", m.Role)
	}
	if raw, ok := f["name"]; ok && !isNull(raw) {
		if m.Name, e = stringValue(raw, param+".name"); e != nil {
			return m, e
		}
	}
	raw, ok = f["content"]
	if !ok || isNull(raw) {
		if m.Role == "assistant" {
			return m, nil
		}
		return m, errorf(param+".content", "Missing required parameter: '%s.content'.", param)
	}
	switch kind(raw) {
	case "string":
		m.Content, e = stringValue(raw, param+".content")
		return m, e
	case "array":
		var parts []json.RawMessage
		if err := json.Unmarshal(raw, &parts); err != nil {
			return m, typeErr(param+".content", "a string or an array", raw)
		}
		var buf bytes.Buffer
		for j, p := range parts {
			pp := fmt.Sprintf("%s.content[%d]", param, j)
			pf, e := decodeObject(p)
			if e != nil {
				return m, typeErr(pp, "an object", p)
			}
			typ, e := stringValue(pf["type"], pp+".type")
			if e != nil {
				return m, e
			}
			if typ != "text" {
				return m, &Error{Status: 400, Type: TypeInvalidRequest, Param: pp + ".type", Code: CodeUnsupportedValue,
					Message: fmt.Sprintf("Unsupported content part type '%s': only 'text' is supported.", typ)}
			}
			text, e := stringValue(pf["text"], pp+".text")
			if e != nil {
				return m, e
			}
			buf.WriteString(text)
		}
		m.Content = buf.String()
		return m, nil
	}
	return m, typeErr(param+".content", "a string or an array", raw)
}

func decodeStop(raw json.RawMessage, param string) (StopList, *Error) {
	switch kind(raw) {
	case "null":
		return nil, nil
	case "string":
		s, e := stringValue(raw, param)
		if e != nil {
			return nil, e
		}
		return StopList{s}, nil
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, typeErr(param, "a string or an array of strings", raw)
		}
		if len(items) > MaxStop {
			return nil, errorf(param, "Invalid '%s': array too long. Expected an array with maximum length %d, but got an array with length %d instead.", param, MaxStop, len(items))
		}
		out := make(StopList, 0, len(items))
		for i, it := range items {
			s, e := stringValue(it, fmt.Sprintf("%s[%d]", param, i))
			if e != nil {
				return nil, e
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	return nil, typeErr(param, "a string or an array of strings", raw)
}

func decodePrompt(raw json.RawMessage, param string) (PromptList, *Error) {
	switch kind(raw) {
	case "string":
		s, e := stringValue(raw, param)
		if e != nil {
			return nil, e
		}
		return PromptList{s}, nil
	case "array":
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, typeErr(param, "a string or an array of strings", raw)
		}
		if len(items) == 0 {
			return nil, errorf(param, "Invalid '%s': empty array. Expected an array with minimum length 1.", param)
		}
		out := make(PromptList, 0, len(items))
		for i, it := range items {
			if k := kind(it); k == "number" || k == "array" {
				return nil, &Error{Status: 400, Type: TypeInvalidRequest, Param: param, Code: CodeUnsupportedValue, Message: "Unsupported value: 'prompt' as token ids; send text."}
			}
			s, e := stringValue(it, fmt.Sprintf("%s[%d]", param, i))
			if e != nil {
				return nil, e
			}
			out = append(out, s)
		}
		if len(out) > 1 {
			return nil, &Error{Status: 400, Type: TypeInvalidRequest, Param: param, Code: CodeUnsupportedValue, Message: "Unsupported value: only one prompt per request is served."}
		}
		return out, nil
	}
	return nil, typeErr(param, "a string or an array of strings", raw)
}

func requiredString(f map[string]json.RawMessage, param string) (string, *Error) {
	raw, ok := f[param]
	if !ok || isNull(raw) {
		return "", errorf(param, "Missing required parameter: '%s'.", param)
	}
	s, e := stringValue(raw, param)
	if e != nil {
		return "", e
	}
	if s == "" {
		return "", errorf(param, "Invalid '%s': empty string.", param)
	}
	return s, nil
}

func stringValue(raw json.RawMessage, param string) (string, *Error) {
	if raw == nil {
		return "", errorf(param, "Missing required parameter: '%s'.", param)
	}
	var s string
	if kind(raw) != "string" || json.Unmarshal(raw, &s) != nil {
		return "", typeErr(param, "a string", raw)
	}
	return s, nil
}

func boolValue(raw json.RawMessage, param string) (bool, *Error) {
	var b bool
	if kind(raw) != "boolean" || json.Unmarshal(raw, &b) != nil {
		return false, typeErr(param, "a boolean", raw)
	}
	return b, nil
}

func intValue(raw json.RawMessage, param string) (int64, *Error) {
	if kind(raw) != "number" {
		return 0, typeErr(param, "an integer", raw)
	}
	v, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		return 0, typeErr(param, "an integer", raw)
	}
	return v, nil
}

func optInt(f map[string]json.RawMessage, param string, lo, hi int64) (*int, *Error) {
	raw, ok := f[param]
	if !ok || isNull(raw) {
		return nil, nil
	}
	v, e := intValue(raw, param)
	if e != nil {
		return nil, e
	}
	if v < lo {
		return nil, errorf(param, "Invalid '%s': integer below minimum value. Expected a value >= %d, but got %d instead.", param, lo, v)
	}
	if v > hi {
		return nil, errorf(param, "Invalid '%s': integer above maximum value. Expected a value <= %d, but got %d instead.", param, hi, v)
	}
	n := int(v)
	return &n, nil
}

func optFloat(f map[string]json.RawMessage, param string, lo, hi float64) (*float64, *Error) {
	raw, ok := f[param]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var v float64
	if kind(raw) != "number" || json.Unmarshal(raw, &v) != nil {
		return nil, typeErr(param, "a number", raw)
	}
	if v < lo || v > hi || math.IsNaN(v) {
		return nil, errorf(param, "Invalid '%s': expected a value between %g and %g, but got %g instead.", param, lo, hi, v)
	}
	return &v, nil
}

func isNull(raw json.RawMessage) bool { return kind(raw) == "null" }

// kind names the JSON type of raw by its first byte (OpenAI's words).
func kind(raw []byte) string {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func typeErr(param, want string, raw []byte) *Error {
	got := kind(raw)
	article := "a"
	if got == "array" || got == "object" || got == "integer" {
		article = "an"
	}
	if got == "null" || got == "nothing" {
		article = ""
	}
	if article != "" {
		got = article + " " + got
	}
	return errorf(param, "Invalid type for '%s': expected %s, but got %s instead.", param, want, got)
}
