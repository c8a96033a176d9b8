\set SHOW_CONTEXT never
-- Issue 17, finding 3: an approval delegation goes from now on, to a leader
-- or deputy of the delegator's own unit, one at a time, and can be revoked;
-- nobody approves what they drafted, delegate or not.  (The chairman's
-- delegation to the vice-chairman, of the delegation test, is in force.)
SET client_min_messages = warning;

SET ioffice.actor = 'loi';
SELECT regress_error($$SELECT ioffice.delegate('kien', now() - interval '1 day', now() + interval '1 day')$$, 0)
       AS backdated;
SELECT regress_error($$SELECT ioffice.delegate('kien', '2020-01-01', '2020-12-31')$$, 0) AS in_2020;
SELECT regress_error($$SELECT ioffice.delegate('regress_luan', now() + interval '30 days', now() + interval '31 days')$$, 0)
       AS to_a_specialist;
SELECT regress_error($$SELECT ioffice.delegate('dai', now() + interval '30 days', now() + interval '31 days')$$, 0)
       AS to_a_leader_of_another_unit;
SELECT regress_error($$SELECT ioffice.delegate('kien', now() + interval '1 day', now() + interval '2 days')$$, 0)
       AS overlapping;
-- a later one, after the first ends, is not overlapping
SELECT ioffice.delegate('kien', now() + interval '30 days', now() + interval '31 days') AS later \gset
-- and one at a time holds for a row written past delegate(), too
RESET ioffice.actor;
SELECT regress_error($$INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
                       SELECT f.id, t.id, now() + interval '30 days', now() + interval '40 days'
                       FROM ioffice.person f, ioffice.person t WHERE f.login = 'loi' AND t.login = 'kien'$$, 0)
       AS overlapping_row;

-- ---------------------------------------------------------------------------
-- The delegate drafts, submits to the delegator, approves "thay": refused
-- ---------------------------------------------------------------------------
SET ioffice.actor = 'kien';
SELECT ioffice.create_outgoing('QĐ', 'Quyết định do người được ủy quyền soạn') AS own \gset
SELECT ioffice.attach(:own, 'uy_quyen.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:own, 'submit', 'loi');
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :own, 'approve', 'regress_thuy'), :own)
       AS delegate_approves_own_draft;
SELECT regress_error(format('SELECT ioffice.act(%s, %L)', :own, 'quick_approve'), :own)
       AS delegate_quick_approves_own_draft;
SELECT state FROM ioffice.document WHERE id = :own;

-- ---------------------------------------------------------------------------
-- Revocation: by the delegator, once, audited; the delegate can no longer act
-- ---------------------------------------------------------------------------
RESET ioffice.actor;
SELECT g.id AS current FROM ioffice.delegation g
JOIN ioffice.person f ON f.id = g.from_person JOIN ioffice.person t ON t.id = g.to_person
WHERE f.login = 'loi' AND t.login = 'kien' AND now() >= g.valid_from AND now() < g.valid_until \gset
SET ioffice.actor = 'kien';
SELECT regress_error(format('SELECT ioffice.revoke_delegation(%s)', :current), :current) AS revoked_by_the_delegate;
SET ioffice.actor = 'dai';
SELECT regress_error(format('SELECT ioffice.revoke_delegation(%s)', :current), :current) AS revoked_by_a_stranger;
SET ioffice.actor = 'loi';
SELECT ioffice.revoke_delegation(:current);
SELECT regress_error(format('SELECT ioffice.revoke_delegation(%s)', :current), :current) AS revoked_twice;
SELECT revoked_at IS NOT NULL AS revoked, valid_until <= now() AS ended,
       p.login AS revoked_by
FROM ioffice.delegation g JOIN ioffice.person p ON p.id = g.revoked_by WHERE g.id = :current;
SELECT a.action, a.detail ? 'valid_until_given' AS keeps_the_given_end
FROM ioffice.audit a WHERE a.entity = 'delegation' AND a.entity_id = :current ORDER BY a.id;
-- the vice-chairman no longer approves in the chairman's name
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Công văn sau khi thu hồi ủy quyền') AS after \gset
SELECT ioffice.attach(:after, 'sau_thu_hoi.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:after, 'submit', 'loi');
SET ioffice.actor = 'kien';
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :after, 'approve', 'regress_thuy'), :after)
       AS approves_after_revocation;
-- a new delegation from now on may be given again
SET ioffice.actor = 'loi';
SELECT ioffice.delegate('kien', now(), now() + interval '1 day') IS NOT NULL AS delegated_again;
SET ioffice.actor = 'kien';
SELECT ioffice.act(:after, 'approve', 'regress_thuy', 'Thay Chủ tịch duyệt');
-- one not yet started is cancelled: its period becomes empty
SET ioffice.actor = 'loi';
SELECT ioffice.revoke_delegation(:later);
SELECT valid_until = valid_from AS empty_period FROM ioffice.delegation WHERE id = :later;

-- ---------------------------------------------------------------------------
-- A delegation that delegate() would refuse (one of an older version, here
-- written by the owner) does not let a specialist act in a leader's name
-- ---------------------------------------------------------------------------
RESET ioffice.actor;
INSERT INTO ioffice.delegation (from_person, to_person, valid_from, valid_until)
SELECT f.id, t.id, now(), now() + interval '1 day'
FROM ioffice.person f, ioffice.person t WHERE f.login = 'hoa' AND t.login = 'regress_tuan';
SET ioffice.actor = 'regress_luan';
SELECT ioffice.create_outgoing('CV', 'Công văn trình Trưởng phòng') AS legacy \gset
SELECT ioffice.attach(:legacy, 'truong_phong.pdf', content) IS NOT NULL AS attached FROM pdf;
SELECT ioffice.act(:legacy, 'submit', 'hoa');
SET ioffice.actor = 'regress_tuan';
SELECT regress_error(format('SELECT ioffice.act(%s, %L, %L)', :legacy, 'approve', 'regress_thuy'), :legacy)
       AS specialist_approves_as_delegate;
RESET ioffice.actor;
