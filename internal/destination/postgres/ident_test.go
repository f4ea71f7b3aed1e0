package postgres

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crmsync/crmsync/internal/catalog"
)

func TestIdent(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct {
		name string
		kept bool
	}{
		{"leads", true},
		{`we"ird name.with dots`, true},
		{"ünïcødé 表", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{long, false},
		{strings.Repeat("é", 40), false}, // 80 bytes
		{"", false},
		{"nul\x00byte", false},
		{"bad\xffutf8", false},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := Ident(tt.name)
		if (got == tt.name) != tt.kept {
			t.Errorf("Ident(%q) = %q; kept = %v, want %v", tt.name, got, got == tt.name, tt.kept)
		}
		if len(got) == 0 || len(got) > MaxIdentLen || !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Errorf("Ident(%q) = %q is not a valid PostgreSQL identifier", tt.name, got)
		}
		if Ident(tt.name) != got {
			t.Errorf("Ident(%q) is not deterministic", tt.name)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("Ident(%q) = Ident(%q) = %q", tt.name, other, got)
		}
		seen[got] = tt.name
	}
	// Long names that share a prefix stay apart and keep a readable prefix.
	a, b := Ident(long+"_a"), Ident(long+"_b")
	if a == b || !strings.HasPrefix(a, strings.Repeat("x", 50)) {
		t.Errorf("Ident of two long names: %q, %q", a, b)
	}
	// A cut never splits a character.
	if got := Ident(strings.Repeat("é", 40)); !utf8.ValidString(got) || len(got) != 63 {
		t.Errorf("Ident of 40 × é = %q (%d bytes)", got, len(got))
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://user:secret@host:5432/db?sslmode=disable", "postgres://user@host:5432/db?sslmode=disable"},
		{"postgresql://user@host/db", "postgresql://user@host/db"},
		{"postgres://host/db?password=secret&sslmode=require", "postgres://host/db?sslmode=require"},
		{"postgres://user:sec%40ret@host/db", "postgres://user@host/db"},
		{"postgres://user:secret@host:bad/db", "postgres://user@host:bad/db"},
		{"host=h user=u password=secret dbname=d", "host=h user=u password=xxxxx dbname=d"},
		{"host=h password='se cret' dbname=d", "host=h password=xxxxx dbname=d"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSecrets(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"postgres://u:p%40ss@h/db", []string{"p%40ss", "p@ss"}},
		{"postgres://u@h/db?password=qp", []string{"qp"}},
		{"postgres://u:x@h:bad/db", []string{"x"}},
		{"host=h password=kv", []string{"kv"}},
		{"host=h password='k v'", []string{"k v"}},
		{"postgres://h/db", nil},
	}
	for _, tt := range tests {
		if got := secrets(tt.in); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("secrets(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCleanJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a":"x\u0000y"}`, `{"a":"xy"}`},
		{`{"a":"x\\u0000y"}`, `{"a":"x\\u0000y"}`}, // an escaped backslash, not a NUL
		{`{"a":"\\\u0000"}`, `{"a":"\\"}`},
		{`{"\u0000k":1}`, `{"k":1}`},
		{"{\"a\":\"x\x00y\"}", `{"a":"xy"}`},
	}
	for _, tt := range tests {
		if got := cleanJSON(tt.in); got != tt.want {
			t.Errorf("cleanJSON(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestCleanText: short values (one pass) and long ones (two scans) are cleaned alike.
func TestCleanText(t *testing.T) {
	long := strings.Repeat("x", 40)
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"Zoë", "Zoë"},
		{"a\x00b", "ab"},
		{"Zoë\x00", "Zoë"},
		{"\x00", ""},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"é\xe9", "é\uFFFD"},
		{long + "Zoë", long + "Zoë"},
		{long + "\x00", long},
		{long + "\xff", long + "\uFFFD"},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMergeSQL(t *testing.T) {
	cols := []catalog.Column{{Name: "id", Type: catalog.String}, {Name: "updated", Type: catalog.Timestamp}, {Name: "v", Type: catalog.String}}
	tests := []struct {
		name   string
		stream catalog.Stream
		want   string
	}{
		{"incremental", catalog.Stream{PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "updated"},
			`INSERT INTO t AS t ("id", "updated", "v") SELECT DISTINCT ON ("id") "id", "updated", "v" FROM s ORDER BY "id", "updated" DESC NULLS LAST, "_crmsync_ord" DESC ` +
				`ON CONFLICT ("id") DO UPDATE SET "updated" = excluded."updated", "v" = excluded."v" ` +
				`WHERE excluded."updated" >= t."updated" OR excluded."updated" IS NULL OR t."updated" IS NULL`},
		{"no cursor", catalog.Stream{PrimaryKey: []string{"id"}, Method: catalog.FullTable},
			`INSERT INTO t AS t ("id", "updated", "v") SELECT DISTINCT ON ("id") "id", "updated", "v" FROM s ORDER BY "id", "_crmsync_ord" DESC ` +
				`ON CONFLICT ("id") DO UPDATE SET "updated" = excluded."updated", "v" = excluded."v"`},
		{"append", catalog.Stream{PrimaryKey: []string{"id"}, Method: catalog.AppendOnly, VersionField: "updated"},
			`INSERT INTO t ("id", "updated", "v") SELECT "id", "updated", "v" FROM s ORDER BY "_crmsync_ord" ON CONFLICT ("id", "updated") DO NOTHING`},
		{"no key", catalog.Stream{Method: catalog.Incremental},
			`INSERT INTO t AS t ("id", "updated", "v") SELECT "id", "updated", "v" FROM s ORDER BY "_crmsync_ord"`},
	}
	for _, tt := range tests {
		if got := mergeSQL("t", "s", tt.stream, cols); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// TestRedactErr: passwords are scrubbed where they stand as a password (a URL's or a
// keyword/value string's field, or a whole word), never inside other words, which would
// garble the message and point at the password.
func TestRedactErr(t *testing.T) {
	tests := []struct {
		name, conn, msg, want string
	}{
		{"one-letter password inside words", "postgres://u:a@h/db", "connect: failed", "connect: failed"},
		{"password inside a longer word", "postgres://u:secret@h/db", "secretive secrets", "secretive secrets"},
		{"URL echoed", "postgres://u:a@h/db", `cannot parse "postgres://u:a@h/db": bad`, `cannot parse "postgres://u:xxxxx@h/db": bad`},
		{"URL with @ in the password", "postgres://u:p@ss@h/db", `parse "postgres://u:p@ss@h/db" failed`, `parse "postgres://u:xxxxx@h/db" failed`},
		{"encoded password echoed decoded", "postgres://u:p%40ss@h/db", `bad password p@ss for u`, `bad password xxxxx for u`},
		{"another URL's password", "postgres://u:a@h/db", "via postgresql://x:other@proxy/db", "via postgresql://x:xxxxx@proxy/db"},
		{"keyword/value echoed", "host=h password=kv", "cannot parse `host=h password=kv dbname=d`", "cannot parse `host=h password=xxxxx dbname=d`"},
		{"quoted keyword/value", "host=h password='k v'", "dsn host=h password='k v' failed", "dsn host=h password=xxxxx failed"},
		{"whole word at the ends", "postgres://u:hunter2@h/db", "hunter2: rejected, said hunter2", "xxxxx: rejected, said xxxxx"},
		{"no password", "postgres://u@h/db", "connect: failed", "connect: failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := errors.New(tt.msg)
			err := redactErr(base, secrets(tt.conn))
			if err.Error() != tt.want {
				t.Errorf("redactErr(%q) = %q, want %q", tt.msg, err.Error(), tt.want)
			}
			if !errors.Is(err, base) {
				t.Error("the redacted error does not wrap the original")
			}
		})
	}
}
