package ebsim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
)

// fields is a decoded request body: raw JSON per property, so omitted and null are told apart.
type fields map[string]json.RawMessage

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// str reads a string property. ok is false when omitted or null.
func (f fields) str(k string) (string, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, errBadValue(k)
	}
	return s, true, nil
}

// int reads an integer property (a JSON number or a numeric string).
func (f fields) int(k string) (int64, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return 0, false, nil
	}
	s := strings.Trim(string(bytes.TrimSpace(raw)), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, errBadValue(k)
	}
	return n, true, nil
}

// dec reads a decimal property (a JSON number or a numeric string).
func (f fields) dec(k string) (decimal.Decimal, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return decimal.Zero, false, nil
	}
	d, ok2 := parseDecimal(raw)
	if !ok2 {
		return decimal.Zero, false, errBadValue(k)
	}
	return d, true, nil
}

func parseDecimal(raw json.RawMessage) (decimal.Decimal, bool) {
	s := strings.Trim(string(bytes.TrimSpace(raw)), `"`)
	if s == "" || len(s) > 40 || strings.ContainsAny(s, "eE") {
		// Exponents are refused: no amount needs one, and huge ones cost memory.
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > -1e15 && f < 1e15 {
			return decimal.NewFromFloat(f), true
		}
		return decimal.Zero, false
	}
	d, err := decimal.NewFromString(s)
	return d, err == nil
}

// bool reads a boolean (true/false, or 0/1 as some models use).
func (f fields) bool(k string) (bool, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return false, false, nil
	}
	switch strings.Trim(string(bytes.TrimSpace(raw)), `"`) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, false, errBadValue(k)
}

// date reads a "YYYY-MM-DD" property, a time part allowed. bad reports a malformed value.
func (f fields) date(k string) (t time.Time, ok bool, bad bool) {
	s, ok, err := f.str(k)
	if err != nil {
		return time.Time{}, false, true
	}
	if !ok || s == "" {
		return time.Time{}, false, false
	}
	if len(s) > 10 && (s[10] == 'T' || s[10] == ' ') {
		s = s[:10]
	}
	t, perr := time.Parse(time.DateOnly, s)
	if perr != nil {
		return time.Time{}, false, true
	}
	return t, true, false
}

// items reads an array of objects.
func (f fields) items(k string) ([]fields, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return nil, false, nil
	}
	var out []fields
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, errBadValue(k)
	}
	return out, true, nil
}

// object reads a nested object.
func (f fields) object(k string) (fields, bool, *apiError) {
	raw, ok := f[k]
	if !ok || isNull(raw) {
		return nil, false, nil
	}
	var out fields
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, false, errBadValue(k)
	}
	return out, true, nil
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		// encoding/json replaces invalid UTF-8; the fast path below would pass it through.
		enc, _ := json.Marshal(s)
		return append(b, enc...)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
