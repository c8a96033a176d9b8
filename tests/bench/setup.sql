-- The directory the benches act in: one agency with a code, one department,
-- :clients specialists s1..sN and leaders l1..lN (one pair per client, so
-- clients never wait for each other's documents) and one clerk, whose
-- register every client shares as in real life.
-- psql -v clients=N; prints the ids the plain-SQL workload writes directly.
CREATE EXTENSION ioffice CASCADE;

SELECT ioffice.add_agency('Ủy ban nhân dân tỉnh Bench', 'UBND', '000.00.32.H41') AS agency \gset
SELECT ioffice.add_department(:agency, 'Văn phòng', 'VP') AS unit \gset
SELECT ioffice.add_person('clerk', 'Văn thư', 'Văn thư', :unit, '{clerk}') AS clerk \gset
SELECT min(ioffice.add_person('s' || i, 'Chuyên viên ' || i, 'Chuyên viên', :unit, '{specialist}'))
       AS sbase
  FROM generate_series(1, :clients) AS i \gset
SELECT min(ioffice.add_person('l' || i, 'Lãnh đạo ' || i, 'Phó Chánh Văn phòng', :unit, '{leader}'))
       AS lbase
  FROM generate_series(1, :clients) AS i \gset

-- the plain workload computes a client's ids as base + client_id
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM ioffice.person p
                WHERE p.login ~ '^[sl][0-9]+$'
                  AND p.id <> (SELECT min(q.id) FROM ioffice.person q
                                WHERE left(q.login, 1) = left(p.login, 1)
                                  AND q.login ~ '^[sl][0-9]+$')
                               + substr(p.login, 2)::int - 1) THEN
        RAISE EXCEPTION 'bench persons did not get consecutive ids';
    END IF;
END
$$;

SELECT id AS reg FROM ioffice.register
 WHERE agency_id = :agency AND direction = 'outgoing' AND NOT confidential \gset

-- the file every lifecycle attaches: a 16 KiB "PDF" of incompressible bytes,
-- stored uncompressed, as a real (already compressed) PDF would be
CREATE TABLE bench_pdf (content bytea NOT NULL);
ALTER TABLE bench_pdf ALTER COLUMN content SET STORAGE EXTERNAL;
INSERT INTO bench_pdf
SELECT convert_to('%PDF-1.4', 'UTF8')
       || decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), 'hex')
  FROM generate_series(1, 16384 - 8);
DO $$
BEGIN
    IF (SELECT length(content) FROM bench_pdf) <> 16384
       OR (SELECT ioffice.file_kind(content) FROM bench_pdf) <> 'pdf' THEN
        RAISE EXCEPTION 'bench_pdf is not a 16 KiB PDF';
    END IF;
END
$$;

\echo agency=:agency unit=:unit clerk=:clerk sbase=:sbase lbase=:lbase reg=:reg
