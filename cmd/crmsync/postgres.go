package main

import (
	"context"

	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/destination/postgres"
)

// openPostgres opens a PostgreSQL destination. An empty schema means the source's name, so
// each source gets its own tables. The returned name, for logs and the report, is the URL
// without its password.
func openPostgres(ctx context.Context, dest, schema, sourceName string) (destination.Destination, string, error) {
	if schema == "" {
		schema = sourceName
	}
	name := postgres.Redact(dest)
	d, err := postgres.Open(ctx, dest, schema)
	if err != nil {
		return nil, name, err // a nil *Destination must not become a non-nil interface
	}
	return d, name, nil
}
