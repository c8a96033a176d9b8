/*-------------------------------------------------------------------------
 * ioffice.h
 *	  Declarations shared by the C files of the ioffice extension.
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_H
#define IOFFICE_H

#include "postgres.h"

#include "access/htup.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"
#include "utils/date.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* settings (ioffice.c) */
extern char *ioffice_actor_setting;
extern char *ioffice_timezone_setting;
extern int	ioffice_max_file_name_length;
extern char *ioffice_allowed_file_types;
extern bool ioffice_audit_chaining;
extern int	ioffice_due_soon_days;
extern int	ioffice_dossier_backdating_days;

/* spi_util.c: prepared plans kept for the life of the backend */
typedef struct IofficePlan
{
	SPIPlanPtr	plan;
	const char *sql;
	int			nargs;
	Oid			argtypes[16];
} IofficePlan;

extern int	ioffice_exec(IofficePlan *p, Datum *values, const char *nulls, long count);
extern int	ioffice_exec_readonly(IofficePlan *p, Datum *values, const char *nulls,
								  long count);
extern bool ioffice_get_int64(int row, int col, int64 *out);
extern bool ioffice_get_int32(int row, int col, int32 *out);
extern bool ioffice_get_bool(int row, int col, bool *out);
extern char *ioffice_get_text(int row, int col);

/* actor.c */
extern int64 ioffice_resolve_actor(bool missing_ok);
extern bool ioffice_lookup_person(const char *login, int64 *id);
extern int64 ioffice_person_id(const char *login);
extern bool ioffice_has_delegation(int64 from_person, int64 to_person);
extern bool ioffice_person_has_role(int64 person, const char *role);
extern bool ioffice_person_is_clerk_of(int64 person, int64 agency);
extern bool ioffice_person_is_one_stop_of(int64 person, int64 agency);
extern bool ioffice_person_of_agency(int64 person, int64 agency);
extern bool ioffice_person_leads(int64 person, int64 unit);
extern void ioffice_require_document(int64 doc);
extern bool ioffice_document_visible(int64 doc);
extern int64 ioffice_require_file(int64 file);
extern int64 ioffice_require_dossier(const char *code, bool delegate_of_holder);

/* access_log.c */
extern void ioffice_log_access(const char *action, int64 doc, int64 file, int64 case_file,
							   const char *detail);
extern void ioffice_refuse_erased(int64 file) pg_attribute_noreturn();

/* engine_scope.c */
extern void ioffice_engine_scope_init(void);
extern void ioffice_engine_enter(void);
extern void ioffice_engine_leave(void);
extern bool ioffice_in_engine(void);

/* audit.c */
extern Jsonb *ioffice_row_jsonb(HeapTuple tup, TupleDesc desc);
extern void ioffice_audit(int64 actor, int64 on_behalf_of, const char *entity, int64 entity_id,
						  const char *action, const char *state_before,
						  const char *state_after, Jsonb *detail);
extern void ioffice_audit_in_chain(const char *chain, int64 actor, int64 on_behalf_of,
								   const char *entity, int64 entity_id, const char *action,
								   const char *state_before, const char *state_after,
								   Jsonb *detail);
extern char *ioffice_document_chain(int64 doc);
extern bool ioffice_restoring_dump(void);
extern void ioffice_audit_hash(const char *chain, int64 seq, bytea *prev_hash, TimestampTz at,
							   bool has_actor, int64 actor, bool has_behalf, int64 on_behalf_of,
							   const char *db_role, const char *entity, bool has_entity_id,
							   int64 entity_id, const char *action, const char *state_before,
							   const char *state_after, const char *detail_text,
							   uint8 *out);

/* audit_verify.c, audit_sign.c: the checkpoints of the audit trail */
extern char *ioffice_audit_certificate;
extern int	ioffice_audit_seal_interval;
extern void ioffice_audit_sign_init(void);
extern void ioffice_checkpoint_content(StringInfo buf, int64 id, TimestampTz at, int32 chains,
									   int64 records, const uint8 *root, const uint8 *prev);
extern int64 ioffice_audit_seal_internal(bool *sealed);
extern void ioffice_merkle_leaf(const char *chain, int64 seq, const uint8 *hash, uint8 *out);
extern void ioffice_merkle_root(uint8 (*level)[32], int n, uint8 *out);
extern bool ioffice_audit_certificate_fingerprint(int n, uint8 *out);
typedef enum IofficeCheckpointSig
{
	IOFFICE_CP_SIG_OK,
	IOFFICE_CP_SIG_MISMATCH,
	IOFFICE_CP_SIG_OTHER_KEY,
	IOFFICE_CP_SIG_UNREADABLE
} IofficeCheckpointSig;
extern char *ioffice_x509_subject_text(const void *cert);	/* certificates.c */
struct x509_store_st;
extern struct x509_store_st *ioffice_trust_store(void);	/* certificates.c */
extern const char *ioffice_chain_reason(int err);	/* certificates.c */
/* token_signing.c: signing_request(), submit_signature() */
extern int	ioffice_signing_request_ttl;
extern void ioffice_token_signing_init(void);
/* token_signing.c, for the remote path (workers/remote_signing.c) */
extern const char *ioffice_token_attrs_digest(int64 certificate, const uint8 *content_digest,
											  uint8 *attrs_digest);
extern bytea *ioffice_token_answer_cms(int64 signature, int64 certificate,
									   const uint8 *content_digest, const uint8 *attrs_digest,
									   const char *answer, size_t len, const char *content,
									   size_t content_len, int64 signer, int64 *signed_by,
									   const char **form, const char **message,
									   const char **detail);
extern IofficeCheckpointSig ioffice_checkpoint_signature_check(bytea *cms_der, const char *content,
															   int len, char **signer);

/* trigger_util.c (triggers/): what every C trigger function checks first */
struct TriggerData;
extern struct TriggerData *ioffice_trigger_data(FunctionCallInfo fcinfo, const char *name);
extern HeapTuple ioffice_trigger_row(struct TriggerData *trigdata);
extern const char *ioffice_trigger_rows(struct TriggerData *trigdata, HeapTuple *old_tup,
										HeapTuple *new_tup);

/* jsonb_util.c: reading act() options and building details */
typedef struct JsonbBuild JsonbBuild;
extern JsonbValue *ioffice_jsonb_get(Jsonb *jb, const char *key);
extern List *ioffice_jsonb_keys(Jsonb *jb);
extern JsonbBuild *ioffice_jsonb_begin(void);
extern void ioffice_jsonb_add_text(JsonbBuild *b, const char *key, const char *value);
extern void ioffice_jsonb_add_int(JsonbBuild *b, const char *key, int64 value);
extern void ioffice_jsonb_add_jsonb(JsonbBuild *b, const char *key, Jsonb *value);
extern Jsonb *ioffice_jsonb_end(JsonbBuild *b);
extern bool ioffice_numeric_to_int64(Numeric n, int64 *out);

/* bytes.c: SHA-256 and bytea values */
extern void ioffice_sha256_bytes(const void *data, size_t len, uint8 *out);
extern bytea *ioffice_sha256(bytea *content);
extern bytea *ioffice_bytea(const void *data, size_t len);
extern bytea *ioffice_spi_bytea(const void *data, size_t len);
extern text *ioffice_spi_text(const char *s);

/* dates.c: every date and time read from text */
extern bool ioffice_parse_iso_date(const char *s, int len, DateADT *out);
extern Datum ioffice_datetime_in(const char *s, Oid type);
extern bool ioffice_try_datetime_in(const char *s, Oid type, Datum *out);

/* files.c: the checks and storage shared by every kind of file */
extern void ioffice_check_file_name(text *name);
extern const char *ioffice_check_file_content(text *name, bytea *content);
extern bool ioffice_kind_interconnectable(const char *kind);
extern int64 ioffice_add_document_file(int64 doc, text *name, bytea *content, const char *kind,
									   int64 actor, const char *action);

/*
 * workers/convert_jobs.c: the file whose PDF the signing worker is recording,
 * the one new version a frozen document's files may get (files.c); 0 else
 */
extern int64 ioffice_conversion_source;

/*
 * files.c: set only by the signer around writing a signed PDF as the new
 * version of the file it signed; the trigger on table file then lets that
 * one version in even where files are frozen (see ioffice_file_frozen)
 */
extern bool ioffice_signed_version_allowed;

/* pdf_helper.c: the PDF helper process, with its limits */
extern int	ioffice_pdf_helper_memory;
extern int	ioffice_pdf_helper_cpu;
extern int	ioffice_pdf_helper_timeout;
extern void ioffice_pdf_helper_init(void);
extern char *ioffice_pdf_helper_run(char **argv, const char *in, size_t in_len,
									StringInfo out, int *exit_code);
extern char *ioffice_helper_run_program(const char *path, const char *name, char **argv,
										const char *in, size_t in_len, StringInfo out,
										size_t max_out, bool *truncated, int *exit_code);
extern char *ioffice_pdf_helper_serve(const char *header, const char *in, size_t in_len,
									  StringInfo out, int *status);
extern char *ioffice_helper_spawn(const char *path, char **argv, long cpu_hard, pid_t *pid,
								  int *in_fd, int *out_fd);
extern char *ioffice_helper_status_reason(const char *name, int status);
extern char *ioffice_pdf_helper_once(const char *header, const char *in, size_t in_len,
									 StringInfo out, int *status);

/* edxml.c: the edXML helper process (reading and signing packages) */
extern int	ioffice_edxml_max_size;
extern void ioffice_edxml_init(void);
extern char *ioffice_edxml_read(const char *pkg, size_t pkg_len, const char *trust_pem,
								size_t trust_len);
extern char *ioffice_edxml_sign(const char *pkg, size_t pkg_len, const char *key_path,
								const char *cert_pem, int nfiles, const char *const *files,
								const size_t *file_lens, StringInfo out);

/* filetype.c */
extern const char *ioffice_detect_file_kind(const unsigned char *data, size_t len);

/* registers.c */
extern char *ioffice_format_number_str(int32 number);
extern void ioffice_check_doc_type(const char *doc_type);
extern char *ioffice_symbol_for(int32 number, const char *doc_type, int64 agency,
								int64 drafting_unit);

#endif							/* IOFFICE_H */
