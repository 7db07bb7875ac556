package eboekhouden

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
)

func idPath(base string, id int64) string { return base + "/" + strconv.FormatInt(id, 10) }

// get reads one record into out.
func get(ctx context.Context, c *Client, what, base, endpoint string, id int64, out any) error {
	if err := c.call(ctx, http.MethodGet, idPath(base, id), endpoint, "", nil, out); err != nil {
		return fmt.Errorf("get %s %d: %w", what, id, err)
	}
	return nil
}

// Relations

// ListRelations returns one page of relations. Filters: code, type, email, name, contact, city.
func (c *Client) ListRelations(ctx context.Context, page Page, filters ...Filter) ([]RelationListItem, error) {
	return list[RelationListItem](ctx, c, "relations", "/v1/relation", page, filters)
}

// Relations yields all relations matching filters, page by page.
func (c *Client) Relations(ctx context.Context, filters ...Filter) iter.Seq2[RelationListItem, error] {
	return all[RelationListItem](ctx, c, "relations", "/v1/relation", filters)
}

// GetRelation reads one relation with all its fields.
func (c *Client) GetRelation(ctx context.Context, id int64) (*Relation, error) {
	var r Relation
	if err := get(ctx, c, "relation", "/v1/relation", "GET /v1/relation/{id}", id, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// FindRelationByCode returns the relation whose code is exactly code, or an error matching
// ErrNotFound. Used before a create to find what an earlier, interrupted attempt left.
func (c *Client) FindRelationByCode(ctx context.Context, code string) (*RelationListItem, error) {
	items, err := c.ListRelations(ctx, Page{Limit: 10}, Eq("code", code))
	if err != nil {
		return nil, fmt.Errorf("find relation by code: %w", err)
	}
	for _, it := range items {
		// The server's eq may ignore case; the code is matched exactly here.
		if it.Code == code {
			return &it, nil
		}
	}
	return nil, fmt.Errorf("find relation by code: %w", ErrNotFound)
}

// CreateRelation creates r (ID and Date are ignored). An empty Code lets e-Boekhouden generate
// one; retrying such a create may duplicate the relation, so prefer a deterministic code.
func (c *Client) CreateRelation(ctx context.Context, r Relation) (CreatedRelation, error) {
	var out CreatedRelation
	if err := c.call(ctx, http.MethodPost, "/v1/relation", "POST /v1/relation", "", r.writable(), &out); err != nil {
		return out, fmt.Errorf("create relation: %w", err)
	}
	return out, nil
}

// PutRelation replaces relation id with r via PATCH. The API requires name on every PATCH and
// may clear fields that are left out, so r must be complete; UpdateRelation does that for you.
func (c *Client) PutRelation(ctx context.Context, id int64, r Relation) error {
	body, err := patchBody(r)
	if err != nil {
		return fmt.Errorf("patch relation %d: %w", id, err)
	}
	if err := c.call(ctx, http.MethodPatch, idPath("/v1/relation", id), "PATCH /v1/relation/{id}", "", body, nil); err != nil {
		return fmt.Errorf("patch relation %d: %w", id, err)
	}
	return nil
}

// clearableFields are the relation's free string fields. A PATCH sends them even when empty:
// whether the server clears omitted fields is undocumented, so an empty value is the only way to
// be sure a field removed at the source is removed in e-Boekhouden too.
var clearableFields = []string{"salutation", "contact", "address", "postalCode", "city", "country",
	"address2", "postalCode2", "city2", "country2", "phoneNumber", "mobilePhoneNumber", "faxNumber",
	"emailAddress", "emailAddressInvoice", "emailAddressReminder", "website", "note", "vatNumber",
	"companyRegistrationNumber", "iban", "bic", "freeText1", "freeText2", "freeText3", "freeText4",
	"freeText5", "freeText6", "freeText7", "freeText8", "freeText9", "freeText10"}

func patchBody(r Relation) (map[string]json.RawMessage, error) {
	b, err := json.Marshal(r.writable())
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range clearableFields {
		if _, ok := m[k]; !ok {
			m[k] = json.RawMessage(`""`)
		}
	}
	return m, nil
}

// UpdateRelation reads relation id, lets change modify it and writes it back whole
// (read-modify-write, because PATCH requires name and may clear omitted fields). When change
// returns an error nothing is written.
func (c *Client) UpdateRelation(ctx context.Context, id int64, change func(*Relation) error) (*Relation, error) {
	r, err := c.GetRelation(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("update relation: %w", err)
	}
	if err := change(r); err != nil {
		return nil, fmt.Errorf("update relation %d: %w", id, err)
	}
	if err := c.PutRelation(ctx, id, *r); err != nil {
		return nil, fmt.Errorf("update relation: %w", err)
	}
	return r, nil
}

// Products

// ListProducts returns one page of products. Filters: code, groupCode.
func (c *Client) ListProducts(ctx context.Context, page Page, filters ...Filter) ([]ProductListItem, error) {
	return list[ProductListItem](ctx, c, "products", "/v1/product", page, filters)
}

// Products yields all products matching filters.
func (c *Client) Products(ctx context.Context, filters ...Filter) iter.Seq2[ProductListItem, error] {
	return all[ProductListItem](ctx, c, "products", "/v1/product", filters)
}

// GetProduct reads one product.
func (c *Client) GetProduct(ctx context.Context, id int64) (*Product, error) {
	var p Product
	if err := get(ctx, c, "product", "/v1/product", "GET /v1/product/{id}", id, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateProduct creates p and returns its ID.
func (c *Client) CreateProduct(ctx context.Context, p Product) (int64, error) {
	p.ID = 0
	var out struct {
		ID int64 `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/product", "POST /v1/product", "", p, &out); err != nil {
		return 0, fmt.Errorf("create product: %w", err)
	}
	return out.ID, nil
}

// ProductGroups returns all product groups (this endpoint has no paging).
func (c *Client) ProductGroups(ctx context.Context) ([]ProductGroup, error) {
	var env listEnvelope[ProductGroup]
	if err := c.call(ctx, http.MethodGet, "/v1/product/groups", "GET /v1/product/groups", "", nil, &env); err != nil {
		return nil, fmt.Errorf("list product groups: %w", err)
	}
	return env.Items, nil
}

// Reference data

// Units yields all units. Filters: singular, plural.
func (c *Client) Units(ctx context.Context, filters ...Filter) iter.Seq2[Unit, error] {
	return all[Unit](ctx, c, "units", "/v1/unit", filters)
}

// Ledgers yields all ledger accounts. Filters: code, category.
func (c *Client) Ledgers(ctx context.Context, filters ...Filter) iter.Seq2[Ledger, error] {
	return all[Ledger](ctx, c, "ledgers", "/v1/ledger", filters)
}

// GetLedger reads one ledger account.
func (c *Client) GetLedger(ctx context.Context, id int64) (*Ledger, error) {
	var l Ledger
	if err := get(ctx, c, "ledger", "/v1/ledger", "GET /v1/ledger/{id}", id, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// GetLedgerBalance returns a ledger's balance; from and to (inclusive) are optional (zero Date).
func (c *Client) GetLedgerBalance(ctx context.Context, id int64, from, to Date) (*LedgerBalance, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.String())
	}
	if !to.IsZero() {
		q.Set("to", to.String())
	}
	var b LedgerBalance
	if err := c.call(ctx, http.MethodGet, idPath("/v1/ledger", id)+"/balance", "GET /v1/ledger/{id}/balance", q.Encode(), nil, &b); err != nil {
		return nil, fmt.Errorf("get ledger %d balance: %w", id, err)
	}
	return &b, nil
}

// InvoiceTemplates yields all invoice templates. Filters: name, type, active.
func (c *Client) InvoiceTemplates(ctx context.Context, filters ...Filter) iter.Seq2[InvoiceTemplate, error] {
	return all[InvoiceTemplate](ctx, c, "invoice templates", "/v1/invoicetemplate", filters)
}

// EmailTemplates yields all e-mail templates.
func (c *Client) EmailTemplates(ctx context.Context) iter.Seq2[EmailTemplate, error] {
	return all[EmailTemplate](ctx, c, "e-mail templates", "/v1/emailtemplate", nil)
}

// CostCenters yields all cost centres. Filters: parentId, description.
func (c *Client) CostCenters(ctx context.Context, filters ...Filter) iter.Seq2[CostCenter, error] {
	return all[CostCenter](ctx, c, "cost centres", "/v1/costcenter", filters)
}

// LinkedAdministrations yields the administrations linked to the token's administration.
func (c *Client) LinkedAdministrations(ctx context.Context) iter.Seq2[Administration, error] {
	return all[Administration](ctx, c, "linked administrations", "/v1/administration/linked", nil)
}

// Invoices

// ListInvoices returns one page of invoices. Filters: invoiceNumber, relationId, date.
func (c *Client) ListInvoices(ctx context.Context, page Page, filters ...Filter) ([]InvoiceListItem, error) {
	return list[InvoiceListItem](ctx, c, "invoices", "/v1/invoice", page, filters)
}

// Invoices yields all invoices matching filters.
func (c *Client) Invoices(ctx context.Context, filters ...Filter) iter.Seq2[InvoiceListItem, error] {
	return all[InvoiceListItem](ctx, c, "invoices", "/v1/invoice", filters)
}

// GetInvoice reads one invoice with its lines.
func (c *Client) GetInvoice(ctx context.Context, id int64) (*Invoice, error) {
	var inv Invoice
	if err := get(ctx, c, "invoice", "/v1/invoice", "GET /v1/invoice/{id}", id, &inv); err != nil {
		return nil, err
	}
	return &inv, nil
}

// FindInvoiceByNumber returns the invoice numbered number, or an error matching ErrNotFound.
func (c *Client) FindInvoiceByNumber(ctx context.Context, number string) (*InvoiceListItem, error) {
	items, err := c.ListInvoices(ctx, Page{Limit: 10}, Eq("invoiceNumber", number))
	if err != nil {
		return nil, fmt.Errorf("find invoice by number: %w", err)
	}
	for _, it := range items {
		if it.InvoiceNumber == number {
			return &it, nil
		}
	}
	return nil, fmt.Errorf("find invoice by number: %w", ErrNotFound)
}

// CreateInvoice creates an invoice. With Mutation set it is booked as an open item.
func (c *Client) CreateInvoice(ctx context.Context, inv NewInvoice) (CreatedInvoice, error) {
	var out CreatedInvoice
	if err := c.call(ctx, http.MethodPost, "/v1/invoice", "POST /v1/invoice", "", inv, &out); err != nil {
		return out, fmt.Errorf("create invoice: %w", err)
	}
	return out, nil
}

// Mutations

// ListMutations returns one page of bookings. Filters: type, id, description, invoiceNumber, date.
func (c *Client) ListMutations(ctx context.Context, page Page, filters ...Filter) ([]MutationListItem, error) {
	return list[MutationListItem](ctx, c, "mutations", "/v1/mutation", page, filters)
}

// Mutations yields all bookings matching filters, opening-balance rows (ID 0) included.
func (c *Client) Mutations(ctx context.Context, filters ...Filter) iter.Seq2[MutationListItem, error] {
	return all[MutationListItem](ctx, c, "mutations", "/v1/mutation", filters)
}

// GetMutation reads one booking with its rows.
func (c *Client) GetMutation(ctx context.Context, id int64) (*Mutation, error) {
	var m Mutation
	if err := get(ctx, c, "mutation", "/v1/mutation", "GET /v1/mutation/{id}", id, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// CreateMutation books m and returns its ID.
func (c *Client) CreateMutation(ctx context.Context, m NewMutation) (int64, error) {
	var out struct {
		ID FlexInt `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, "/v1/mutation", "POST /v1/mutation", "", m, &out); err != nil {
		return 0, fmt.Errorf("create mutation: %w", err)
	}
	return int64(out.ID), nil
}

// Outstanding items

// ListOutstanding returns one page of open items of debtors or creditors. Filter: invoiceNumber.
func (c *Client) ListOutstanding(ctx context.Context, side CreditDebit, page Page, filters ...Filter) ([]OutstandingInvoice, error) {
	return list[OutstandingInvoice](ctx, c, "outstanding invoices", "/v1/mutation/invoice/outstanding", page,
		append([]Filter{Eq("credDeb", string(side))}, filters...))
}

// Outstanding yields all open items of debtors (D) or creditors (C). Whether fully paid items are
// listed (with outstanding 0) is undocumented; callers must handle both.
func (c *Client) Outstanding(ctx context.Context, side CreditDebit, filters ...Filter) iter.Seq2[OutstandingInvoice, error] {
	return all[OutstandingInvoice](ctx, c, "outstanding invoices", "/v1/mutation/invoice/outstanding",
		append([]Filter{Eq("credDeb", string(side))}, filters...))
}
