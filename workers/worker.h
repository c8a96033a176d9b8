/*-------------------------------------------------------------------------
 * worker.h
 *	  The ioffice background worker: shared state, waking, the signer.
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_WORKER_H
#define IOFFICE_WORKER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"

#define IOFFICE_MAX_WORKERS 8
#define IOFFICE_ERROR_LEN 256

/* one slot per served database, in shared memory */
typedef struct IofficeWorkerSlot
{
	char		dbname[NAMEDATALEN];
	Oid			dboid;			/* set when the worker connected */
	pid_t		pid;
	Latch	   *latch;
	TimestampTz started_at;
	TimestampTz last_batch_at;
	int64		jobs_done;
	int64		jobs_failed;
	int64		batches;
	int64		deliveries;		/* outbox events delivered */
	int64		deliveries_failed;	/* attempts that failed */
	char		state[32];
	char		last_error[IOFFICE_ERROR_LEN];
	TimestampTz last_error_at;
} IofficeWorkerSlot;

/* settings */
extern char *ioffice_worker_databases;
extern char *ioffice_keystore;
extern int	ioffice_worker_naptime;
extern int	ioffice_worker_batch;

extern void ioffice_worker_init(void);	/* from _PG_init */
extern void ioffice_outbox_delivery_init(void); /* its settings */
extern void ioffice_worker_wake_at_commit(void);

/*
 * the worker's batches, and what they report to its slot: the signing
 * batch returns the jobs whose outcome it recorded (*failed of them failed)
 */
extern int	ioffice_worker_sign_batch(int limit, int64 *failed);
extern int	ioffice_worker_deliver_batch(int limit, int64 *failed, int64 *dead, long *wait_ms);
extern int	ioffice_outbox_batch;
extern void ioffice_worker_note_error(const char *message);
extern void ioffice_worker_set_state(const char *state);

/* signer.c: one implementation of signing; PAdES or a remote service would be others */
typedef struct IofficeSignResult
{
	bool		ok;
	char	   *reason;			/* when not ok */
	bytea	   *cms;			/* DER, detached CMS SignedData, CAdES-BES */
} IofficeSignResult;

extern IofficeSignResult ioffice_sign_detached_digest(const char *cert_pem, const char *key_file,
													  const unsigned char *sha256);

#endif
