// Package ebsim is a faithful in-memory simulator of the e-Boekhouden.nl REST API, an http.Handler
// that serves /v1/... for many administrations at once (each one identified by its API token) and
// an admin API under /_sim/ to create, seed, inspect and reset administrations, book payments the
// way a bookkeeper processing a bank statement would, move the clock and inject faults.
//
// It follows section 6 of the e-Boekhouden reference: sessions with expiry, raw and Bearer
// Authorization, paging limits and PAGE_ errors, param[op]=value filters, list vs detail shapes,
// validations with their codes, generated relation codes and invoice numbers, uniqueness
// (REL_049, FACT_101, MUT_019), booked invoices as type-2 mutations and open items, type-3
// payments reducing open items, and an opening-balance row. Where the reference says UNCONFIRMED
// the behaviour is an Option, so clients can be proven against both variants.
package ebsim

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// CountMode says what the "count" of a list answer means; the reference leaves it open.
type CountMode int

// Count modes.
const (
	// CountPage: count is the number of items on this page (the spec's wording). Default.
	CountPage CountMode = iota
	// CountTotal: count is the number of items matching the filters on all pages.
	CountTotal
)

// Rounding says where VAT is rounded to cents; the reference leaves it open.
type Rounding int

// Rounding modes.
const (
	// RoundPerLine rounds each line's VAT, then adds. Default.
	RoundPerLine Rounding = iota
	// RoundPerInvoice adds unrounded VAT per code and rounds the totals.
	RoundPerInvoice
)

// Options configure a Simulator. The zero value is usable: every field documents its default.
type Options struct {
	// SessionTTL is the lifetime of a session token, reported as expiresIn. Default 3600 s.
	SessionTTL time.Duration
	// UnknownTokenStatus is the HTTP status of POST /v1/session with an unknown API token: 403
	// (SecurityError, securityType 0) or 400 (API_SESSION_003). Default 403.
	UnknownTokenStatus int
	// RejectBearer refuses "Authorization: Bearer <token>" (only the raw token is accepted). Default
	// false: both forms are accepted, as released clients use both.
	RejectBearer bool
	// EmptyUnauthorizedBody answers 401 without a body (the spec defines none). Default false: the
	// body is the SECURITY_010 error.
	EmptyUnauthorizedBody bool
	// Count sets the meaning of a list's "count". Default CountPage.
	Count CountMode
	// MaxLimit is the largest accepted limit. Default 2000 (the spec); some clients claim 500.
	MaxLimit int
	// KeepPaidOutstanding keeps fully paid items in /v1/mutation/invoice/outstanding (with
	// outstandingAmount 0). Default false: they drop out.
	KeepPaidOutstanding bool
	// IgnoreOutstandingNumberFilter makes /v1/mutation/invoice/outstanding ignore its
	// invoiceNumber parameter. The spec lists the parameter, but nothing shows the server applies
	// it as an exact match (UNCONFIRMED); with this set a client must check the numbers it gets
	// back. Default false: it is applied like any string filter.
	IgnoreOutstandingNumberFilter bool
	// CaseSensitiveFilters makes eq and like on strings case-sensitive. Default false (SQL Server's
	// usual collation).
	CaseSensitiveFilters bool
	// PatchClearsOmitted makes PATCH /v1/relation clear fields the body leaves out. Default false:
	// omitted fields keep their value.
	PatchClearsOmitted bool
	// Rounding sets where invoice VAT is rounded. Default RoundPerLine.
	Rounding Rounding
	// RejectOverpayment refuses a payment row larger than the open amount (MUT_116). Default false.
	RejectOverpayment bool
	// SuccessStatusOK answers 200 to POST, PATCH and DELETE. Default false: 201 for creates and 204
	// for PATCH and DELETE (what public mocks use; the spec does not say).
	SuccessStatusOK bool
	// RateLimit is the allowed requests per second per administration (session starts count for
	// the token's administration); excess requests get 429 with Retry-After. Default 0: unlimited.
	RateLimit float64
	// RateBurst is the burst of the rate limit. Default 2×RateLimit, at least 1.
	RateBurst int
	// Seed seeds the fault-injection RNG. Default 1.
	Seed uint64
	// Now is the clock; the admin API can shift it. Default time.Now.
	Now func() time.Time
	// AdminPrefix is the path prefix of the admin API. Default "/_sim".
	AdminPrefix string
	// AdminToken, when set, is required as "Authorization: Bearer <AdminToken>" on the admin API.
	// Default "": the admin API is open (a sandbox on a private network).
	AdminToken string
	// PublicURL is used in urlPdfFile links. Default "http://ebsim.invalid".
	PublicURL string
	// Logger logs admin actions and faults at debug level. Default: discard.
	Logger *slog.Logger
}

// Simulator is the fake e-Boekhouden. It is safe for concurrent use.
type Simulator struct {
	opt Options
	mux *http.ServeMux

	mu       sync.RWMutex
	admins   map[string]*admin // by administration ID
	byToken  map[string]*admin // by API token
	sessions map[string]*session
	nextAdm  int

	clockMu sync.Mutex
	offset  time.Duration

	faultMu   sync.Mutex
	faults    map[string]*Faults // "" = all administrations
	rng       *rand.Rand
	limiters  map[string]*tokenBucket
	held      map[int64]HeldAnswer // by sequence number; see Faults.HoldAfterCreate
	heldSeq   int64
	release   chan struct{} // closed to let the held answers go
	stats     sync.Map      // route pattern → *atomic.Int64
	idCounter atomic.Int64
}

type session struct {
	adm     *admin
	expires time.Time
}

// New returns a simulator with no administrations; create them with CreateAdministration or
// POST /_sim/admins.
func New(opt Options) *Simulator {
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = time.Hour
	}
	if opt.UnknownTokenStatus == 0 {
		opt.UnknownTokenStatus = http.StatusForbidden
	}
	if opt.MaxLimit <= 0 {
		opt.MaxLimit = 2000
	}
	if opt.RateBurst <= 0 {
		opt.RateBurst = max(1, int(2*opt.RateLimit))
	}
	if opt.Seed == 0 {
		opt.Seed = 1
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.AdminPrefix == "" {
		opt.AdminPrefix = "/_sim"
	}
	opt.AdminPrefix = "/" + strings.Trim(opt.AdminPrefix, "/")
	if opt.PublicURL == "" {
		opt.PublicURL = "http://ebsim.invalid"
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Simulator{
		opt:      opt,
		admins:   map[string]*admin{},
		byToken:  map[string]*admin{},
		sessions: map[string]*session{},
		faults:   map[string]*Faults{},
		rng:      rand.New(rand.NewPCG(opt.Seed, opt.Seed*0x9e3779b97f4a7c15+1)),
		limiters: map[string]*tokenBucket{},
		held:     map[int64]HeldAnswer{},
	}
	s.idCounter.Store(22206000)
	s.mux = http.NewServeMux()
	s.routes()
	s.adminRoutes()
	return s
}

// Now is the simulator's clock: Options.Now shifted by Advance.
func (s *Simulator) Now() time.Time {
	s.clockMu.Lock()
	defer s.clockMu.Unlock()
	return s.opt.Now().Add(s.offset)
}

// Advance moves the simulator's clock forward by d (sessions expire, default dates move).
func (s *Simulator) Advance(d time.Duration) {
	s.clockMu.Lock()
	s.offset += d
	s.clockMu.Unlock()
}

// nextID hands out the large internal IDs real administrations have (e.g. 22206462), unique
// across the simulator so an ID of one kind never accidentally finds a record of another.
func (s *Simulator) nextID() int64 { return s.idCounter.Add(1) }

// ServeHTTP serves the API and the admin API.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Simulator) count(pattern string) {
	v, ok := s.stats.Load(pattern)
	if !ok {
		v, _ = s.stats.LoadOrStore(pattern, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Stats returns how many requests each route served (route pattern → count), faults included.
func (s *Simulator) Stats() map[string]int64 {
	out := map[string]int64{}
	s.stats.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}
