-- One parser for every date and time the extension reads from text
-- (extension/dates.c): the details' dates and times, read in PL/pgSQL in
-- 0.1, are read by C, with the same messages.  CREATE OR REPLACE keeps the
-- functions' privileges (REVOKE ALL FROM PUBLIC).
CREATE OR REPLACE FUNCTION _time_detail(details jsonb, key text) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ioffice_time_detail' LANGUAGE C STABLE STRICT;
CREATE OR REPLACE FUNCTION _date_detail(details jsonb, key text) RETURNS date
    AS 'MODULE_PATHNAME', 'ioffice_date_detail' LANGUAGE C STABLE STRICT;
