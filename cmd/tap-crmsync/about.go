package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/crmsync/crmsync/internal/sources"
)

// aboutInfo is --about's answer, in the shape Meltano's SDK taps give.
type aboutInfo struct {
	Name         string    `json:"name"`
	Description  string    `json:"description"`
	Version      string    `json:"version"`
	Capabilities []string  `json:"capabilities"`
	Sources      []string  `json:"sources"`
	Settings     []setting `json:"settings"`
}

func about() aboutInfo {
	return aboutInfo{
		Name:         "tap-crmsync",
		Description:  "Singer tap for CRMs (" + strings.Join(sources.Names(), ", ") + ") by crmsync",
		Version:      version,
		Capabilities: []string{"catalog", "discover", "state", "properties", "about", "activate-version"},
		Sources:      sources.Names(),
		Settings:     settings(),
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
		fmt.Fprintf(&b, "# %s\n\n%s\n\nVersion: %s\n\n## Capabilities\n\n", a.Name, a.Description, a.Version)
		for _, c := range a.Capabilities {
			fmt.Fprintf(&b, "* `%s`\n", c)
		}
		b.WriteString("\n## Settings\n\n| Setting | Type | Required | Sensitive | Description |\n|:--|:--|:--|:--|:--|\n")
		for _, s := range a.Settings {
			fmt.Fprintf(&b, "| %s | %s | %v | %v | %s |\n", s.Name, s.Type, s.Required, s.Sensitive, s.Description)
		}
		_, err := io.WriteString(w, b.String())
		return err
	default:
		return usageError{fmt.Errorf("--format %q: use json or markdown", format)}
	}
}
