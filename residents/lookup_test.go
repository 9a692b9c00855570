package residents_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cityhub/cityhub/graph"
	"github.com/cityhub/cityhub/residents"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	d, _, _ := MustDesk(t)
	rc := newRequest(t, d, "IN_PROGRESS")
	if _, err := d.Transition(t.Context(), rc.RequestID, "ON_HOLD", "waiting for Eversource to repair the cable", ""); err != nil {
		t.Fatal(err)
	}
	other := newRequest(t, d, "SUBMITTED")

	st, err := d.Lookup(t.Context(), rc.TrackingID, rc.PublicToken)
	if err != nil {
		t.Fatalf("Lookup with the right token: %v", err)
	}
	if st.RequestID != rc.RequestID || st.TrackingID != rc.TrackingID || st.Status != "ON_HOLD" ||
		st.StatusNotes != "waiting for Eversource to repair the cable" || st.ServiceCode != "pothole" || st.ServiceName != "Pothole" ||
		!st.ReportedAt.Equal(rc.ReportedAt) || !st.ClosedAt.IsZero() {
		t.Errorf("Lookup = %+v", st)
	}
	want := []residents.StatusEntry{
		{To: "SUBMITTED"},
		{From: "SUBMITTED", To: "ACKNOWLEDGED", Note: "step to ACKNOWLEDGED"},
		{From: "ACKNOWLEDGED", To: "ASSIGNED", Note: "step to ASSIGNED"},
		{From: "ASSIGNED", To: "IN_PROGRESS", Note: "step to IN_PROGRESS"},
		{From: "IN_PROGRESS", To: "ON_HOLD", Note: "waiting for Eversource to repair the cable"},
	}
	if len(st.History) != len(want) {
		t.Fatalf("history %+v", st.History)
	}
	for i, h := range st.History {
		if h.From != want[i].From || h.To != want[i].To || h.Note != want[i].Note || (i > 0 && !h.At.After(st.History[i-1].At)) {
			t.Errorf("history[%d] = %+v, want %+v", i, h, want[i])
		}
	}
	if !st.History[0].At.Equal(rc.ReportedAt) {
		t.Errorf("first change at %v, reported at %v", st.History[0].At, rc.ReportedAt)
	}

	// typed loosely: lower case, spaces for dashes, O for 0 and L for 1
	date, random := rc.TrackingID[:8], rc.TrackingID[9:]
	loose := date + " " + strings.ToLower(strings.NewReplacer("0", "O", "1", "L", "-", " ").Replace(random))
	if _, err := d.Lookup(t.Context(), loose, strings.ToLower(rc.PublicToken)); err != nil {
		t.Errorf("Lookup(%q) with a lower-case token: %v", loose, err)
	}
	lettersInDate := strings.NewReplacer("0", "O", "1", "L").Replace(date) + random

	refusals := []struct{ name, tracking, token string }{
		{"wrong token", rc.TrackingID, wrongToken(rc.PublicToken)},
		{"token of another request", rc.TrackingID, other.PublicToken},
		{"empty token", rc.TrackingID, ""},
		{"truncated token", rc.TrackingID, rc.PublicToken[:25]},
		{"token with a foreign character", rc.TrackingID, rc.PublicToken[:25] + "U"},
		{"unknown tracking ID", "20250314-0000-0000", rc.PublicToken},
		{"malformed tracking ID", "not-a-number", rc.PublicToken},
		{"date part typed with letters", lettersInDate, rc.PublicToken},
		{"the stored digest as token", rc.TrackingID, "sha256:"},
		{"empty", "", ""},
	}
	var msgs []string
	for _, tc := range refusals {
		st, err := d.Lookup(t.Context(), tc.tracking, tc.token)
		if st != nil || !errors.Is(err, residents.ErrNoRequest) || !errors.Is(err, graph.ErrNotFound) || !residents.IsNotFound(err) {
			t.Errorf("%s: Lookup = %+v, %v; want ErrNoRequest", tc.name, st, err)
			continue
		}
		msgs = append(msgs, err.Error())
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Errorf("refusals differ: %q and %q; they must not tell which part was wrong", msgs[0], m)
		}
	}
}
