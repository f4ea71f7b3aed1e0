// Package faulttest holds the fault matrix: every fault the simulators inject, against both
// sources, into SQLite and PostgreSQL, for an initial and an incremental sync. Each sync must
// end with the destination equal to the simulator's data. It has tests only.
package faulttest
