package bus

import (
	"errors"
	"time"

	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
)

// A handler's error decides what happens to its message:
//
//	nil                     ack
//	RetryAfter(err, d)      redelivered after d (for example a 429's Retry-After)
//	Permanent(err, issue)   the issue is recorded on the tenant, the message is terminated
//	Deferred(err, d)        held: redelivered after d, and the delivery is not an attempt
//	any other error         redelivered after a backoff that grows with each delivery
//
// After MaxDeliver failed attempts a message is dead-lettered instead. Deferred deliveries are
// not attempts: a message held for as long as its tenant is paused is never dead-lettered for it.

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// RetryAfter marks err as transient, to be retried no sooner than after.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: after}
}

// RetryDelay returns the delay of an error marked RetryAfter.
func RetryDelay(err error) (time.Duration, bool) {
	var re *retryError
	if errors.As(err, &re) {
		return re.after, true
	}
	return 0, false
}

type deferredError struct {
	err   error
	after time.Duration
}

func (e *deferredError) Error() string { return e.err.Error() }
func (e *deferredError) Unwrap() error { return e.err }

// Deferred holds a message that cannot be handled yet for a reason that is no failure, such as
// its tenant being paused: it is redelivered after `after`, however often that happens, and the
// delivery does not count towards MaxDeliver (the consume loop keeps the count of held deliveries
// in the key-value bucket HeldBucket). err says why, for logs.
func Deferred(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &deferredError{err: err, after: after}
}

// IsDeferred reports whether err was marked Deferred.
func IsDeferred(err error) bool {
	var d *deferredError
	return errors.As(err, &d)
}

type permanentError struct {
	err   error
	issue *mappingv1.Issue
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix. issue tells the tenant what went wrong and
// what to do; when it is nil a generic issue is recorded from err. The next change of the record
// tries again.
func Permanent(err error, issue *mappingv1.Issue) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err, issue: issue}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// IssueOf returns the issue of an error marked Permanent (a generic one when it was marked
// without), and false for any other error.
func IssueOf(err error) (*mappingv1.Issue, bool) {
	var p *permanentError
	if !errors.As(err, &p) {
		return nil, false
	}
	if p.issue != nil {
		return p.issue, true
	}
	return &mappingv1.Issue{Key: "permanent:" + p.err.Error(), Code: "permanent_failure", Message: p.err.Error()}, true
}
