// Package bus is koppel's use of NATS JetStream: the streams and consumers, the subjects with the
// tenant at a fixed position, publishing with deterministic message IDs, and the consume loop that
// every worker runs (ack, delayed retry, terminate with an issue, dead letter).
//
// Subjects:
//
//	tribe.evt.<tenant>.<entity>[.<shard>]   a Tribe record changed (from a webhook)   stream TRIBE_EVENTS
//	sync.cmd.<tenant>.<kind>[.<shard>]      run one sync of a kind for a tenant       stream SYNC_COMMANDS
//	dlq.msg.<tenant>.<consumer>             a message that could not be handled       stream DEAD_LETTERS
//
// The tenant is always the third token, so a consumer can be scoped to one tenant
// (tribe.evt.acme.>) or to all (tribe.evt.*.>); the entity or kind is the fourth. A tenant moved
// to a named shard has its work messages published with the shard as a fifth token (see Shards).
package bus

import (
	"fmt"
	"regexp"
	"strings"
)

// Stream names.
const (
	StreamTribeEvents  = "TRIBE_EVENTS"
	StreamSyncCommands = "SYNC_COMMANDS"
	StreamDeadLetters  = "DEAD_LETTERS"
)

var (
	tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)
	tokenPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// ValidTenantID reports whether id can be a tenant ID: lower-case letters, digits and dashes, 1 to
// 40 characters, starting with a letter or digit. Such an ID is always one subject token.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

// TribeEventSubject is the subject of a change to a Tribe entity of a tenant.
func TribeEventSubject(tenantID, entity string) (string, error) {
	return subject("tribe.evt", tenantID, entity)
}

// SyncCommandSubject is the subject of a sync command of a kind for a tenant.
func SyncCommandSubject(tenantID, kind string) (string, error) {
	return subject("sync.cmd", tenantID, kind)
}

// DeadLetterSubject is the subject a consumer dead-letters a tenant's message on.
func DeadLetterSubject(tenantID, consumer string) (string, error) {
	if tenantID == "" {
		return "dlq.msg._unknown." + consumer, nil
	}
	return subject("dlq.msg", tenantID, consumer)
}

func subject(prefix, tenantID, last string) (string, error) {
	if !ValidTenantID(tenantID) {
		return "", fmt.Errorf("invalid tenant ID %q", tenantID)
	}
	if !tokenPattern.MatchString(last) {
		return "", fmt.Errorf("invalid subject token %q", last)
	}
	return prefix + "." + tenantID + "." + last, nil
}

// TenantOf returns the tenant of any koppel subject ("" when the subject has none).
func TenantOf(subject string) string {
	parts := strings.SplitN(subject, ".", 4)
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

// LastToken returns the last token of a subject: the consumer of a dead-letter subject.
func LastToken(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// EntityOf returns the entity or kind of a work subject, its fourth token ("" when it has none),
// whatever shard the subject was routed to.
func EntityOf(subject string) string {
	parts := strings.SplitN(subject, ".", 5)
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}
