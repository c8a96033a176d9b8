/*-------------------------------------------------------------------------
 * outbox.h
 *	  Queueing events for the HTTP outbox (extension/outbox.c); the worker
 *	  delivers them (workers/outbox_delivery.c).
 *-------------------------------------------------------------------------
 */
#ifndef IOFFICE_OUTBOX_H
#define IOFFICE_OUTBOX_H

#include "postgres.h"

#include "utils/jsonb.h"

/* one row per endpoint taking the event; SPI connected; returns the rows queued */
extern int	ioffice_outbox_enqueue(const char *event, Jsonb *data);

/*
 * notify.<channel> (sms, email, zalo) to a person (person <> 0; their phone
 * or e-mail address) or to an address given directly; false when there is
 * nobody to reach.
 */
extern bool ioffice_outbox_notify(const char *channel, int64 person, const char *address,
								  const char *message, Jsonb *about);

#endif							/* IOFFICE_OUTBOX_H */
