/*-------------------------------------------------------------------------
 * worker.h
 *	  The ioffice background workers: shared state, waking, the signer.
 *
 * Each served database has two processes: the signer, which signs queued
 * signature jobs, and the deliverer, which delivers the HTTP outbox.  They
 * share the database's slot in shared memory, each with its own part.
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_WORKER_H
#define IOFFICE_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "storage/latch.h"

#define IOFFICE_MAX_WORKERS 8	/* databases */
#define IOFFICE_ERROR_LEN 256

/* the processes of a database */
typedef enum IofficeRole
{
	IOFFICE_SIGNER = 0,
	IOFFICE_DELIVERER = 1
} IofficeRole;
#define IOFFICE_ROLES 2

/* one process of a database, in shared memory */
typedef struct IofficeWorkerProc
{
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;			/* set once connected */
	TimestampTz started_at;
	char		state[32];
} IofficeWorkerProc;

/* one slot per served database, in shared memory */
typedef struct IofficeWorkerSlot
{
	char		dbname[NAMEDATALEN];
	Oid			dboid;			/* set when a process connected */
	IofficeWorkerProc procs[IOFFICE_ROLES];
	TimestampTz last_batch_at;
	int64		jobs_done;
	int64		jobs_failed;
	int64		batches;
	int64		deliveries;		/* outbox events delivered */
	int64		deliveries_failed;	/* attempts that failed */
	char		last_error[IOFFICE_ERROR_LEN];
	TimestampTz last_error_at;
	/* connecting to the database: failures in a row, and when to try again */
	int			connect_failures;
	TimestampTz connect_retry_at;
	char		connect_error[IOFFICE_ERROR_LEN];	/* the last failure's message */
	/* the signer's converter of Word and Excel files (convert_jobs.c) */
	pid_t		converter_pid;	/* the helper process; 0: not running */
	pid_t		soffice_pid;	/* its LibreOffice; 0: not started */
	int64		conversions_done;
	int64		conversions_failed;	/* signatures failed by a conversion */
} IofficeWorkerSlot;

/* settings */
extern char *ioffice_worker_databases;
extern char *ioffice_keystore;
extern bool ioffice_keystore_personal;
extern int	ioffice_worker_naptime;
extern int	ioffice_worker_batch;

extern void ioffice_worker_init(void);	/* from _PG_init */
extern void ioffice_outbox_delivery_init(void); /* its settings */
extern void ioffice_worker_wake_at_commit(void);
extern bool ioffice_worker_note_refusal(int64 signature, int64 document, int64 actor,
										const char *what, const char *sqlstate,
										const char *message);

/*
 * the signer's batch: returns the jobs whose outcome it recorded (*failed of
 * them failed)
 */
extern int	ioffice_worker_sign_batch(int limit, int64 *failed);

/*
 * audit_jobs.c: the signer's sealing, signing and publishing of the audit
 * trail's checkpoints; true when more signing may wait
 */
extern bool ioffice_worker_audit_step(void);
extern long ioffice_worker_audit_wait_ms(long max_ms);

/* count_jobs.c: dashboard()'s counter deltas folded, about every second */
extern void ioffice_worker_fold_counts(void);

/* archive_jobs.c: the archive's 30-day warnings of closed case files */
extern void ioffice_worker_archive_warnings(void);

/* reminder_jobs.c: reminders of tasks due and overdue, leaders' digests */
extern void ioffice_worker_reminders(void);

/* text_jobs.c: a PDF's text extracted for search(); true when one was */
extern int	ioffice_search_text_max;
extern int	ioffice_search_file_max;
extern void ioffice_text_jobs_init(void);	/* its settings */
extern bool ioffice_worker_extract_step(void);
extern long ioffice_worker_extract_wait_ms(long max_ms);	/* while a program runs */
extern long ioffice_worker_extract_watch(long max_ms, int *in_fd, int *out_fd);
extern const char *ioffice_worker_extract_state(void);	/* NULL when none runs */
extern void ioffice_text_clean(StringInfo s);	/* valid UTF-8 without NUL bytes */

/* retention_jobs.c: what is kept for a time only, removed; true when there is more */
extern int	ioffice_export_retention;
extern int	ioffice_access_log_retention;
extern void ioffice_retention_init(void);	/* its settings */
extern bool ioffice_worker_retention_step(void);

/* case_file_pdf_jobs.c: a case file as one PDF (case_file_pdf()); true when one was made */
extern bool ioffice_worker_case_file_pdf_step(void);

/*
 * remote_signing.c: the signer's remote signing (signing_provider): a step
 * between its others (true when more signatures wait to be prepared), how
 * long it may sleep, and its sleep while calls are in flight
 */
extern void ioffice_remote_signing_init(void);	/* its settings */
extern bool ioffice_worker_remote_step(bool busy);
extern bool ioffice_worker_remote_flying(void);
extern long ioffice_worker_remote_wait_ms(long max_ms);
extern void ioffice_worker_remote_wait(long max_ms);

/*
 * edxml_exchange.c: the signer's exchange of edXML packages with the
 * interconnection axis: a step, whether calls are in flight, how long it
 * may sleep, its sleep while they are
 */
extern bool ioffice_worker_axis_step(void);
extern bool ioffice_worker_axis_flying(void);
extern long ioffice_worker_axis_wait_ms(long max_ms);
extern void ioffice_worker_axis_wait(long max_ms);

/* the deliverer's loop (outbox_delivery.c); returns never */
extern void ioffice_deliverer_loop(void) pg_attribute_noreturn();

/* for both loops (worker.c) */
extern void ioffice_worker_note_error(const char *message);
extern void ioffice_worker_set_state(const char *state);
extern void ioffice_worker_count(int64 done, int64 failed);
extern bool ioffice_worker_reload(void);
extern void ioffice_worker_note_converter(pid_t helper, pid_t soffice);
extern void ioffice_worker_note_conversion(bool ok, int jobs_failed);

/* signer.c: one implementation of signing; PAdES or a remote service would be others */
typedef struct IofficeSignResult
{
	bool		ok;
	char	   *reason;			/* when not ok */
	bytea	   *cms;			/* DER, detached CMS SignedData, CAdES-BES */
} IofficeSignResult;

extern IofficeSignResult ioffice_sign_detached_digest(const char *cert_pem, const char *key_file,
													  const unsigned char *sha256);

/* signer.c: the configuration was reloaded (keys of an HSM are loaded again) */
extern void ioffice_signer_reloaded(void);

/*
 * hsm_key.c: keys in a hardware security module, named by a PKCS#11 URI
 * (certificate.key_uri), loaded by the signing worker only
 */
struct evp_pkey_st;
extern void ioffice_hsm_init(void);
extern bool ioffice_is_pkcs11_uri(const char *ref);
extern struct evp_pkey_st *ioffice_hsm_load_key(const char *uri, uint64 *generation, char **reason);
extern char *ioffice_hsm_helper_spec(const char *uri, char **reason);
extern void ioffice_hsm_key_failed(const char *uri);
extern void ioffice_hsm_reloaded(void);
extern bool ioffice_hsm_restart_wanted(void);

/* signer.c: the DER of a SignerInfo's signed attributes, as they are signed */
struct CMS_SignerInfo_st;
extern bool ioffice_signed_attrs_der(struct CMS_SignerInfo_st *si, StringInfo out);

/* signer.c: the CMS of a PAdES signature (no signing-time attribute) */
extern bytea *ioffice_sign_pades_digest(const char *cert_pem, const char *key_file,
										const unsigned char *sha256, char **reason);

/* timestamp.c: PAdES B-T, an RFC 3161 timestamp on a signature (ioffice.tsa_url) */
extern char *ioffice_tsa_url;
extern int	ioffice_tsa_timeout;
extern void ioffice_timestamp_init(void);
extern bool ioffice_timestamp_wanted(void);
extern bytea *ioffice_timestamp_cms(bytea *cms_der, char **reason);
extern char *ioffice_pdf_add_dss(const char *signed_pdf, size_t len, bytea *cms, bool served,
								 size_t *out_len, char **reason);

/* pdf_sign.c: a PAdES signature as an incremental update of a PDF */
typedef struct IofficePdfLook
{
	bytea	   *image;			/* PNG: the signer's signature or the seal; NULL: invisible */
	double		seal_mm;		/* > 0: a seal of this diameter */
	int			page;			/* > 0: centred on (x, y) of this page */
	double		x;
	double		y;
	char	   *reason;			/* the signature's /Reason, when not the default
								 * (a copy: its kind, agency and symbol) */
	/*
	 * the issue stamp (the organisation's signature at issue): the number
	 * and the issue date's day, month and year as Decree 30 writes them,
	 * for the blanks of the document; NULL: none
	 */
	char	   *number;
	char	   *day;
	char	   *month;
	char	   *year;
	/*
	 * a signature without image, visible as text at the top right of page
	 * 1: its lines (separated by 0x1F) before the signing time; NULL: none
	 */
	char	   *corner;
} IofficePdfLook;

typedef struct IofficePdfSigned
{
	bool		ok;
	bool		not_pdf;		/* the helper cannot read it: sign detached */
	char	   *reason;
	bytea	   *cms;
	int64		signed_file;	/* the new version of the file */
	char	   *note;			/* what the helper says it wrote (the issue stamp), or NULL */
} IofficePdfSigned;

extern IofficePdfSigned ioffice_pdf_sign(int64 file, int64 signer, const char *cert_pem,
										 const char *key_file, const char *signer_name,
										 const char *kind, const IofficePdfLook *look);

/*
 * pdf_sign.c, in steps: the prepared update (also for the signer's own
 * tool, token_signing.c), the CMS written into it, the signed PDF stored
 */
typedef struct IofficePdfPrepared
{
	bool		ok;
	bool		not_pdf;		/* the helper cannot read it: sign detached */
	char	   *reason;
	int64		target;			/* the version prepared (the newest of the file's chain) */
	int64		doc;
	char	   *name;
	bytea	   *content;		/* the target's bytes */
	const char *pdf;			/* the prepared update: content plus the new revision */
	size_t		len;
	int64		br[4];			/* its /ByteRange; the placeholder is [br[1], br[2]) */
	char	   *note;			/* what the issue stamp wrote, or NULL */
	uint8		digest[32];		/* SHA-256 of the ByteRange's bytes */
} IofficePdfPrepared;

extern IofficePdfPrepared ioffice_pdf_prepare(int64 file, const char *signer_name, const char *kind,
											  const IofficePdfLook *look, bool served);
extern char *ioffice_pdf_embed(const char *pdf, size_t len, const int64 br[4], bytea *cms);
extern int64 ioffice_pdf_store_version(int64 doc, const char *name, int64 target, int64 signer,
									   const char *signed_pdf, size_t len);

#endif
