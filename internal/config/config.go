// Package config loads crmsync's settings from a YAML file, the environment and flags
// (flags win over the file, the file over the environment), and validates them before any
// request is made.
package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/sources"
)

// Config is every setting of a sync. The YAML keys are the field tags.
type Config struct {
	Source string `yaml:"source"` // a name in the registry (package sources)
	// Credentials: the YAML key of each is the Key of a connector.Credential; a source needing
	// a new kind of credential adds a field here.
	APIKey    string   `yaml:"api_key"`    // better from the environment (CLOSE_API_KEY, …)
	UserEmail string   `yaml:"user_email"` // Copper
	StartDate string   `yaml:"start_date"` // MM/DD/YYYY, YYYY-MM-DD or RFC 3339
	BaseURL   string   `yaml:"base_url"`   // scheme and host only
	Dest      string   `yaml:"dest"`       // sqlite:PATH or postgres://…
	Schema    string   `yaml:"schema"`     // namespace in the destination
	Streams   []string `yaml:"streams"`    // empty: all

	RequestsPerSecond float64 `yaml:"requests_per_second"`
	// StallTimeout abandons (and retries) an answer that stops sending bytes for this long.
	StallTimeout time.Duration `yaml:"stall_timeout"`
	// RateLimitTimeout bounds how long one request may keep being rate limited.
	RateLimitTimeout time.Duration `yaml:"rate_limit_timeout"`
	Concurrency      int           `yaml:"concurrency"`
	BatchSize        int           `yaml:"batch_size"`
	// MemoryBudgetMB bounds the MiB of records all tables of a sync hold at once; zero: the
	// engine's default.
	MemoryBudgetMB int `yaml:"memory_budget_mb"`
	// AllowInsecureHTTP permits an http:// base URL that is not a loopback address.
	AllowInsecureHTTP bool   `yaml:"allow_insecure_http"`
	LogLevel          string `yaml:"log_level"`  // debug | info | warn | error
	LogFormat         string `yaml:"log_format"` // text | json
	// Deletes is what a record deleted in the source does to its row: soft (marked, the
	// default) or hard (removed).
	Deletes string `yaml:"deletes"`
	// ReconcileEvery is how often a table without a deletion feed (Copper's) sweeps its ids;
	// nil: DefaultReconcileEvery; zero: on every sync.
	ReconcileEvery *time.Duration `yaml:"reconcile_every"`
}

// maxMemoryBudgetMB keeps the budget's bytes far inside an int on every platform.
const maxMemoryBudgetMB = 1 << 16

// DefaultReconcileEvery is the id sweep's cadence unless set: a sweep costs a full read.
const DefaultReconcileEvery = 24 * time.Hour

// Reconcile returns the id sweep's cadence.
func (c Config) Reconcile() time.Duration {
	if c.ReconcileEvery == nil {
		return DefaultReconcileEvery
	}
	return *c.ReconcileEvery
}

// MaxFileSize bounds a config file: a FIFO or /dev/zero given as one must not be read
// without end.
const MaxFileSize = 1 << 20

// Load reads a YAML config file of at most MaxFileSize bytes. Unknown keys, duplicate keys,
// more than one document and wrong types are errors naming the key. The read gives up when
// ctx is done (a FIFO nobody writes to blocks; Ctrl-C must still work).
func Load(ctx context.Context, path string) (Config, error) {
	data, err := ReadFile(ctx, path, "config file", MaxFileSize)
	if err != nil {
		return Config{}, err
	}
	return Parse(data, path)
}

// ReadFile reads a settings file of at most limit bytes; what names it in errors ("config
// file"). The read gives up when ctx is done.
func ReadFile(ctx context.Context, path, what string, limit int64) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() { // the read itself cannot be interrupted; whoever waits for it can
		f, err := os.Open(path)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, limit+1))
		done <- result{data, err}
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%s %s: not read: %w", what, path, ctx.Err())
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("%s: %w", what, r.err)
		}
		if int64(len(r.data)) > limit {
			return nil, fmt.Errorf("%s %s: larger than %d KiB; is it the right file?", what, path, limit>>10)
		}
		return r.data, nil
	}
}

// Parse decodes YAML config text; name is used in error messages. Each key is decoded on its
// own so that an unknown key or a wrong type is reported with the key's name and line.
func Parse(data []byte, name string) (Config, error) {
	var c Config
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return c, nil // empty file
	} else if err != nil {
		return Config{}, fmt.Errorf("config file %s: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		line := more.Line
		return Config{}, fmt.Errorf("config file %s: line %d: a second YAML document; a config file holds one mapping of settings", name, line)
	}
	if len(doc.Content) == 0 {
		return c, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("config file %s: line %d: expected a mapping of settings (key: value)", name, root.Line)
	}
	c, err := DecodeSettings(root, nil)
	if err != nil {
		return Config{}, fmt.Errorf("config file %s: %w", name, err)
	}
	return c, nil
}

// DecodeSettings decodes a YAML mapping of settings key by key, so that an unknown or
// repeated key and a wrong type are reported with the key's name and line. extra are keys
// that are not settings (a fleet file's account name, say), each decoded into its pointer
// with the same checks.
func DecodeSettings(m *yaml.Node, extra map[string]any) (Config, error) {
	var c Config
	if m.Kind != yaml.MappingNode {
		return Config{}, fmt.Errorf("line %d: expected a mapping of settings (key: value)", m.Line)
	}
	fields := c.fields()
	for k, p := range extra {
		fields[k] = reflect.ValueOf(p).Elem()
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if first, dup := seen[key.Value]; dup {
			return Config{}, fmt.Errorf("line %d: %s is set twice (first on line %d)", key.Line, key.Value, first)
		}
		seen[key.Value] = key.Line
		f, ok := fields[key.Value]
		if !ok {
			return Config{}, fmt.Errorf("line %d: unknown setting %q (known: %s)", key.Line, key.Value, strings.Join(knownKeys(fields), ", "))
		}
		if err := val.Decode(f.Addr().Interface()); err != nil {
			return Config{}, fmt.Errorf("line %d: %s: expected %s, got %q", key.Line, key.Value, kindName(f.Kind()), val.Value)
		}
	}
	return c, nil
}

func knownKeys(fields map[string]reflect.Value) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Int64: // time.Duration, the only int64 setting
		return "a duration such as 15s or 10m"
	case reflect.Int:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	}
	return "a string"
}

// FromEnv returns the settings the environment supplies for a source: its credentials from
// the variables its descriptor names, and the destination and start date.
func FromEnv(source string, getenv func(string) string) Config {
	var c Config
	if d, err := sources.Lookup(source); err == nil {
		fields := c.fields()
		for _, cred := range d.Credentials {
			if f, ok := fields[cred.Key]; ok {
				f.SetString(getenv(cred.Env))
			}
		}
	}
	c.Dest = getenv("CRMSYNC_DEST")
	c.StartDate = getenv("CRMSYNC_START_DATE")
	return c
}

// fields maps each YAML key to its settable field.
func (c *Config) fields() map[string]reflect.Value {
	fields := map[string]reflect.Value{}
	v := reflect.ValueOf(c).Elem()
	for i := 0; i < v.NumField(); i++ {
		fields[v.Type().Field(i).Tag.Get("yaml")] = v.Field(i)
	}
	return fields
}

// Overlay returns base with every non-zero setting of top applied over it.
func Overlay(base, top Config) Config {
	b, t := reflect.ValueOf(&base).Elem(), reflect.ValueOf(top)
	for i := 0; i < t.NumField(); i++ {
		if !t.Field(i).IsZero() {
			b.Field(i).Set(t.Field(i))
		}
	}
	return base
}

// CheckTimeouts refuses negative time bounds (zero means the default).
func (c Config) CheckTimeouts() error {
	if c.StallTimeout < 0 || c.RateLimitTimeout < 0 {
		return errors.New("stall_timeout and rate_limit_timeout must not be negative")
	}
	return nil
}

// CheckSync validates the settings only a sync has: an explicitly empty table selection (which
// would otherwise read as "all"), a pace that is not a number, negative sizes and timeouts.
func (c Config) CheckSync() error {
	if c.Streams != nil && len(c.Streams) == 0 {
		return errors.New("streams: an empty selection; name the tables to sync, or leave streams out to sync all")
	}
	if math.IsNaN(c.RequestsPerSecond) || math.IsInf(c.RequestsPerSecond, 0) {
		return fmt.Errorf("requests_per_second: %v is not a number of requests; use a positive number, or a negative one for no pacing", c.RequestsPerSecond)
	}
	if c.Concurrency < 0 || c.BatchSize < 0 || c.MemoryBudgetMB < 0 {
		return errors.New("concurrency, batch_size and memory_budget_mb must not be negative")
	}
	if c.MemoryBudgetMB > maxMemoryBudgetMB {
		return fmt.Errorf("memory_budget_mb: %d MiB is more than a sync can use; give at most %d", c.MemoryBudgetMB, maxMemoryBudgetMB)
	}
	if c.Deletes != "" && c.Deletes != "soft" && c.Deletes != "hard" {
		return fmt.Errorf("deletes: %q is not a way to apply deletions; use soft (rows are marked in _crmsync_deleted_at) or hard (rows are removed)", c.Deletes)
	}
	if c.ReconcileEvery != nil && *c.ReconcileEvery < 0 {
		return fmt.Errorf("reconcile_every: %s is negative; use a duration such as 24h, or 0 to sweep on every sync", *c.ReconcileEvery)
	}
	return c.CheckTimeouts()
}

// Descriptor finds the named source in the registry.
func (c Config) Descriptor() (connector.Descriptor, error) {
	return sources.Lookup(c.Source)
}

// Credentials are the credential settings by key (api_key, user_email).
func (c Config) Credentials() map[string]string {
	out := map[string]string{}
	if d, err := c.Descriptor(); err == nil {
		fields := c.fields()
		for _, cred := range d.Credentials {
			if f, ok := fields[cred.Key]; ok {
				out[cred.Key] = f.String()
			}
		}
	}
	return out
}

// CheckCredentials validates what the source needs to authenticate, and the base URL.
func (c Config) CheckCredentials() error {
	d, err := c.Descriptor()
	if err != nil {
		return err
	}
	if err := d.CheckCredentials(c.Credentials()); err != nil {
		return err
	}
	if c.BaseURL != "" {
		if err := CheckBaseURL(c.BaseURL, c.AllowInsecureHTTP); err != nil {
			return err
		}
	}
	return nil
}

// CheckBaseURL accepts an absolute http(s) URL of scheme and host only. Plain http is allowed
// for loopback addresses (simulators, local proxies) and otherwise only when allowInsecure.
func CheckBaseURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("base_url: %q is not an absolute URL; write it with its scheme, e.g. https://api.example.com", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("base_url: %q has a path; give only scheme and host (the API paths are added by crmsync)", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("base_url: %q has a query, fragment or user info; give only scheme and host", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure && !isLoopback(u.Hostname()) {
			return fmt.Errorf("base_url: %q uses plain http to a non-loopback host; use https, or pass --allow-insecure-http", raw)
		}
	default:
		return fmt.Errorf("base_url: scheme %q is not http or https", u.Scheme)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ErrNoStartDate says a first sync lacks its start date.
var ErrNoStartDate = errors.New("start_date: missing; the first sync into a destination needs one: set --start-date (e.g. 2024-01-01 or 01/31/2024) or start_date in the config file (later syncs take it from the destination)")

// StartTime parses and validates the start date; zero when none is set (later syncs take each
// table's from the destination).
func (c Config) StartTime(now time.Time) (time.Time, error) {
	if strings.TrimSpace(c.StartDate) == "" {
		return time.Time{}, nil
	}
	return ParseStartDate(c.StartDate, now)
}

// ParseStartDate accepts MM/DD/YYYY (the vendor form), YYYY-MM-DD and RFC 3339. Dates are
// midnight UTC. Anything else, or a date in the future, is an error.
func ParseStartDate(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	var t time.Time
	var err error
	switch {
	case strings.Contains(s, "/"):
		t, err = time.Parse("01/02/2006", s)
		if err != nil {
			return time.Time{}, fmt.Errorf("start_date: %q is not a valid MM/DD/YYYY date (month first, four-digit year)", s)
		}
	case strings.Contains(s, "T"):
		t, err = time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("start_date: %q is not a valid RFC 3339 time (e.g. 2024-01-31T00:00:00Z)", s)
		}
	default:
		t, err = time.Parse("2006-01-02", s)
		if err != nil {
			return time.Time{}, fmt.Errorf("start_date: %q is not a date; use YYYY-MM-DD, MM/DD/YYYY or RFC 3339", s)
		}
	}
	t = t.UTC()
	if t.After(now) {
		return time.Time{}, fmt.Errorf("start_date: %s is in the future", t.Format(time.RFC3339))
	}
	if t.Year() < 1970 {
		return time.Time{}, fmt.Errorf("start_date: %s is before 1970", t.Format("2006-01-02"))
	}
	return t, nil
}
