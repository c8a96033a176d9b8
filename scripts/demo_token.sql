-- The signer's own tool (a USB token through the VGCA signing plug-in), as
-- scripts/demo.sql and scripts/demo_dossier.sql play it: included by both.
-- the signer's tool asks for the signing request of the actor's pending
-- signature of doc, once its file is a PDF (a Word file is converted by the
-- worker first): the signature's id and the digest to sign
CREATE FUNCTION pg_temp.token_request(doc bigint, OUT sig bigint, OUT digest text)
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..600 LOOP
        SELECT s.id INTO sig FROM ioffice.signature s JOIN ioffice.file f ON f.id = s.file_id
         WHERE s.document_id = doc AND s.signer_id = ioffice.actor() AND s.kind = 'personal'
           AND s.status = 'pending' AND f.kind = 'pdf'
         ORDER BY s.id LIMIT 1;
        EXIT WHEN FOUND;
        PERFORM pg_sleep(0.2);
    END LOOP;
    IF sig IS NULL THEN
        RAISE EXCEPTION 'no PDF to sign on document % after 120 s', doc;
    END IF;
    digest := ioffice.signing_request(sig)->>'digest';
END
$$;
