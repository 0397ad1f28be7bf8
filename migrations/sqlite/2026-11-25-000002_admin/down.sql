DROP INDEX audit_events_actor_created;
DROP TABLE password_links;
