package simfault

import "time"

// CustomField describes a custom field definition a test adds to a simulated account.
type CustomField struct {
	Name string
	// Type is the CRM's own type name: Close "text", "number", "date", "datetime", "choices",
	// "user", "contact", …; Copper "String", "Dropdown", "MultiSelect", "Date", "Checkbox", …
	Type string
	// On lists what the field applies to, in the CRM's words: Close object types ("lead",
	// "contact", "opportunity", "activity"; more than one makes a shared field), Copper
	// available_on kinds ("person", "company", "lead", "opportunity", "project", "task").
	On []string
	// Choices are the labels of a choice field (Close choices, Copper Dropdown/MultiSelect
	// options).
	Choices []string
	// Multi makes a Close field accept multiple values.
	Multi bool
}

// CustomFieldEditor is what a test may do to an account's custom field definitions; both
// simulators implement it. Ids are spelled as the API spells them (Copper: decimal). None of
// these changes a record's modification time: as in the CRMs, editing a definition does not
// touch the records that carry its values.
type CustomFieldEditor interface {
	// AddCustomField creates a definition at `at` and returns its id. Records carry values of
	// it only in versions written at or after `at` (created or updated since).
	AddCustomField(f CustomField, at time.Time) (string, error)
	// RenameCustomField gives a definition a new name.
	RenameCustomField(id, name string, at time.Time) error
	// RenameCustomFieldOption renames one option (choice) of a choice field: Copper records
	// keep the option's id; Close records, which hold labels, carry the new label from then on.
	RenameCustomFieldOption(id, from, to string, at time.Time) error
	// DeleteCustomField removes a definition: it leaves the definition listings, and records
	// no longer carry its values.
	DeleteCustomField(id string, at time.Time) error
}
