// Package tenantsettings names the keys of a tenant's settings links (TenantSettings.links in
// the mapping API): what activation stores and the flows read. The admin API writes them (PUT
// links, activation); the invoice and product flows read them.
package tenantsettings

// Link keys, filled by PUT /links.
const (
	// DebtorLedger -> the e-Boekhouden ledger ID that sent invoices are booked on.
	DebtorLedger = "debtor_ledger"
	// InvoiceTemplate -> the e-Boekhouden invoice template ID.
	InvoiceTemplate = "invoice_template"
	// RevenueLedgerPrefix + Tribe VAT group ID -> e-Boekhouden revenue ledger ID.
	RevenueLedgerPrefix = "revenue_ledger:"
	// VATCodePrefix + Tribe VAT group ID -> e-Boekhouden VAT code.
	VATCodePrefix = "vat_code:"
	// WebhookPrefix + Tribe webhook registration ID -> the entity type it was registered for.
	WebhookPrefix = "webhook:"
)

// RevenueLedger is the key of a VAT group's revenue ledger.
func RevenueLedger(group string) string { return RevenueLedgerPrefix + group }

// VATCode is the key of a VAT group's VAT code.
func VATCode(group string) string { return VATCodePrefix + group }
