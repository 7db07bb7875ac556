package eboekhouden

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/apicall"
)

// Sentinel errors. An *APIError matches the one its status or code implies, so
// errors.Is(err, ErrNotFound) works on any call's error.
var (
	// ErrNotFound: the record does not exist (HTTP 404 or a *_NOT_FOUND code).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value is taken (relation code, invoice number, payment reference).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: the session was refused even after opening a fresh one.
	ErrUnauthorized = errors.New("not authenticated")
	// ErrForbidden: the access token is not valid for any administration (HTTP 403 on session start).
	ErrForbidden = errors.New("access denied")
	// ErrRateLimited: the server answered 429 and retries ran out.
	ErrRateLimited = errors.New("rate limited")
	// ErrInvalidSource: the configured source does not match ^[\w ]{1,10}$; checked before any call.
	ErrInvalidSource = errors.New("invalid source: want 1 to 10 letters, digits, underscores or spaces")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client closed")
)

// APIError is an error answer of the e-Boekhouden API (its Error/SecurityError schema).
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int `json:"-"`
	// Type is "validation", "security", ... as sent.
	Type  string `json:"type"`
	Title string `json:"title"`
	// Status is the status the body states; normally equal to StatusCode.
	Status int `json:"status"`
	// Code is the API's error code, such as REL_049 or FACT_101.
	Code         string   `json:"code"`
	Message      string   `json:"message"`
	PropertyName string   `json:"propertyName"`
	Errors       []string `json:"errors"`
	TraceID      string   `json:"traceId"`
	// SecurityType is set on 403 SecurityError answers: 0 generic, 1 no access to the
	// administration, 2 no administration opened.
	SecurityType *int `json:"securityType"`
	// RetryAfter is the server's Retry-After, when it sent one (429, 503).
	RetryAfter time.Duration `json:"-"`
}

// Error renders status, code, title and property; never request data or tokens.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "e-boekhouden: HTTP %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Title != "" {
		b.WriteString(": " + e.Title)
	}
	if e.Message != "" && e.Message != e.Title {
		b.WriteString(" (" + e.Message + ")")
	}
	if e.PropertyName != "" {
		b.WriteString(" [" + e.PropertyName + "]")
	}
	return b.String()
}

// Is lets errors.Is match the sentinel errors by status and code.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || notFoundCodes[e.Code]
	case ErrConflict:
		return conflictCodes[e.Code] || e.StatusCode == http.StatusConflict
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.Code == "SECURITY_010"
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}

var notFoundCodes = map[string]bool{
	"REL_055": true, "ART_001": true, "FACT_021": true, "MUT_300": true, "LEDG_011": true, "COST_001": true,
}

var conflictCodes = map[string]bool{
	"REL_049": true, "FACT_101": true, "MUT_019": true, "MUT_020": true, "MUTA_008": true,
	"FACT_VERWERK_004": true, "LEDG_013": true, "COST_005": true,
}

// IsNotFound reports whether err says the record does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict reports whether err says a unique value (code, invoice number, payment reference) is
// already taken: the create may have happened in an earlier attempt.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// IsRetryable reports whether the same call may succeed later: rate limits, server errors,
// transport failures, timeouts, and a session refused after re-opening (an expiry race).
// Validation errors are not retryable.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode == http.StatusTooManyRequests || ae.StatusCode >= 500 ||
			ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidSource) {
		return false
	}
	return apicall.IsTransient(err)
}

// RetryAfter returns the delay the server asked for, when err carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		return ae.RetryAfter, true
	}
	return 0, false
}

// decodeAPIError builds the error of a non-2xx answer. A body that is not the Error schema (the
// spec defines no body for 401; proxies send HTML) still yields an *APIError with the status.
func decodeAPIError(resp *apicall.Response) *APIError {
	e := &APIError{}
	if len(resp.Body) > 0 && json.Valid(resp.Body) {
		_ = json.Unmarshal(resp.Body, e)
	}
	e.StatusCode = resp.StatusCode
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	if resp.HasRetryAfter {
		e.RetryAfter = resp.RetryAfter
	}
	return e
}
