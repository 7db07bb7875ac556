package main

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/koppel/koppel/pkg/adminapi"
	mappingv1 "github.com/koppel/koppel/proto/koppel/mapping/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The admin API answers with its own types (pkg/adminapi), never the mapping service's messages:
// these turn the one into the other.

func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func apiTenant(t *mappingv1.Tenant) adminapi.Tenant {
	s := t.GetSettings()
	return adminapi.Tenant{
		ID: t.GetId(), DisplayName: t.GetDisplayName(), State: stateName(t.GetState()), SecretNames: t.GetSecretNames(),
		CreatedAt: timeOf(t.GetCreatedAt()), UpdatedAt: timeOf(t.GetUpdatedAt()),
		Settings: adminapi.Settings{EBoekhoudenBaseURL: s.GetEboekhoudenBaseUrl(), TribeBaseURL: s.GetTribeBaseUrl(), TribeAuthURL: s.GetTribeAuthUrl(),
			TribeClientID: s.GetTribeClientId(), ScheduleSeconds: s.GetScheduleSeconds(), AutoDebtorNumbers: s.GetAutoDebtorNumbers(),
			DebtorNumberStart: s.GetDebtorNumberStart(), Links: s.GetLinks()},
	}
}

// stateName is a tenant state as the admin API says it: "setup", "active", "paused".
func stateName(s mappingv1.TenantState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TENANT_STATE_"))
}

func apiRun(r *mappingv1.Run) adminapi.Run {
	c := r.GetCounts()
	out := adminapi.Run{ID: r.GetId(), Kind: r.GetKind(), Status: strings.ToLower(strings.TrimPrefix(r.GetStatus().String(), "RUN_STATUS_")),
		Trigger: r.GetTrigger(), StartedAt: timeOf(r.GetStartedAt()), UpdatedAt: timeOf(r.GetUpdatedAt()), FinishedAt: timeOf(r.GetFinishedAt()),
		Counts: adminapi.Counts{Created: c.GetCreated(), Updated: c.GetUpdated(), Unchanged: c.GetUnchanged(), Skipped: c.GetSkipped(), Failed: c.GetFailed()},
		Done:   r.GetDone(), Total: r.GetTotal(), Message: r.GetMessage()}
	if rep := r.GetReport(); rep != "" && json.Valid([]byte(rep)) {
		out.Report = json.RawMessage(rep)
	}
	return out
}

func apiRuns(res *mappingv1.ListRunsResponse) adminapi.Runs {
	out := adminapi.Runs{Current: []adminapi.Run{}, Finished: []adminapi.Run{}}
	for _, r := range res.GetCurrent() {
		out.Current = append(out.Current, apiRun(r))
	}
	for _, r := range res.GetFinished() {
		out.Finished = append(out.Finished, apiRun(r))
	}
	return out
}

func apiIssue(i *mappingv1.Issue) adminapi.Issue {
	return adminapi.Issue{Key: i.GetKey(), Code: i.GetCode(), Kind: i.GetKind(), EntityID: i.GetEntityId(), Message: i.GetMessage(),
		Action: i.GetAction(), Details: i.GetDetails(), FirstSeen: timeOf(i.GetFirstSeen()), LastSeen: timeOf(i.GetLastSeen()),
		Occurrences: i.GetOccurrences()}
}

func apiIssues(is []*mappingv1.Issue) []adminapi.Issue {
	out := make([]adminapi.Issue, 0, len(is))
	for _, i := range is {
		out = append(out, apiIssue(i))
	}
	return out
}

func apiHistory(es []*mappingv1.HistoryEntry) []adminapi.HistoryEntry {
	out := make([]adminapi.HistoryEntry, 0, len(es))
	for _, e := range es {
		out = append(out, adminapi.HistoryEntry{At: timeOf(e.GetAt()), Code: e.GetCode(), Kind: e.GetKind(), EntityID: e.GetEntityId(),
			Message: e.GetMessage(), Details: e.GetDetails()})
	}
	return out
}
