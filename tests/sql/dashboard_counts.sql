-- dashboard()'s two counters over history (issued, processed) are kept by
-- triggers (sql/parts/95_dashboard_counts.sql): after everything the suite
-- did before, by every path, they agree with the tabs they count
SELECT count(*) = 0 AS no_drift FROM ioffice.dashboard_counts_check();
-- the triggers wrote deltas (no worker runs here); folding them into the
-- counter rows changes no counter
SELECT count(*) > 0 AS deltas_waiting FROM ioffice.dashboard_count_delta;
SELECT ioffice.dashboard_counts_fold() > 0 AS folded;
SELECT count(*) = 0 AS no_deltas_left FROM ioffice.dashboard_count_delta;
SELECT count(*) = 0 AS no_drift_after_fold FROM ioffice.dashboard_counts_check();
SELECT ioffice.dashboard_counts_fold() AS nothing_more_to_fold;
SELECT count(*) > 0 AS someone_has_issued_documents
FROM ioffice.dashboard_count WHERE counter = 'outgoing_issued' AND n > 0;
SELECT count(*) > 0 AS someone_has_processed_documents
FROM ioffice.dashboard_count WHERE counter = 'incoming_processed' AND n > 0;

-- the home page shows the kept counter, which is the tab's row count
BEGIN;
SET LOCAL ioffice.actor = 'regress_thuy';
SELECT d.outgoing_issued = (SELECT count(*) FROM ioffice.outgoing_list('issued')) AS issued_is_the_tab,
       d.incoming_processed = (SELECT count(*) FROM ioffice.incoming_list('processed')) AS processed_is_the_tab
FROM ioffice.dashboard() d;
COMMIT;

-- a new clerk of the agency gets its issued documents; leaving the role
-- takes them away again (a DBA's direct edit of the roles, too)
SELECT ioffice.add_person('regress_vt2', 'Lò Văn Hai', 'Văn thư', u.id, '{clerk}') IS NOT NULL AS second_clerk
FROM ioffice.unit u WHERE u.code = '000.00.32.H41';
SELECT ioffice._count_kept(p.id, 'outgoing_issued')
       = (SELECT count(*) FROM ioffice.document d JOIN ioffice.unit u ON u.id = d.agency_id
            WHERE u.code = '000.00.32.H41' AND d.direction = 'outgoing' AND d.state = 'issued')
       AS new_clerk_counts_the_agency
FROM ioffice.person p WHERE p.login = 'regress_vt2';
DELETE FROM ioffice.person_role r USING ioffice.person p
WHERE p.id = r.person_id AND p.login = 'regress_vt2' AND r.role = 'clerk';
SELECT ioffice._count_kept(p.id, 'outgoing_issued') = 0 AS former_clerk_counts_nothing
FROM ioffice.person p WHERE p.login = 'regress_vt2';

-- a DBA hands a task of an issued document to someone else: the old
-- receiver loses the document (unless another part of the set holds it), the
-- new one gets it
UPDATE ioffice.task t SET receiver_id = (SELECT id FROM ioffice.person WHERE login = 'regress_vt2')
WHERE t.id = (SELECT max(t2.id) FROM ioffice.task t2 JOIN ioffice.document d ON d.id = t2.document_id
              WHERE d.direction = 'outgoing' AND d.state = 'issued');
SELECT ioffice._count_kept(p.id, 'outgoing_issued') = 1 AS new_receiver_counts_it
FROM ioffice.person p WHERE p.login = 'regress_vt2';
SELECT count(*) = 0 AS no_drift_after_edits FROM ioffice.dashboard_counts_check();
SELECT ioffice.dashboard_counts_fold() >= 0 AS folded_again;
SELECT count(*) = 0 AS no_drift_after_folding_edits FROM ioffice.dashboard_counts_check();

-- drift is found and repaired: a counter written behind the triggers' back
UPDATE ioffice.dashboard_count c SET n = n + 3
FROM ioffice.person p WHERE p.id = c.person_id AND p.login = 'regress_thuy' AND c.counter = 'outgoing_issued';
SELECT login, counter, kept - counted AS off_by FROM ioffice.dashboard_counts_check();
-- (and a delta written behind their back)
INSERT INTO ioffice.dashboard_count_delta (person_id, counter, d)
SELECT id, 'incoming_processed', -2 FROM ioffice.person WHERE login = 'regress_thuy';
SELECT login, counter, kept - counted AS off_by FROM ioffice.dashboard_counts_check();
SELECT ioffice.dashboard_counts_rebuild() > 0 AS rebuilt;
SELECT count(*) = 0 AS no_drift_after_rebuild FROM ioffice.dashboard_counts_check();
SELECT count(*) = 0 AS rebuild_leaves_no_deltas FROM ioffice.dashboard_count_delta;

-- the counters are the people's own: applications and readers do not read
-- them directly, and only an admin checks or rebuilds them
SET ROLE ioffice_app;
SELECT regress_error('SELECT count(*) FROM ioffice.dashboard_count', 0);
SELECT regress_error('SELECT count(*) FROM ioffice.dashboard_count_delta', 0);
SELECT regress_error('SELECT ioffice.dashboard_counts_fold()', 0);
SELECT regress_error('SELECT count(*) FROM ioffice.dashboard_counts_check()', 0);
RESET ROLE;
SET ROLE ioffice_reader;
SELECT regress_error('SELECT ioffice.dashboard_counts_rebuild()', 0);
RESET ROLE;

-- a fold leaves alone the deltas of a person who is not there (a restore
-- loads the deltas before the people: a fold in between must not drop them)
RESET ROLE;
INSERT INTO ioffice.dashboard_count_delta (person_id, counter, d)
VALUES ((SELECT max(id) + 1000 FROM ioffice.person), 'outgoing_issued', 1);
SELECT ioffice.dashboard_counts_fold() >= 0 AS folded;
SELECT count(*) = 1 AS absent_persons_delta_kept FROM ioffice.dashboard_count_delta
 WHERE person_id NOT IN (SELECT id FROM ioffice.person);
DELETE FROM ioffice.dashboard_count_delta WHERE person_id NOT IN (SELECT id FROM ioffice.person);
