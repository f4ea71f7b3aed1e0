package main

import (
	"context"
	"errors"

	"github.com/crmsync/crmsync/internal/destination"
)

// openPostgres opens a PostgreSQL destination.
func openPostgres(ctx context.Context, dest, schema, sourceName string) (destination.Destination, string, error) {
	return nil, "", usageError{errors.New("dest: the PostgreSQL destination is not available in this build yet")}
}
