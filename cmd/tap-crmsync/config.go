package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/sources"
)

// tapConfig is config.json.
type tapConfig struct {
	Source            string
	Desc              connector.Descriptor
	Credentials       map[string]string
	StartDate         string
	BaseURL           string
	RequestsPerSecond float64
}

// setting is one config.json key, as --about describes it.
type setting struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Required    bool   `json:"required,omitempty"`
	Sensitive   bool   `json:"sensitive,omitempty"`
}

// credentialHelp describes the credentials people know by name.
var credentialHelp = map[string]string{
	"api_key":    "the API key",
	"user_email": "the email of the user who owns the API key",
}

// settings lists the config.json keys: the common ones, then every source's credentials.
func settings() []setting {
	out := []setting{
		{Name: "source", Type: "string", Required: true, Description: "the CRM: " + strings.Join(sources.Names(), " or ")},
	}
	seen := map[string]bool{}
	for _, d := range sources.All() {
		for _, c := range d.Credentials {
			if seen[c.Key] {
				continue
			}
			seen[c.Key] = true
			var used []string
			for _, e := range sources.All() {
				if slices.ContainsFunc(e.Credentials, func(x connector.Credential) bool { return x.Key == c.Key }) {
					used = append(used, e.Title)
				}
			}
			desc, ok := credentialHelp[c.Key]
			if !ok {
				desc = strings.ReplaceAll(c.Key, "_", " ")
			}
			out = append(out, setting{Name: c.Key, Type: "string", Sensitive: c.Key != "user_email",
				Description: fmt.Sprintf("%s (%s)", desc, strings.Join(used, ", "))})
		}
	}
	return append(out,
		setting{Name: "start_date", Type: "string", Description: "the earliest data of a first sync: YYYY-MM-DD, MM/DD/YYYY or RFC 3339 (required until every selected stream has a bookmark in the state)"},
		setting{Name: "base_url", Type: "string", Description: "the API's scheme and host instead of the real API's (a proxy or a simulator)"},
		setting{Name: "requests_per_second", Type: "number", Description: "a ceiling on requests per second; negative: no pacing beyond what the API announces"},
	)
}

// readConfig reads and checks config.json. No message it returns holds a value of the file:
// the API key must never reach the logs.
func readConfig(path string) (tapConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return tapConfig{}, fmt.Errorf("config: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return tapConfig{}, fmt.Errorf("config %s: not a JSON object", path)
	}
	known := map[string]setting{}
	var names []string
	for _, s := range settings() {
		known[s.Name] = s
		names = append(names, s.Name)
	}
	var unknown []string
	for k := range raw {
		if _, ok := known[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return tapConfig{}, fmt.Errorf("config %s: unknown key(s) %s; known keys: %s", path, quoted(unknown), strings.Join(names, ", "))
	}
	cfg := tapConfig{Credentials: map[string]string{}}
	for k, v := range raw {
		if string(v) == "null" {
			continue
		}
		s := known[k]
		if s.Type == "number" {
			var f float64
			if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return tapConfig{}, fmt.Errorf("config %s: %s must be a number", path, k)
			}
			cfg.RequestsPerSecond = f
			continue
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return tapConfig{}, fmt.Errorf("config %s: %s must be a string", path, k)
		}
		switch k {
		case "source":
			cfg.Source = strings.TrimSpace(str)
		case "start_date":
			cfg.StartDate = str
		case "base_url":
			cfg.BaseURL = strings.TrimSpace(str)
		default:
			cfg.Credentials[k] = str
		}
	}
	if cfg.Desc, err = sources.Lookup(cfg.Source); err != nil {
		return tapConfig{}, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
