package openai

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxSSEEvent bounds one event read by SSEReader.
const MaxSSEEvent = 4 << 20

var doneData = []byte("[DONE]")

// SSEWriter writes server-sent events, flushing after each one.
type SSEWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// NewSSEWriter sets the event-stream headers on w. It fails if w cannot flush.
func NewSSEWriter(w http.ResponseWriter) (*SSEWriter, error) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("sse: response cannot flush: %w", err)
	}
	return &SSEWriter{w: w, rc: rc}, nil
}

// WriteJSON writes v as one "data:" event and flushes.
func (s *SSEWriter) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sse: encode event: %w", err)
	}
	return s.WriteData(b)
}

// WriteData writes raw bytes (one line of JSON, no newline) as one "data:" event and flushes.
func (s *SSEWriter) WriteData(data []byte) error {
	if bytes.ContainsAny(data, "\r\n") {
		return errors.New("sse: event data contains a newline")
	}
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, '\n', '\n')
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("sse: write: %w", err)
	}
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("sse: flush: %w", err)
	}
	return nil
}

// WriteDone writes "data: [DONE]" and flushes.
func (s *SSEWriter) WriteDone() error { return s.WriteData(doneData) }

// SSEReader reads the "data" of server-sent events. Comments, "event:", "id:" and "retry:"
// lines are skipped; several data lines of one event are joined with "\n".
type SSEReader struct {
	r    *bufio.Reader
	done bool
}

// NewSSEReader reads events from r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// ErrSSETruncated is returned by Next when the stream ends without "data: [DONE]".
var ErrSSETruncated = fmt.Errorf("sse: stream ended before [DONE]: %w", io.ErrUnexpectedEOF)

// Next returns the data of the next event. It returns io.EOF after "data: [DONE]", and
// ErrSSETruncated (wrapping io.ErrUnexpectedEOF) if the stream ends without it.
func (s *SSEReader) Next() ([]byte, error) {
	if s.done {
		return nil, io.EOF
	}
	var data []byte
	have := false
	for {
		line, err := s.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if have {
					// An event not terminated by a blank line still counts.
					return s.event(data)
				}
				return nil, ErrSSETruncated
			}
			return nil, err
		}
		if len(line) == 0 {
			if have {
				return s.event(data)
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) != "data" {
			continue
		}
		if have {
			data = append(data, '\n')
		}
		if len(data)+len(value) > MaxSSEEvent {
			return nil, fmt.Errorf("sse: event larger than %d bytes", MaxSSEEvent)
		}
		data = append(data, value...)
		have = true
	}
}

func (s *SSEReader) event(data []byte) ([]byte, error) {
	if bytes.Equal(data, doneData) {
		s.done = true
		return nil, io.EOF
	}
	return data, nil
}

func (s *SSEReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			if len(line) > 0 && errors.Is(err, io.EOF) {
				return line, nil
			}
			return nil, err
		}
		if !isPrefix && line == nil {
			return chunk, nil
		}
		line = append(line, chunk...)
		if len(line) > MaxSSEEvent {
			return nil, fmt.Errorf("sse: line longer than %d bytes", MaxSSEEvent)
		}
		if !isPrefix {
			return line, nil
		}
	}
}
