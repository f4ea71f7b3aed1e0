package faulttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/source/closecrm"
)

// TestHostileData serves users whose fields carry what real accounts eventually send: huge
// strings, deep nesting, emoji and NUL bytes, numbers beyond int64, nulls where objects were
// expected, and fields that change type between records. Every row must land, in SQLite and
// PostgreSQL, with nothing lost.
func TestHostileData(t *testing.T) {
	huge := strings.Repeat("é日本😀", 300_000) // 3.3 MB of multi-byte text
	deep := strings.Repeat(`{"a":`, 500) + `1` + strings.Repeat(`}`, 500)
	users := []string{
		`{"id": "user_1", "date_updated": "2025-01-01T00:00:00+00:00", "first_name": "` + huge + `", "organizations": ` + deep + `, "drift": 7}`,
		`{"id": "user_2", "date_updated": "2025-01-02T00:00:00.5", "first_name": "nul\u0000byte 😀", "organizations": null, "drift": 7.5, "big": 123456789012345678901234567890}`,
		`{"id": "user_3", "date_updated": "2025-01-03T00:00:00+00:00", "first_name": null, "organizations": [], "drift": "seven", "big": 1, "email_verified_at": "not a date"}`,
		`{"id": "user_4", "date_updated": "2025-01-04T00:00:00+00:00", "organizations": {"unexpected": "object"}, "drift": {"now": "an object"}}`,
	}
	body := `{"data": [` + strings.Join(users, ",") + `], "has_more": false}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/me/":
			fmt.Fprint(w, `{"id": "user_1"}`)
		case "/api/v1/user/":
			fmt.Fprint(w, body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			dest := newDest(t)
			dst := e2e.OpenDest(t, dest, "close")
			src, err := closecrm.Descriptor.Open(connector.Settings{Credentials: creds, BaseURL: srv.URL, Tuning: apiclient.Tuning{RequestsPerSecond: -1}})
			if err != nil {
				t.Fatal(err)
			}
			e2e.Sync(t, src, dst, "users")
			r := e2e.OpenReplica(t, dest, "close")
			var n int
			var first string
			if err := r.DB.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %s`, r.Ref("users"))).Scan(&n); err != nil || n != 4 {
				t.Fatalf("users: %d rows (%v), want 4", n, err)
			}
			if err := r.DB.QueryRow(fmt.Sprintf(`SELECT first_name FROM %s WHERE id = 'user_1'`, r.Ref("users"))).Scan(&first); err != nil || first != huge {
				t.Fatalf("the huge string did not survive (%d bytes back, %v)", len(first), err)
			}
			var big, drift string
			if err := r.DB.QueryRow(fmt.Sprintf(`SELECT CAST(big AS TEXT), CAST(drift AS TEXT) FROM %s WHERE id = 'user_2'`, r.Ref("users"))).Scan(&big, &drift); err != nil {
				t.Fatal(err)
			}
			if big != "123456789012345678901234567890" || drift != "7.5" {
				t.Fatalf("numbers were altered: big=%s drift=%s", big, drift)
			}
			var nested string
			if err := r.DB.QueryRow(fmt.Sprintf(`SELECT CAST(organizations AS TEXT) FROM %s WHERE id = 'user_1'`, r.Ref("users"))).Scan(&nested); err != nil ||
				strings.Count(nested, `"a"`) != 500 {
				t.Fatalf("deep JSON did not survive: %d levels, %v", strings.Count(nested, `"a"`), err)
			}
			// "not a date" in a timestamp column: the column stays a timestamp, the row holds
			// NULL there and the raw value in _crmsync_unparsed.
			var verified any
			var unparsed string
			if err := r.DB.QueryRow(fmt.Sprintf(`SELECT email_verified_at, CAST(_crmsync_unparsed AS TEXT) FROM %s WHERE id = 'user_3'`, r.Ref("users"))).
				Scan(&verified, &unparsed); err != nil || verified != nil || !strings.Contains(unparsed, "not a date") {
				t.Fatalf("a malformed timestamp: stored %v, unparsed %q (%v); want NULL and the raw value kept", verified, unparsed, err)
			}
			typeQuery := `SELECT type FROM pragma_table_info('users') WHERE name = 'email_verified_at'`
			if destName == "postgres" {
				typeQuery = `SELECT data_type FROM information_schema.columns WHERE table_schema = 'close' AND table_name = 'users' AND column_name = 'email_verified_at'`
			}
			var colType string
			if err := r.DB.QueryRow(typeQuery).Scan(&colType); err != nil || !strings.Contains(strings.ToLower(colType), "timestamp") {
				t.Fatalf("email_verified_at is %q (%v) after a malformed value; want it still a timestamp", colType, err)
			}
		})
	}
}
