-- NULL and absurd arguments to every public function: each gets a clear
-- error with its SQLSTATE (or a sensible answer), and no backend crashes.
CREATE FUNCTION try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN others THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SET ioffice.actor = 'regress_luan';
SELECT q, try(q) FROM (VALUES
    ($$SELECT ioffice.create_outgoing(NULL, 'x')$$),
    ($$SELECT ioffice.create_outgoing('CV', NULL)$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', NULL)$$),
    ($$SELECT ioffice.create_outgoing('XX', 'x')$$),
    ($$SELECT ioffice.create_outgoing('CV', '')$$),
    ($$SELECT ioffice.create_outgoing('CV', '   ')$$),
    ($$SELECT ioffice.create_outgoing('CV', repeat('x', 501))$$),
    ($$SELECT ioffice.create_outgoing('CV', repeat('x', 10000000))$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '[]')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '"text"')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"colour": 1}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": 1}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": "extreme"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": "flash_timed"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": "flash_timed", "flash_at": "soon"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"flash_at": "2026-01-01 08:00+07"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"confidentiality": "public"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"page_count": 0}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"page_count": 1.5}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"page_count": 1e300}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"copies": -3}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"signer": "ghost"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"due_date": "tomorrow-ish"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"due_date": "infinity"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": "flash_timed", "flash_at": "-infinity"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"recipients": "everyone"}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"recipients": [1]}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"recipients": [""]}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"related": ["a"]}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"related": [1e30]}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"related": [-1]}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"field": 7}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": null}')$$),
    ($$SELECT ioffice.create_outgoing('CV', 'x', '{"urgency": "flash_timed", "flash_at": "2026-01-01 08:00+07", "due_date": "2026-01-05", "page_count": 3, "copies": 2, "confidentiality": "confidential", "comment": "ok"}')$$)
) AS t(q);

SELECT max(id) AS doc FROM ioffice.document \gset
SELECT q, try(q) FROM (VALUES
    ($$SELECT ioffice.attach(NULL, 'a.pdf', '\x255044462d')$$),
    ($$SELECT ioffice.attach(1, NULL, '\x255044462d')$$),
    ($$SELECT ioffice.attach(1, 'a.pdf', NULL)$$),
    ($$SELECT ioffice.attach(-1, 'a.pdf', '\x255044462d')$$),
    ($$SELECT ioffice.attach(9223372036854775807, 'a.pdf', '\x255044462d')$$),
    ($$SELECT ioffice.replace_file(NULL, 'a.pdf', '\x255044462d')$$),
    ($$SELECT ioffice.replace_file(-5, 'a.pdf', '\x255044462d')$$),
    ($$SELECT ioffice.remove_file(NULL)$$),
    ($$SELECT ioffice.remove_file(0)$$),
    ($$SELECT ioffice.act(NULL, 'submit')$$),
    ($$SELECT ioffice.act(1, NULL)$$),
    ($$SELECT ioffice.act(-9223372036854775808, 'submit')$$),
    ($$SELECT ioffice.act(1, '')$$),
    ($$SELECT ioffice.act(1, repeat('a', 100000))$$),
    ($$SELECT ioffice.act(1, 'submit', repeat('a', 100000))$$),
    ($$SELECT ioffice.act(1, 'submit', 'dai', repeat('n', 2001))$$),
    ($$SELECT ioffice.act(1, 'submit', 'dai', NULL, NULL)$$),
    ($$SELECT ioffice.act(1, 'submit', 'dai', NULL, '"x"')$$),
    ($$SELECT ioffice.act(1, 'submit', 'dai', NULL, 'null')$$),
    ($$SELECT ioffice.trail(NULL)$$),
    ($$SELECT ioffice.trail(-1)$$),
    ($$SELECT ioffice.outgoing_list(NULL)$$),
    ($$SELECT ioffice.outgoing_list('inbox')$$),
    ($$SELECT ioffice.link_documents(NULL, 1)$$),
    ($$SELECT ioffice.delegate(NULL, now(), now() + interval '1 day')$$),
    ($$SELECT ioffice.delegate('dai', NULL, now())$$),
    ($$SELECT ioffice.delegate('dai', now(), now() - interval '1 day')$$),
    ($$SELECT ioffice.delegate('dai', '-infinity', 'infinity')$$),
    ($$SELECT ioffice.delegate('regress_luan', now(), now() + interval '1 day')$$),
    ($$SELECT ioffice.delegate('ghost', now(), now() + interval '1 day')$$),
    ($$SELECT ioffice.format_number(0)$$),
    ($$SELECT ioffice.format_number(-2147483648)$$),
    ($$SELECT ioffice.build_symbol(NULL, 'CV', 1, 2)$$),
    ($$SELECT ioffice.build_symbol(1, 'XX', 1, 2)$$),
    ($$SELECT ioffice.build_symbol(1, 'CV', -1, NULL)$$),
    ($$SELECT ioffice.build_symbol(0, 'CV', 1, NULL)$$)
) AS t(q);

-- directory functions
RESET ioffice.actor;
SELECT q, try(q) FROM (VALUES
    ($$SELECT ioffice.add_agency(NULL, 'X')$$),
    ($$SELECT ioffice.add_agency('X', NULL)$$),
    ($$SELECT ioffice.add_agency('X', 'A B')$$),
    ($$SELECT ioffice.add_agency('X', 'X', '12.34')$$),
    ($$SELECT ioffice.add_agency('X', 'X', '000.00.32.H41')$$),
    ($$SELECT ioffice.add_agency('X', 'X', NULL, -1)$$),
    ($$SELECT ioffice.add_agency(repeat('x', 501), 'X')$$),
    ($$SELECT ioffice.add_department(NULL, 'X', 'X')$$),
    ($$SELECT ioffice.add_department(-1, 'X', 'X')$$),
    ($$SELECT ioffice.add_department(1, 'X', repeat('X', 21))$$),
    ($$SELECT ioffice.add_person(NULL, 'X', NULL, 1, NULL)$$),
    ($$SELECT ioffice.add_person('x y', 'X', NULL, 1, NULL)$$),
    ($$SELECT ioffice.add_person('dai', 'X', NULL, 1, NULL)$$),
    ($$SELECT ioffice.add_person('newbie', 'X', NULL, -1, NULL)$$),
    ($$SELECT ioffice.add_person('newbie', 'X', NULL, 1, '{Leader}')$$),
    ($$SELECT ioffice.add_person('newbie', 'X', NULL, 1, '{NULL}')$$),
    ($$SELECT ioffice.add_person('newbie', '', NULL, 1, NULL)$$)
) AS t(q);

-- file type recognition on hostile bytes never reads out of bounds
SELECT ioffice.file_kind(NULL) IS NULL AS null_in_null_out;
SELECT coalesce(ioffice.file_kind(b), 'unknown') AS kind, count(*)
FROM (SELECT CASE i % 4
             WHEN 0 THEN '\x504b0304'::bytea || decode(md5(i::text) || md5((i+1)::text), 'hex')
                         || '\x504b0506'::bytea || decode(repeat('ff', 18), 'hex')
             WHEN 1 THEN '\x504b0304'::bytea || decode(repeat('00', 10), 'hex')
                         || '\x504b0506'::bytea || '\x00000000ffffffff'::bytea || decode(repeat('ff', 10), 'hex')
             WHEN 2 THEN '\xd0cf11e0a1b11ae1'::bytea || decode(repeat(md5(i::text), 40), 'hex')
             ELSE '\x504b0304'::bytea END AS b
      FROM generate_series(1, 400) AS i) s
GROUP BY 1 ORDER BY 1;
-- a zip whose central directory points past the end, and one that claims
-- 65535 entries in a tiny file
SELECT ioffice.file_kind('\x504b0304'::bytea || '\x504b0506'::bytea || '\x00000000ffff0100'::bytea
                         || '\x00000000'::bytea || '\xfffffff0'::bytea || '\x0000'::bytea);
SELECT ioffice.file_kind('\x504b0304'::bytea || '\x504b0506'::bytea || '\x00000000ffffffff'::bytea
                         || '\x00000000'::bytea || '\x00000000'::bytea || '\x0000'::bytea);
-- a large random file is simply not a known type
SELECT coalesce(ioffice.file_kind(decode(string_agg(md5(i::text), ''), 'hex')), 'unknown')
FROM generate_series(1, 100000) AS i;

-- the server is still here
SELECT 'alive' AS status;
