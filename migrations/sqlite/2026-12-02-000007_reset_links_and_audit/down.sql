DROP TABLE audit_events;
DROP TABLE reset_links;
