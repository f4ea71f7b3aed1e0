package sqlite

import (
	"database/sql"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
)

// TestOpenPathWithURICharacters writes through Open to files whose names mean something in a
// "file:" URI and checks that exactly the named file, created 0600, got the data.
func TestOpenPathWithURICharacters(t *testing.T) {
	names := []string{"a?b.db", "c#d.db", "e%41f.db", "g h.db", "x%3Fy.db", "p%q.db", "k&_pragma=x.db", "ü.db"}
	// One plainly named directory per case: subtest temp dirs carry the name's characters, and
	// a misparsed path would then land outside the test's directory.
	root := t.TempDir()
	for i, name := range names {
		t.Run(name, func(t *testing.T) {
			if runtime.GOOS == "windows" && strings.ContainsAny(name, "?") {
				t.Skip("not a valid Windows file name")
			}
			dir := filepath.Join(root, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			writeOneRow(t, path)
			checkOnlyFile(t, dir, name)
		})
	}
	t.Run("relative", func(t *testing.T) {
		dir := filepath.Join(root, "relative")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		t.Chdir(dir)
		writeOneRow(t, "r?e#l%41.db")
		checkOnlyFile(t, dir, "r?e#l%41.db")
	})
}

// writeOneRow opens path, writes one row to table "leads" under the lock, and closes it.
func writeOneRow(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	d, err := Open(ctx, path, "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	release, err := d.Lock(ctx, "close")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	tb := destination.Table{Source: "close", Stream: catalog.Stream{Name: "leads", PrimaryKey: []string{"id"}, Method: catalog.Incremental}}
	cols := []catalog.Column{{Name: "id", Type: catalog.String}}
	if _, err := d.Prepare(ctx, tb, cols); err != nil {
		t.Fatal(err)
	}
	if err := d.Write(ctx, destination.Batch{Table: tb, Columns: cols, Rows: [][]any{{"a"}}}, stateAt(time.Time{})); err != nil {
		t.Fatal(err)
	}
}

// checkOnlyFile checks that dir holds name (mode 0600, with the row writeOneRow wrote) and
// nothing else but that file's journals.
func checkOnlyFile(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range entries {
		switch e.Name() {
		case name:
			found = true
		case name + "-wal", name + "-shm", name + "-journal":
		default:
			t.Errorf("unexpected file %q in the directory", e.Name())
		}
	}
	if !found {
		t.Fatalf("%q was not created; the directory holds %v", name, entryNames(entries))
	}
	st, err := os.Stat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	// Read a copy under a plain name, so the check does not depend on the URI under test.
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM leads`).Scan(&n); err != nil || n != 1 {
		t.Errorf("rows in %q = %d, %v; want 1", name, n, err)
	}
}

func entryNames(entries []os.DirEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestFileURI(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "a?b#c%d e.db")
	got, err := fileURI(abs)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "file:///") || strings.ContainsAny(got[len("file:"):], "?# ") {
		t.Errorf("fileURI(%q) = %q: want file:/// and no raw '?', '#' or space", abs, got)
	}
	if !strings.HasSuffix(got, "/a%3Fb%23c%25d%20e.db") {
		t.Errorf("fileURI(%q) = %q", abs, got)
	}
}
