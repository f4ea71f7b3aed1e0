// Package closecrm is the Close source: the spec's six tables, and contacts and opportunities, read from the Close REST API
// (https://api.close.com/api/v1). See the stream declarations in streams.go and the endpoint
// notes in ../../../../shared/reference/close-api.md.
package closecrm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/record"
	"github.com/crmsync/crmsync/internal/source"
	"github.com/crmsync/crmsync/internal/source/keyset"
	"github.com/crmsync/crmsync/internal/source/paging"
)

// DefaultBaseURL is the real API's scheme and host; API paths are appended to it.
const DefaultBaseURL = "https://api.close.com"

// apiPrefix is the path every endpoint lives under.
const apiPrefix = "/api/v1"

// Page sizes: the largest each endpoint is known to accept (reference §3.1).
const (
	leadPageSize     = 200
	activityPageSize = 100
	bigPageSize      = 1000 // tasks, users, custom fields
	eventPageSize    = 50
	oppPageSize      = 250
)

// DefaultRequestsPerSecond paces an endpoint group whose answers do not announce its limit.
// Close limits each endpoint group separately and announces the limit in a RateLimit header on
// most answers; the client learns it from the first answer (sending one request at a time to a
// group until then) and paces just under it.
const DefaultRequestsPerSecond = 15

// Source reads one Close account.
type Source struct {
	// The client's Stats and ClockOffset serve source.Source and source.Clock.
	*apiclient.Client
	scans scans // event-log walks shared by the tables' deletion reads
}

// New builds the source. Settings.Tuning.RequestsPerSecond is a ceiling over all endpoint
// groups; each group is paced by the limit its answers announce (DefaultRequestsPerSecond when
// they do not). It makes no request.
func New(s connector.Settings) (*Source, error) {
	key := s.Credentials["api_key"]
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(key+":"))
	client, err := s.NewClient(DefaultBaseURL, apiPrefix, DefaultRequestsPerSecond, apiclient.Config{
		Authorize: func(r *http.Request) { r.Header.Set("Authorization", auth) },
		Secrets:   []string{key, auth, strings.TrimPrefix(auth, "Basic ")},
		// Limits are per endpoint group (method and path), announced in RateLimit headers.
		LearnLimits: true,
		AuthHint:    "check the Close API key (--api-key, api_key in the config file, or CLOSE_API_KEY)",
	})
	if err != nil {
		return nil, err
	}
	return &Source{Client: client}, nil
}

// Catalog implements source.Source.
func (s *Source) Catalog() catalog.Catalog { return Catalog() }

// Check calls GET /me/, the cheapest authenticated call.
func (s *Source) Check(ctx context.Context) error {
	return s.Client.Do(ctx, apiclient.Request{Method: http.MethodGet, Path: "/me/"}, func(r apiclient.Response) error {
		_, err := record.DecodeObject(r.Body)
		return err
	})
}

// Read implements source.Source.
func (s *Source) Read(ctx context.Context, st catalog.Stream, w source.Window, out source.Emitter) error {
	return tables.Read(s, ctx, st, w, out)
}

func (s *Source) readUsers(ctx context.Context, w source.Window, out source.Emitter) error {
	return s.readAll(ctx, "/user/", nil, w, out)
}

// page is one list answer.
type page struct {
	Data       []record.Record
	HasMore    bool
	CursorNext string
	Total      int64 // total_results, where the endpoint sends it (leads); 0 otherwise
}

func (s *Source) list(ctx context.Context, path string, q url.Values) (page, error) {
	if fields, ok := ctx.Value(fieldsKey{}).(string); ok { // an id sweep
		q.Set("_fields", fields)
	}
	var p page
	err := s.Client.Do(ctx, apiclient.Request{Method: http.MethodGet, Path: path, Query: q, Header: utcFilters()}, func(r apiclient.Response) error {
		fields, data, err := record.DecodePage(r.Body, "data")
		if err != nil {
			return err
		}
		hasMore, _ := fields["has_more"].(bool)
		cursor, _ := fields["cursor_next"].(string)
		p = page{Data: data, HasMore: hasMore, CursorNext: cursor}
		if n, ok := fields["total_results"].(json.Number); ok {
			p.Total, _ = n.Int64()
		}
		return nil
	})
	return p, err
}

// utcFilters asks Close to read the date-times of a request's filters that carry no zone as UTC.
// The lead search takes only such values (queryMinute), and which zone it reads them in
// without the header is not documented: in the account's, a bookmark would be read hours
// off and the changes of those hours skipped. The other filters name their zone (apiTime).
func utcFilters() http.Header { return http.Header{"X-Tz-Offset": {"0"}} }

// apiTime formats a filter value the way the list endpoints accept it (UTC, microseconds).
func apiTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// readAll pages through an endpoint without date filters and keeps the records updated at or
// after the window start (users, custom fields: the API offers no server-side filter).
func (s *Source) readAll(ctx context.Context, path string, extra map[string]any, w source.Window, out source.Emitter) error {
	return s.eachRecord(ctx, path, func(rec record.Record) error {
		return emitSince(ctx, rec, extra, w, out)
	})
}

// emitSince hands over rec, with the fields of extra, when it was updated at or after the
// window start.
func emitSince(ctx context.Context, rec record.Record, extra map[string]any, w source.Window, out source.Emitter) error {
	if t, err := record.ParseTime(rec["date_updated"]); err == nil && t.Before(w.From) {
		return nil
	}
	for k, v := range extra {
		rec[k] = v
	}
	return out.Record(ctx, rec)
}

// eachRecord pages through an endpoint by _skip and calls fn with every record once.
func (s *Source) eachRecord(ctx context.Context, path string, fn func(record.Record) error) error {
	guard := paging.New("GET " + path)
	for skip := 0; ; {
		q := url.Values{"_skip": {fmt.Sprint(skip)}, "_limit": {fmt.Sprint(bigPageSize)}}
		p, err := s.list(ctx, path, q)
		if err != nil {
			return err
		}
		fresh, stuck := guard.Fresh(p.Data)
		for _, rec := range fresh {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if !p.HasMore || len(p.Data) == 0 {
			return nil
		}
		if stuck != nil {
			return stuck
		}
		skip += len(p.Data)
	}
}

// readEvents follows the event log's cursor. Events come newest first, so no bookmark can be
// claimed before the walk ends; the engine commits the window end when it does.
func (s *Source) readEvents(ctx context.Context, w source.Window, out source.Emitter) error {
	base := url.Values{"_limit": {fmt.Sprint(eventPageSize)}}
	q := url.Values{"date_updated__gte": {apiTime(w.From)}, "_limit": {fmt.Sprint(eventPageSize)}}
	if w.Bounded() {
		q.Set("date_updated__lt", apiTime(w.To))
	}
	guard := paging.NewCursor("GET /event/")
	for {
		p, err := s.list(ctx, "/event/", q)
		if err != nil {
			return err
		}
		fresh, stuck := guard.Fresh(p.Data)
		for _, rec := range fresh {
			if err := out.Record(ctx, rec); err != nil {
				return err
			}
		}
		if p.CursorNext == "" || len(p.Data) == 0 {
			return nil
		}
		if stuck != nil {
			return stuck
		}
		if err := guard.Next(p.CursorNext); err != nil {
			return err
		}
		// When following a cursor the API wants the other filters repeated, but not date_updated.
		q = url.Values{}
		for k, v := range base {
			q[k] = v
		}
		q.Set("_cursor", p.CursorNext)
	}
}

// offsetFetch adapts a _skip/_limit listing to keyset.Fetch.
func (s *Source) offsetFetch(path string, limit int, query func(anchor time.Time) url.Values) func(context.Context, time.Time, int) (keyset.Page, error) {
	return func(ctx context.Context, anchor time.Time, skip int) (keyset.Page, error) {
		q := query(anchor)
		q.Set("_skip", fmt.Sprint(skip))
		q.Set("_limit", fmt.Sprint(limit))
		p, err := s.list(ctx, path, q)
		if err != nil {
			return keyset.Page{}, err
		}
		return keyset.Page{Records: p.Data, More: p.HasMore, Total: p.Total}, nil
	}
}

func (s *Source) readLeads(ctx context.Context, w source.Window, out source.Emitter) error {
	return s.readLeadListing(ctx, w, out)
}

// readLeadListing walks the leads updated in the window, by date_updated.
func (s *Source) readLeadListing(ctx context.Context, w source.Window, out source.Emitter) error {
	// The lead list has no date filters; its search query does, at minute precision. Whether
	// `<=` takes in the whole minute or stops at its first instant is not documented, so no
	// bound relies on it: the lower bound is rounded down to the minute (both readings include
	// everything from there), an unbounded window sends no upper bound, and a slice's upper
	// bound is the minute after its end (both readings reach past the end; the overlap with
	// the next slice is read twice and upserted once).
	query := func(anchor time.Time) url.Values {
		q := fmt.Sprintf(`date_updated>="%s"`, anchor.Format(queryMinute))
		if w.Bounded() {
			q += fmt.Sprintf(` date_updated<="%s"`, w.To.Truncate(time.Minute).Add(time.Minute).Format(queryMinute))
		}
		return url.Values{"query": {q + " sort:date_updated"}}
	}
	return keyset.Read(ctx, keyset.Listing{
		Fetch:      s.offsetFetch("/lead/", leadPageSize, query),
		Endpoint:   "GET /lead/",
		Key:        func(r record.Record) (time.Time, error) { return minuteKey(r["date_updated"]) },
		Checkpoint: true,
	}, w.From.Truncate(time.Minute), out)
}

// queryMinute is the lead query's time format: minute precision.
const queryMinute = "2006-01-02T15:04"

func (s *Source) readActivities(ctx context.Context, w source.Window, out source.Emitter) error {
	return s.readAscending(ctx, "/activity/", "date_created", activityPageSize, w, out)
}

// readAscending reads a listing that filters and sorts on the date field, ascending, from the
// window's start, re-anchoring as it goes (see package keyset); moving past a date justifies a
// bookmark at it.
func (s *Source) readAscending(ctx context.Context, path, field string, pageSize int, w source.Window, out source.Emitter) error {
	query := func(anchor time.Time) url.Values {
		q := url.Values{field + "__gte": {apiTime(anchor)}, "_order_by": {field}}
		if w.Bounded() {
			q.Set(field+"__lt", apiTime(w.To))
		}
		return q
	}
	return keyset.Read(ctx, keyset.Listing{
		Fetch:      s.offsetFetch(path, pageSize, query),
		Endpoint:   "GET " + path,
		Key:        func(r record.Record) (time.Time, error) { return record.ParseTime(r[field]) },
		Checkpoint: true,
	}, w.From, out)
}

func (s *Source) readTasks(ctx context.Context, w source.Window, out source.Emitter) error {
	// Tasks filter on date_updated but sort only by date or date_created: walk date_created
	// as the key (so pages cannot shift) and claim the bookmark only when the walk ends.
	// Without _type=all the API returns lead tasks only.
	query := func(anchor time.Time) url.Values {
		q := url.Values{"_type": {"all"}, "date_updated__gte": {apiTime(w.From)}, "_order_by": {"date_created"}}
		if w.Bounded() {
			q.Set("date_updated__lt", apiTime(w.To))
		}
		if !anchor.IsZero() {
			q.Set("date_created__gte", apiTime(anchor))
		}
		return q
	}
	return keyset.Read(ctx, keyset.Listing{
		Fetch:    s.offsetFetch("/task/", bigPageSize, query),
		Endpoint: "GET /task/",
		Key:      func(r record.Record) (time.Time, error) { return record.ParseTime(r["date_created"]) },
	}, time.Time{}, out)
}

// readContacts reads the contacts the leads embed, from the leads updated in the window, with
// only the fields it needs (_fields). /contact/ has no date filter: it would cost a walk of
// every contact (100 a request) on every sync, where the lead listing answers an idle sync with
// one request — and a contact's change moves its lead's date_updated (reference §4.1), so
// every changed contact is under a lead the window lists.
func (s *Source) readContacts(ctx context.Context, w source.Window, out source.Emitter) error {
	ctx = context.WithValue(ctx, fieldsKey{}, sweepFields["contacts"])
	return s.readLeadListing(ctx, w, embedded{field: "contacts", out: out})
}

// embedded hands over the objects a lead embeds in one field instead of the lead: all of
// them, as one older than the window may not have been read yet (a parallel slice of a first
// sync holds leads whose contacts are older than the slice).
type embedded struct {
	field string
	out   source.Emitter
}

func (e embedded) Record(ctx context.Context, lead record.Record) error {
	raw, ok := lead[e.field].(json.RawMessage)
	if !ok { // null or absent: none
		return nil
	}
	recs, err := record.DecodeArray(raw)
	if err != nil {
		return fmt.Errorf("lead %v: %s: %w", lead["id"], e.field, err)
	}
	for _, r := range recs {
		if err := e.out.Record(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoint claims nothing: the walk has handed over the objects of every lead updated before
// c, but an object updated before c may belong to a lead updated since, not read yet, so "every
// object whose date_updated is before c" would be false. The engine commits the window's end
// once the walk is over; a sync stopped before re-reads the window.
func (e embedded) Checkpoint(context.Context, time.Time) error { return nil }

func (s *Source) readOpportunities(ctx context.Context, w source.Window, out source.Emitter) error {
	return s.readAscending(ctx, "/opportunity/", "date_updated", oppPageSize, w, out)
}

func minuteKey(v any) (time.Time, error) {
	t, err := record.ParseTime(v)
	return t.Truncate(time.Minute), err
}
