/*-------------------------------------------------------------------------
 * convert.h
 *	  Word and Excel files to PDF before they are signed: the jobs
 *	  (convert_jobs.c) and the helper process that converts (converter.c).
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_CONVERT_H
#define IOFFICE_CONVERT_H

#include "postgres.h"

#include "port.h"

/*
 * The kinds of file a signature turns into a PDF first, as an SQL list: the
 * signer's batch (sign_jobs.c) leaves their jobs to the conversion.
 */
#define IOFFICE_CONVERTIBLE_KINDS_SQL "('doc', 'docx', 'xls', 'xlsx', 'odt', 'ods')"

/*
 * The kinds of file whose text for search() the converter's LibreOffice
 * reads (convert_jobs.c), not the signer's text step (text_jobs.c)
 */
#define IOFFICE_CONVERTER_TEXT_KINDS_SQL "('doc', 'xls')"

/* settings */
extern int	ioffice_convert_timeout;
extern int	ioffice_convert_memory_limit;
extern char *ioffice_convert_python;

extern void ioffice_convert_init(void);	/* the settings, from _PG_init */

/*
 * convert_jobs.c: the signer's conversion, and the text of doc and xls files,
 * one file at a time, never waited for
 */
extern bool ioffice_worker_convert_step(void);
extern long ioffice_worker_convert_wait_ms(long naptime_ms);
extern pgsocket ioffice_worker_convert_socket(void);

/* converter.c: the helper process */
extern bool ioffice_converter_start(const char *python, const char *workdir, int memory_mb,
									char **reason);
extern bool ioffice_converter_send(const char *line);
extern int	ioffice_converter_read_line(char **line);
extern pgsocket ioffice_converter_socket(void);
extern pid_t ioffice_converter_pid(void);
extern void ioffice_converter_stop(void);

#endif
