/*
 * srv_http.h — the server's HTTP listener (nng's HTTP server): /metrics
 * (Prometheus text format 0.0.4), /healthz, /readyz, /api/v1/drift (JSON)
 * and the status page at / (server/www, embedded at build time, so the
 * server needs no files at run time and the page works offline).
 *
 * Threading: nng calls the handlers on its own I/O threads; they only
 * queue the request. One HTTP worker thread builds every answer (it may
 * wait for the engine's locks or read LMDB) and finishes the aio with no
 * lock held. Requests are answered in arrival order; a slow scrape delays
 * the next HTTP request, never an nng REQ/REP one.
 */
#ifndef ANC_SRV_HTTP_H
#define ANC_SRV_HTTP_H

#include "anc_error.h"
#include "anc_index.h"
#include "anc_proto.h"
#include "srv_auth.h"

#define SRV_HTTP_DEFAULT "127.0.0.1:7701"

typedef struct srv_http srv_http;

/* Listen on addr ("HOST:PORT", port 0 picks a free one; name: what gave
 * it, for messages, "--http" when NULL). db, data_dir and
 * auth are borrowed and must outlive the listener; when auth has keys,
 * /metrics and /api/v1/drift need one of role read or above ("Authorization:
 * Bearer KEY"), the health checks and the page itself do not. ANC_EINVAL
 * for a bad address, ANC_ETRANSPORT with nng's message when it cannot
 * listen. */
int srv_http_start(const char *addr, anc_db *db, const char *data_dir,
                   const anc_auth *auth, const char *name, srv_http **out,
                   anc_error *err);

/* The address actually bound, "http://HOST:PORT". */
const char *srv_http_url(const srv_http *h);

/* /readyz answers 200 only while ready is 1 (set once the REQ/REP
 * listeners are up, cleared when shutdown starts). */
void srv_http_set_ready(srv_http *h, int ready);

/* Stop listening, answer queued requests with 503, join the worker, free.
 * NULL is fine. */
void srv_http_stop(srv_http *h);

/* Build the /api/v1/drift JSON for db into *out (tests, and the handler):
 * {"generated": UNIX, "contracts":[{"collection","contract","latest":
 * REPORT|null,"history":[REPORT...]}]}; history holds the reports no older
 * than since (Unix seconds; 0: all kept). */
int srv_http_drift_json(anc_db *db, double since, anc_buf *out,
                        anc_error *err);

#endif /* ANC_SRV_HTTP_H */
