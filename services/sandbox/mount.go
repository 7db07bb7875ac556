package main

import (
	"log/slog"
	"net/http"

	"github.com/koppel/koppel/services/sandbox/ebsim"
	"github.com/koppel/koppel/services/sandbox/tribesim"
)

// Path prefixes of the simulators. A tenant pointed at the sandbox uses
// <sandbox>/eboekhouden as its e-Boekhouden base URL and <sandbox>/tribe as both its Tribe API
// and auth URL; each simulator's admin API is under its prefix at /_sim.
const (
	PrefixEBoekhouden = "/eboekhouden"
	PrefixTribe       = "/tribe"
)

// mountSimulators mounts the e-Boekhouden and Tribe simulators on mux.
func mountSimulators(mux *http.ServeMux, cfg *config, log *slog.Logger) {
	eb := ebsim.New(ebsim.Options{Seed: cfg.Seed, RateLimit: cfg.EBoekhoudenRateLimit, Logger: log.With("simulator", "eboekhouden")})
	tr := tribesim.New(tribesim.Options{Seed: cfg.Seed})
	mux.Handle(PrefixEBoekhouden+"/", http.StripPrefix(PrefixEBoekhouden, eb))
	mux.Handle(PrefixTribe+"/", http.StripPrefix(PrefixTribe, tr))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("koppel sandbox\n\n  e-Boekhouden simulator  " + PrefixEBoekhouden + "  (admin API " + PrefixEBoekhouden + "/_sim)\n" +
			"  Tribe CRM simulator     " + PrefixTribe + "  (admin API " + PrefixTribe + "/_sim)\n"))
	})
}
