package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crmsync/crmsync/internal/e2e"
)

// TestDemoShowsCustomFieldColumns runs the demo twice (a first and an incremental sync) and
// runs the queries the README and the demo's last line show: custom fields are named columns
// holding labels.
func TestDemoShowsCustomFieldColumns(t *testing.T) {
	dest := "sqlite:" + filepath.Join(t.TempDir(), "demo.db")
	args := []string{"demo", "--dest", dest, "--close-leads", "200", "--close-activities", "300", "--close-tasks", "100", "--close-event-log", "100",
		"--copper-people", "300", "--copper-companies", "100", "--copper-leads", "100", "--copper-opportunities", "100", "--copper-activities-search", "200",
		"--copper-tasks", "100", "--copper-projects", "50"}
	var out []byte
	for range 2 {
		var err error
		if out, err = exec.Command(binary, args...).CombinedOutput(); err != nil {
			t.Fatalf("demo: %v\n%s", err, out)
		}
	}
	if !strings.Contains(string(out), "SELECT name, custom_industry FROM close_leads LIMIT 5") {
		t.Errorf("the demo does not show its custom-field query:\n%s", out)
	}
	db := e2e.OpenReplica(t, dest, "").DB
	rows, err := db.Query(`SELECT name, custom_industry FROM close_leads LIMIT 5`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name string
		var industry *string
		if err := rows.Scan(&name, &industry); err != nil {
			t.Fatal(err)
		}
		if industry != nil && !slices.Contains([]string{"Logistics", "Manufacturing", "Retail", "Software"}, *industry) {
			t.Errorf("lead %s: industry %q", name, *industry)
		}
		n++
	}
	rows.Close()
	if n != 5 {
		t.Errorf("%d leads", n)
	}
	rows, err = db.Query(`SELECT custom_region, count(*) FROM copper_people GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var regions []string
	for rows.Next() {
		var region *string
		var count int
		if err := rows.Scan(&region, &count); err != nil {
			t.Fatal(err)
		}
		if region != nil {
			regions = append(regions, *region)
		}
	}
	slices.Sort(regions)
	if !slices.Equal(regions, []string{"AMER", "APAC", "EMEA"}) {
		t.Errorf("copper_people regions = %v, want the option labels", regions)
	}
}
