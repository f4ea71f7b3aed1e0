// Package fleet reads a fleet file: the accounts a crmsync worker fleet syncs, each with its
// sync settings, where its API key is read from and its schedule. The file is strict like a
// config file: unknown or repeated keys and wrong types are errors naming the key and line.
// Secrets are not in it: each account names the variable or file its key is read from when a
// sync runs.
package fleet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/destination/dsn"
)

// MaxFileSize bounds a fleet file (some thousands of accounts).
const MaxFileSize = 16 << 20

// Defaults of the file's timing settings.
const (
	DefaultJobTimeout  = 10 * time.Minute
	DefaultRescueAfter = 15 * time.Minute
)

// File is a parsed fleet file.
type File struct {
	// Queue is the PostgreSQL URL of the job queue (River's tables and the run history).
	Queue string
	// JobTimeout bounds one sync job: it is then stopped (committed batches kept) and goes on
	// in a new job at once. RescueAfter is how long a job may stay running before it is taken
	// for dead (its worker killed, its machine gone) and run again by another worker; it must
	// exceed JobTimeout, so a live sync is never run twice.
	JobTimeout  time.Duration
	RescueAfter time.Duration
	Accounts    []Account
}

// Account is one CRM account the fleet syncs.
type Account struct {
	Name string
	// APIKeyEnv / APIKeyFile: where the worker reads the key when a sync runs (one of them).
	APIKeyEnv, APIKeyFile string
	// Every or Cron is the schedule (one of them).
	Every    time.Duration
	Cron     string
	Settings config.Config // the sync settings, without the API key
	Schedule Schedule
	Line     int // in the file, for messages
}

// Lookup finds an account by name.
func (f *File) Lookup(name string) (Account, bool) {
	for _, a := range f.Accounts {
		if a.Name == name {
			return a, true
		}
	}
	return Account{}, false
}

// Load reads and parses a fleet file; the read gives up when ctx is done.
func Load(ctx context.Context, path string, now time.Time) (*File, error) {
	data, err := config.ReadFile(ctx, path, "fleet file", MaxFileSize)
	if err != nil {
		return nil, err
	}
	return Parse(data, path, now)
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

// Parse decodes a fleet file; name is used in messages, now checks start dates.
func Parse(data []byte, name string, now time.Time) (*File, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("fleet file %s: line %d: %s", name, line, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("fleet file %s: empty; it lists the accounts under accounts:", name)
	} else if err != nil {
		return nil, fmt.Errorf("fleet file %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, fail(more.Line, "a second YAML document; a fleet file holds one mapping")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "expected a mapping (queue:, accounts:)")
	}
	f := &File{}
	var accounts yaml.Node
	keys := map[string]any{"queue": &f.Queue, "job_timeout": &f.JobTimeout, "rescue_after": &f.RescueAfter, "accounts": &accounts}
	if err := decodeStrict(root, keys); err != nil {
		return nil, fmt.Errorf("fleet file %s: %w", name, err)
	}
	if f.JobTimeout == 0 {
		f.JobTimeout = DefaultJobTimeout
	}
	if f.RescueAfter == 0 {
		f.RescueAfter = max(DefaultRescueAfter, f.JobTimeout+5*time.Minute)
	}
	if f.JobTimeout < time.Second || f.RescueAfter <= f.JobTimeout {
		return nil, fmt.Errorf("fleet file %s: job_timeout (%s) must be at least 1s and rescue_after (%s) longer than it: a sync still running when it is rescued would run twice", name, f.JobTimeout, f.RescueAfter)
	}
	if accounts.Kind != yaml.SequenceNode || len(accounts.Content) == 0 {
		return nil, fail(max(accounts.Line, root.Line), "accounts: expected a list of accounts (- name: …)")
	}
	names := map[string]int{}
	places := map[string]string{}
	for i, n := range accounts.Content {
		a, err := parseAccount(n, now)
		if err != nil {
			return nil, fmt.Errorf("fleet file %s: accounts[%d]: %w", name, i, err)
		}
		if first, dup := names[a.Name]; dup {
			return nil, fail(a.Line, "account %q is listed twice (first on line %d)", a.Name, first)
		}
		names[a.Name] = a.Line
		// Two accounts writing the same tables would mix their rows.
		place := destKey(a.Settings)
		if other, dup := places[place]; dup {
			return nil, fail(a.Line, "account %q writes to the same destination and schema as %q; give each account its own schema", a.Name, other)
		}
		places[place] = a.Name
		f.Accounts = append(f.Accounts, a)
	}
	return f, nil
}

// destKey identifies the tables an account writes: its destination and schema (PostgreSQL:
// the source's name by default; SQLite: a table prefix, none by default).
func destKey(c config.Config) string {
	schema := c.Schema
	if schema == "" && dsn.IsPostgres(c.Dest) {
		schema = c.Source
	}
	return c.Dest + "\x00" + schema
}

// decodeStrict decodes a mapping whose keys are exactly those of keys (none required).
func decodeStrict(m *yaml.Node, keys map[string]any) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if first, dup := seen[k.Value]; dup {
			return fmt.Errorf("line %d: %s is set twice (first on line %d)", k.Line, k.Value, first)
		}
		seen[k.Value] = k.Line
		p, ok := keys[k.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q (known: queue, job_timeout, rescue_after, accounts)", k.Line, k.Value)
		}
		if n, ok := p.(*yaml.Node); ok {
			*n = *v
			continue
		}
		if err := v.Decode(p); err != nil {
			what := "a string"
			if _, ok := p.(*time.Duration); ok {
				what = "a duration such as 10m"
			}
			return fmt.Errorf("line %d: %s: expected %s, got %q", k.Line, k.Value, what, v.Value)
		}
	}
	return nil
}

// notInFleet are settings an account may not carry: the key is never written in the file,
// and logging is the worker's.
var notInFleet = map[string]string{
	"api_key":    "the key is not written in a fleet file; name where the worker reads it: api_key_env: VARIABLE or api_key_file: PATH",
	"log_level":  "logging is the worker's: crmsync worker --log-level",
	"log_format": "logging is the worker's: crmsync worker --log-format",
}

func parseAccount(n *yaml.Node, now time.Time) (Account, error) {
	a := Account{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		return a, fmt.Errorf("line %d: expected an account (name:, source:, …)", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if why, bad := notInFleet[n.Content[i].Value]; bad {
			return a, fmt.Errorf("line %d: %s: %s", n.Content[i].Line, n.Content[i].Value, why)
		}
	}
	var every string
	cfg, err := config.DecodeSettings(n, map[string]any{"name": &a.Name, "api_key_env": &a.APIKeyEnv, "api_key_file": &a.APIKeyFile,
		"every": &every, "cron": &a.Cron})
	if err != nil {
		return a, err
	}
	a.Settings = cfg
	at := func(format string, args ...any) error {
		return fmt.Errorf("line %d: %s", n.Line, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(a.Name) {
		return a, at("name: %q: give each account a name of 1 to 63 characters a-z, 0-9, _ and -", a.Name)
	}
	named := func(format string, args ...any) error {
		return at("account %q: %s", a.Name, fmt.Sprintf(format, args...))
	}
	d, err := cfg.Descriptor()
	if err != nil {
		return a, named("%v", err)
	}
	if (a.APIKeyEnv == "") == (a.APIKeyFile == "") {
		return a, named("set one of api_key_env (a variable holding the key) and api_key_file (a file holding it)")
	}
	for _, c := range d.Credentials {
		if c.Key != "api_key" && cfg.Credentials()[c.Key] == "" {
			return a, named("%s: missing; the %s source needs it", c.Key, d.Title)
		}
	}
	if cfg.Dest == "" {
		return a, named("dest: missing; name the account's destination (postgres://… or sqlite:PATH)")
	}
	if _, ok := dsn.SQLitePath(cfg.Dest); !ok && !dsn.IsPostgres(cfg.Dest) {
		return a, named("%v", &dsn.UnknownError{Dest: cfg.Dest})
	}
	if _, err := cfg.StartTime(now); err != nil {
		return a, named("%v", err)
	}
	if _, err := d.Catalog().Select(cfg.Streams); err != nil {
		return a, named("streams: %v", err)
	}
	if err := cfg.CheckSync(); err != nil {
		return a, named("%v", err)
	}
	if cfg.BaseURL != "" {
		if err := config.CheckBaseURL(cfg.BaseURL, cfg.AllowInsecureHTTP); err != nil {
			return a, named("%v", err)
		}
	}
	switch {
	case (every == "") == (a.Cron == ""):
		return a, named(`set one schedule: every: 1h (a duration) or cron: "15 * * * *"`)
	case every != "":
		if a.Every, err = time.ParseDuration(every); err != nil || a.Every < time.Second {
			return a, named("every: %q is not a duration of at least 1s, such as 30m or 1h", every)
		}
		a.Schedule = Interval(a.Name, a.Every)
	default:
		if a.Schedule, err = ParseCron(a.Cron); err != nil {
			return a, named("cron: %v", err)
		}
	}
	return a, nil
}

// MaxKeyFileSize bounds an api_key_file.
const MaxKeyFileSize = 64 << 10

// Config returns the account's sync settings with its API key, read now from its variable or
// file. Errors name the variable or file, never the key.
func (a Account) Config(getenv func(string) string) (config.Config, error) {
	cfg := a.Settings
	switch {
	case a.APIKeyEnv != "":
		cfg.APIKey = getenv(a.APIKeyEnv)
		if strings.TrimSpace(cfg.APIKey) == "" {
			return config.Config{}, fmt.Errorf("api_key_env: %s is not set in the worker's environment", a.APIKeyEnv)
		}
	default:
		f, err := os.Open(a.APIKeyFile)
		if err != nil {
			return config.Config{}, fmt.Errorf("api_key_file: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
		if err != nil {
			return config.Config{}, fmt.Errorf("api_key_file %s: %w", a.APIKeyFile, err)
		}
		if len(b) > MaxKeyFileSize || strings.TrimSpace(string(b)) == "" {
			return config.Config{}, fmt.Errorf("api_key_file %s: expected one API key (empty or larger than %d KiB)", a.APIKeyFile, MaxKeyFileSize>>10)
		}
		cfg.APIKey = strings.TrimSpace(string(b))
	}
	return cfg, nil
}

// KeyFingerprint identifies an account's key without revealing it (a truncated SHA-256 of
// the account's name and key): the run history keeps it so a key refused by the API is not
// tried again until it changes.
func KeyFingerprint(account, key string) string {
	h := sha256.Sum256([]byte("crmsync key fingerprint\x00" + account + "\x00" + strings.TrimSpace(key)))
	return hex.EncodeToString(h[:8])
}
