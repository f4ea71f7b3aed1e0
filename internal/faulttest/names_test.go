package faulttest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/crmsync/crmsync/internal/apiclient"
	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/source/closecrm"
)

// TestOddFieldNames serves users with field names some database cannot take as they are
// (case twins, the rowid's names, a NUL byte, the empty name) and fields named like
// crmsync's metadata columns. Every run must succeed, in SQLite and PostgreSQL, every field
// must get a column of its own, and the metadata columns must keep their type.
func TestOddFieldNames(t *testing.T) {
	fields := `"Name": "N", "name": "n", "EMAIL": "E", "email": "e", "ID": "I", "rowid": "r", "oid": "o", "_rowid_": "_r",
		"nul\u0000byte": "z", "": "empty", "_crmsync_extracted_at": "not a time", "_crmsync_deleted_at": "never", "_crmsync_ord": 1`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/me/":
			fmt.Fprint(w, `{"id": "user_1"}`)
		case "/api/v1/user/":
			fmt.Fprintf(w, `{"data": [{"id": "user_1", "date_updated": "2025-01-01T00:00:00+00:00", %s},
				{"id": "user_2", "date_updated": "2025-01-02T00:00:00+00:00", %s}], "has_more": false}`, fields, fields)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	want := []string{"Name", "name", "EMAIL", "email", "ID", "rowid", "oid", "_rowid_", "nul\x00byte", "",
		"_crmsync_extracted_at_src", "_crmsync_deleted_at_src", "_crmsync_ord_src"}
	for destName, newDest := range e2e.Destinations() {
		t.Run(destName, func(t *testing.T) {
			dst := e2e.OpenDest(t, newDest(t), "close")
			for run := 1; run <= 2; run++ {
				src, err := closecrm.Descriptor.Open(connector.Settings{Credentials: creds, BaseURL: srv.URL, Tuning: apiclient.Tuning{RequestsPerSecond: -1}})
				if err != nil {
					t.Fatal(err)
				}
				// A second run (nothing new to write) must find the same columns.
				if rep := e2e.Sync(t, src, dst, "users"); run == 1 && rep.Rows() != 2 {
					t.Fatalf("the first run wrote %d rows, want 2", rep.Rows())
				}
			}
			users, _ := closecrm.Descriptor.Catalog().Stream("users")
			cols, err := dst.Prepare(t.Context(), destination.Table{Source: "close", Stream: users}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range want {
				if catalog.IndexOf(cols, n) < 0 {
					t.Errorf("field %q has no column: %v", n, cols)
				}
			}
			for _, m := range destination.MetadataColumns {
				if i := catalog.IndexOf(cols, m.Name); i < 0 || cols[i].Type != m.Type {
					t.Errorf("metadata column %s is %v, want %s", m.Name, cols[max(i, 0)], m.Type)
				}
			}
		})
	}
}
