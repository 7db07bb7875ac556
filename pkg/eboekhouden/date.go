package eboekhouden

import (
	"time"
	// Embedded, so a container without zoneinfo still knows Europe/Amsterdam: without it every
	// invoice date would silently be a UTC date.
	_ "time/tzdata"
)

// booksZone is the zone whose calendar an e-Boekhouden administration keeps: a Dutch
// administration dates an invoice 20 March whatever the time zone of the machine booking it.
var booksZone = loadBooksZone()

func loadBooksZone() *time.Location {
	loc, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		// Unreachable with time/tzdata embedded; fixed CET keeps dates right in winter at least.
		return time.FixedZone("CET", 3600)
	}
	return loc
}

// DateOf is the calendar date, in Europe/Amsterdam, of the instant t. Tribe gives invoice dates
// as instants: midnight in Amsterdam written in UTC (2026-03-19T23:00:00Z) is 20 March, and so is
// a bare date read as midnight UTC (2026-03-20). Use it for every date koppel books; never take
// Year, Month and Day of an instant as it happens to arrive.
func DateOf(t time.Time) Date {
	a := t.In(booksZone)
	return NewDate(a.Year(), a.Month(), a.Day())
}

// DaysUntil counts the calendar days from d to later (negative when later is earlier). It
// counts dates, not hours, so a 30-day term across the change to summer time is 30.
func (d Date) DaysUntil(later Date) int {
	// Both are midnight UTC, which has no clock changes: the difference is whole days.
	return int(later.Sub(d.Time).Round(time.Hour).Hours() / 24)
}
