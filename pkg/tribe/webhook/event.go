package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// Action is what happened to the record.
type Action string

// Actions.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Kind tells an entity mutation from a relationship mutation.
type Kind string

// Kinds.
const (
	KindEntity       Kind = "entity"
	KindRelationship Kind = "relationship"
)

// Event is one decoded mutation.
type Event struct {
	// WebhookID is the registration the delivery belongs to; with the registration's entity type
	// it tells which set to read when the payload does not say.
	WebhookID string
	// Mutation is the payload type as sent, e.g. "EntityUpdateMutation".
	Mutation string
	Kind     Kind
	Action   Action
	// EntityID is the entityId or relationshipId to fetch the record by (lower-case GUID).
	EntityID string
	// EntityType is the dotted type (e.g. "Relation.Organization") when the payload carries one.
	EntityType string
	// Timestamp of the mutation when the payload carries one; zero otherwise.
	Timestamp time.Time
	// EventID is the payload's own ID when it carries one.
	EventID string
}

// Key is a deterministic de-duplication key: the payload's event ID when it has one, else a hash
// of the stable fields. Without an event ID and a timestamp, two changes of one record share a
// key, so a de-duplication window must stay short (the sync is level-triggered, and a missed
// second change is caught by the LastMutationDate poll).
func (e Event) Key() string {
	if e.EventID != "" {
		return "tribe-evt-" + e.EventID
	}
	h := sha256.New()
	ts := ""
	if !e.Timestamp.IsZero() {
		ts = e.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	for _, s := range []string{e.WebhookID, e.Mutation, e.EntityID, e.EntityType, ts} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	return "tribe-h-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// DecodeOptions tune Decode for payload details that are UNCONFIRMED.
type DecodeOptions struct {
	// TypeKey is the payload key of the mutation type. Default: any top-level string value
	// of the payload that names a mutation type.
	TypeKey string
}

// ErrMalformed marks every decoding failure; the message says what is wrong.
var ErrMalformed = errors.New("malformed webhook")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// maxEvents bounds a batched delivery.
const maxEvents = 1000

var (
	reMutation = regexp.MustCompile(`^(Entity|Relationship)(Creation|Update|Deletion)Mutation$`)
	reGUID     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// Decode decodes a delivery body: {"webhookId": "...", "payload": {...}} (S4), or an array of such
// envelopes. It is strict about what the gateway relies on (valid JSON, one envelope shape, a
// known mutation type, a GUID to fetch) and tolerant of extra keys.
func Decode(body []byte) ([]Event, error) { return DecodeWith(body, DecodeOptions{}) }

// DecodeWith is Decode with options.
func DecodeWith(body []byte, opts DecodeOptions) ([]Event, error) {
	if len(body) > MaxBodySize {
		return nil, malformed("body of %d bytes exceeds %d", len(body), MaxBodySize)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, malformed("empty body")
	}
	var envs []json.RawMessage
	if trimmed[0] == '[' {
		if err := strictUnmarshal(trimmed, &envs); err != nil {
			return nil, malformed("body: %v", err)
		}
		if len(envs) == 0 || len(envs) > maxEvents {
			return nil, malformed("a batch must hold 1 to %d envelopes, not %d", maxEvents, len(envs))
		}
	} else {
		envs = []json.RawMessage{trimmed}
	}
	out := make([]Event, 0, len(envs))
	for i, raw := range envs {
		ev, err := decodeEnvelope(raw, opts)
		if err != nil {
			if len(envs) > 1 {
				return nil, fmt.Errorf("envelope %d: %w", i, err)
			}
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Anything but the end after the value is trailing data, a malformed token included.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func decodeEnvelope(raw json.RawMessage, opts DecodeOptions) (Event, error) {
	var env map[string]json.RawMessage
	if err := strictUnmarshal(raw, &env); err != nil || env == nil {
		return Event{}, malformed("the envelope must be a JSON object")
	}
	var ev Event
	if w, ok := env["webhookId"]; ok {
		if err := json.Unmarshal(w, &ev.WebhookID); err != nil {
			return Event{}, malformed("webhookId must be a string")
		}
	} else {
		return Event{}, malformed("missing webhookId")
	}
	p, ok := env["payload"]
	if !ok {
		return Event{}, malformed("missing payload")
	}
	var payload map[string]any
	if err := strictUnmarshal(p, &payload); err != nil || payload == nil {
		return Event{}, malformed("payload must be a JSON object")
	}

	// The mutation type.
	if opts.TypeKey != "" {
		s, _ := payload[opts.TypeKey].(string)
		if !reMutation.MatchString(s) {
			return Event{}, malformed("payload.%s is not a mutation type", opts.TypeKey)
		}
		ev.Mutation = s
	} else {
		for _, v := range payload {
			s, ok := v.(string)
			if !ok || !reMutation.MatchString(s) {
				continue
			}
			if ev.Mutation != "" && ev.Mutation != s {
				return Event{}, malformed("payload names two mutation types, %s and %s", ev.Mutation, s)
			}
			ev.Mutation = s
		}
		if ev.Mutation == "" {
			return Event{}, malformed("payload has no mutation type (Entity|Relationship)(Creation|Update|Deletion)Mutation")
		}
	}
	m := reMutation.FindStringSubmatch(ev.Mutation)
	ev.Kind = map[string]Kind{"Entity": KindEntity, "Relationship": KindRelationship}[m[1]]
	ev.Action = map[string]Action{"Creation": ActionCreate, "Update": ActionUpdate, "Deletion": ActionDelete}[m[2]]

	// The record to fetch: relationshipId for relationship mutations, entityId otherwise; either
	// is accepted when only the other is present.
	keys := []string{"entityId", "relationshipId"}
	if ev.Kind == KindRelationship {
		keys = []string{"relationshipId", "entityId"}
	}
	for _, k := range keys {
		v, ok := payload[k]
		if !ok {
			continue
		}
		s, _ := v.(string)
		if !reGUID.MatchString(s) {
			return Event{}, malformed("payload.%s is not a GUID", k)
		}
		ev.EntityID = strings.ToLower(s)
		break
	}
	if ev.EntityID == "" {
		return Event{}, malformed("payload has neither entityId nor relationshipId")
	}

	if s, err := optString(payload, "entityType", "_Type"); err != nil {
		return Event{}, err
	} else {
		ev.EntityType = s
	}
	if s, err := optString(payload, "mutationId", "eventId", "messageId", "id"); err != nil {
		return Event{}, err
	} else {
		ev.EventID = s
	}
	ts, err := optString(payload, "timestamp", "mutationDate", "occurredAt", "createdAt", "date")
	if err != nil {
		return Event{}, err
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Event{}, malformed("payload timestamp %q is not RFC 3339", truncate(ts))
		}
		ev.Timestamp = t
	}
	return ev, nil
}

// optString returns the first present key's value, which must be a string (or null).
func optString(m map[string]any, keys ...string) (string, error) {
	for _, k := range keys {
		v, ok := m[k]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return "", malformed("payload.%s must be a string", k)
		}
		if len(s) > 256 {
			return "", malformed("payload.%s is too long", k)
		}
		return s, nil
	}
	return "", nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
