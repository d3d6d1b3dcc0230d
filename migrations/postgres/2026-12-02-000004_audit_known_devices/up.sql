-- "A new device logged in" (reference §9): each login looks for an earlier
-- successful login of the user from the same user agent. Only successful
-- logins are indexed, so the failed-login floods the log also records add
-- nothing to it, and the look-up no longer reads every event of the user.
CREATE INDEX audit_events_known_devices ON audit_events (target_id, user_agent)
    WHERE event = 'login_succeeded';
