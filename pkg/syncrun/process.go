package syncrun

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// Cursors the runs keep their progress in (Plan.Cursor), and the product pull's last full run.
// A rebuild of the mapping clears them all, so no run resumes half-way through a list it saw
// before.
const (
	CursorRelationRun = "relation-run"
	CursorProductRun  = "product-run"
	CursorProductFull = "product-full"
)

// Cursors are every cursor above.
var Cursors = []string{CursorRelationRun, CursorProductRun, CursorProductFull}

// Outcome is what became of one record of a run.
type Outcome int

// Outcomes, as counted in RunCounts.
const (
	Unchanged Outcome = iota
	Created
	Updated
	Skipped
	Failed
)

// Result is the outcome of one record; Reason says why a skipped record was skipped, such as
// "inactive in e-Boekhouden", for the run's message.
type Result struct {
	Outcome Outcome
	Reason  string
}

// Plan tunes Process.
type Plan struct {
	// Cursor names the cursor that keeps the run's position, so a redelivered command resumes
	// where the stored progress says. Required.
	Cursor string
	// Concurrency is how many records are handled at once. Default 1. The API budgets bound the
	// real rate; concurrency only keeps them busy while calls wait for answers.
	Concurrency int
	// FlushEvery and FlushInterval bound how stale the stored progress gets: it is stored after
	// that many records or that long, whichever comes first. Defaults 10 and 2 s.
	FlushEvery    int
	FlushInterval time.Duration
	// Window is how many records Prepare is given at once. Default 100.
	Window int
	// Prepare, when set, is called for each window of records before they are handled, in
	// order, to read what they need in one call (links, say).
	Prepare func(ctx context.Context, from, to int) error
	// Attempts is how often a record that fails transiently is tried before the run stops (to
	// resume on redelivery); RetryBase the first wait between attempts, doubled after each.
	// Defaults 3 and 1 s.
	Attempts  int
	RetryBase time.Duration
}

func (p Plan) withDefaults() Plan {
	if p.Concurrency <= 0 {
		p.Concurrency = 1
	}
	if p.FlushEvery <= 0 {
		p.FlushEvery = 10
	}
	if p.FlushInterval <= 0 {
		p.FlushInterval = 2 * time.Second
	}
	if p.Window <= 0 {
		p.Window = 100
	}
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.RetryBase <= 0 {
		p.RetryBase = time.Second
	}
	return p
}

// Process handles records 0 to n-1 of the run with handle, resuming after the last stored
// progress of a run with the same ID. Stored progress names the records finished in an unbroken
// line from the start and the few finished past it (while others were still in flight), so after
// a crash every record not stored as finished is handled (and counted) again, and none twice.
// Handling is idempotent besides.
//
// A handler error marked bus.Permanent records its issue on the tenant, counts the record failed
// and the run goes on. Any other error stops the run: the records in flight finish, progress is
// stored, and the error is returned, so the redelivered command resumes.
func (r *Run) Process(ctx context.Context, plan Plan, n int, handle func(ctx context.Context, i int) (Result, error)) error {
	plan = plan.withDefaults()
	pos, finished := r.resumeAt(ctx, plan.Cursor)
	if pos == 0 && len(finished) == 0 || pos > n {
		pos, finished = 0, nil
		if err := r.Add(ctx, &mappingv1.RunCounts{}, 0, int64(n)); err != nil {
			return err
		}
	}
	p := &process{run: r, plan: plan, pos: pos, finished: map[int]bool{}, reasons: map[string]int{}, lastFlush: time.Now()}
	for _, i := range finished {
		p.finished[i] = true
	}
	defer func() { r.SetMessage(skipMessage(p.reasons)) }()

	workCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, plan.Concurrency)
	var wg sync.WaitGroup
	var stopErr error
	var stopOnce sync.Once
	stop := func(err error) {
		stopOnce.Do(func() { stopErr = err; cancel() })
	}
dispatch:
	for from := pos; from < n; from += plan.Window {
		to := min(from+plan.Window, n)
		if plan.Prepare != nil {
			if err := plan.Prepare(workCtx, from, to); err != nil {
				stop(err)
				break
			}
		}
		for i := from; i < to; i++ {
			if p.already(i) {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-workCtx.Done():
				break dispatch
			}
			wg.Go(func() {
				defer func() { <-sem }()
				// Records in flight finish on the run's own context when another one failed, so
				// what they did is counted.
				res, err := handleRetrying(ctx, plan, i, handle)
				if issue, ok := bus.IssueOf(err); ok {
					if _, rerr := r.client.RecordIssue(ctx, &mappingv1.RecordIssueRequest{TenantId: r.tenant, Issue: issue}); rerr != nil {
						stop(fmt.Errorf("record issue: %w", rerr))
						return
					}
					res, err = Result{Outcome: Failed}, nil
				}
				if err != nil {
					stop(err)
					return
				}
				if ferr := p.finish(ctx, i, res); ferr != nil {
					stop(ferr)
				}
			})
		}
	}
	wg.Wait()
	if err := p.flush(ctx); err != nil && stopErr == nil {
		stopErr = err
	}
	if stopErr == nil {
		stopErr = ctx.Err()
	}
	return stopErr
}

// handleRetrying handles record i, trying a transient failure (a lease another worker holds, a
// dropped connection) again after the delay it asks for, or a growing one, up to
// Plan.Attempts times before it stops the run: one record's hiccup must not restart a run of
// thousands.
func handleRetrying(ctx context.Context, plan Plan, i int, handle func(ctx context.Context, i int) (Result, error)) (Result, error) {
	delay := plan.RetryBase
	for attempt := 1; ; attempt++ {
		res, err := handle(ctx, i)
		if err == nil || bus.IsPermanent(err) || attempt >= plan.Attempts || ctx.Err() != nil {
			return res, err
		}
		wait := delay
		if d, ok := bus.RetryDelay(err); ok {
			wait = d
		}
		t := time.NewTimer(min(wait, 30*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return res, err
		case <-t.C:
		}
		delay *= 2
	}
}

// process is one Process call's bookkeeping of finished records.
type process struct {
	run  *Run
	plan Plan

	flushMu   sync.Mutex
	mu        sync.Mutex
	pos       int          // every record before pos is finished and counted
	finished  map[int]bool // records at or after pos that are finished and counted
	pending   *mappingv1.RunCounts
	pendingN  int
	reasons   map[string]int
	lastFlush time.Time
}

// already reports whether record i was finished by an earlier delivery of the run.
func (p *process) already(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return i < p.pos || p.finished[i]
}

// finish counts record i's result and stores progress when due.
func (p *process) finish(ctx context.Context, i int, res Result) error {
	p.mu.Lock()
	p.count(res)
	p.finished[i] = true
	for p.finished[p.pos] {
		delete(p.finished, p.pos)
		p.pos++
	}
	due := p.pendingN >= p.plan.FlushEvery || (p.pendingN > 0 && time.Since(p.lastFlush) >= p.plan.FlushInterval)
	p.mu.Unlock()
	if due {
		return p.flush(ctx)
	}
	return nil
}

func (p *process) count(r Result) {
	if p.pending == nil {
		p.pending = &mappingv1.RunCounts{}
	}
	switch r.Outcome {
	case Created:
		p.pending.Created++
	case Updated:
		p.pending.Updated++
	case Unchanged:
		p.pending.Unchanged++
	case Skipped:
		p.pending.Skipped++
		if r.Reason != "" {
			p.reasons[r.Reason]++
		}
	case Failed:
		p.pending.Failed++
	}
	p.pendingN++
}

// flush stores what is finished: the counts, done, and the position with the records finished
// past it. Flushes are serialised, so the stored position never goes back.
func (p *process) flush(ctx context.Context) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	counts, n := p.pending, p.pendingN
	value := p.run.id + " " + strconv.Itoa(p.pos)
	if len(p.finished) > 0 {
		var past []string
		for _, i := range slices.Sorted(maps.Keys(p.finished)) {
			past = append(past, strconv.Itoa(i))
		}
		value += " " + strings.Join(past, ",")
	}
	p.pending, p.pendingN, p.lastFlush = nil, 0, time.Now()
	p.mu.Unlock()
	if n == 0 {
		return nil
	}
	if err := p.run.Add(ctx, counts, int64(n), 0); err != nil {
		return err
	}
	if _, err := p.run.client.SetCursor(ctx, &mappingv1.SetCursorRequest{TenantId: p.run.tenant, Name: p.plan.Cursor, Value: value}); err != nil {
		return fmt.Errorf("save progress: %w", err)
	}
	return nil
}

// resumeAt returns where this run stopped before: the position and the records finished past
// it; 0 and none for a new run.
func (r *Run) resumeAt(ctx context.Context, cursor string) (int, []int) {
	res, err := r.client.GetCursor(ctx, &mappingv1.GetCursorRequest{TenantId: r.tenant, Name: cursor})
	if err != nil {
		return 0, nil
	}
	parts := strings.Fields(res.GetValue())
	if len(parts) < 2 || parts[0] != r.id {
		return 0, nil
	}
	pos, err := strconv.Atoi(parts[1])
	if err != nil || pos < 0 {
		return 0, nil
	}
	var past []int
	if len(parts) > 2 {
		for _, f := range strings.Split(parts[2], ",") {
			i, err := strconv.Atoi(f)
			if err != nil || i < pos {
				return 0, nil
			}
			past = append(past, i)
		}
	}
	return pos, past
}

// skipMessage tells why records were skipped, such as "skipped: 35 inactive in e-Boekhouden".
func skipMessage(reasons map[string]int) string {
	if len(reasons) == 0 {
		return ""
	}
	var parts []string
	for _, reason := range slices.Sorted(maps.Keys(reasons)) {
		parts = append(parts, fmt.Sprintf("%d %s", reasons[reason], reason))
	}
	return "skipped: " + strings.Join(parts, ", ")
}
