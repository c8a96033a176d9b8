-- The backend's rule cache is emptied by its own tables' invalidation only:
-- another table's (here a temporary table created, which invalidates that
-- table's relcache entry) leaves the rules cached, so act() does not read
-- them again.  Each load of the rules says so at DEBUG1.
\set VERBOSITY terse
SET client_min_messages = warning;
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Bộ nhớ đệm quy trình') AS doc \gset
-- (an action the rules do not have: refused after the rules are read,
-- nothing changes)
SELECT ioffice.act(:doc, 'nothing');
SET client_min_messages = debug1;
CREATE TEMP TABLE rule_cache_other (x int);
SELECT ioffice.act(:doc, 'nothing');
SELECT ioffice.act(:doc, 'nothing');
SET client_min_messages = warning;
DROP TABLE rule_cache_other;
-- a statement on a rule table, even one that changes no row, reloads them once
UPDATE ioffice.workflow SET label = label WHERE false;
SET client_min_messages = debug1;
SELECT ioffice.act(:doc, 'nothing');
SELECT ioffice.act(:doc, 'nothing');
SET client_min_messages = warning;
RESET ioffice.actor;
