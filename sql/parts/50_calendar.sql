-- ---------------------------------------------------------------------------
-- Calendar: working days, for the deadlines of administrative procedures
-- ---------------------------------------------------------------------------

-- Saturdays and Sundays are off; the table holds every exception, as the
-- government announces them each year: public holidays and bridge days off
-- (working = false, even on a weekday) and make-up working days
-- (working = true, normally a Saturday).  No rows ship with the extension.
CREATE TABLE holiday (
    day      date PRIMARY KEY,
    name     text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    working  boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE holiday IS
  'Exceptions to the Monday-to-Friday week: days off (holidays, bridge days) and make-up working days, as announced each year';
COMMENT ON COLUMN holiday.day IS 'The day, a date in ioffice.timezone';
COMMENT ON COLUMN holiday.name IS 'What the day is (Tết Nguyên đán, Giỗ Tổ Hùng Vương, làm bù cho 29/4…), 1 to 200 characters';
COMMENT ON COLUMN holiday.working IS
  'false: a day off, even on a weekday; true: a working day, even on a weekend (make-up day)';
SELECT pg_catalog.pg_extension_config_dump('holiday', '');
GRANT SELECT ON holiday TO PUBLIC;
GRANT INSERT, UPDATE, DELETE ON holiday TO ioffice_admin;
CREATE TRIGGER audit_direct AFTER INSERT OR UPDATE OR DELETE ON holiday
    FOR EACH ROW WHEN (_outside_engine()) EXECUTE FUNCTION _audit_direct();
CREATE TRIGGER audit_direct_truncate AFTER TRUNCATE ON holiday
    FOR EACH STATEMENT EXECUTE FUNCTION _audit_direct();

-- Not SECURITY DEFINER: holiday is readable by everyone; the C code names
-- the schema and the operators it uses.
CREATE FUNCTION is_working_day(day date) RETURNS boolean
    AS 'MODULE_PATHNAME', 'ioffice_is_working_day'
    LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION is_working_day(date) IS
  'Whether a day is a working day: its holiday row says so, or it has none and is Monday to Friday';

CREATE FUNCTION add_working_days(start timestamptz, days int) RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'ioffice_add_working_days'
    LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION add_working_days(timestamptz, int) IS
  'The deadline days working days after start, days in ioffice.timezone. '
  'Start on a working day: the same time of day on the days-th working day after it '
  '(Friday 15:54 + 1 = Monday 15:54). Start on a day off: counted from 00:00 of the next '
  'working day, so the result is 00:00 of the days-th working day after that one, the moment '
  'the days-th working day ends (received Saturday, 1 day: Tuesday 00:00, the end of Monday). '
  'days = 0: start unchanged; days outside 0..36500: 22023; an infinite start is returned as is';

CREATE FUNCTION working_days_between(from_ts timestamptz, to_ts timestamptz) RETURNS int
    AS 'MODULE_PATHNAME', 'ioffice_working_days_between'
    LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION working_days_between(timestamptz, timestamptz) IS
  'The working days among the dates d, in ioffice.timezone, with date(from_ts) <= d < date(to_ts); '
  'times of day do not matter. Negative when to_ts is on an earlier date. '
  'When the count is positive, add_working_days(t, working_days_between(t, u)) falls on the first '
  'working day on or after u''s date';
