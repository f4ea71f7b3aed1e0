package postgres

// For the external tests: the SQL type each logical type is created as, and its OID.
var (
	SQLType    = sqlType
	SQLTypeOID = sqlTypeOID
)
