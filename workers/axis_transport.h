/*-------------------------------------------------------------------------
 * axis_transport.h
 *	  The transport of edXML packages to and from an interconnection axis,
 *	  behind one small interface (axis_transport.c): the VXP-shaped REST
 *	  axis, and posting to a row of the endpoint table.
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_AXIS_TRANSPORT_H
#define IOFFICE_AXIS_TRANSPORT_H

#include "http_calls.h"

/* an exchange_axis row, as the worker read it */
typedef struct AxisConfig
{
	int64		id;
	int64		agency;
	char	   *transport;		/* "vxp", "endpoint" */
	char	   *url;			/* vxp: the base URL; endpoint: the endpoint's */
	char	   *system_id;		/* vxp */
	char	   *secret;			/* the HMAC key */
	int			timeout_ms;
	int			max_attempts;
	int			poll_seconds;
} AxisConfig;

typedef struct AxisTransport
{
	const char *name;
	bool		pulls;			/* list, fetch, acknowledge */
	/* a package (message type "edoc" or "status"), the same key each attempt */
	void		(*send) (HttpCall *c, const AxisConfig *axis, const char *message_type,
						 const char *idempotency_key, const char *package, size_t len);
	/* the packages waiting for us; the answer: {"data": [{"docId": ...}, ...]} */
	void		(*list) (HttpCall *c, const AxisConfig *axis);
	/* one package; the answer: its bytes */
	void		(*fetch) (HttpCall *c, const AxisConfig *axis, const char *doc_id);
	/* a package taken (done) or refused (fail, with why) */
	void		(*acknowledge) (HttpCall *c, const AxisConfig *axis, const char *doc_id,
								bool done, const char *reason);
} AxisTransport;

extern const AxisTransport *axis_transport(const char *name);

#endif
