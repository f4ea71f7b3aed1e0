package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/destination/singer"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/sources"
)

// tapBinary is the real tap-crmsync, built once for the tests.
var tapBinary string

func TestMain(m *testing.M) { os.Exit(e2e.RunWithBinary(m, "tap-crmsync", &tapBinary)) }

// tapRun is one run of the binary.
type tapRun struct {
	stdout, stderr string
	code           int
}

func runTap(t *testing.T, args ...string) tapRun {
	t.Helper()
	cmd := exec.Command(tapBinary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := tapRun{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

// writeJSON writes v to a file in the test's directory and returns its path.
func writeJSON(t *testing.T, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// smallSizes are a tenth of the demo's account, at least 20 rows a table.
func smallSizes(d connector.Descriptor) map[string]int {
	out := map[string]int{}
	for _, s := range d.Simulator.Sizes {
		out[s.Table] = max(20, s.Default/10)
	}
	return out
}

// account is a simulated account with the tap's config for it.
type account struct {
	*e2e.Account
	config map[string]any
}

func newAccount(t *testing.T, d connector.Descriptor, creds map[string]string) account {
	t.Helper()
	if creds == nil {
		creds = d.Simulator.Credentials
	}
	a := e2e.NewAccount(t, d, e2e.Options{SimConfig: connector.SimConfig{Sizes: smallSizes(d), Credentials: creds}})
	cfg := map[string]any{"source": d.Name, "base_url": a.URL, "requests_per_second": -1,
		"start_date": time.Now().AddDate(-3, 0, 0).UTC().Format(time.RFC3339)}
	for k, v := range creds {
		cfg[k] = v
	}
	return account{a, cfg}
}

func discover(t *testing.T, configPath string) singerCatalog {
	t.Helper()
	r := runTap(t, "--config", configPath, "--discover")
	if r.code != 0 {
		t.Fatalf("--discover: exit %d: %s", r.code, r.stderr)
	}
	var cat singerCatalog
	if err := json.Unmarshal([]byte(r.stdout), &cat); err != nil {
		t.Fatalf("--discover output is not a catalog: %v\n%s", err, r.stdout)
	}
	return cat
}

// selectAll marks every stream selected, as Meltano writes it.
func selectAll(cat singerCatalog) singerCatalog {
	for i := range cat.Streams {
		for j, m := range cat.Streams[i].Metadata {
			if len(m.Breadcrumb) == 0 {
				cat.Streams[i].Metadata[j].Metadata["selected"] = true
			}
		}
	}
	return cat
}

func TestVersionAndAbout(t *testing.T) {
	if r := runTap(t, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "tap-crmsync ") {
		t.Errorf("--version: exit %d, %q", r.code, r.stdout)
	}
	r := runTap(t, "--about", "--format", "json")
	var a aboutInfo
	if err := json.Unmarshal([]byte(r.stdout), &a); r.code != 0 || err != nil {
		t.Fatalf("--about: exit %d, %v: %s", r.code, err, r.stdout)
	}
	for _, c := range []string{"catalog", "discover", "state", "about"} {
		if !slices.Contains(a.Capabilities, c) {
			t.Errorf("--about: capability %q missing: %v", c, a.Capabilities)
		}
	}
	props, _ := a.Settings["properties"].(map[string]any)
	for _, n := range []string{"source", "api_key", "user_email", "start_date", "base_url", "requests_per_second"} {
		if props[n] == nil {
			t.Errorf("--about: setting %q missing: %v", n, a.Settings)
		}
	}
	if key, _ := props["api_key"].(map[string]any); key["secret"] != true {
		t.Errorf("--about: api_key is not marked secret: %v", key)
	}
	if fmt.Sprint(a.Settings["required"]) != "[source]" {
		t.Errorf("--about: required %v", a.Settings["required"])
	}
	md := runTap(t, "--about", "--format", "markdown")
	if md.code != 0 || !strings.Contains(md.stdout, "## Settings") || !strings.Contains(md.stdout, "| api_key |") {
		t.Errorf("--about --format markdown: exit %d:\n%s", md.code, md.stdout)
	}
	if bad := runTap(t, "--about", "--format", "yaml"); bad.code != 2 {
		t.Errorf("--about --format yaml: exit %d, want 2", bad.code)
	}
}

func TestDiscover(t *testing.T) {
	for _, d := range sources.All() {
		t.Run(d.Name, func(t *testing.T) {
			cfg := writeJSON(t, "config.json", map[string]any{"source": d.Name})
			cat := discover(t, cfg)
			src := d.Catalog()
			if len(cat.Streams) != len(src.Streams) {
				t.Fatalf("%d streams, the source has %d", len(cat.Streams), len(src.Streams))
			}
			for _, ss := range cat.Streams {
				s, ok := src.Stream(ss.TapStreamID)
				if !ok || ss.Stream != s.Name {
					t.Errorf("stream %q/%q is not the source's", ss.TapStreamID, ss.Stream)
					continue
				}
				if ss.Schema["type"] != "object" {
					t.Errorf("%s: schema type %v", s.Name, ss.Schema["type"])
				}
				props, _ := ss.Schema["properties"].(map[string]any)
				top := map[string]any{}
				fields := map[string]map[string]any{}
				for _, m := range ss.Metadata {
					switch {
					case len(m.Breadcrumb) == 0:
						top = m.Metadata
					case len(m.Breadcrumb) == 2 && m.Breadcrumb[0] == "properties":
						fields[m.Breadcrumb[1]] = m.Metadata
					default:
						t.Errorf("%s: breadcrumb %v", s.Name, m.Breadcrumb)
					}
				}
				keys := fmt.Sprint(singer.KeyProperties(s))
				if fmt.Sprint(top["table-key-properties"]) != keys || fmt.Sprint(ss.KeyProperties) != keys {
					t.Errorf("%s: table-key-properties %v, key_properties %v, want %s", s.Name, top["table-key-properties"], ss.KeyProperties, keys)
				}
				method := "INCREMENTAL"
				if s.Method == catalog.FullTable {
					method = "FULL_TABLE"
				}
				if top["forced-replication-method"] != method || top["selected-by-default"] != true {
					t.Errorf("%s: metadata %v", s.Name, top)
				}
				if s.CursorField != "" && (top["replication-key"] != s.CursorField || fmt.Sprint(top["valid-replication-keys"]) != "["+s.CursorField+"]") {
					t.Errorf("%s: replication key %v / %v, want %s", s.Name, top["replication-key"], top["valid-replication-keys"], s.CursorField)
				}
				if _, ok := top["valid-replication-keys"]; !ok {
					t.Errorf("%s: no valid-replication-keys", s.Name)
				}
				for _, c := range s.Columns {
					if props[c.Name] == nil {
						t.Errorf("%s.%s: not in the schema", s.Name, c.Name)
					}
					want := "available"
					if c.Name == s.CursorField || slices.Contains(singer.KeyProperties(s), c.Name) {
						want = "automatic"
					}
					if fields[c.Name]["inclusion"] != want {
						t.Errorf("%s.%s: inclusion %v, want %s", s.Name, c.Name, fields[c.Name]["inclusion"], want)
					}
				}
				if len(fields) != len(props) {
					t.Errorf("%s: %d fields in metadata, %d in the schema", s.Name, len(fields), len(props))
				}
			}
		})
	}
}
