package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/crmsync/crmsync/internal/sources"
)

// aboutInfo is --about's answer, in the shape Meltano's SDK taps give: settings are the JSON
// Schema of config.json, secrets marked "secret" and "writeOnly".
type aboutInfo struct {
	Name         string         `json:"name"`
	Description  string         `json:"description"`
	Version      string         `json:"version"`
	Capabilities []string       `json:"capabilities"`
	Sources      []string       `json:"sources"`
	Settings     map[string]any `json:"settings"`
}

// settingsSchema is the JSON Schema of config.json.
func settingsSchema(ss []setting) map[string]any {
	props := map[string]any{}
	var required []string
	for _, s := range ss {
		p := map[string]any{"type": []string{s.Type}, "description": s.Description}
		if s.Sensitive {
			p["secret"] = true
			p["writeOnly"] = true
		}
		props[s.Name] = p
		if s.Required {
			required = append(required, s.Name)
		}
	}
	return map[string]any{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

func about() aboutInfo {
	return aboutInfo{
		Name:         "tap-crmsync",
		Description:  "Singer tap for CRMs (" + strings.Join(sources.Names(), ", ") + ") by crmsync",
		Version:      version,
		Capabilities: []string{"catalog", "discover", "state", "properties", "about", "activate-version"},
		Sources:      sources.Names(),
		Settings:     settingsSchema(settings()),
	}
}

func writeAbout(w io.Writer, format string) error {
	a := about()
	switch format {
	case "json", "":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	case "markdown":
		var b strings.Builder
		fmt.Fprintf(&b, "# `%s`\n\n%s\n\nVersion: %s\n\n## Capabilities\n\n", a.Name, a.Description, a.Version)
		for _, c := range a.Capabilities {
			fmt.Fprintf(&b, "* `%s`\n", c)
		}
		b.WriteString("\n## Settings\n\n| Setting | Required | Default | Description |\n|:--|:--:|:--:|:--|\n")
		for _, s := range settings() {
			desc := s.Description
			if s.Sensitive {
				desc += " (secret)"
			}
			fmt.Fprintf(&b, "| %s | %v | None | %s |\n", s.Name, s.Required, desc)
		}
		_, err := io.WriteString(w, b.String())
		return err
	default:
		return usageError{fmt.Errorf("--format %q: use json or markdown", format)}
	}
}
