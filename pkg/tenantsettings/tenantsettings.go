// Package tenantsettings names what activation stores about a tenant and other services read:
// the keys of its settings links (TenantSettings.links in the mapping API), which the admin API
// writes (PUT links, activation) and the invoice and product flows and the webhook intake read,
// and the names of the webhook secrets, which activation stores and the intake checks
// deliveries with.
package tenantsettings

import "strings"

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

// Webhook secrets: Tribe signs each registration's deliveries with a secret of its own.
const (
	// SecretWebhook is the secret of registrations made by hand (and of a tenant whose
	// registrations did not return their secrets).
	SecretWebhook = "webhook_secret"
	// SecretWebhookPrefix + a registration's ID (letters and digits only) holds the secret of
	// that registration.
	SecretWebhookPrefix = "webhook_secret_"
)

// WebhookSecret is the secret name of a registration's signing secret; the mapping service
// allows lower-case letters, digits and underscores only.
func WebhookSecret(registrationID string) string {
	var b strings.Builder
	b.WriteString(SecretWebhookPrefix)
	for _, c := range strings.ToLower(registrationID) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		}
	}
	return b.String()[:min(b.Len(), 64)]
}
