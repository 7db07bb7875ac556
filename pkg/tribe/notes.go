package tribe

import (
	"context"
	"encoding/json"
)

// SetNote is the entity set of notes. Every entity has a Notes navigation (S17, S19) and client
// code creates notes with an ImportId (C5, C10); the set's name and fields are UNCONFIRMED.
const SetNote = "Note"

// Note is a note on a record, such as a payment note on a sent invoice (which is frozen but for
// its phase and its notes).
type Note struct {
	Meta
	Subject    string `json:"Subject"`
	Content    string `json:"Content"`
	ExternalID string `json:"-"`
}

func (n *Note) setExtras(cfg *Config, m map[string]json.RawMessage) {
	n.ExternalID = rawString(m, cfg.ExternalIDField)
}

// NoteInput creates a note on Entity. ExternalID makes it findable, so a retried write does not
// add it twice.
type NoteInput struct {
	Subject, Content *string
	Entity           *Ref
	ExternalID       *string `tribe:"$external"`
	Extra            Fields
}

// CreateNote creates a note and returns its ID.
func (c *Client) CreateNote(ctx context.Context, in NoteInput) (string, error) {
	return c.Create(ctx, SetNote, in)
}

// FindNote returns the notes with this external ID (none, or the one a write left).
func (c *Client) FindNote(ctx context.Context, externalID string) ([]Note, error) {
	return FindByExternalID[Note](ctx, c, SetNote, externalID, Q())
}
