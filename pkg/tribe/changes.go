package tribe

import (
	"context"
	"iter"
	"time"
)

// ChangedSince iterates over the records of set whose LastMutationDate is at or after since
// (and that match extra, when it is not the zero Filter), oldest change first. Only ID, _Type
// and the dates are read.
//
// It pages by key, not by position: each request asks for the records changed at or after the
// last change seen, skipping those of that same instant already returned. $skip over the whole
// listing would lose records, because a record changed while the listing runs moves to its end
// and every record behind it shifts forward by one. Records that share one instant are ordered
// by ID; one of them changing during the listing can still shift the rest of that instant by one,
// which a caller that overlaps its next listing with this one (reading from a little before the
// last change it saw) picks up.
func (c *Client) ChangedSince(ctx context.Context, set string, since time.Time, extra Filter) iter.Seq2[Meta, error] {
	return func(yield func(Meta, error) bool) {
		// One request per page (the client's page size), so no page is split by position.
		page := c.cfg.PageSize
		from, seenAtFrom := since, 0
		for {
			q := Q().Select("_Type", "CreationDate", "LastMutationDate").
				Filter(And(Ge("LastMutationDate", from), extra)).
				OrderBy("LastMutationDate", "ID").
				Top(page).Skip(seenAtFrom)
			n := 0
			for m, err := range List[Meta](ctx, c, set, q) {
				if err != nil {
					yield(Meta{}, err)
					return
				}
				n++
				if m.LastMutationDate.After(from) {
					from, seenAtFrom = m.LastMutationDate, 0
				}
				seenAtFrom++
				if !yield(m, nil) {
					return
				}
			}
			if n < page {
				return
			}
		}
	}
}
