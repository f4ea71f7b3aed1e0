package sources

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/connector"
	"github.com/crmsync/crmsync/internal/e2e"
	"github.com/crmsync/crmsync/internal/fakeclock"
)

// TestAcceptance is the suite every registered source passes, on its own simulator at a
// small size: a full sync of every table equals the simulated account; the account changes
// the way the demo changes it and an incremental sync reads exactly that; the credentials are
// checked, a wrong one fails without being printed, and none is stored.
func TestAcceptance(t *testing.T) {
	for _, d := range All() {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			sizes := map[string]int{}
			for _, s := range d.Simulator.Sizes {
				sizes[s.Table] = min(s.Default, 300)
			}
			clock := fakeclock.New(time.Now().UTC())
			l := e2e.NewLocal(t, d, e2e.Options{Clock: clock, SimConfig: connector.SimConfig{Sizes: sizes}})
			if err := l.Source(t).Check(context.Background()); err != nil {
				t.Fatalf("check with the simulator's credentials: %v", err)
			}
			for _, c := range d.Credentials {
				wrong := "wrong-" + c.Key + "-leakcheck"
				err := l.Source(t, map[string]string{c.Key: wrong}).Check(context.Background())
				if err == nil {
					t.Errorf("check with a wrong %s succeeded", c.Key)
				} else if strings.Contains(err.Error(), wrong) {
					t.Errorf("check with a wrong %s printed it: %v", c.Key, err)
				}
			}

			rep := l.Sync()
			if len(rep.Streams) != len(d.Catalog().Streams) {
				t.Fatalf("synced %d tables, want all %d", len(rep.Streams), len(d.Catalog().Streams))
			}
			l.Assert()

			at := clock.Now()
			updated := l.Sim.UpdateRecords(d.Simulator.Updated, 3, at)
			added := l.Sim.AddRecords(d.Simulator.Added, 2, at)
			l.Settle()
			rep = l.Sync()
			l.Assert()
			if n := rep.Stream(d.Simulator.Updated).Rows; n < int64(len(updated)) {
				t.Errorf("%s: the incremental sync read %d rows, fewer than the %d changed", d.Simulator.Updated, n, len(updated))
			}
			if n := rep.Stream(d.Simulator.Added).Rows; n < int64(len(added)) {
				t.Errorf("%s: the incremental sync read %d rows, fewer than the %d added", d.Simulator.Added, n, len(added))
			}
			l.Dst.Close()
			// The key is a secret; an owner's email may be stored as user data the API returns.
			e2e.AssertNoSecrets(t, l.Path, l.Credentials["api_key"])
		})
	}
}
