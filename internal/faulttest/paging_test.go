package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// collector is an Emitter that keeps what it is handed.
type collector struct {
	rows int
	ids  map[string]bool
}

func (c *collector) Record(_ context.Context, r record.Record) error {
	c.rows++
	c.ids[fmt.Sprint(r["id"])] = true
	return nil
}

func (c *collector) Checkpoint(context.Context, time.Time) error { return nil }

// closePage is a Close list answer holding records 1..n of prefix, updated a second apart.
func closePage(prefix string, from, n int, extra string) string {
	recs := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		ts := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC).Format("2006-01-02T15:04:05.000000+00:00")
		recs = append(recs, fmt.Sprintf(`{"id": "%s_%d", "date_updated": "%s", "date_created": "%s"}`, prefix, i, ts, ts))
	}
	return `{"data": [` + strings.Join(recs, ",") + `]` + extra + `}`
}

// copperPage is a Copper search answer of n records, modified a second apart.
func copperPage(n int) string {
	recs := make([]map[string]any, n)
	for i := range recs {
		ts := time.Date(2025, 1, 1, 0, 0, i, 0, time.UTC).Unix()
		recs[i] = map[string]any{"id": i + 1, "date_modified": ts, "activity_date": ts}
	}
	b, _ := json.Marshal(recs)
	return string(b)
}

// TestHostilePagingStops: an API that keeps saying "more" while serving pages already read
// (the same page forever, an offset it ignores, a cursor it repeats) must not be followed
// forever. Every listing shape stops after a few requests with an error naming the endpoint,
// and hands over each record once.
func TestHostilePagingStops(t *testing.T) {
	full := copperPage(200)
	tests := []struct {
		name     string
		source   connector.Descriptor
		stream   string
		endpoint string // named in the error
		answer   func(n int64) string
	}{
		{"close users: has_more with the same page", closecrm.Descriptor, "users", "/user/",
			func(int64) string { return closePage("user", 1, 2, `, "has_more": true`) }},
		{"close custom fields: has_more with the same page", closecrm.Descriptor, "custom_fields", "/custom_field/lead/",
			func(int64) string { return closePage("cf", 1, 2, `, "has_more": true`) }},
		{"close event log: the same cursor_next", closecrm.Descriptor, "event_log", "/event/",
			func(int64) string { return closePage("ev", 1, 2, `, "cursor_next": "abc"`) }},
		{"close event log: new cursors, the same events", closecrm.Descriptor, "event_log", "/event/",
			func(n int64) string { return closePage("ev", 1, 2, fmt.Sprintf(`, "cursor_next": "c%d"`, n)) }},
		{"close leads: has_more with the same page", closecrm.Descriptor, "leads", "/lead/",
			func(int64) string { return closePage("lead", 1, 2, `, "has_more": true`) }},
		{"close activities: has_more with the same page", closecrm.Descriptor, "activities", "/activity/",
			func(int64) string { return closePage("acti", 1, 2, `, "has_more": true`) }},
		{"close tasks: has_more with the same page", closecrm.Descriptor, "tasks", "/task/",
			func(int64) string { return closePage("task", 1, 2, `, "has_more": true`) }},
		{"copper users: a full page forever", copper.Descriptor, "users", "/users/search", func(int64) string { return full }},
		{"copper people: a full page forever", copper.Descriptor, "people", "/people/search", func(int64) string { return full }},
		{"copper activities: a full page forever", copper.Descriptor, "activities_search", "/activities/search", func(int64) string { return full }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := requests.Add(1)
				if n > 1000 { // the bug: without a guard the reader never stops
					http.Error(w, `{"error": "test bound reached"}`, http.StatusBadRequest)
					return
				}
				fmt.Fprint(w, tt.answer(n))
			}))
			defer srv.Close()
			src, err := tt.source.Open(connector.Settings{Credentials: creds, BaseURL: srv.URL, Tuning: apiclient.Tuning{RequestsPerSecond: -1}})
			if err != nil {
				t.Fatal(err)
			}
			st, _ := src.Catalog().Stream(tt.stream)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out := &collector{ids: map[string]bool{}}
			err = src.Read(ctx, st, source.Window{From: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}, out)
			if err == nil || !strings.Contains(err.Error(), "no progress") || !strings.Contains(err.Error(), tt.endpoint) {
				t.Fatalf("after %d requests: err = %v; want a no-progress error naming %s", requests.Load(), err, tt.endpoint)
			}
			if n := requests.Load(); n > 10 {
				t.Errorf("%d requests before stopping; want a few", n)
			}
			if out.rows != len(out.ids) {
				t.Errorf("%d rows handed over for %d distinct records", out.rows, len(out.ids))
			}
		})
	}
}
