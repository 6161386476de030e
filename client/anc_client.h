/*
 * anc_client.h — libanchorage-client: the C API for talking to an
 * anchorage-server over nng REQ/REP (tcp://, ipc://, tls+tcp://).
 *
 * A client holds one connection: for ipc:// and tcp:// to an IP address
 * or localhost its own, speaking nng's SP protocol (anc_sp.h), otherwise
 * an nng REQ socket; the first pipeline adds an nng REQ socket, kept
 * until anc_client_close. Each call sends one request, waits for its
 * reply (up to the timeout) and decodes it. Calls on one anc_client must not
 * overlap: use one client per thread (a call made while another thread's
 * call runs on the same client fails with ANC_EPRECONDITION, nothing sent).
 *
 * Results come back as a decoded anc_resp (proto/anc_proto.h) owned by the
 * caller, released with anc_resp_free; out may be NULL when only the
 * outcome matters. Every call returns ANC_OK or an error code; err is
 * written only on failure (check the return value, not err->code). A
 * server-side error is returned as its code, with err->msg "NAME: the
 * server's message" (NAME as anc_errname gives it); *out is then NULL.
 * Transport failures are ANC_ETRANSPORT / ANC_ETIMEOUT (a connection lost
 * while the request waited is made again and the request sent again, up
 * to the timeout); a reply over the client's max_message is ANC_ETOOBIG.
 * A request whose reply would exceed the client's own limits (more records,
 * anchors or query vectors than opt.limits allow, or query vectors x k
 * over max_hits) fails with ANC_ETOOBIG before anything is sent.
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
	const char *api_key;     /* sent with every request; NULL = none.
	                            Copied by anc_client_open. */
	const char *tls_ca_file; /* tls+tcp:// only, required there: PEM CA
	                            certificate(s) the server's certificate
	                            must chain to. Copied. */
	const char *tls_server_name; /* name checked against the server
	                                certificate; NULL = the URL's host */
	int dial_now;       /* 1: for a loopback or ipc:// URL, connect in
	                       anc_client_open and fail there with
	                       ANC_EUNAVAILABLE when nothing listens (what a
	                       command-line tool wants); 0 (default), and for
	                       other hosts: dial in the background */
	int use_nng;        /* 1: every call through nng's REQ socket. 0
	                       (default): for ipc:// and tcp:// to an IP
	                       address or localhost the synchronous calls
	                       use the client's own SP connection (anc_sp.h:
	                       the same protocol, half the round trip);
	                       tls+tcp://, host names and pipelines use nng
	                       either way */
} anc_client_options;

void anc_client_options_default(anc_client_options *opt);

/* Connect to url (dial is asynchronous: a server started a moment later is
 * still reached; see dial_now). opt may be NULL. */
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
/* contract is required (an ID or name@revision): a write never goes to
 * "whatever the default is", so vectors are stored under the contract
 * their writer names. */
int anc_client_upsert(anc_client *c, const char *collection,
                      const char *contract, const anc_record *records,
                      uint32_t n, anc_resp **out, anc_error *err);
/* vecs: nq * dim floats. contract NULL or "" for the default. k 0: the
 * server's default, 10. The reply's provenance names the contract and its
 * metric (anc_asm_input_from_query turns replies into assembler input). */
int anc_client_query(anc_client *c, const char *collection,
                     const char *contract, const float *vecs, uint32_t nq,
                     uint32_t dim, uint32_t k, int with_text, anc_resp **out,
                     anc_error *err);
/* Per-request search parameters (issue 6; the engine's anc_query_opts):
 * 0 means the contract's own. ef: HNSW kinds, 1..ANC_EF_MAX; nprobe: IVF
 * kinds, 1..nlist; exact 1: exhaustive search; rerank: re-score this many
 * candidates exactly (1..ANC_RERANK_MAX). The reply's provenance says
 * what the server applied. */
typedef struct anc_client_query_opts {
	uint32_t ef;
	uint32_t nprobe;
	int exact;
	uint32_t rerank;
	int meta;   /* 1: each hit carries its passage's metadata (hit.meta,
	               a msgpack map; NULL when the passage has none) */
	const anc_anchor_str *pins; /* anchors the answer includes, resolved
	               with the search (resp->u.query.pinned, in this order);
	               NULL: none */
	uint32_t npins; /* 0..ANC_QUERY_PINS_MAX */
	int receipt; /* 1: the server stores a receipt of the answer (its ID
	                in resp->u.query.prov.receipt; anc_client_receipt_get
	                and _replay read it back) */
} anc_client_query_opts;

/* anc_client_query with opt (NULL: none). */
int anc_client_query2(anc_client *c, const char *collection,
                      const char *contract, const float *vecs, uint32_t nq,
                      uint32_t dim, uint32_t k, int with_text,
                      const anc_client_query_opts *opt, anc_resp **out,
                      anc_error *err);
/* A query reply for pins (n): its "pinned" must be those anchors, in
 * order (a server before 2026-11-30 ignores pins and sends none). */
int anc_client_pins_check(const anc_resp *r, const anc_anchor_str *pins,
                          uint32_t n, anc_error *err);
int anc_client_resolve(anc_client *c, const char *collection,
                       const anc_anchor_str *anchors, uint32_t n,
                       anc_resp **out, anc_error *err);
int anc_client_delete(anc_client *c, const char *collection,
                      const anc_anchor_str *anchors, uint32_t n,
                      anc_resp **out, anc_error *err);

/* The drift report of a contract (contract NULL or "" for the default).
 * fresh 1: the server computes it now; 0: its latest one. The report is
 * resp->u.drift. */
int anc_client_drift(anc_client *c, const char *collection,
                     const char *contract, int fresh, anc_resp **out,
                     anc_error *err);

/* Contract life cycle (README "Migrating to a new embedding model"):
 * promote makes contract the collection's default (FAILED_PRECONDITION
 * below 100% coverage unless force); retire refuses queries and writes
 * under it from then on (final; the default cannot be retired). */
int anc_client_contract_promote(anc_client *c, const char *collection,
                                const char *contract, int force,
                                anc_resp **out, anc_error *err);
int anc_client_contract_retire(anc_client *c, const char *collection,
                               const char *contract, anc_resp **out,
                               anc_error *err);
/* Canary check: vecs holds n * dim floats, row i today's embedding of the
 * contract's probe i. The verdict per probe is resp->u.check. */
int anc_client_contract_check(anc_client *c, const char *collection,
                              const char *contract, const float *vecs,
                              uint32_t n, uint32_t dim, anc_resp **out,
                              anc_error *err);
/* Grounding check of generated claims (README "Grounding checks and
 * receipts"): contract NULL or "" for the default; receipt 1 stores a
 * receipt. Results per claim in resp->u.verify. */
int anc_client_verify(anc_client *c, const char *collection,
                      const char *contract, const anc_claim *claims,
                      uint32_t n, int receipt, anc_resp **out,
                      anc_error *err);
/* A stored receipt by ID (with_text 1: with the passages' texts as they
 * were), its HMAC checked by the server; replay re-runs its request and
 * says what changed since. */
int anc_client_receipt_get(anc_client *c, const char *id, int with_text,
                           anc_resp **out, anc_error *err);
int anc_client_receipt_replay(anc_client *c, const char *id, anc_resp **out,
                              anc_error *err);

/* One round trip for any request built by the caller (for ops without a
 * dedicated function above). The client sets req->id and req->auth; the
 * rest of *req is borrowed for the call. Same result rules as the calls
 * above. */
int anc_client_call(anc_client *c, anc_req *req, anc_resp **out,
                    anc_error *err);

/* Send raw bytes and return the raw reply (for tests of malformed input).
 * *reply is malloc'd; free() it. */
int anc_client_raw(anc_client *c, const void *msg, size_t len, void **reply,
                   size_t *reply_len, anc_error *err);


/* ---- pipelined upserts ---------------------------------------------------
 *
 * A bulk load is limited by round trips when every batch waits for its
 * answer before the next is sent. An anc_pipeline keeps up to `depth` upsert
 * requests in flight on the client's socket, each on its own nng REQ context
 * (nng_ctx_open) with its own aio, so the server's workers can decode,
 * commit and index several batches while the caller parses the next one.
 *
 * Ordering: answers are handed back in submission order (anc_pipeline_wait
 * always returns the oldest pending request), whatever order the server
 * finishes them in. A caller that checkpoints after each answer therefore
 * only ever advances past a batch when every earlier batch is acknowledged.
 * The server may COMMIT concurrent batches in any order: batches in flight
 * together must not upsert the same anchor if the final content matters
 * (the anchorage loader refuses such duplicates before sending).
 *
 * Threading: the pipeline belongs to the thread that owns the client; do
 * not call it, or the client's synchronous functions, from two threads at
 * once. nng's I/O threads complete the aios; the completion callback only
 * records the result under the pipeline's mutex and signals a condition
 * variable (decoding happens in anc_pipeline_wait, on the caller's thread).
 *
 * Timeouts: each request gets the client's timeout_ms, counted from its
 * submission. A request whose answer does not come in time is reported as
 * ANC_ETIMEOUT by anc_pipeline_wait; the server may still apply it later
 * (upserts are idempotent, so re-sending it is safe).
 */
typedef struct anc_pipeline anc_pipeline;

#define ANC_PIPELINE_MAX_DEPTH 64

/* Open a pipeline of depth (1..ANC_PIPELINE_MAX_DEPTH) request slots on
 * c's socket. c is borrowed and must outlive the pipeline. Errors:
 * ANC_EINVAL (depth out of range, c NULL), ANC_ENOMEM, ANC_ETRANSPORT (nng
 * could not open a context, with nng's message). */
int anc_pipeline_open(anc_client *c, uint32_t depth, anc_pipeline **out,
                      anc_error *err);

/* Encode an upsert of n records and start sending it. records and the
 * strings they point to are borrowed only for the duration of the call (the
 * request is encoded into its own message before it returns), so the caller
 * may reuse them at once. tag is an opaque value handed back by
 * anc_pipeline_wait with the answer. Fails with ANC_EUNAVAILABLE when all
 * depth slots are pending (collect one with anc_pipeline_wait first), with
 * the encoder's ANC_EINVAL naming the field of a record the server would
 * refuse to decode, or ANC_ENOMEM / ANC_ETRANSPORT. On failure nothing was
 * sent. */
int anc_pipeline_upsert(anc_pipeline *p, const char *collection,
                        const char *contract, const anc_record *records,
                        uint32_t n, uint64_t tag, anc_error *err);

/* Number of requests submitted and not yet collected (0..depth). */
uint32_t anc_pipeline_pending(const anc_pipeline *p);

/* Slots in this pipeline (the depth it was opened with). */
uint32_t anc_pipeline_depth(const anc_pipeline *p);

/* Block until the OLDEST pending request is answered, and collect it.
 * *tag gets the value given at submission (always, also on failure). On
 * success *out owns the decoded upsert response (anc_resp_free). A server
 * error comes back as its code with err->msg "NAME: server message" (as
 * for the synchronous calls); ANC_ETIMEOUT / ANC_ETRANSPORT when the
 * request could not be delivered or answered; *out is then NULL. Either
 * way the slot is free again. ANC_EINVAL when nothing is pending. */
int anc_pipeline_wait(anc_pipeline *p, uint64_t *tag, anc_resp **out,
                      anc_error *err);

/* Free the pipeline. Replies still in flight are waited for (at most the
 * client's timeout) and discarded; what is left then is cancelled.
 * Requests already delivered may be applied by the server either way.
 * NULL is fine. */
void anc_pipeline_close(anc_pipeline *p);

#ifdef __cplusplus
}
#endif
#endif /* ANC_CLIENT_H */
