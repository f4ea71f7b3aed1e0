package copper

import (
	"context"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/source"
)

// SchemaVersion is the version of the Copper table set (the vendor integration's v2).
const SchemaVersion = 2

var c = catalog.Cols

// Shared column groups of the record entities.
var (
	personName = []string{"name:str", "prefix:str", "first_name:str", "middle_name:str", "last_name:str", "suffix:str"}
	contactish = []string{"address:json", "assignee_id:int", "details:str", "phone_numbers:json", "socials:json", "tags:json", "websites:json", "custom_fields:json"}
	modified   = []string{"date_created:ts", "date_modified:ts"}
)

func cols(groups ...[]string) []catalog.Column {
	var all []string
	for _, g := range groups {
		all = append(all, g...)
	}
	return c(all...)
}

type table = source.Table[*Source]

// full is a table read whole on every sync.
func full(name string, read source.Reader[*Source], desc string, columns []catalog.Column) table {
	return table{Read: read, Stream: catalog.Stream{Name: name, PrimaryKey: []string{"id"}, Method: catalog.FullTable, Description: desc, Columns: columns}}
}

// list reads a full table with one GET of path.
func list(path string) source.Reader[*Source] {
	return func(s *Source, ctx context.Context, _ source.Window, out source.Emitter) error {
		return s.readList(ctx, path, out)
	}
}

// cdc is a table read through its search endpoint (POST /<name>/search) by modification time.
func cdc(name, desc string, columns []catalog.Column) table {
	read := func(s *Source, ctx context.Context, w source.Window, out source.Emitter) error {
		return s.readModified(ctx, name, w, out)
	}
	return table{Read: read, Stream: catalog.Stream{Name: name, PrimaryKey: []string{"id"}, Method: catalog.Incremental,
		CursorField: "date_modified", ServerFiltered: true, Description: desc, Columns: columns}}
}

// tables are the 17 Copper tables, each with its reader of the spec. Custom field values stay in `custom_fields` as
// JSON arrays of {custom_field_definition_id, value}, and each field also gets a named, typed column (customfields.go).
var tables = source.Tables[*Source]{Source: "copper", SchemaVersion: SchemaVersion, Deletes: deletes, CustomFieldKinds: customFieldKinds, List: withCustomFields([]table{
	full("account", (*Source).readAccount, "The Copper account itself (one row).", c("id:int", "name:str", "primary_timezone:str", "settings:json", "logo_mini_url:str")),
	func() table {
		s := cdc("activities_search", "Activities (notes, calls, meetings, emails, custom types, system changes). Copper cannot filter activities by "+
			"modification time: crmsync reads them by activity date from the bookmark minus a 24-hour window, newest first, and upserts by id.",
			activityColumns())
		s.Lookback = 24 * time.Hour
		s.Read = (*Source).readActivities
		return s
	}(),
	cdc("companies", "Companies.", cols(c0("id:int", "name:str"), contactish, c0("contact_type_id:int", "email_domain:str", "primary_contact_id:int", "interaction_count:int"), modified)),
	full("contact_types", list("/contact_types"), "Contact types.", c("id:int", "name:str")),
	full("custom_field_definitions", list("/custom_field_definitions"), "The account's custom field definitions: decode the `custom_fields` arrays of the other tables with them.",
		c("id:int", "name:str", "canonical_name:str", "data_type:str", "available_on:json", "is_filterable:bool", "currency:str", "options:json")),
	full("customer_sources", list("/customer_sources"), "Customer sources.", c("id:int", "name:str")),
	full("lead_statuses", list("/lead_statuses"), "Lead statuses. Skipped (kept as they were) when Leads are disabled on the account, which Copper answers with 403.",
		c("id:int", "name:str", "order:int", "is_default:bool")),
	cdc("leads", "Leads, including converted ones (`include_converted_leads`, which Copper's search leaves out by default).",
		cols(c0("id:int"), personName, contactish, c0("company_name:str", "customer_source_id:int", "email:json", "interaction_count:int", "monetary_unit:str",
			"monetary_value:num", "converted_unit:str", "converted_value:num", "status:str", "status_id:int", "title:str", "date_last_contacted:ts",
			"converted_opportunity_id:int", "converted_contact_id:int", "converted_at:ts"), modified)),
	full("loss_reasons", list("/loss_reasons"), "Loss reasons for opportunities.", c("id:int", "name:str")),
	cdc("opportunities", "Opportunities.",
		catalog.Describe(c("id:int", "name:str", "assignee_id:int", "close_date:date", "company_id:int", "company_name:str", "customer_source_id:int", "details:str",
			"loss_reason_id:int", "pipeline_id:int", "pipeline_stage_id:int", "primary_contact_id:int", "priority:str", "status:str", "tags:json",
			"interaction_count:int", "monetary_unit:str", "monetary_value:num", "converted_unit:str", "converted_value:num", "win_probability:num",
			"date_stage_changed:ts", "date_last_contacted:ts", "leads_converted_from:json", "date_lead_created:ts", "custom_fields:json",
			"pipeline_type:str", "pipeline_is_revenue:bool", "date_created:ts", "date_modified:ts"),
			"close_date", "the expected close day; Copper sends M/D/YYYY text (\"11/19/2018\")")),
	cdc("people", "People (contacts).", cols(c0("id:int"), personName, contactish, c0("company_id:int", "company_name:str", "contact_type_id:int",
		"emails:json", "title:str", "date_last_contacted:ts", "interaction_count:int", "leads_converted_from:json", "date_lead_created:ts"), modified)),
	full("pipeline_stages", list("/pipeline_stages"), "The stages of every pipeline (read from `GET /pipeline_stages`, the documented endpoint).",
		c("id:int", "name:str", "pipeline_id:int", "win_probability:num")), // number, as in opportunities: the docs say 0–100, a number here
	full("pipelines", list("/pipelines"), "Pipelines, with their stages as JSON.", c("id:int", "name:str", "type:str", "is_revenue:bool", "stages:json")),
	cdc("projects", "Projects.", c("id:int", "name:str", "related_resource:json", "assignee_id:int", "status:str", "details:str", "tags:json",
		"custom_fields:json", "date_created:ts", "date_modified:ts", "company_id:int", "company_name:str")), // the last two: tap-copper's schema
	{Read: list("/tags"), Stream: catalog.Stream{Name: "tags", PrimaryKey: []string{"name"}, Method: catalog.FullTable, Description: "Tags, with how often each is used.",
		Columns: c("name:str", "count:int", "count_people:int", "count_leads:int", "count_companies:int", "count_opportunities:int", "count_projects:int", "count_tasks:int")}},
	cdc("tasks", "Tasks.", c("id:int", "name:str", "related_resource:json", "assignee_id:int", "due_date:ts", "reminder_date:ts", "completed_date:ts",
		"priority:str", "status:str", "details:str", "tags:json", "custom_fields:json", "custom_activity_type_id:int", "date_created:ts", "date_modified:ts")),
	full("users", (*Source).readUsers, "Users of the account.", c("id:int", "name:str", "email:str", "groups:json")),
})}

// withCustomFields marks the tables whose records carry custom fields (an available_on kind).
func withCustomFields(ts []table) []table {
	for i := range ts {
		for _, name := range customFieldStreams {
			if ts[i].Name == name {
				ts[i].CustomFields = true
			}
		}
	}
	return ts
}

// activityColumns are the activities' columns. old_value and new_value are a stage object in
// stage changes and a plain string ("Open") in status changes: JSON documents either way.
func activityColumns() []catalog.Column {
	cols := c("id:int", "parent:json", "type:json", "user_id:int", "details:str", "activity_date:ts", "old_value:json", "new_value:json",
		"date_created:ts", "date_modified:ts")
	for _, f := range []string{"old_value", "new_value"} {
		cols = catalog.Describe(cols, f, "a JSON document: an object ({id, name} of a stage) or a JSON string (\"Open\")")
	}
	return cols
}

// c0 keeps specs as a plain group for cols.
func c0(specs ...string) []string { return specs }

// Catalog is the Copper catalog.
func Catalog() catalog.Catalog {
	return tables.Catalog()
}
