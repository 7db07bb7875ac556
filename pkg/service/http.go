package service

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// HTTPPart serves srv on ln until ctx is done, then shuts down gracefully: in-flight requests get
// up to 20 seconds to finish.
func HTTPPart(name string, srv *http.Server, ln net.Listener) Part {
	return Part{Name: name, Run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}}
}
