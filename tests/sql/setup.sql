-- The seed's people (Sốp Cộp district) and helpers shared by the tests.
CREATE EXTENSION ioffice;
SET client_min_messages = warning;

SELECT ioffice.add_agency('UBND huyện Sốp Cộp', 'UBND', '000.00.32.H41') AS ubnd \gset
SELECT ioffice.add_department(:ubnd, 'Văn phòng HĐND-UBND', 'VP') AS vp \gset
SELECT ioffice.add_department(:ubnd, 'Phòng Văn hóa và Thông tin', 'VHTT') AS vhtt \gset
SELECT ioffice.add_person('regress_luan', 'Tòng Văn Luân', 'Chuyên viên', :vp, '{specialist}');
SELECT ioffice.add_person('dai', 'Trần Văn Đại', 'Chánh Văn phòng', :vp, '{leader}');
SELECT ioffice.add_person('loi', 'Lê Tiến Lợi', 'Chủ tịch', :ubnd, '{leader}');
SELECT ioffice.add_person('kien', 'Tòng Thị Kiên', 'Phó Chủ tịch', :ubnd, '{leader}');
SELECT ioffice.add_person('regress_thuy', 'Tòng Văn Thủy', 'Văn thư', :ubnd, '{clerk}');
SELECT ioffice.add_person('regress_tuan', 'Dương Văn Tuấn', 'Chuyên viên', :vhtt, '{specialist}');
SELECT ioffice.add_person('hoa', 'Lò Thị Hoa', 'Trưởng phòng', :vhtt, '{leader}');

-- a second agency with its own clerk and registers
SELECT ioffice.add_agency('UBND xã Mường Lạn', 'UBND', '001.32.32.H41') AS xa \gset
SELECT ioffice.add_person('regress_xa_vt', 'Lò Văn Xã', 'Văn thư', :xa, '{clerk}');
SELECT ioffice.add_person('xa_ct', 'Quàng Văn Chủ', 'Chủ tịch', :xa, '{leader}');

SELECT u.abbr, u.kind, u.code, a.abbr AS agency
FROM ioffice.unit u JOIN ioffice.unit a ON a.id = u.agency_id ORDER BY u.id;
SELECT p.login, p.full_name, u.abbr AS unit, string_agg(r.role, ',') AS roles
FROM ioffice.person p JOIN ioffice.unit u ON u.id = p.unit_id
JOIN ioffice.person_role r ON r.person_id = p.id
GROUP BY p.id, u.abbr ORDER BY p.id;
-- every agency can issue at once: outgoing, confidential outgoing, incoming
SELECT agency_id, direction, code, confidential, next_number,
       year = extract(year FROM now() AT TIME ZONE 'Asia/Ho_Chi_Minh') AS this_year
FROM ioffice.register ORDER BY id;

-- Small valid files of each kind, built from their real signatures.
CREATE TABLE pdf AS SELECT convert_to('%PDF-1.4 Sốp Cộp', 'UTF8') AS content;
-- A minimal zip whose central directory names one entry (word/document.xml
-- makes it a DOCX, xl/workbook.xml an XLSX), laid out as the zip format says.
CREATE FUNCTION test_zip(entry text) RETURNS bytea LANGUAGE sql AS $$
    SELECT '\x504b0304'::bytea || decode(repeat('00', 26), 'hex')          -- local header
        || '\x504b0102'::bytea || decode(repeat('00', 24), 'hex')          -- central entry
        || set_byte('\x0000'::bytea, 0, octet_length(convert_to(entry, 'UTF8')))
        || decode(repeat('00', 16), 'hex') || convert_to(entry, 'UTF8')
        || '\x504b0506'::bytea || '\x00000000'::bytea                      -- end record
        || '\x0100'::bytea || '\x0100'::bytea || '\x00000000'::bytea
        || '\x1e000000'::bytea || '\x0000'::bytea
$$;
-- A minimal OLE2 compound file: the 512-byte header, then one 128-byte
-- directory entry with a UTF-16LE stream name (WordDocument: DOC, Workbook: XLS).
CREATE FUNCTION test_ole2(stream text) RETURNS bytea LANGUAGE sql AS $$
    SELECT '\xd0cf11e0a1b11ae1'::bytea || decode(repeat('00', 504), 'hex')
        || decode(regexp_replace(encode(convert_to(stream, 'UTF8'), 'hex'), '(..)', '\100', 'g'), 'hex')
        || decode(repeat('00', 64 - 2 * length(stream)), 'hex')
        || set_byte('\x0000'::bytea, 0, 2 * length(stream) + 2)
        || decode(repeat('00', 62), 'hex')
$$;
SELECT ioffice.file_kind(content) FROM pdf
UNION ALL SELECT ioffice.file_kind(test_zip('word/document.xml'))
UNION ALL SELECT ioffice.file_kind(test_zip('xl/workbook.xml'))
UNION ALL SELECT ioffice.file_kind(test_zip('mimetype'))
UNION ALL SELECT ioffice.file_kind(test_ole2('WordDocument'))
UNION ALL SELECT ioffice.file_kind(test_ole2('Workbook'))
UNION ALL SELECT ioffice.file_kind(test_ole2('Book'))
UNION ALL SELECT ioffice.file_kind(test_ole2('PowerPoint Document'))
UNION ALL SELECT coalesce(ioffice.file_kind('\x89504e470d0a1a0a'), 'unknown')
UNION ALL SELECT coalesce(ioffice.file_kind('\x504b0304'), 'unknown')
UNION ALL SELECT coalesce(ioffice.file_kind(''), 'unknown');

-- A statement's error as "SQLSTATE: message" with a document's id shown as
-- <doc>: ids depend on how many documents the tests before made.
CREATE FUNCTION regress_error(q text, doc bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_hint text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN others THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '\m' || doc || '\M', '<doc>', 'g')
        || coalesce(E'\nHINT: ' || nullif(v_hint, ''), '');
END
$$;
