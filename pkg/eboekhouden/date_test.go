package eboekhouden

import (
	"testing"
	"time"
)

func TestDateOfIsTheAmsterdamCalendarDate(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"2026-03-19T23:00:00Z", "2026-03-20"},      // midnight in Amsterdam, winter time, in UTC
		{"2026-04-18T22:00:00Z", "2026-04-19"},      // midnight in Amsterdam, summer time, in UTC
		{"2026-03-20T00:00:00Z", "2026-03-20"},      // a bare date read as midnight UTC
		{"2026-03-20T00:00:00+01:00", "2026-03-20"}, // with Amsterdam's own offset
		{"2026-12-31T23:30:00Z", "2027-01-01"},      // an instant just after midnight in Amsterdam
		{"2026-06-30T21:59:59Z", "2026-06-30"},
	} {
		at, err := time.Parse(time.RFC3339, c.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := DateOf(at).String(); got != c.want {
			t.Errorf("DateOf(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestDaysUntilCountsCalendarDays(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     int
	}{
		{"2026-03-20", "2026-04-19", 30}, // across the start of summer time
		{"2026-10-20", "2026-11-19", 30}, // across its end
		{"2026-02-28", "2026-03-01", 1},
		{"2026-03-20", "2026-03-20", 0},
		{"2026-03-20", "2026-03-10", -10},
	} {
		from, _ := ParseDate(c.from)
		to, _ := ParseDate(c.to)
		if got := from.DaysUntil(to); got != c.want {
			t.Errorf("%s to %s: %d days, want %d", c.from, c.to, got, c.want)
		}
	}
}
