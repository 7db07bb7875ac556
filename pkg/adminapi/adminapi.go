// Package adminapi is the admin API's contract, defined once: the request and answer of every
// call (under /admin/v1 of the admin service) as JSON-tagged Go types, and a client. The admin
// service answers with these types, and koppelctl, the console and the end-to-end tests read
// them; none of them sees the mapping service's internal messages. Numbers are JSON numbers,
// times RFC 3339, enumerations lower-case words ("active", "succeeded").
package adminapi

import (
	"encoding/json"
	"time"
)

// ErrorBody is the body of every error answer: {"error":{"code","message","field"}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// Field names the request field at fault, when one is.
		Field string `json:"field,omitempty"`
	} `json:"error"`
}

// Tenant states.
const (
	StateSetup  = "setup"
	StateActive = "active"
	StatePaused = "paused"
)

// Tenant is a tenant as the admin API shows it: its settings, and the names (never the values)
// of its secrets.
type Tenant struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"display_name,omitempty"`
	State       string    `json:"state"`
	Settings    Settings  `json:"settings"`
	SecretNames []string  `json:"secret_names,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// Settings are a tenant's non-secret configuration.
type Settings struct {
	EBoekhoudenBaseURL string            `json:"eboekhouden_base_url,omitempty"`
	TribeBaseURL       string            `json:"tribe_base_url,omitempty"`
	TribeAuthURL       string            `json:"tribe_auth_url,omitempty"`
	TribeClientID      string            `json:"tribe_client_id,omitempty"`
	ScheduleSeconds    map[string]int64  `json:"schedule_seconds,omitempty"`
	AutoDebtorNumbers  bool              `json:"auto_debtor_numbers,omitempty"`
	DebtorNumberStart  int64             `json:"debtor_number_start,omitempty"`
	Links              map[string]string `json:"links,omitempty"`
}

// CreateTenant is POST /tenants.
type CreateTenant struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
}

// Tenants is GET /tenants.
type Tenants struct {
	Tenants []Tenant `json:"tenants"`
}

// SetState is PUT /tenants/{tenant}/state.
type SetState struct {
	State string `json:"state"`
}

// StateChanged answers PUT /tenants/{tenant}/state: the tenant, and on a resume the catch-up run
// of each scheduled kind.
type StateChanged struct {
	Tenant
	CatchUpRuns map[string]string `json:"catch_up_runs,omitempty"`
}

// SetSecret is PUT /tenants/{tenant}/secrets/{name}.
type SetSecret struct {
	Value string `json:"value"`
}

// Credentials is PUT /tenants/{tenant}/credentials: both systems' credentials, as an operator
// enters them. The answer is the Tenant.
type Credentials struct {
	EBoekhouden struct {
		BaseURL string `json:"base_url"`
		Token   string `json:"token"`
	} `json:"eboekhouden"`
	Tribe struct {
		BaseURL      string `json:"base_url"`
		AuthURL      string `json:"auth_url"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	} `json:"tribe"`
}

// Option is one choice of the configuration.
type Option struct {
	// ID is what a link stores: a ledger's or template's numeric ID, a VAT code, a Tribe GUID.
	ID          string `json:"id"`
	Code        string `json:"code,omitempty"`
	Description string `json:"description"`
	// Category of a ledger (DEB, VW, BAL, ...); kind of a VAT code (sale, purchase, both); type
	// of an invoice template (E, A).
	Category string `json:"category,omitempty"`
	// Percentage of a VAT code or VAT group, when known.
	Percentage string `json:"percentage,omitempty"`
}

// Configuration answers GET /tenants/{tenant}/configuration: what the two systems offer to link.
type Configuration struct {
	Ledgers          []Option `json:"ledgers"`
	VATCodes         []Option `json:"vat_codes"`
	InvoiceTemplates []Option `json:"invoice_templates"`
	VATGroups        []Option `json:"vat_groups"`
	Units            []Option `json:"units"`
	AddressTypes     []Option `json:"address_types"`
}

// Links is PUT /tenants/{tenant}/links: the choices an operator makes at activation. Each value
// may be given by ID or by code; the stored link is always the ID.
type Links struct {
	DebtorLedger    string            `json:"debtor_ledger"`
	InvoiceTemplate string            `json:"invoice_template"`
	RevenueLedgers  map[string]string `json:"revenue_ledgers"` // Tribe VAT group -> ledger
	VATCodes        map[string]string `json:"vat_codes"`       // Tribe VAT group -> VAT code
	// AutoDebtorNumbers makes koppel number new Tribe customers, from DebtorNumberStart.
	AutoDebtorNumbers bool  `json:"auto_debtor_numbers"`
	DebtorNumberStart int64 `json:"debtor_number_start"`
	// ScheduleSeconds overrides sync intervals per kind; absent leaves the stored ones.
	ScheduleSeconds map[string]int64 `json:"schedule_seconds"`
}

// LinksStored answers PUT /tenants/{tenant}/links: the tenant, and how many invoices that waited
// for the links were pushed again.
type LinksStored struct {
	Tenant
	InvoicesRetried int `json:"invoices_retried"`
}

// Activated answers POST /tenants/{tenant}/activate.
type Activated struct {
	State       string    `json:"state"`
	ImportRunID string    `json:"import_run_id"`
	Status      string    `json:"status"`
	Webhooks    []Webhook `json:"webhooks"`
	// Notes tell the operator what is left to do by hand.
	Notes []string `json:"notes,omitempty"`
}

// Webhook is a Tribe webhook registration koppel made.
type Webhook struct {
	ID         string `json:"id"`
	EntityType string `json:"entity_type"`
}

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunPartial   = "partial"
	RunFailed    = "failed"
)

// Counts are a run's honest counts.
type Counts struct {
	Created   int64 `json:"created"`
	Updated   int64 `json:"updated"`
	Unchanged int64 `json:"unchanged"`
	Skipped   int64 `json:"skipped"`
	Failed    int64 `json:"failed"`
}

// Run is one sync run.
type Run struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Status     string    `json:"status"`
	Trigger    string    `json:"trigger,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Counts     Counts    `json:"counts"`
	// Done out of Total records (Total 0 until known).
	Done    int64  `json:"done"`
	Total   int64  `json:"total"`
	Message string `json:"message,omitempty"`
	// Report is what the run found, for runs that report (a rebuild: a RebuildReport).
	Report json.RawMessage `json:"report,omitempty"`
}

// Runs are the runs in progress and the latest finished ones.
type Runs struct {
	Current  []Run `json:"current"`
	Finished []Run `json:"finished"`
}

// Issue is something a tenant must know and usually act on.
type Issue struct {
	Key         string            `json:"key"`
	Code        string            `json:"code"`
	Kind        string            `json:"kind,omitempty"`
	EntityID    string            `json:"entity_id,omitempty"`
	Message     string            `json:"message"`
	Action      string            `json:"action,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	FirstSeen   time.Time         `json:"first_seen,omitzero"`
	LastSeen    time.Time         `json:"last_seen,omitzero"`
	Occurrences int64             `json:"occurrences"`
}

// HistoryEntry is one thing koppel did or decided for a tenant (a settled conflict, a skipped run).
type HistoryEntry struct {
	At       time.Time         `json:"at"`
	Code     string            `json:"code"`
	Kind     string            `json:"kind,omitempty"`
	EntityID string            `json:"entity_id,omitempty"`
	Message  string            `json:"message"`
	Details  map[string]string `json:"details,omitempty"`
}

// Status answers GET /tenants/{tenant}/status.
type Status struct {
	Tenant Tenant `json:"tenant"`
	Runs   Runs   `json:"runs"`
	// NextRuns is when each scheduled kind runs next (an active tenant only).
	NextRuns map[string]time.Time `json:"next_runs"`
	Issues   []Issue              `json:"issues"`
	History  []HistoryEntry       `json:"history"`
}

// RunKindRebuild is the kind of a rebuild's run (the bus's KindRebuild; koppelctl must not
// link the bus to know it).
const RunKindRebuild = "rebuild"

// RunStarted answers POST /tenants/{tenant}/sync/{kind} and POST /tenants/{tenant}/rebuild.
type RunStarted struct {
	RunID string `json:"run_id"`
}

// Rebuild is POST /tenants/{tenant}/rebuild.
type Rebuild struct {
	DryRun bool `json:"dry_run"`
}

// Rebuild outcomes of a record or pair.
const (
	OutcomeLinked               = "linked"
	OutcomeAlreadyLinked        = "already_linked"
	OutcomeConflicting          = "conflicting"
	OutcomeUnmatchedTribe       = "unmatched_tribe"
	OutcomeUnmatchedEBoekhouden = "unmatched_eboekhouden"
)

// RebuildReport is what a rebuild found and did (Run.Report of a rebuild run). In a dry run the
// counts say what it would do.
type RebuildReport struct {
	Tenant        string        `json:"tenant"`
	DryRun        bool          `json:"dry_run"`
	Kinds         []*KindReport `json:"kinds"`
	DebtorNumbers DebtorNumbers `json:"debtor_numbers"`
	// CursorsReset are the cursors that were (or would be) cleared.
	CursorsReset []string `json:"cursors_reset"`
	Notes        []string `json:"notes,omitempty"`
}

// KindReport counts one link kind of a rebuild. Found counts the records read in each system;
// every pair matched is linked, already linked or conflicting; unmatched counts records that
// could have been matched but were not.
type KindReport struct {
	Kind                 string           `json:"kind"`
	FoundTribe           int              `json:"found_tribe"`
	FoundEBoekhouden     int              `json:"found_eboekhouden"`
	Linked               int              `json:"linked"`
	AlreadyLinked        int              `json:"already_linked"`
	Conflicting          int              `json:"conflicting"`
	UnmatchedTribe       int              `json:"unmatched_tribe"`
	UnmatchedEBoekhouden int              `json:"unmatched_eboekhouden"`
	Examples             []RebuildExample `json:"examples"`
}

// RebuildExample is one record or pair of a report, with why it came out as it did.
type RebuildExample struct {
	Outcome       string `json:"outcome"`
	TribeID       string `json:"tribe_id,omitempty"`
	EBoekhoudenID string `json:"eboekhouden_id,omitempty"`
	// Key is the debtor or creditor number, product code or invoice number the match was made
	// or tried on.
	Key    string `json:"key,omitempty"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// DebtorNumbers is the debtor-number sequence's part of a rebuild report.
type DebtorNumbers struct {
	// HighestUsed is the highest numeric debtor number or relation code in either system.
	HighestUsed int64 `json:"highest_used"`
	// Sequence is the sequence's value after raising it (0 in a dry run).
	Sequence int64 `json:"sequence,omitempty"`
}

// DeadLetter is a message that could not be handled.
type DeadLetter struct {
	Sequence        uint64    `json:"sequence"`
	Tenant          string    `json:"tenant"`
	Consumer        string    `json:"consumer"`
	Reason          string    `json:"reason"`
	OriginalSubject string    `json:"original_subject"`
	OriginalMsgID   string    `json:"original_msg_id"`
	Deliveries      int       `json:"deliveries"`
	DeadAt          time.Time `json:"dead_at"`
}

// DeadLetters answers GET /deadletters.
type DeadLetters struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// InvoiceState answers GET and POST .../invoices/{id}[/push]: whether koppel booked a Tribe
// invoice, and the open issues that say why not (or what is off with it).
type InvoiceState struct {
	Tenant string `json:"tenant"`
	ID     string `json:"invoice_id"`
	Booked bool   `json:"booked"`
	// EBoekhoudenID and Number are the booked invoice's, from its link.
	EBoekhoudenID string  `json:"eboekhouden_id,omitempty"`
	Number        string  `json:"number,omitempty"`
	Issues        []Issue `json:"issues"`
}

// Reseal is POST /tenants/{tenant}/secrets/reseal.
type Reseal struct {
	DryRun bool `json:"dry_run"`
}

// Resealed answers POST /tenants/{tenant}/secrets/reseal.
type Resealed struct {
	Secrets []SecretSeal `json:"secrets"`
	// PrimaryKeyID is the key new seals use.
	PrimaryKeyID string `json:"primary_key_id"`
}

// SecretSeal says which key sealed a secret, before and after a reseal. Values never appear.
type SecretSeal struct {
	Name     string `json:"name"`
	KeyID    string `json:"key_id"`
	Resealed bool   `json:"resealed"`
	Problem  string `json:"problem,omitempty"`
}
