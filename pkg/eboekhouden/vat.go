package eboekhouden

import "github.com/shopspring/decimal"

// VATCode is an e-Boekhouden VAT code such as HOOG_VERK_21. The API has no endpoint for them; the
// list below is the fixed one from the API description.
type VATCode string

// VATKind says whether a code is for sales, purchases or both.
type VATKind int

// VAT code kinds.
const (
	VATSale VATKind = iota + 1
	VATPurchase
	VATBoth
)

// VATCodeInfo describes one VAT code.
type VATCodeInfo struct {
	Code VATCode
	Kind VATKind
	// Rate is the percentage charged on the line (0 for reverse charge, exports and "divergent").
	Rate decimal.Decimal
	// Description is the code's meaning.
	Description string
}

// Frequently used VAT codes.
const (
	VATHighSale21  VATCode = "HOOG_VERK_21"
	VATLowSale9    VATCode = "LAAG_VERK_9"
	VATHighPurch21 VATCode = "HOOG_INK_21"
	VATLowPurch9   VATCode = "LAAG_INK_9"
	VATNone        VATCode = "GEEN"
)

var vatCodes = []VATCodeInfo{
	{"LAAG_VERK", VATSale, decimal.NewFromInt(6), "Sale, low rate 6% (before 2019)"},
	{"LAAG_VERK_9", VATSale, decimal.NewFromInt(9), "Sale, low rate 9%"},
	{"HOOG_VERK_21", VATSale, decimal.NewFromInt(21), "Sale, high rate 21%"},
	{"AFW_VERK", VATSale, decimal.Zero, "Sale, divergent rate"},
	{"VERL_VERK", VATSale, decimal.Zero, "Sale, reverse charge 21%"},
	{"VERL_VERK_L9", VATSale, decimal.Zero, "Sale, reverse charge 9%"},
	{"BU_EU_VERK", VATSale, decimal.Zero, "Sale outside the EU 0%"},
	{"AFST_VERK", VATSale, decimal.Zero, "Distance selling within the EU 0%"},
	{"BI_EU_VERK_D", VATSale, decimal.Zero, "Services within the EU 0%"},
	{"LAAG_INK", VATPurchase, decimal.NewFromInt(6), "Purchase, low rate 6% (before 2019)"},
	{"LAAG_INK_9", VATPurchase, decimal.NewFromInt(9), "Purchase, low rate 9%"},
	{"HOOG_INK_21", VATPurchase, decimal.NewFromInt(21), "Purchase, high rate 21%"},
	{"AFW", VATPurchase, decimal.Zero, "Purchase, divergent rate"},
	{"VERL_INK_L9", VATPurchase, decimal.Zero, "Purchase, reverse charge 9%"},
	{"VERL_INK_L", VATPurchase, decimal.Zero, "Purchase, reverse charge 6% (before 2019)"},
	{"VERL_INK", VATPurchase, decimal.Zero, "Purchase, reverse charge 21%"},
	{"BU_EU_INK", VATPurchase, decimal.Zero, "Purchase outside the EU"},
	{"BI_EU_VERK", VATPurchase, decimal.Zero, "Delivery within the EU 0%"},
	{"BI_EU_INK", VATPurchase, decimal.Zero, "Purchase within the EU"},
	{"GEEN", VATBoth, decimal.Zero, "No VAT"},
}

// VATCodes returns the documented Dutch VAT codes (Belgian codes are left out).
func VATCodes() []VATCodeInfo { return append([]VATCodeInfo(nil), vatCodes...) }

// LookupVATCode returns the description of code.
func LookupVATCode(code VATCode) (VATCodeInfo, bool) {
	for _, v := range vatCodes {
		if v.Code == code {
			return v, true
		}
	}
	return VATCodeInfo{}, false
}
