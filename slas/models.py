"""SLA rules and calendars: built by the SLA engine issue."""
