package coppersim

import (
	"bytes"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/simulator/simfault/simfaulttest"
)

func config500k() Config {
	return Config{Seed: 1, Epoch: testEpoch, People: 100000, Companies: 100000, Activities: 300000, Users: 20}
}

func authed(req *http.Request, s *Server) *http.Request {
	req.Header.Set("X-PW-AccessToken", s.cfg.APIKey)
	req.Header.Set("X-PW-Application", "developer_api")
	req.Header.Set("X-PW-UserEmail", s.cfg.UserEmail)
	return req
}

// servePage runs one search through ServeHTTP (no network).
func servePage(tb testing.TB, s *Server, entity, body string) *simfaulttest.DiscardWriter {
	req := authed(must(http.NewRequest("POST", "/developer_api/v1/"+entity+"/search", bytes.NewReader([]byte(body)))), s)
	w := &simfaulttest.DiscardWriter{}
	s.ServeHTTP(w, req)
	if w.Code != 200 {
		tb.Fatalf("status %d", w.Code)
	}
	return w
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var bench500k *Server

func server500k(tb testing.TB) *Server {
	if bench500k == nil {
		bench500k = must(New(config500k()))
	}
	return bench500k
}

// BenchmarkServePeoplePage: one 200-record page of an incremental people
// read (sort_by date_modified + modified window) out of 100,000 people.
func BenchmarkServePeoplePage(b *testing.B) {
	s := server500k(b)
	lo, hi := s.start, s.end
	bodies := make([]string, 400)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"page_number":%d,"page_size":200,"sort_by":"date_modified","sort_direction":"asc","minimum_modified_date":%d,"maximum_modified_date":%d}`, i+1, lo, hi)
	}
	b.ReportAllocs()
	b.ResetTimer()
	bytesOut := 0
	for i := 0; b.Loop(); i++ {
		bytesOut += servePage(b, s, "people", bodies[i%len(bodies)]).N
	}
	b.ReportMetric(float64(bytesOut)/float64(b.N), "bytes/page")
}

func BenchmarkServeActivitiesPage(b *testing.B) {
	s := server500k(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		servePage(b, s, "activities", fmt.Sprintf(`{"page_number":%d,"page_size":200,"minimum_activity_date":%d}`, i%400+1, s.start))
	}
}

func BenchmarkServeCompaniesDefaultSort(b *testing.B) {
	s := server500k(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		servePage(b, s, "companies", fmt.Sprintf(`{"page_number":%d,"page_size":200}`, i%400+1))
	}
}

func BenchmarkBuild500k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		must(New(config500k()))
	}
}

// TestMemory500k: 500,000 records must stay well under 60 MB of heap and
// build in a couple of seconds.
func TestMemory500k(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	before := simfaulttest.HeapInUse()
	start := time.Now()
	s := must(New(config500k()))
	build := time.Since(start)
	// Serve some pages so the hot-path indexes exist (they are built eagerly).
	servePage(t, s, "people", `{"page_size":200,"sort_by":"date_modified","page_number":3}`)
	servePage(t, s, "activities", `{"page_size":200,"page_number":3}`)
	after := simfaulttest.HeapInUse()
	runtime.KeepAlive(s)
	used := int64(after) - int64(before)
	per := float64(used) / 500000
	t.Logf("500k records: build %v, heap %.1f MB, %.1f bytes/record", build, float64(used)/(1<<20), per)
	if used > 60<<20 {
		t.Fatalf("heap %d MB > 60 MB", used>>20)
	}
	if per > 100 {
		t.Fatalf("%.1f bytes/record > 100", per)
	}
	if build > 5*time.Second {
		t.Fatalf("build took %v", build)
	}
}
