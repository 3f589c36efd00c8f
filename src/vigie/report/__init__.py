"""Reports: what a scan found, for analysts (HTML), for tools (CSV, VICS JSON) and for the record (JSON)."""
