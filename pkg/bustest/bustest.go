// Package bustest gives tests an embedded NATS JetStream server with koppel's topology in place,
// on a random port with a temporary store, stopped when the test ends.
package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/koppel/koppel/pkg/bus"
	"github.com/koppel/koppel/pkg/localinfra"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Env is a running server and a connection to it.
type Env struct {
	Server *localinfra.NATS
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// Start starts the server, connects (reconnecting quickly, so tests can restart the server), and
// ensures koppel's streams and worker consumers.
func Start(t testing.TB) *Env {
	t.Helper()
	srv, err := localinfra.StartNATS(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	nc, err := nats.Connect(srv.URL(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureTopology(context.Background(), js, bus.StreamOptions{}, bus.Shards{}); err != nil {
		t.Fatal(err)
	}
	return &Env{Server: srv, Conn: nc, JS: js}
}
