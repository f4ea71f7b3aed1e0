package closecrm

import (
	"strings"
	"time"

	"github.com/crmsync/crmsync/internal/catalog"
	"github.com/crmsync/crmsync/internal/source"
)

// SchemaVersion is the version of the Close table set (the vendor integration's v1).
const SchemaVersion = 1

var c = catalog.Cols

// tables are the Close tables, each with its reader of the spec. The account's custom fields
// (`custom.cf_…` on leads, contacts, opportunities and custom activities) become named,
// typed columns (customfields.go); other fields the API sends beyond these (activity fields of
// rarer types) arrive as schema drift and become extra columns.
var tables = source.Tables[*Source]{Source: "close", SchemaVersion: SchemaVersion, Deletes: deletes, CustomFieldKinds: customFieldKinds, List: []source.Table[*Source]{
	{Read: (*Source).readActivities, Stream: catalog.Stream{
		Name: "activities", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.AppendOnly, CustomFields: true,
		CursorField: "date_created", VersionField: "date_updated", Lookback: 24 * time.Hour,
		Description: "Every type of activity on a lead or contact (calls, emails, notes, SMS, meetings, status changes, …) in one table, with `_type`. " +
			"Close cannot filter activities by update time, so each sync re-reads the 24 hours before the bookmark; each new version (id, date_updated) is appended once.",
		Columns: c("id:str", "_type:str", "organization_id:str", "lead_id:str", "contact_id:str", "user_id:str", "user_name:str", "users:json",
			"created_by:str", "created_by_name:str", "updated_by:str", "updated_by_name:str", "date_created:ts", "date_updated:ts", "activity_at:ts",
			"direction:str", "status:str", "disposition:str", "duration:int", "call_method:str", "source:str", "phone:str",
			"local_phone:str", "local_phone_formatted:str", "local_country_iso:str", "remote_phone:str", "remote_phone_formatted:str", "remote_country_iso:str",
			"date_answered:ts", "note:str", "note_html:str", "has_recording:bool", "recording_url:str", "recording_duration:int", "voicemail_url:str", "voicemail_duration:int",
			"cost:str", "subject:str", "sender:str", "to:json", "cc:json", "bcc:json", "body_text:str", "body_html:str", "body_preview:str",
			"attachments:json", "envelope:json", "thread_id:str", "email_account_id:str", "template_id:str", "template_name:str", "opens:json",
			"has_reply:bool", "date_sent:ts", "date_scheduled:ts", "text:str", "title:str", "location:str", "starts_at:ts", "ends_at:ts", "attendees:json",
			"old_status_id:str", "old_status_label:str", "new_status_id:str", "new_status_label:str", "opportunity_id:str",
			"old_status_type:str", "new_status_type:str", "old_pipeline_id:str", "old_pipeline_name:str", "new_pipeline_id:str", "new_pipeline_name:str",
			"opportunity_value:int", "opportunity_value_currency:str", "opportunity_value_formatted:str", "opportunity_value_period:str",
			"opportunity_confidence:int", "opportunity_date_won:date", "task_id:str", "task_text:str", "task_assigned_to:str", "task_assigned_to_name:str",
			// Call
			"recording_expires_at:ts", "is_forwarded:bool", "forwarded_to:str", "is_joinable:bool", "is_to_group_number:bool",
			"transferred_from:str", "transferred_from_user_id:str", "transferred_to:str", "transferred_to_user_id:str", "coach_legs:json",
			"dialer_id:str", "dialer_saved_search_id:str", "outcome_id:str",
			// Email and SMS
			"body_text_quoted:json", "body_html_quoted:json", "message_ids:json", "references:json", "in_reply_to_id:str",
			"opens_summary:str", "need_smtp_credentials:bool", "send_attempts:json", "send_as_id:str", "bulk_email_action_id:str",
			"followup_sequence_id:str", "followup_sequence_delay:int", "followup_sequence_add_cc_bcc:bool", "error_message:str",
			"sequence_id:str", "sequence_name:str", "sequence_subscription_id:str",
			// EmailThread
			"latest_normalized_subject:str", "n_emails:int", "participants:json", "latest_emails:json",
			// Note
			"note_mentions:json", "pinned_at:ts",
			// Meeting
			"actual_duration:int", "is_recurring:bool", "calendar_event_uids:json", "calendar_event_link:str", "connected_account_id:str",
			"conference_links:json", "integrations:json", "attached_call_ids:json", "user_note:str", "user_note_html:str",
			"user_note_mentions:json", "summary:str",
			// Created, custom activities
			"import_id:str", "custom_activity_type_id:str"),
	}},
	{Read: (*Source).readCustomFields, Stream: catalog.Stream{
		Name: "custom_fields", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_updated",
		Description: "Custom field definitions of every object type; `object_type` (added by crmsync) says which endpoint the field came from " +
			"(lead, contact, opportunity, activity, custom_object_type, shared). No server-side date filter exists: all are read, then filtered on date_updated.",
		Columns: c("id:str", "object_type:str", "name:str", "description:str", "type:str", "choices:json", "accepts_multiple_values:bool", "is_shared:bool",
			"editable_with_roles:json", "referenced_custom_type_id:str", "back_reference_is_visible:bool", "always_visible:bool", "enrichment_enabled:bool",
			"enrichment_options:json", "custom_activity_type_id:str", "custom_object_type_id:str", "required:bool", "associations:json",
			"created_by:str", "updated_by:str", "organization_id:str", "date_created:ts", "date_updated:ts"),
	}},
	{Read: (*Source).readEvents, Stream: catalog.Stream{
		Name: "event_log", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.Incremental, CursorField: "date_updated",
		MaxHistory: 30 * 24 * time.Hour, Settle: 5 * time.Minute,
		Description: "Events in the account (creations, updates, deletions, emails sent, …). Close keeps 30 days of events: a sync never asks for more, " +
			"and says so when the start date or bookmark is older. Events can appear up to a few minutes late, so the bookmark stays 5 minutes behind the sync start.",
		Columns: c("id:str", "object_type:str", "object_id:str", "lead_id:str", "action:str", "organization_id:str", "user_id:str", "api_key_id:str",
			"request_id:str", "date_created:ts", "date_updated:ts", "changed_fields:json", "meta:json", "data:json", "previous_data:json"),
	}},
	{Read: (*Source).readLeads, Stream: catalog.Stream{
		Name: "leads", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.Incremental, CursorField: "date_updated", CustomFields: true,
		Description: "Leads (companies/organizations) with their contacts, addresses, opportunities and tasks as JSON; the deprecated `custom` object keeps the custom field values by field name.",
		Columns: c("id:str", "name:str", "display_name:str", "description:str", "url:str", "html_url:str", "status_id:str", "status_label:str",
			"organization_id:str", "created_by:str", "created_by_name:str", "updated_by:str", "updated_by_name:str", "date_created:ts", "date_updated:ts",
			"addresses:json", "contacts:json", "opportunities:json", "tasks:json", "integration_links:json", "custom:json",
			// Listed by Close's OpenAPI, not seen in list answers: shapes unknown, so JSON, which holds any value.
			"contact_ids:json", "source:json", "primary_email:json", "primary_phone:json", "contacts_summary:json",
			"primary_address_summary:json", "localtime:json", "recent_calls:json", "summaries:json"),
	}},
	{Read: (*Source).readTasks, Stream: catalog.Stream{
		Name: "tasks", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.Incremental, CursorField: "date_updated",
		Description: "Tasks of every type (lead, email follow-up, missed call, opportunity due, …): read with `_type=all`, since the API returns only lead tasks by default.",
		Columns: taskColumns(c("id:str", "_type:str", "organization_id:str", "lead_id:str", "lead_name:str", "contact_id:str", "contact_name:str", "assigned_to:str",
			"assigned_to_name:str", "text:str", "date:date+raw", "due_date:date+raw", "is_dateless:bool", "is_complete:bool", "view:str", "object_type:str", "object_id:str",
			"is_primary_lead_notification:bool", "deduplication_key:str", "priority:str", "resolution:str", "created_by:str", "created_by_name:str",
			"updated_by:str", "updated_by_name:str", "date_created:ts", "date_updated:ts", "email_id:str", "subject:str", "body_preview:str",
			"total_emails_count_in_thread:int", "opportunity_value:int", "opportunity_value_formatted:str", "opportunity_value_currency:str",
			// email types
			"emails:json", "cleared_followups:json",
			// call and SMS types
			"phone:str", "phone_formatted:str", "local_phone:str", "remote_phone:str", "remote_phone_formatted:str", "phone_number_description:str",
			"remote_phone_description:str", "recording_url:str", "voicemail_url:str", "voicemail_duration:int",
			// opportunity_due
			"opportunity_value_period:str", "opportunity_note:str")),
	}},
	{Read: (*Source).readContacts, Stream: catalog.Stream{
		Name: "contacts", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.Incremental, CursorField: "date_updated", CustomFields: true,
		ReadWith: &catalog.Parent{Stream: "leads", KeyField: "lead_id"},
		Description: "Contacts (people at a lead); an addition to the spec's Close tables. /contact/ has no date filter, so they are read from the leads " +
			"that embed them, through the lead listing filtered on date_updated (a contact's change moves its lead's date_updated): an idle sync costs one request, " +
			"not a walk of every contact.",
		Columns: c("id:str", "lead_id:str", "organization_id:str", "name:str", "display_name:str", "title:str", "emails:json", "phones:json",
			"urls:json", "integration_links:json", "created_by:str", "updated_by:str", "date_created:ts", "date_updated:ts",
			// Listed by Close's OpenAPI, not seen in list answers.
			"timezone:str", "recent_calls:json", "subscriptions:json"),
	}},
	{Read: (*Source).readOpportunities, Stream: catalog.Stream{
		Name: "opportunities", PrimaryKey: []string{"id"}, ServerFiltered: true, Method: catalog.Incremental, CursorField: "date_updated", CustomFields: true,
		Description: "Opportunities (deals) of every lead, from /opportunity/ filtered and sorted on date_updated; an addition to the spec's Close tables. " +
			"`value` and the other amounts are in cents.",
		Columns: c("id:str", "organization_id:str", "lead_id:str", "lead_name:str", "contact_id:str", "contact_name:str", "user_id:str", "user_name:str",
			"status_id:str", "status_label:str", "status_type:str", "status_display_name:str", "pipeline_id:str", "pipeline_name:str",
			"confidence:int", "value:int", "value_period:str", "value_currency:str", "value_formatted:str", "annualized_value:int",
			"expected_value:int", "annualized_expected_value:int", "date_won:date", "date_lost:ts", "note:str", "attachments:json",
			"integration_links:json", "created_by:str", "created_by_name:str", "updated_by:str", "updated_by_name:str",
			"date_created:ts", "date_updated:ts"),
	}},
	{Read: (*Source).readUsers, Stream: catalog.Stream{
		Name: "users", PrimaryKey: []string{"id"}, Method: catalog.Incremental, CursorField: "date_updated",
		Description: "Users of the Close organization. No server-side date filter exists: all are read, then filtered on date_updated.",
		Columns: c("id:str", "email:str", "first_name:str", "last_name:str", "image:str", "organizations:json", "date_created:ts", "date_updated:ts",
			"email_verified_at:ts", "google_profile_image_url:str", "last_used_timezone:str"),
	}},
}}

// taskColumns documents the type decision for the task day: Close sends `date` (and the
// deprecated `due_date`) as a day ("2024-06-10") or, for a task due at a time, as a date-time.
// The column is the day the task is due — the day as written, which Close sends in UTC — so
// every task sorts and filters by day; the API's text, with the time where there is one, is
// kept beside it.
func taskColumns(cols []catalog.Column) []catalog.Column {
	const day = "the day the task is due (a date-time's day as written); `%s_raw` keeps the API's text, with the time of a task due at a time"
	for _, f := range []string{"date", "due_date"} {
		cols = catalog.Describe(cols, f, strings.Replace(day, "%s", f, 1))
	}
	return cols
}

// Catalog is the Close catalog.
func Catalog() catalog.Catalog {
	return tables.Catalog()
}
