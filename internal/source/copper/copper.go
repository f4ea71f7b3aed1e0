// Package copper is the Copper source: 17 tables read from the Copper Developer API
// (https://api.copper.com/developer_api/v1). See streams.go for the tables and
// ../../../../shared/reference/copper-api.md for the endpoint facts.
package copper

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/keyset"
	"github.com/crmsync/crmsync/internal/source/paging"
)

// DefaultBaseURL is the real API's scheme and host.
const DefaultBaseURL = "https://api.copper.com"

const apiPrefix = "/developer_api/v1"

// pageSize is the largest page the search endpoints allow.
const pageSize = 200

// DefaultRequestsPerSecond is the pace of all requests of an account: just under Copper's
// documented 180 requests a minute per key (rolling), one at a time so no 60 s window exceeds
// it. Copper announces nothing in headers, so nothing is learned.
const DefaultRequestsPerSecond = 2.95

// Source reads one Copper account.
type Source struct {
	// The client's Stats and ClockOffset serve source.Source and source.Clock.
	*apiclient.Client
}

// New builds the source. Settings.Tuning.RequestsPerSecond is a ceiling; the pace is
// DefaultRequestsPerSecond. It makes no request.
func New(s connector.Settings) (*Source, error) {
	key, email := s.Credentials["api_key"], s.Credentials["user_email"]
	client, err := s.NewClient(DefaultBaseURL, apiPrefix, DefaultRequestsPerSecond, apiclient.Config{
		Authorize: func(r *http.Request) {
			r.Header.Set("X-PW-AccessToken", key)
			r.Header.Set("X-PW-Application", "developer_api")
			r.Header.Set("X-PW-UserEmail", email)
		},
		Secrets: []string{key, email},
		// One limit for every endpoint of a key.
		Group:    func(apiclient.Request) string { return "account" },
		AuthHint: "check the Copper API key (COPPER_API_KEY, --api-key) and the email of its owner (COPPER_USER_EMAIL, --user-email)",
	})
	if err != nil {
		return nil, err
	}
	return &Source{Client: client}, nil
}

// Catalog implements source.Source.
func (s *Source) Catalog() catalog.Catalog { return Catalog() }

// Check calls GET /account, a cheap authenticated call.
func (s *Source) Check(ctx context.Context) error {
	_, err := s.getObject(ctx, "/account")
	return err
}

// Read implements source.Source.
func (s *Source) Read(ctx context.Context, st catalog.Stream, w source.Window, out source.Emitter) error {
	return tables.Read(s, ctx, st, w, out)
}

func (s *Source) readAccount(ctx context.Context, _ source.Window, out source.Emitter) error {
	rec, err := s.getObject(ctx, "/account")
	if err != nil {
		return err
	}
	return out.Record(ctx, rec)
}

func (s *Source) getObject(ctx context.Context, path string) (record.Record, error) {
	var rec record.Record
	err := s.Client.Do(ctx, apiclient.Request{Method: http.MethodGet, Path: path}, func(r apiclient.Response) error {
		var err error
		rec, err = record.DecodeObject(r.Body)
		return err
	})
	return rec, err
}

// records decodes a bare JSON array answer (Copper lists and searches have no envelope).
func records(body []byte) ([]record.Record, error) {
	return record.DecodeArray(body)
}

// list reads an unpaginated list, once per sync: /custom_field_definitions serves both the
// custom field columns and its table.
func (s *Source) list(ctx context.Context, path string) ([]record.Record, error) {
	return source.RecordsOncePerSync(ctx, "copper "+path, func() (recs []record.Record, err error) {
		err = s.Client.Do(ctx, apiclient.Request{Method: http.MethodGet, Path: path}, func(r apiclient.Response) (err error) {
			recs, err = records(r.Body)
			return err
		})
		return recs, err
	})
}

func (s *Source) readList(ctx context.Context, path string, out source.Emitter) error {
	recs, err := s.list(ctx, path)
	var ae *apiclient.AuthError
	if path == "/lead_statuses" && errors.As(err, &ae) && ae.Status == http.StatusForbidden {
		return &source.Unavailable{Reason: "Copper answers 403 on lead statuses while Leads are disabled on the account"}
	}
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := out.Record(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) search(ctx context.Context, entity string, body map[string]any) ([]record.Record, error) {
	p, err := s.searchPage(ctx, entity, body)
	return p.Records, err
}

// searchPage is one search answer as a keyset page: its records and X-PW-TOTAL, the number
// of records the search matches (documented as an upper bound; absent or garbled means
// unknown). More is left to the caller.
func (s *Source) searchPage(ctx context.Context, entity string, body map[string]any) (keyset.Page, error) {
	var p keyset.Page
	err := s.Client.Do(ctx, apiclient.Request{Method: http.MethodPost, Path: "/" + entity + "/search", Body: body}, func(r apiclient.Response) (err error) {
		p.Records, err = records(r.Body)
		p.Total, _ = strconv.ParseInt(r.Header.Get("X-PW-TOTAL"), 10, 64)
		return err
	})
	return p, err
}

// pageOf turns a keyset skip into Copper's page numbers: the page holding record skip+1. The
// records of that page before skip are re-reads, which the keyset reader drops by id.
func pageOf(skip int) int { return skip/pageSize + 1 }

func (s *Source) readUsers(ctx context.Context, _ source.Window, out source.Emitter) error {
	guard := paging.New("POST /users/search")
	for page := 1; ; page++ {
		recs, err := s.search(ctx, "users", map[string]any{"page_number": page, "page_size": pageSize})
		if err != nil {
			return err
		}
		fresh, stuck := guard.Fresh(recs)
		for _, rec := range fresh {
			if err := out.Record(ctx, rec); err != nil {
				return err
			}
		}
		if len(recs) < pageSize {
			return nil
		}
		if stuck != nil {
			return stuck
		}
	}
}

// readModified reads a search entity by modification time, ascending, from the bookmark
// (inclusive) to the window's end or the newest change, re-anchoring the lower bound as it goes (see package keyset):
// that keeps every search under Copper's 100,000-result ceiling and pages from shifting.
func (s *Source) readModified(ctx context.Context, entity string, w source.Window, out source.Emitter) error {
	fetch := func(ctx context.Context, anchor time.Time, skip int) (keyset.Page, error) {
		body := map[string]any{
			"page_number": pageOf(skip), "page_size": pageSize,
			"sort_by": "date_modified", "sort_direction": "asc",
			"minimum_modified_date": anchor.Unix(),
		}
		if w.Bounded() {
			body["maximum_modified_date"] = w.To.Unix() // inclusive, whole seconds: covers < To
		}
		if entity == "leads" {
			body["include_converted_leads"] = true // hidden from search by default
		}
		p, err := s.searchPage(ctx, entity, body)
		p.More = len(p.Records) == pageSize
		return p, err
	}
	return keyset.Read(ctx, keyset.Listing{
		Fetch:      fetch,
		Endpoint:   "POST /" + entity + "/search",
		Key:        func(r record.Record) (time.Time, error) { return record.ParseTime(r["date_modified"]) },
		Checkpoint: true,
	}, w.From.Truncate(time.Second), out)
}

// readActivities reads activities by activity date, the only date Copper filters them on,
// newest first (the order Copper returns them in), re-anchoring the upper bound as it goes.
// No bookmark can be claimed before the walk ends; the engine commits the window end then.
func (s *Source) readActivities(ctx context.Context, w source.Window, out source.Emitter) error {
	fetch := func(ctx context.Context, anchor time.Time, skip int) (keyset.Page, error) {
		upper := w.To
		if !anchor.IsZero() {
			upper = anchor
		}
		body := map[string]any{
			"page_number": pageOf(skip), "page_size": pageSize,
			"minimum_activity_date": w.From.Unix(),
		}
		if !upper.IsZero() {
			body["maximum_activity_date"] = upper.Unix()
		}
		p, err := s.searchPage(ctx, "activities", body)
		p.More = len(p.Records) == pageSize
		return p, err
	}
	// A deleted activity's stub, should search return one, is no row: the sweep marks it.
	return keyset.Read(ctx, keyset.Listing{
		Fetch:      fetch,
		Endpoint:   "POST /activities/search",
		Key:        func(r record.Record) (time.Time, error) { return record.ParseTime(r["activity_date"]) },
		Descending: true,
	}, time.Time{}, liveOnly{out})
}
