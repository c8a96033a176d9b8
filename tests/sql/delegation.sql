\set SHOW_CONTEXT never
-- Approval delegation (ủy quyền duyệt): the chairman lets the vice-chairman
-- approve in his name for a period; acts are recorded "on behalf of".
SET ioffice.actor = 'loi';
SELECT ioffice.delegate('kien', now(), now() + interval '7 days') AS deleg \gset
SELECT p1.login AS from_login, p2.login AS to_login FROM ioffice.delegation g
JOIN ioffice.person p1 ON p1.id = g.from_person JOIN ioffice.person p2 ON p2.id = g.to_person
WHERE g.id = :deleg;

SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định ủy quyền thử') AS doc \gset
SELECT ioffice.attach(:doc, 'qd.pdf', content) FROM pdf;
SELECT ioffice.act(:doc, 'submit', 'loi', 'Trình Chủ tịch');

-- the delegate sees it in the "delegated" tab and on the dashboard
SET ioffice.actor = 'kien';
SELECT document, holder FROM ioffice.outgoing_list('delegated');
SELECT outgoing_delegated, outgoing_awaiting_approval FROM ioffice.dashboard();
-- one delegation at a time: a second, overlapping one is refused
SET ioffice.actor = 'loi';
SELECT regress_error($$SELECT ioffice.delegate('kien', now(), now() + interval '1 day')$$, 0);
SET ioffice.actor = 'kien';
SELECT outgoing_delegated, (SELECT count(*) FROM ioffice.outgoing_list('delegated')) AS in_the_tab
FROM ioffice.dashboard();
SELECT ioffice.can_see(:doc) AS kien_sees;
-- signing is personal and is never delegated
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :doc, 'sign'), :doc);
-- approving is
SELECT ioffice.act(:doc, 'approve', 'regress_thuy', 'Thay Chủ tịch duyệt');
SELECT step, sender, receiver, processing_note FROM ioffice.trail(:doc);
SELECT p.login AS actor, b.login AS on_behalf_of, a.action
FROM ioffice.audit a JOIN ioffice.person p ON p.id = a.actor_id
LEFT JOIN ioffice.person b ON b.id = a.on_behalf_of
WHERE a.entity = 'document' AND a.entity_id = :doc AND a.action = 'approve';

-- somebody without a delegation cannot
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định không ủy quyền') AS doc2 \gset
SELECT ioffice.attach(:doc2, 'qd2.pdf', content) FROM pdf;
SELECT ioffice.act(:doc2, 'submit', 'kien');
SET ioffice.actor = 'loi';
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :doc2, 'approve', 'regress_thuy'), :doc2);

-- an expired delegation no longer counts (delegate() starts none in the
-- past: this one is written by the owner, as one of an older version)
RESET ioffice.actor;
INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
SELECT f.id, t.id, now() - interval '10 days', now() - interval '1 day'
FROM ioffice.person f, ioffice.person t WHERE f.login = 'kien' AND t.login = 'loi';
SET ioffice.actor = 'loi';
SELECT count(*) AS delegated_now FROM ioffice.outgoing_list('delegated');
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :doc2, 'approve', 'regress_thuy'), :doc2);
-- a future one does not count yet
SET ioffice.actor = 'kien';
SELECT ioffice.delegate('loi', now() + interval '1 day', now() + interval '2 days') IS NOT NULL AS delegated;
SET ioffice.actor = 'loi';
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :doc2, 'approve', 'regress_thuy'), :doc2);
RESET ioffice.actor;
