// Package sources is the registry of CRM sources: every command, the config, the demo, the
// bench and the end-to-end tests find sources here. A new source is one line in All.
package sources

import (
	"fmt"
	"strings"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/source/closecrm"
	"github.com/crmsync/crmsync/internal/source/copper"
)

// All lists every source, in the order docs and messages show them.
func All() []connector.Descriptor {
	return []connector.Descriptor{
		closecrm.Descriptor,
		copper.Descriptor,
	}
}

// Names lists the source names.
func Names() []string {
	var names []string
	for _, d := range All() {
		names = append(names, d.Name)
	}
	return names
}

// Lookup finds a source by name; the error lists the known ones.
func Lookup(name string) (connector.Descriptor, error) {
	for _, d := range All() {
		if d.Name == name {
			return d, nil
		}
	}
	known := strings.Join(Names(), " or ")
	if name == "" {
		return connector.Descriptor{}, fmt.Errorf("source: missing; set --source (%s) or source in the config file", known)
	}
	return connector.Descriptor{}, fmt.Errorf("source: %q is not a known source (%s)", name, known)
}
