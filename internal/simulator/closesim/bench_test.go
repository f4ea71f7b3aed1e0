package closesim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

// A 300k-activity dataset (plus leads/users to reference) must stay small:
// only compact metadata and sorted indexes are resident.
func TestHeap300kActivities(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 300k dataset")
	}
	before := simfaulttest.HeapInUse()
	s, err := New(Config{Seed: 1, APIKey: "k", Epoch: testEpoch, Activities: 300_000, Leads: 1000, Users: 50, CustomFields: 40})
	if err != nil {
		t.Fatal(err)
	}
	// Serve a few filtered pages so the result cache holds something too.
	for _, q := range []string{"date_created__gte=2023-01-01&_skip=100", "_order_by=date_created&_skip=5000", "_skip=250000"} {
		w := &simfaulttest.DiscardWriter{}
		req := httptest.NewRequest("GET", "/api/v1/activity/?"+q, nil)
		req.SetBasicAuth("k", "")
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("%s: %d", q, w.Code)
		}
	}
	after := simfaulttest.HeapInUse()
	runtime.KeepAlive(s)
	used := int64(after) - int64(before)
	t.Logf("heap for 301,090 records: %.1f MB (%.1f bytes/record)", float64(used)/(1<<20), float64(used)/301_090)
	if used > 50<<20 {
		t.Fatalf("heap %d MB > 50 MB", used>>20)
	}
}

func BenchmarkServeActivitiesPage(b *testing.B) {
	s, err := New(Config{Seed: 1, APIKey: "k", Epoch: testEpoch, Leads: 100_000, Activities: 300_000, Users: 50, CustomFields: 60})
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/api/v1/activity/?date_created__gte=2023-01-01T00:00:00&_order_by=date_created&_skip=%d&_limit=100", i*1000), nil)
		reqs[i].SetBasicAuth("k", "")
	}
	w := &simfaulttest.DiscardWriter{}
	b.ReportAllocs()
	b.ResetTimer()
	bytes := 0
	for i := 0; b.Loop(); i++ {
		w.N = 0
		s.ServeHTTP(w, reqs[i%len(reqs)])
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		bytes += w.N
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/page")
}

func BenchmarkServeLeadsPage(b *testing.B) {
	s, err := New(Config{Seed: 1, APIKey: "k", Epoch: testEpoch, Leads: 100_000, Users: 50, CustomFields: 60})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", `/api/v1/lead/?_limit=200&_skip=4000&query=sort%3Adate_updated`, nil)
	req.SetBasicAuth("k", "")
	w := &simfaulttest.DiscardWriter{}
	b.ReportAllocs()
	for b.Loop() {
		w.N = 0
		s.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
	b.ReportMetric(float64(w.N), "bytes/page")
}

// BenchmarkBuild1M builds a 1,000,000-record dataset and reports its
// resident size.
func BenchmarkBuild1M(b *testing.B) {
	cfg := Config{Seed: 1, APIKey: "k", Epoch: testEpoch, Leads: 200_000, Activities: 600_000, Tasks: 150_000,
		Users: 100, CustomFields: 100, Events: 49_800}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := simfaulttest.HeapInUse()
		b.StartTimer()
		t0 := time.Now()
		s, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		b.StopTimer()
		used := simfaulttest.HeapInUse() - before
		runtime.KeepAlive(s)
		b.ReportMetric(float64(used)/1e6, "bytes/record")
		b.ReportMetric(d.Seconds(), "s/build")
		b.StartTimer()
	}
}
