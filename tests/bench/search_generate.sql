-- The text search() finds, for tests/bench/search, in a province that
-- scale_generate.sql has just filled (its bulk load runs no trigger, so
-- search_text is empty): Vietnamese subjects for the documents and the text
-- of their files, and the rows the triggers and the worker would have
-- written for them -- each document's metadata row (_search_metadata(),
-- the trigger's own function), each current PDF's extraction job, done,
-- and its text.  tests/bench/search checks on a sample that these rows are
-- exactly what the normal path writes (the trigger, _search_extracted()).
--
-- psql -v seed=X -v phase=prepare -f search_generate.sql     subjects, extraction jobs, letters
-- psql -v phase=text -v part=K -v parts=N -f ...              the metadata rows of the documents
--                                                              whose id, and the text rows of the
--                                                              files whose id, is K modulo N (N
--                                                              sessions at once: to_tsvector() is
--                                                              most of the time)
-- psql -v phase=finish -f ...                                  the text index, statistics
--
-- Words: administrative Vietnamese, with diacritics, in three tiers drawn
-- with skewed weights (the first of a list far more often than the last):
-- common phrases are in most letters, the topics in some, and the rare
-- tier only in a few subjects (one document in 2,000 per rare word, and
-- the letter that repeats it), never in the sentences of the letters.  A subject is "V/v <action> <topic> <place>"; a
-- file's text is a letter: the national motto, the legal bases, the
-- subject again, 10 sentences drawn from a pool of 4,000, the recipients
-- (about 450 words).  An incoming document delivered by another agency
-- keeps its source's subject and file (scale_generate.sql copies both).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SELECT :'phase' = 'prepare' AS prepare, :'phase' = 'text' AS text, :'phase' = 'finish' AS finish \gset
SET session_replication_role = replica;   -- bulk load: the rows the triggers write are built here

\if :prepare
SELECT setseed(:seed) \gset
CREATE SCHEMA search_gen;
CREATE TABLE search_gen.vocab (tier text PRIMARY KEY, w text[]);
INSERT INTO search_gen.vocab VALUES
('action', ARRAY['triển khai', 'thực hiện', 'tăng cường', 'báo cáo', 'hướng dẫn', 'tổ chức',
    'kiểm tra', 'đề nghị', 'góp ý', 'phê duyệt', 'ban hành', 'sửa đổi bổ sung', 'tổng kết',
    'rà soát', 'đôn đốc', 'chấn chỉnh', 'xin ý kiến', 'phân bổ', 'điều chỉnh', 'tuyên truyền']),
('topic', ARRAY['công tác văn thư lưu trữ', 'kế hoạch phát triển kinh tế xã hội', 'cải cách hành chính',
    'chuyển đổi số', 'dự toán ngân sách nhà nước', 'quản lý đất đai', 'giải phóng mặt bằng',
    'phòng chống dịch bệnh', 'an toàn giao thông', 'xây dựng nông thôn mới', 'bảo vệ môi trường',
    'thi đua khen thưởng', 'tuyển dụng công chức viên chức', 'đầu tư công', 'phòng cháy chữa cháy',
    'giáo dục và đào tạo', 'bảo hiểm xã hội', 'thu thuế thu nhập cá nhân', 'quy hoạch sử dụng đất',
    'tiếp công dân giải quyết khiếu nại tố cáo', 'phòng chống tham nhũng', 'an ninh trật tự',
    'chương trình mục tiêu quốc gia giảm nghèo', 'quản lý chất lượng công trình xây dựng',
    'phòng chống thiên tai và tìm kiếm cứu nạn', 'chăm sóc sức khỏe nhân dân', 'thủy lợi nội đồng',
    'hỗ trợ doanh nghiệp nhỏ và vừa', 'bồi dưỡng cán bộ', 'văn hóa thể thao và du lịch',
    'an toàn thực phẩm', 'dân số và kế hoạch hóa gia đình', 'quốc phòng toàn dân',
    'đăng ký hộ tịch', 'cấp giấy chứng nhận quyền sử dụng đất', 'bảo trợ xã hội']),
('place', ARRAY['trên địa bàn tỉnh', 'năm 2024', 'trên địa bàn huyện', 'quý III', 'giai đoạn 2021-2025',
    '6 tháng đầu năm', 'tại các xã vùng cao', 'của Sở', 'năm học mới', 'dịp Tết Nguyên đán']),
('base', ARRAY['Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;',
    'Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư;',
    'Căn cứ Quyết định số 28/2018/QĐ-TTg của Thủ tướng Chính phủ về gửi nhận văn bản điện tử;',
    'Căn cứ Thông tư số 01/2011/TT-BNV của Bộ Nội vụ;',
    'Căn cứ Nghị quyết của Hội đồng nhân dân tỉnh;',
    'Thực hiện chỉ đạo của Ủy ban nhân dân tỉnh;']),
('subject', ARRAY['các cơ quan đơn vị', 'Ủy ban nhân dân các huyện', 'các phòng chuyên môn',
    'Văn phòng', 'cán bộ công chức', 'người đứng đầu cơ quan', 'các sở ban ngành', 'Ủy ban nhân dân cấp xã']),
('verb', ARRAY['khẩn trương', 'nghiêm túc', 'chủ động', 'kịp thời', 'thường xuyên']),
-- only in subjects, rarely: a word of this tier is in one subject in 20,000
('rare', ARRAY['ươm tơ dệt lụa', 'khai quật khảo cổ', 'bảo tồn rùa biển', 'trồng cây dược liệu quý',
    'nuôi chim yến', 'hải đăng Kê Gà']);
-- (a skewed pick from a list w: w[1 + floor(cardinality(w) * random() ^ 2)], the first most often)

-- the pool of sentences a letter is made of
CREATE TABLE search_gen.pool AS
SELECT g AS n, format('Đề nghị %s %s %s %s %s, %s báo cáo kết quả về %s trước ngày %s tháng %s.',
              sb.w[1 + floor(cardinality(sb.w) * random() ^ 2)::int],
              vb.w[1 + floor(cardinality(vb.w) * random() ^ 2)::int],
              a.w[1 + floor(cardinality(a.w) * random() ^ 2)::int],
              t.w[1 + floor(cardinality(t.w) * random() ^ 2)::int],
              p.w[1 + floor(cardinality(p.w) * random() ^ 2)::int],
              vb.w[1 + floor(cardinality(vb.w) * random() ^ 2)::int],
              t.w[1 + floor(cardinality(t.w) * random() ^ 2)::int],
              1 + floor(random() * 28), 1 + floor(random() * 12)) AS s
  FROM generate_series(1, 4000) g,
       search_gen.vocab sb, search_gen.vocab vb, search_gen.vocab a, search_gen.vocab t, search_gen.vocab p
 WHERE sb.tier = 'subject' AND vb.tier = 'verb' AND a.tier = 'action' AND t.tier = 'topic' AND p.tier = 'place';
ALTER TABLE search_gen.pool ADD PRIMARY KEY (n);

-- subjects: of outgoing documents and incoming ones from paper; a delivered
-- incoming document has its source's
CREATE TEMP TABLE subj AS
SELECT d.id, 'V/v ' || a.w[1 + floor(cardinality(a.w) * random() ^ 2)::int] || ' ' ||
       CASE WHEN random() < 0.003 THEN r.w[1 + floor(cardinality(r.w) * random())::int]
            ELSE t.w[1 + floor(cardinality(t.w) * random() ^ 2)::int] END
       || ' ' || p.w[1 + floor(cardinality(p.w) * random() ^ 2)::int] AS abstract
  FROM ioffice.document d, search_gen.vocab a, search_gen.vocab t, search_gen.vocab p, search_gen.vocab r
 WHERE d.source_document_id IS NULL
   AND a.tier = 'action' AND t.tier = 'topic' AND p.tier = 'place' AND r.tier = 'rare';
ALTER TABLE subj ADD PRIMARY KEY (id);
UPDATE ioffice.document d SET abstract = coalesce(s.abstract, src.abstract)
  FROM ioffice.document d0 LEFT JOIN subj s ON s.id = d0.id LEFT JOIN subj src ON src.id = d0.source_document_id
 WHERE d0.id = d.id;

-- the text search() reads, without its text index while loading (made
-- again at the end, as the install script makes it)
CREATE TABLE search_gen.words_idx AS
SELECT pg_get_indexdef('ioffice.search_text_words_idx'::regclass) AS def;
DROP INDEX ioffice.search_text_words_idx;

-- each current PDF's extraction, done
INSERT INTO ioffice.search_extraction (file_id, document_id, queued_at, done_at, error)
SELECT f.id, f.document_id, f.uploaded_at, f.uploaded_at + interval '2 minutes', NULL
  FROM ioffice.file f
 WHERE f.kind IN ('pdf', 'docx', 'xlsx') AND f.superseded_at IS NULL AND f.removed_at IS NULL;

-- the letters, of the outgoing documents with a file: 10 sentences of the
-- pool each, and the rest around them
CREATE UNLOGGED TABLE search_gen.line AS
SELECT d.id, k, 1 + floor(random() * 4000)::int AS n
  FROM ioffice.document d, generate_series(1, 10) k
 WHERE d.direction = 'outgoing' AND EXISTS (SELECT 1 FROM ioffice.search_extraction j WHERE j.file_id = d.id);
CREATE UNLOGGED TABLE search_gen.letter AS
SELECT d.id AS document_id,
       concat_ws(E'\n',
           'ỦY BAN NHÂN DÂN TỈNH', upper(u.name), 'CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM',
           'Độc lập - Tự do - Hạnh phúc',
           'Số: ' || coalesce(d.number || '/' || d.symbol, '/' || d.doc_type),
           d.abstract,
           'Kính gửi: ' || sb.w[1 + floor(cardinality(sb.w) * random() ^ 2)::int],
           b.w[1 + floor(cardinality(b.w) * random())::int], b.w[1 + floor(cardinality(b.w) * random())::int],
           l.text,
           'Nơi nhận: Như trên; Lưu: VT.') AS body
  FROM (SELECT x.id, string_agg(p.s, E'\n' ORDER BY x.k) AS text
          FROM search_gen.line x JOIN search_gen.pool p ON p.n = x.n GROUP BY x.id) l
  JOIN ioffice.document d ON d.id = l.id JOIN ioffice.unit u ON u.id = d.agency_id,
       search_gen.vocab sb, search_gen.vocab b
 WHERE sb.tier = 'subject' AND b.tier = 'base';
ALTER TABLE search_gen.letter ADD PRIMARY KEY (document_id);
ANALYZE search_gen.letter;
\endif

\if :text
-- each document's metadata row: _search_metadata(d), the trigger's text,
-- in one statement (the driver compares a sample with the trigger's rows)
-- and the keys of who may find it (_search_keys(d.id), the BEFORE INSERT
-- trigger's)
INSERT INTO ioffice.search_text (document_id, file_id, body, keys)
SELECT d.id, NULL,
       concat_ws(' · ', d.abstract,
           coalesce(d.doc_type_name, t.name),
           CASE WHEN d.number IS NOT NULL THEN d.number || '/' || d.symbol ELSE d.symbol END,
           d.sender_symbol, ua.name, coalesce(d.drafting_unit_name, ud.name),
           coalesce(us.name, d.sender_name), coalesce(d.signer_name, p.full_name), r.name, d.field,
           to_char(d.issued_on, 'DD/MM/YYYY'), to_char(d.sender_date, 'DD/MM/YYYY'), d.identifier),
       array_remove(ARRAY['d:' || d.id, 'a:' || d.agency_id, 'p:' || d.drafter_id,
                          CASE WHEN d.confidentiality = 'normal' AND (d.register_id IS NULL OR NOT r.confidential)
                               THEN 'r' END], NULL)
  FROM ioffice.document d
  LEFT JOIN ioffice.doc_type t ON t.code = d.doc_type
  LEFT JOIN ioffice.unit ua ON ua.id = d.agency_id
  LEFT JOIN ioffice.unit ud ON ud.id = d.drafting_unit_id
  LEFT JOIN ioffice.unit us ON us.id = d.sender_agency_id
  LEFT JOIN ioffice.person p ON p.id = d.signer_id
  LEFT JOIN ioffice.register r ON r.id = d.register_id
 WHERE d.id % :parts = :part;

-- a delivered copy of a letter has its source's text; the keys as above
INSERT INTO ioffice.search_text (document_id, file_id, body, keys)
SELECT j.document_id, j.file_id, l.body,
       array_remove(ARRAY['d:' || d.id, 'a:' || d.agency_id, 'p:' || d.drafter_id,
                          CASE WHEN d.confidentiality = 'normal' AND (d.register_id IS NULL OR NOT r.confidential)
                               THEN 'r' END], NULL)
  FROM ioffice.search_extraction j JOIN ioffice.document d ON d.id = j.document_id
  JOIN search_gen.letter l ON l.document_id = coalesce(d.source_document_id, d.id)
  LEFT JOIN ioffice.register r ON r.id = d.register_id
 WHERE j.file_id % :parts = :part;
\endif

\if :finish
SET maintenance_work_mem = '512MB';
SELECT def AS words_idx FROM search_gen.words_idx \gset
:words_idx;
DROP SCHEMA search_gen CASCADE;
RESET session_replication_role;
VACUUM ANALYZE ioffice.document, ioffice.search_text, ioffice.search_extraction;
\endif
