package record

import (
	"errors"
	"fmt"
	"strings"
)

// Candidate is a Tribe relation as matching sees it: its keys only.
type Candidate struct {
	ID string
	// EBoekhoudenID is the e-Boekhouden ID koppel stored on it (ImportId), "" when none.
	EBoekhoudenID  string
	DebtorNumber   string
	CreditorNumber string
}

// ErrAmbiguous is returned by Match when several Tribe relations share the key that decides.
var ErrAmbiguous = errors.New("several Tribe relations match")

// AmbiguousError names the key and the Tribe relations that share it.
type AmbiguousError struct {
	Key string // "e-Boekhouden ID", "debtor number" or "creditor number"
	IDs []string
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%d Tribe relations share the %s: %s", len(e.IDs), e.Key, strings.Join(e.IDs, ", "))
}

func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// Match finds the Tribe relation an e-Boekhouden relation (ID ebID, code) is, among candidates of
// the same kind, by the rule the tenant is promised: the e-Boekhouden ID stored on it, then the
// debtor number, then the creditor number (a supplier). It also says which Tribe number keeps the
// code from then on. found is false when nothing matches; several matches on the deciding key
// are an *AmbiguousError, never a guess.
func Match(candidates []Candidate, ebID, code string) (c Candidate, field CodeField, found bool, err error) {
	code = text(code)
	rules := []struct {
		key   string
		field CodeField
		match func(Candidate) bool
	}{
		{"e-Boekhouden ID", DebtorNumber, func(c Candidate) bool { return ebID != "" && c.EBoekhoudenID == ebID }},
		{"debtor number", DebtorNumber, func(c Candidate) bool { return code != "" && text(c.DebtorNumber) == code }},
		{"creditor number", CreditorNumber, func(c Candidate) bool { return code != "" && text(c.CreditorNumber) == code }},
	}
	for _, r := range rules {
		var hits []Candidate
		for _, c := range candidates {
			if r.match(c) {
				hits = append(hits, c)
			}
		}
		switch len(hits) {
		case 0:
			continue
		case 1:
			field := r.field
			if r.key == "e-Boekhouden ID" && text(hits[0].DebtorNumber) == "" && text(hits[0].CreditorNumber) != "" {
				// Found by the ID koppel stored, on a relation that only has a creditor number:
				// a supplier, whose code lives there.
				field = CreditorNumber
			}
			return hits[0], field, true, nil
		default:
			ids := make([]string, len(hits))
			for i, h := range hits {
				ids[i] = h.ID
			}
			return Candidate{}, "", false, &AmbiguousError{Key: r.key, IDs: ids}
		}
	}
	return Candidate{}, "", false, nil
}
