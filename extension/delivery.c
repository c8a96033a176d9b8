/*-------------------------------------------------------------------------
 * delivery.c
 *	  Effect deliver_internal: an outgoing document issued to agencies that
 *	  live in this database arrives in their incoming queues by itself.
 *
 * Each recipient agency gets an incoming document in state "received"
 * (waiting for its clerk to register it), linked to its source, with copies
 * of the source's current files.  Its number, symbol and date are the
 * source's: the incoming register reads them through the link, so this
 * effect can run before the source is numbered and the register row stays
 * locked for the shortest time.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "workflow.h"

static IofficePlan recipient_agencies = {
	NULL,
	"SELECT DISTINCT u.id FROM jsonb_array_elements("
	"         (SELECT recipients FROM ioffice.document WHERE id = $1)) AS e "
	"  JOIN ioffice.unit u ON u.id = (e->>'agency')::bigint AND u.kind = 'agency' "
	" WHERE e ? 'agency' AND u.id <> (SELECT un.agency_id FROM ioffice.person p "
	"                                  JOIN ioffice.unit un ON un.id = p.unit_id WHERE p.id = $2) "
	" ORDER BY u.id",
	2, {INT8OID, INT8OID}
};

static IofficePlan deliver_one = {
	NULL,
	"INSERT INTO ioffice.document (workflow, direction, doc_type, abstract, state, urgency, flash_at, "
	"       confidentiality, field, agency_id, drafting_unit_id, signer_id, page_count, copies, "
	"       due_date, sender_agency_id, source_document_id, received_at) "
	"SELECT 'incoming', 'incoming', d.doc_type, d.abstract, "
	"       (SELECT state FROM ioffice.workflow_state WHERE workflow = 'incoming' AND initial "
	"         ORDER BY state LIMIT 1), "
	"       d.urgency, d.flash_at, d.confidentiality, d.field, $2, $2, d.signer_id, d.page_count, "
	"       d.copies, d.due_date, un.agency_id, d.id, now() "
	"  FROM ioffice.document d, ioffice.person p JOIN ioffice.unit un ON un.id = p.unit_id "
	" WHERE d.id = $1 AND p.id = $3 "
	"ON CONFLICT (agency_id, source_document_id) WHERE source_document_id IS NOT NULL DO NOTHING "
	"RETURNING id",
	3, {INT8OID, INT8OID, INT8OID}
};

static IofficePlan copy_files = {
	NULL,
	"INSERT INTO ioffice.file (document_id, name, kind, size, sha256, content, uploaded_by) "
	"SELECT $2, name, kind, size, sha256, content, $3 FROM ioffice.file "
	" WHERE document_id = $1 AND superseded_at IS NULL AND removed_at IS NULL ORDER BY id",
	3, {INT8OID, INT8OID, INT8OID}
};

void
ioffice_deliver_internal(ActContext *ctx)
{
	Datum		values[3];
	List	   *agencies = NIL;
	ListCell   *lc;
	uint64		i;
	int			delivered = 0;

	values[0] = Int64GetDatum(ctx->doc);
	values[1] = Int64GetDatum(ctx->actor);
	ioffice_exec(&recipient_agencies, values, NULL, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		int64		agency = 0;

		ioffice_get_int64((int) i, 1, &agency);
		agencies = lappend(agencies, palloc(sizeof(int64)));
		*(int64 *) llast(agencies) = agency;
	}

	foreach(lc, agencies)
	{
		int64		agency = *(int64 *) lfirst(lc);
		int64		incoming = 0;
		JsonbBuild *b;

		values[0] = Int64GetDatum(ctx->doc);
		values[1] = Int64GetDatum(agency);
		values[2] = Int64GetDatum(ctx->actor);
		ioffice_exec(&deliver_one, values, NULL, 1);
		if (!ioffice_get_int64(0, 1, &incoming))
			continue;			/* delivered before */
		values[1] = Int64GetDatum(incoming);
		ioffice_exec(&copy_files, values, NULL, 0);

		b = ioffice_jsonb_begin();
		ioffice_jsonb_add_int(b, "source", ctx->doc);
		ioffice_jsonb_add_int(b, "files", (int64) SPI_processed);
		ioffice_audit(ctx->actor, ctx->on_behalf_of, "document", incoming, "deliver", NULL,
					  "received", ioffice_jsonb_end(b));
		delivered++;
	}
	ioffice_jsonb_add_int(ctx->detail, "delivered", delivered);
}
