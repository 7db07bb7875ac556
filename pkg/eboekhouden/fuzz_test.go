package eboekhouden

import (
	"encoding/json"
	"testing"

	"github.com/koppel/koppel/pkg/apicall"
)

// decodeAll runs every response decoder of the client over b; none may panic.
func decodeAll(b []byte) {
	var (
		rel  Relation
		rl   listEnvelope[RelationListItem]
		p    Product
		pl   listEnvelope[ProductListItem]
		inv  Invoice
		il   listEnvelope[InvoiceListItem]
		m    Mutation
		ml   listEnvelope[MutationListItem]
		o    listEnvelope[OutstandingInvoice]
		l    listEnvelope[Ledger]
		lb   LedgerBalance
		u    listEnvelope[Unit]
		et   listEnvelope[EmailTemplate]
		it   listEnvelope[InvoiceTemplate]
		cc   CostCenter
		s    sessionResponse
		ci   CreatedInvoice
		cr   CreatedRelation
		pg   listEnvelope[ProductGroup]
		adms listEnvelope[Administration]
	)
	for _, v := range []any{&rel, &rl, &p, &pl, &inv, &il, &m, &ml, &o, &l, &lb, &u, &et, &it, &cc, &s, &ci, &cr, &pg, &adms} {
		_ = json.Unmarshal(b, v)
	}
	e := decodeAPIError(&apicall.Response{StatusCode: 400, Body: b})
	_ = e.Error()
}

func FuzzDecoders(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"type":"B","code":"R0001","date":"2026-01-02T00:00:00","inactive":null,"doNotReceiveNewsletters":1,"termOfPayment":null}`,
		`{"items":[{"id":0,"type":0,"date":"2018-12-31","invoiceNumber":"","ledgerId":13201861,"amount":400.0,"entryNumber":""}],"count":5}`,
		`{"items":[{"id":1,"type":"3","date":"2026-01-01","amount":"12.50"}],"count":1}`,
		`{"id":5,"rows":[{"vatCode":"GEEN","amount":1e2,"invoiceNumber":"F1"}],"vat":[{"vatCode":"GEEN","amount":0}]}`,
		`{"items":[{"date":"2026-06-01","mutationId":5512,"invoiceNumber":"F20260001","totalAmount":229.9,"paidAmount":100.0,"outstandingAmount":129.9}],"count":1}`,
		`{"type":"validation","title":"Code already exists.","status":400,"code":"REL_049","propertyName":"code"}`,
		`{"type":"security","title":"x","status":403,"securityType":1}`,
		`{"token":"abc","expiresIn":"3600"}`,
		`{"amount":1e999999999}`, `{"quantity":"-0.00001"}`, `null`, `[]`, `{"date":"not a date"}`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) { decodeAll(b) })
}

func FuzzAmountRoundTrip(f *testing.F) {
	for _, s := range []string{"0", "121.0", "-3.333", `"12.50"`, "null", "1e3", "99999999999999999999.999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var a Amount
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			return
		}
		out, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("marshal %v: %v", a, err)
		}
		var back Amount
		if err := json.Unmarshal(out, &back); err != nil || !back.Equal(Amount{a.Round(2)}) {
			t.Fatalf("%s → %s → %v (%v)", s, out, back, err)
		}
	})
}

func FuzzEncodeQuery(f *testing.F) {
	f.Add("name", "like", "%acme & co%", 10, 0)
	f.Add("date", "range", "2025-01-01,2025-12-31", 2000, 5)
	f.Add("a[b]", "eq", "x", 0, -1)
	f.Fuzz(func(t *testing.T, field, op, value string, limit, offset int) {
		_, _ = encodeQuery(Page{Limit: limit, Offset: offset}, []Filter{{Field: field, Op: Op(op), Value: value}})
	})
}
