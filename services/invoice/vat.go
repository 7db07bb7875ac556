package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/koppel/koppel/pkg/eboekhouden"
	"github.com/koppel/koppel/pkg/tenantsettings"
	"github.com/koppel/koppel/pkg/tribe"
	"github.com/shopspring/decimal"
)

// lineVAT is how one line is booked: its VAT code and revenue ledger.
type lineVAT struct {
	code   eboekhouden.VATCode
	ledger int64
}

// vatProblem is why a line cannot be booked; it becomes the invoice's issue (retried when the
// links change).
type vatProblem struct{ code, msg, action string }

const linkAction = "Link the VAT group to a VAT code and a revenue ledger (koppelctl tenants links -vat GROUP=CODE -revenue GROUP=LEDGER)."

// resolveVAT finds the VAT code and revenue ledger of a line through the tenant's links of
// Tribe VAT groups, so the meaning of a VAT code (reverse charge, export, exempt: all 0%)
// survives: the line's own VAT group, else its product's (when its percentage is the line's:
// a line whose VAT was edited is not its product's any more), else the VAT group with the
// line's percentage. That last one is a guess, taken only when it is no guess: every linked
// group with that percentage is booked the same way; otherwise it is an issue.
func resolveVAT(l tribe.ProductLine, groups []tribe.Lookup, links map[string]string) (lineVAT, *vatProblem) {
	var group string
	switch {
	case l.VatGroup != nil && l.VatGroup.ID != "":
		group = l.VatGroup.ID
	case l.Product != nil && l.Product.VatGroup != nil && l.Product.VatGroup.ID != "" && samePercentage(groupOf(groups, l.Product.VatGroup), l.VatPercentage):
		group = l.Product.VatGroup.ID
	}
	if group != "" {
		v, ok := linked(group, links)
		if !ok {
			return v, &vatProblem{codeUnmappedVATGroup, fmt.Sprintf("line %q has VAT group %s, which has no e-Boekhouden VAT code and revenue ledger.",
				l.Description, groupName(groups, group)), linkAction}
		}
		return v, checkRate(l, v, groupName(groups, group))
	}

	var candidates []string
	byBooking := map[lineVAT][]string{}
	for _, g := range groups {
		if !g.Percentage.Valid || !g.Percentage.Decimal.Equal(l.VatPercentage) {
			continue
		}
		candidates = append(candidates, groupName(groups, g.ID))
		if v, ok := linked(g.ID, links); ok {
			byBooking[v] = append(byBooking[v], groupName(groups, g.ID))
		}
	}
	switch len(byBooking) {
	case 0:
		if len(candidates) == 0 {
			return lineVAT{}, &vatProblem{codeUnmappedVATGroup, fmt.Sprintf("line %q has %s%% VAT and no VAT group, and no Tribe VAT group has that percentage.",
				l.Description, l.VatPercentage.String()), "Add a VAT group with that percentage in Tribe and link it (koppelctl tenants links)."}
		}
		return lineVAT{}, &vatProblem{codeUnmappedVATGroup, fmt.Sprintf("line %q has %s%% VAT and no VAT group; the VAT groups with that percentage (%s) are not linked.",
			l.Description, l.VatPercentage.String(), strings.Join(candidates, ", ")), linkAction}
	case 1:
		for v := range byBooking {
			return v, nil
		}
	}
	var ways []string
	for v, gs := range byBooking {
		ways = append(ways, fmt.Sprintf("%s as %s", strings.Join(gs, ", "), v.code))
	}
	slices.Sort(ways)
	return lineVAT{}, &vatProblem{codeAmbiguousVAT, fmt.Sprintf("line %q has %s%% VAT and no VAT group, and the VAT groups with that percentage are booked differently (%s), so its VAT code would be a guess.",
		l.Description, l.VatPercentage.String(), strings.Join(ways, "; ")),
		"Link the VAT groups with that percentage to the same VAT code and ledger if they mean the same, or book the invoice by hand; Tribe should give the line its VAT group."}
}

// checkRate refuses a booking whose VAT code charges another percentage than Tribe's line: a
// VAT group linked to the wrong code would book wrong VAT without any total showing it.
func checkRate(l tribe.ProductLine, v lineVAT, group string) *vatProblem {
	info, known := eboekhouden.LookupVATCode(v.code)
	if !known || v.code == "AFW_VERK" || info.Rate.Equal(l.VatPercentage) {
		return nil
	}
	return &vatProblem{codeVATRateDiffers, fmt.Sprintf("line %q has %s%% VAT in Tribe, but its VAT group %s is linked to %s, which charges %s%%.",
		l.Description, l.VatPercentage.String(), group, v.code, info.Rate.String()),
		"Link the VAT group to a VAT code with its percentage (koppelctl tenants links)."}
}

// linked is a VAT group's VAT code and revenue ledger; ok when it has both.
func linked(group string, links map[string]string) (lineVAT, bool) {
	code := links[tenantsettings.VATCodePrefix+group]
	ledger, _ := strconv.ParseInt(links[tenantsettings.RevenueLedgerPrefix+group], 10, 64)
	return lineVAT{eboekhouden.VATCode(code), ledger}, code != "" && ledger != 0
}

func groupOf(groups []tribe.Lookup, ref *tribe.Lookup) tribe.Lookup {
	for _, g := range groups {
		if g.ID == ref.ID {
			return g
		}
	}
	return *ref
}

// samePercentage reports whether a line with percentage pct belongs to group g as far as its
// rate goes (a group without a known percentage does not contradict it).
func samePercentage(g tribe.Lookup, pct decimal.Decimal) bool {
	return !g.Percentage.Valid || g.Percentage.Decimal.Equal(pct)
}

func groupName(groups []tribe.Lookup, id string) string {
	for _, g := range groups {
		if g.ID == id {
			if g.Code != "" {
				return g.Code
			}
			return g.Name
		}
	}
	return id
}
