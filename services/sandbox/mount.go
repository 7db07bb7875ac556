package main

import "net/http"

// mountSimulators mounts the e-Boekhouden and Tribe simulators.
func mountSimulators(mux *http.ServeMux) {}
