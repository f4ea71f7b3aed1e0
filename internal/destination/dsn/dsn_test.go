package dsn

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSQLitePath(t *testing.T) {
	for _, tt := range []struct {
		dest, path string
		ok         bool
	}{
		{"sqlite:crm.db", "crm.db", true},
		{"sqlite://tmp/crm.db", "tmp/crm.db", true},
		{"sqlite:/abs/crm", "/abs/crm", true},
		{"crm.db", "crm.db", true},
		{"data/crm.sqlite", "data/crm.sqlite", true},
		{"postgres://u@h/db.db", "", false},
		{"mysql://u@h/db", "", false},
	} {
		path, ok := SQLitePath(tt.dest)
		if path != tt.path || ok != tt.ok {
			t.Errorf("SQLitePath(%q) = %q, %v; want %q, %v", tt.dest, path, ok, tt.path, tt.ok)
		}
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d, name, err := Open(ctx, "sqlite:"+filepath.Join(dir, "x.db"), "", "close")
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if name != "sqlite:"+filepath.Join(dir, "x.db") {
		t.Errorf("name %q", name)
	}
	for _, dest := range []string{"mysql://u@h/db", "sqlite::memory:", "sqlite:", "sqlite:file:crm.db?mode=memory"} {
		var unknown *UnknownError
		if d, _, err := Open(ctx, dest, "", "close"); d != nil || !errors.As(err, &unknown) {
			t.Errorf("Open(%q) = %v, %v; want an UnknownError and no destination", dest, d, err)
		}
	}
	if d, name, err := Open(ctx, "postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=1", "", "close"); err == nil || d != nil {
		t.Fatalf("Open of an unreachable server = %v, %v", d, err)
	} else if name == "" || strings.Contains(name, "secretpw") || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("name %q / error %v must name the server without its password", name, err)
	}
}
