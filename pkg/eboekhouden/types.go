package eboekhouden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

var jsonNull = []byte("null")

// Amount is a money amount. On the wire it is a JSON number with two decimals; when reading, a
// number, a numeric string or null (zero) is accepted.
type Amount struct{ decimal.Decimal }

// NewAmount returns the amount s (such as "121.00"); it returns an error for anything else.
func NewAmount(s string) (Amount, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Amount{}, fmt.Errorf("parse amount %q: %w", s, err)
	}
	return Amount{d}, nil
}

// AmountFromCents returns cents/100.
func AmountFromCents(cents int64) Amount { return Amount{decimal.New(cents, -2)} }

// MarshalJSON writes the amount rounded half away from zero to two decimals.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.StringFixed(2)), nil }

// UnmarshalJSON reads a number, a numeric string or null.
func (a *Amount) UnmarshalJSON(b []byte) error {
	d, err := decodeDecimal(b)
	if err != nil {
		return fmt.Errorf("decode amount: %w", err)
	}
	a.Decimal = d
	return nil
}

// Equal reports whether a and b are the same amount, regardless of trailing zeros.
func (a Amount) Equal(b Amount) bool { return a.Decimal.Equal(b.Decimal) }

// Percentage is a discount percentage: a JSON number with up to four decimals on the wire, so a
// line discount combined with an invoice discount (5% and then 10% is 14.5%, 3.33% and then 10%
// is 12.997%) is not rounded to another amount. The API's precision is UNCONFIRMED; the
// simulator takes any decimal.
type Percentage struct{ decimal.Decimal }

// MarshalJSON writes the percentage rounded to four decimals, without trailing zeros.
func (p Percentage) MarshalJSON() ([]byte, error) { return []byte(p.Round(4).String()), nil }

// UnmarshalJSON reads a number, a numeric string or null.
func (p *Percentage) UnmarshalJSON(b []byte) error {
	d, err := decodeDecimal(b)
	if err != nil {
		return fmt.Errorf("decode percentage: %w", err)
	}
	p.Decimal = d
	return nil
}

// Quantity is an invoice-line quantity: a JSON number with up to four decimals on the wire.
type Quantity struct{ decimal.Decimal }

// NewQuantity returns the quantity s; it returns an error for anything but a decimal number.
func NewQuantity(s string) (Quantity, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return Quantity{}, fmt.Errorf("parse quantity %q: %w", s, err)
	}
	return Quantity{d}, nil
}

// MarshalJSON writes the quantity rounded to four decimals, without trailing zeros.
func (q Quantity) MarshalJSON() ([]byte, error) { return []byte(q.Round(4).String()), nil }

// UnmarshalJSON reads a number, a numeric string or null.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	d, err := decodeDecimal(b)
	if err != nil {
		return fmt.Errorf("decode quantity: %w", err)
	}
	q.Decimal = d
	return nil
}

func decodeDecimal(b []byte) (decimal.Decimal, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || bytes.Equal(b, jsonNull) {
		return decimal.Zero, nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return decimal.Zero, err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return decimal.Zero, nil
		}
		b = []byte(s)
	}
	// Reject exponents too large to be an amount: decimal would otherwise build huge numbers.
	if i := bytes.IndexAny(b, "eE"); i >= 0 {
		if e, err := strconv.Atoi(string(b[i+1:])); err != nil || e > 30 || e < -30 {
			return decimal.Zero, fmt.Errorf("number %q out of range", b)
		}
	}
	return decimal.NewFromString(string(b))
}

// Date is a calendar date. On the wire it is "YYYY-MM-DD"; when reading, a time part
// ("2026-01-02T00:00:00", with or without zone), an empty string and null (zero) are accepted.
type Date struct{ time.Time }

// NewDate returns the date y-m-d.
func NewDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// ParseDate reads "YYYY-MM-DD", optionally followed by a time part.
func ParseDate(s string) (Date, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Date{}, nil
	}
	if len(s) > 10 && (s[10] == 'T' || s[10] == ' ') {
		s = s[:10]
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("parse date %q: %w", s, err)
	}
	return Date{t}, nil
}

// String is the date as "YYYY-MM-DD", or "" for the zero date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(time.DateOnly)
}

// MarshalJSON writes "YYYY-MM-DD", or null for the zero date.
func (d Date) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return jsonNull, nil
	}
	return []byte(`"` + d.Format(time.DateOnly) + `"`), nil
}

// UnmarshalJSON reads a date string with or without time part, "" or null.
func (d *Date) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), jsonNull) {
		*d = Date{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode date: %w", err)
	}
	v, err := ParseDate(s)
	if err != nil {
		return fmt.Errorf("decode date: %w", err)
	}
	*d = v
	return nil
}

// FlexBool is a boolean that the API sends as a bool in some models and as an integer (0/1) in
// others (doNotReceiveNewsletters). It writes a JSON boolean.
type FlexBool bool

// UnmarshalJSON reads true/false, a number (non-zero is true), "true"/"false"/"1"/"0" or null.
func (f *FlexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	switch strings.ToLower(s) {
	case "", "null", "false", "0":
		*f = false
		return nil
	case "true", "1":
		*f = true
		return nil
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		*f = n != 0
		return nil
	}
	return fmt.Errorf("decode boolean: unexpected %q", truncate(s, 20))
}

// MutationType is the kind of a booking. The API sends it as an integer; some clients saw strings,
// so both are accepted.
type MutationType int

// Mutation types [SPEC R1 mutation_type]. 0 marks opening-balance rows in lists.
const (
	MutationOpeningBalance         MutationType = 0
	MutationInvoiceReceived        MutationType = 1
	MutationInvoiceSent            MutationType = 2
	MutationInvoicePaymentReceived MutationType = 3
	MutationInvoicePaymentSent     MutationType = 4
	MutationMoneyReceived          MutationType = 5
	MutationMoneySent              MutationType = 6
	MutationGeneralJournal         MutationType = 7
)

// UnmarshalJSON reads an integer, a numeric string or null (0).
func (t *MutationType) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*t = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("decode mutation type: unexpected %q", truncate(s, 20))
	}
	*t = MutationType(n)
	return nil
}

// FlexInt is an integer that may arrive as a number, a numeric string or null (0).
type FlexInt int64

// UnmarshalJSON reads an integer, a numeric string, an integral float or null.
func (n *FlexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return fmt.Errorf("decode integer: unexpected %q", truncate(s, 20))
		}
		v = int64(f)
	}
	*n = FlexInt(v)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
