package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/koppel/koppel/pkg/adminapi"
)

// deadLetterActions are what may be done to a dead letter, with the words the pages use.
var deadLetterActions = map[string]struct{ Verb, Past, Done, Method, Suffix string }{
	"replay": {"Replay", "replayed", "replayed: it is handled again as it was", "POST", "/replay"},
	"drop":   {"Drop", "dropped", "dropped: it is gone for good", "DELETE", ""},
}

func (c *Console) deadLettersPage(w http.ResponseWriter, r *http.Request, p *request) {
	tenant := r.URL.Query().Get("tenant")
	path := "/admin/v1/deadletters"
	if tenant != "" {
		path += "?tenant=" + url.QueryEscape(tenant)
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	var list adminapi.DeadLetters
	if err := p.api.Do(ctx, "GET", path, nil, &list); err != nil {
		c.failed(w, r, p, err)
		return
	}
	c.render(w, r, http.StatusOK, "deadletters", page{Title: "Dead letters", CSRF: p.csrf, SignedIn: true, Data: struct {
		Tenant      string
		DeadLetters []adminapi.DeadLetter
	}{tenant, list.DeadLetters}})
}

func (c *Console) deadLetter(w http.ResponseWriter, r *http.Request, p *request) (adminapi.DeadLetter, bool) {
	var d adminapi.DeadLetter
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		http.NotFound(w, r)
		return d, false
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if err := p.api.Do(ctx, "GET", fmt.Sprintf("/admin/v1/deadletters/%d", seq), nil, &d); err != nil {
		if e := apiError(err); e != nil && e.Status == http.StatusNotFound {
			c.redirectWith(w, r, "/console/deadletters", "error", fmt.Sprintf("Dead letter %d is gone: replayed or dropped already.", seq))
			return d, false
		}
		c.failed(w, r, p, err)
		return d, false
	}
	return d, true
}

func (c *Console) deadLetterPage(w http.ResponseWriter, r *http.Request, p *request) {
	if d, ok := c.deadLetter(w, r, p); ok {
		c.render(w, r, http.StatusOK, "deadletter", page{Title: fmt.Sprintf("Dead letter %d", d.Sequence), CSRF: p.csrf, SignedIn: true, Data: d})
	}
}

// confirmDeadLetterPage asks before a replay or drop: both act on the bus at once.
func (c *Console) confirmDeadLetterPage(w http.ResponseWriter, r *http.Request, p *request) {
	act, ok := deadLetterActions[r.PathValue("action")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if d, ok := c.deadLetter(w, r, p); ok {
		c.render(w, r, http.StatusOK, "confirm", page{Title: fmt.Sprintf("%s dead letter %d?", act.Verb, d.Sequence), CSRF: p.csrf, SignedIn: true,
			Data: struct {
				Action, Verb string
				DeadLetter   adminapi.DeadLetter
			}{r.PathValue("action"), act.Verb, d}})
	}
}

func (c *Console) settleDeadLetter(w http.ResponseWriter, r *http.Request, p *request) {
	act, ok := deadLetterActions[r.PathValue("action")]
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if !ok || err != nil || seq == 0 {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := c.ctx(r)
	defer cancel()
	if err := p.api.Do(ctx, act.Method, fmt.Sprintf("/admin/v1/deadletters/%d%s", seq, act.Suffix), nil, nil); err != nil {
		c.redirectWith(w, r, "/console/deadletters", "error", fmt.Sprintf("Dead letter %d was not %s: %s", seq, act.Past, errText(err)))
		return
	}
	c.redirectWith(w, r, "/console/deadletters", "ok", fmt.Sprintf("Dead letter %d %s.", seq, act.Done))
}
