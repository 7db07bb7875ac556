package main

import (
	"regexp"
	"testing"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/tribe/webhook"
)

var lowerGUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func webhookSeeds(f *testing.F) {
	for _, s := range []string{
		string(event("p-1")),
		`[` + string(event("p-1")) + `,` + string(event("p-2")) + `]`,
		`{"webhookId":"w1","payload":{"type":"RelationshipUpdateMutation","relationshipId":"B724D383-BB70-480A-B03D-512B9AAEC15A"}}`,
		`{"webhookId":"a","WEBHOOKID":"b","payload":{"type":"EntityCreationMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}`,
		`{"WebhookId":"a","payload":{"type":"EntityCreationMutation","entityId":"b724d383-bb70-480a-b03d-512b9aaec15a"}}`,
		`[{"webhookId":1}]`, `[]`, `{`, `null`, `"x"`, ``,
	} {
		f.Add([]byte(s))
	}
}

// FuzzPeekWebhookID: the webhook ID picked before the signature is checked (to choose the
// secret) is the one the decoder then works with, so a delivery is never verified with one
// registration's secret and decoded as another's.
func FuzzPeekWebhookID(f *testing.F) {
	webhookSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		id := peekWebhookID(body)
		events, err := webhook.Decode(body)
		if err != nil || len(events) == 0 {
			return
		}
		if id != events[0].WebhookID {
			t.Fatalf("peek found webhook %q, the decoder %q, in %q", id, events[0].WebhookID, body)
		}
	})
}

// FuzzCodecDecode: whatever a signed delivery holds, the codec yields only events the bus can
// carry: a set koppel syncs, a lower-case GUID, a key, and a timestamp only when stamped.
func FuzzCodecDecode(f *testing.F) {
	webhookSeeds(f)
	codec, err := newTribeCodec("X-Tribe-Signature", "hmac-sha512-base64")
	if err != nil {
		f.Fatal(err)
	}
	sets := map[string]bool{}
	for _, s := range bus.EntityTypes {
		sets[s] = true
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := codec.Decode(body, func(id string) string {
			if id == "w" {
				return "Relation.Person"
			}
			return ""
		})
		if err != nil {
			return
		}
		for i, e := range events {
			if !sets[e.Entity] || !lowerGUID.MatchString(e.EntityID) || e.Key == "" || e.OccurredAt.IsZero() {
				t.Fatalf("event %d of %q: %+v", i, body, e)
			}
		}
	})
}
