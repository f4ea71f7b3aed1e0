package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/destination"
	"github.com/crmsync/crmsync/internal/record"
)

// BenchmarkConvertBatch measures turning decoded API records into typed rows (the engine's
// share of a sync's CPU), for a batch of 2,000 Close-activity-like records.
func BenchmarkConvertBatch(b *testing.B) {
	s := catalog.Stream{Name: "activities", PrimaryKey: []string{"id"}, Method: catalog.AppendOnly, VersionField: "date_updated",
		Columns: catalog.Cols("id:str", "_type:str", "lead_id:str", "date_created:ts", "date_updated:ts", "duration:int", "note:str", "users:json", "has_recording:bool")}
	cols := append(append([]catalog.Column{}, s.Columns...), destination.MetadataColumns...)
	recs := make([]record.Record, 2000)
	for i := range recs {
		body := fmt.Sprintf(`[{"id": "acti_%d", "_type": "Call", "lead_id": "lead_%d", "date_created": "2024-06-04T08:31:44.512000+00:00",
			"date_updated": "2024-06-04T08:31:44+00:00", "duration": %d, "note": "called back — Jörg", "users": ["user_1"], "has_recording": true}]`, i, i/3, i)
		r, err := record.DecodeArray([]byte(body))
		if err != nil {
			b.Fatal(err)
		}
		recs[i] = r[0]
	}
	r := &streamRun{stream: s, started: time.Now(), table: destination.Table{Source: "close", Stream: s}}
	r.setColumns(cols)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := r.batch(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
