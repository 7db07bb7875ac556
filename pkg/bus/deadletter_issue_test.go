package bus_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// tenantIssues records issues by tenant, and can refuse for a while (the mapping service down).
type tenantIssues struct {
	mu   sync.Mutex
	got  map[string][]*mappingv1.Issue
	fail atomic.Bool
}

func (r *tenantIssues) RecordIssue(_ context.Context, tenant string, issue *mappingv1.Issue) error {
	if r.fail.Load() {
		return errors.New("mapping unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]*mappingv1.Issue{}
	}
	r.got[tenant] = append(r.got[tenant], issue)
	return nil
}

func (r *tenantIssues) of(tenant string) []*mappingv1.Issue {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*mappingv1.Issue(nil), r.got[tenant]...)
}

// A message that keeps failing is set aside; the tenant's operator must see that it was, why,
// and the command that puts it back.
func TestDeadLetterRecordsAnIssueOnTheTenant(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{MaxDeliver: 2})
	rec := &tenantIssues{}
	startWorker(t, e, c, func(context.Context, *bus.Msg) error { return errors.New("e-Boekhouden 500") },
		bus.ConsumerOptions{MaxDeliver: 2, Issues: rec})
	e.publish(t, "acme", "Relation_Person", "7")

	dlq := bus.NewDeadLetters(e.js, bus.Shards{})
	waitFor(t, "the dead letter's issue", func() bool { return len(rec.of("acme")) == 1 })
	letters, err := dlq.List(context.Background(), "acme", 10)
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %v, %v", letters, err)
	}
	seq := strconv.FormatUint(letters[0].Sequence, 10)
	issue := rec.of("acme")[0]
	if issue.GetCode() != bus.IssueDeadLettered || issue.GetDetails()[bus.DetailDeadLetter] != seq ||
		!strings.Contains(issue.GetMessage(), "tribe.evt.acme.Relation_Person") || !strings.Contains(issue.GetMessage(), "e-Boekhouden 500") ||
		!strings.Contains(issue.GetAction(), "koppelctl deadletters replay "+seq) {
		t.Fatalf("issue %v for dead letter %s", issue, seq)
	}
	waitFor(t, "the message settled", settled(t, c))
}

// A flow's describer names the record; when the issue cannot be recorded the message is not
// let go, and once it can, there is still one dead letter with its first reason.
func TestDeadLetterIssueIsDescribedAndNeverLost(t *testing.T) {
	e := newEnv(t)
	c := e.consumer(t, bus.ConsumerSpec{MaxDeliver: 1, AckWait: time.Second})
	rec := &tenantIssues{}
	rec.fail.Store(true)
	var calls atomic.Int32
	describe := func(m *bus.Msg) *mappingv1.Issue {
		return &mappingv1.Issue{Key: "invoice/42/dead_lettered", Kind: "invoice", EntityId: "42", Message: "Invoice 42",
			Action: "Push it again: koppelctl invoices push acme 42.", Details: map[string]string{"retry_on": "manual"}}
	}
	startWorker(t, e, c, func(context.Context, *bus.Msg) error { calls.Add(1); return errors.New("debtor not synced") },
		bus.ConsumerOptions{MaxDeliver: 1, AckWait: time.Second, Issues: rec, Describe: describe})
	e.publish(t, "acme", "Activity_Invoice", "42")

	waitFor(t, "a delivery after the issue failed", func() bool {
		ci, err := c.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return ci.Delivered.Consumer >= 2
	})
	rec.fail.Store(false)
	waitFor(t, "the issue", func() bool { return len(rec.of("acme")) == 1 })
	waitFor(t, "the message settled", settled(t, c))

	letters, err := bus.NewDeadLetters(e.js, bus.Shards{}).List(context.Background(), "acme", 10)
	if err != nil || len(letters) != 1 {
		t.Fatalf("dead letters %v, %v: want one", letters, err)
	}
	issue := rec.of("acme")[0]
	if issue.GetKey() != "invoice/42/dead_lettered" || issue.GetKind() != "invoice" || issue.GetEntityId() != "42" ||
		issue.GetDetails()["retry_on"] != "manual" || issue.GetDetails()[bus.DetailDeadLetter] != strconv.FormatUint(letters[0].Sequence, 10) ||
		!strings.HasPrefix(issue.GetMessage(), "Invoice 42 could not be handled") || !strings.Contains(issue.GetMessage(), "debtor not synced") ||
		!strings.Contains(issue.GetAction(), "koppelctl invoices push acme 42") || !strings.Contains(issue.GetAction(), "koppelctl deadletters replay") {
		t.Fatalf("issue %v", issue)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler called %d times with MaxDeliver 1", calls.Load())
	}
}
