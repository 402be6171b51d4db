package openai

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error types as OpenAI sends them in "error.type".
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "server_error"
	TypeUnavailable    = "service_unavailable_error"
	TypePayment        = "payment_required_error"
)

// Error codes Mycel puts in "error.code" (OpenAI codes where one exists).
const (
	CodeModelNotFound    = "model_not_found"
	CodePaymentRequired  = "payment_required"
	CodeRateLimited      = "rate_limit_exceeded"
	CodeContextLength    = "context_length_exceeded"
	CodeBodyTooLarge     = "request_too_large"
	CodeModelUnhealthy   = "model_unavailable"
	CodeBackendError     = "backend_error"
	CodeInvalidAPIKey    = "invalid_api_key"
	CodeUnsupportedValue = "unsupported_value"
)

// Error is an API error: Status is the HTTP status, the rest is the OpenAI error object.
// Empty Param and Code are sent as null, as OpenAI does.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
}

// Error implements error.
func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.Type
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Param != "" {
		s += " param " + e.Param
	}
	return s + ": " + e.Message
}

// NewError returns an Error.
func NewError(status int, typ, code, message string) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: message}
}

type errorObject struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type errorEnvelope struct {
	Error errorObject `json:"error"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON writes the envelope {"error":{"message","type","param","code"}}.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorEnvelope{errorObject{Message: e.Message, Type: e.Type, Param: nullable(e.Param), Code: nullable(e.Code)}})
}

// WriteError writes e as an OpenAI error response. A nil e or zero status is a 500.
func WriteError(w http.ResponseWriter, e *Error) {
	if e == nil {
		e = NewError(http.StatusInternalServerError, TypeServer, "", "internal error")
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if e.Type == "" {
		e = &Error{Status: status, Message: e.Message, Type: defaultType(status), Param: e.Param, Code: e.Code, RetryAfter: e.RetryAfter}
	}
	b, _ := e.MarshalJSON() // only strings: cannot fail
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func defaultType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return TypeAuthentication
	case http.StatusPaymentRequired:
		return TypePayment
	case http.StatusForbidden:
		return TypePermission
	case http.StatusNotFound:
		return TypeNotFound
	case http.StatusTooManyRequests:
		return TypeRateLimit
	case http.StatusServiceUnavailable:
		return TypeUnavailable
	}
	if status >= 500 {
		return TypeServer
	}
	return TypeInvalidRequest
}

// ParseError decodes an error response body. It returns an Error with the given status and
// the body's message when the body is not an OpenAI envelope (a proxy's HTML page, say).
func ParseError(status int, body []byte) *Error {
	var env struct {
		Error *struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   *string         `json:"param"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Error == nil {
		msg := string(body)
		if len(msg) > 512 {
			msg = msg[:512]
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		return &Error{Status: status, Type: defaultType(status), Message: msg}
	}
	e := &Error{Status: status, Message: env.Error.Message, Type: env.Error.Type}
	if env.Error.Param != nil {
		e.Param = *env.Error.Param
	}
	// OpenAI's code is a string or null; some engines send a number.
	var code string
	if json.Unmarshal(env.Error.Code, &code) == nil {
		e.Code = code
	} else if len(env.Error.Code) > 0 && string(env.Error.Code) != "null" {
		e.Code = string(env.Error.Code)
	}
	if e.Type == "" {
		e.Type = defaultType(status)
	}
	return e
}
