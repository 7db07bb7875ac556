package console

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SignOutBucket is the JetStream key-value bucket of ended sessions.
const SignOutBucket = "koppel_console_signouts"

// SignOuts remembers the sessions that were signed out until they would have expired anyway,
// for every replica: the session cookie is not server state, so without this a copy of it
// would outlive the sign-out.
type SignOuts interface {
	End(ctx context.Context, sessionID []byte) error
	Ended(ctx context.Context, sessionID []byte) (bool, error)
}

// KVSignOuts keeps ended sessions in a JetStream key-value bucket whose entries expire after
// SessionLifetime.
type KVSignOuts struct{ kv jetstream.KeyValue }

// NewKVSignOuts opens (or makes) the bucket with replicas copies.
func NewKVSignOuts(ctx context.Context, js jetstream.JetStream, replicas int) (*KVSignOuts, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: SignOutBucket,
		Description: "console sessions signed out before they expired", History: 1, TTL: SessionLifetime,
		Storage: jetstream.FileStorage, Replicas: max(replicas, 1)})
	if err != nil {
		return nil, err
	}
	return &KVSignOuts{kv: kv}, nil
}

func (s *KVSignOuts) End(ctx context.Context, id []byte) error {
	_, err := s.kv.Put(ctx, hex.EncodeToString(id), []byte(time.Now().UTC().Format(time.RFC3339)))
	return err
}

func (s *KVSignOuts) Ended(ctx context.Context, id []byte) (bool, error) {
	_, err := s.kv.Get(ctx, hex.EncodeToString(id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}
