/*
 * anc_client.h — libanchorage-client: the C API for talking to an
 * anchorage-server over nng REQ/REP (tcp://, ipc://).
 *
 * A client holds one REQ socket. Each call sends one request, waits for its
 * reply (up to the timeout) and decodes it. Calls on one anc_client must not
 * overlap: use one client per thread.
 *
 * Results come back as a decoded anc_resp (proto/anc_proto.h) owned by the
 * caller, released with anc_resp_free. A server-side error is returned as its
 * code, with err->msg holding the server's message; *out is then NULL.
 * Transport failures are ANC_ETRANSPORT / ANC_ETIMEOUT with nng's message.
 */
#ifndef ANC_CLIENT_H
#define ANC_CLIENT_H

#include <stdint.h>

#include "anc_error.h"
#include "anc_proto.h"
#include "anc_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct anc_client anc_client;

typedef struct anc_client_options {
	int timeout_ms;     /* per request; default 30000 */
	anc_limits limits;  /* applied to responses; default anc_limits_default */
} anc_client_options;

void anc_client_options_default(anc_client_options *opt);

/* Connect to url (dial is asynchronous: a server started a moment later is
 * still reached). opt may be NULL. */
int anc_client_open(const char *url, const anc_client_options *opt,
                    anc_client **out, anc_error *err);
void anc_client_close(anc_client *c); /* NULL is fine */

int anc_client_ping(anc_client *c, anc_resp **out, anc_error *err);
int anc_client_info(anc_client *c, anc_resp **out, anc_error *err);
int anc_client_collection_create(anc_client *c, const char *name,
                                 anc_resp **out, anc_error *err);
int anc_client_contract_register(anc_client *c, const char *collection,
                                 const anc_contract *contract, anc_resp **out,
                                 anc_error *err);
int anc_client_upsert(anc_client *c, const char *collection,
                      const char *contract, const anc_record *records,
                      uint32_t n, anc_resp **out, anc_error *err);
/* vecs: nq * dim floats. contract NULL or "" for the default. */
int anc_client_query(anc_client *c, const char *collection,
                     const char *contract, const float *vecs, uint32_t nq,
                     uint32_t dim, uint32_t k, int with_text, anc_resp **out,
                     anc_error *err);
int anc_client_resolve(anc_client *c, const char *collection,
                       const anc_anchor_str *anchors, uint32_t n,
                       anc_resp **out, anc_error *err);
int anc_client_delete(anc_client *c, const char *collection,
                      const anc_anchor_str *anchors, uint32_t n,
                      anc_resp **out, anc_error *err);

/* Send raw bytes and return the raw reply (for tests of malformed input).
 * *reply is malloc'd; free() it. */
int anc_client_raw(anc_client *c, const void *msg, size_t len, void **reply,
                   size_t *reply_len, anc_error *err);

#ifdef __cplusplus
}
#endif
#endif /* ANC_CLIENT_H */
