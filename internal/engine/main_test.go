package engine

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test of the package must leave no goroutine behind: a stream's reader, writer or
// slice still running after Run returned is a bug even when the rows came out right.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
