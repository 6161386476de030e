/*
 * anc_proto.h — Anchorage wire protocol v1: message types and their msgpack
 * codec. No I/O: bytes in, structs out, and back. proto/PROTOCOL.md is the
 * reference for what travels on the wire; this header is the C view of it.
 *
 * Every message is ONE msgpack map and nothing after it:
 *
 *   request  {"v":1, "op":"query", "id":42, "body":{...}}
 *   response {"v":1, "id":42, "ok":true,  "body":{...}}
 *            {"v":1, "id":42, "ok":false,
 *             "error":{"code":6, "name":"DIMENSION_MISMATCH", "message":"..."}}
 *
 * Vectors travel as msgpack bin of little-endian float32.
 *
 * Input is untrusted. The decoders check types, required fields, sizes and
 * counts against an anc_limits before allocating, refuse unknown ops,
 * unknown protocol versions, embedded NULs in strings, and trailing bytes,
 * and report the first problem as ANC_EMALFORMED / ANC_EINVAL /
 * ANC_ETOOBIG / ANC_EUNSUPPORTED with a message naming the field
 * ("body.records[3].vector: expected bin of float32, got str").
 * Unknown keys in a map are ignored (forward compatibility).
 *
 * Ownership: a decoded anc_req / anc_resp owns all memory it points to, in
 * one arena released by anc_req_free / anc_resp_free. Encoders borrow their
 * input and write into an anc_buf owned by the caller.
 *
 * Thread safety: all functions are reentrant.
 */
#ifndef ANC_PROTO_H
#define ANC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "anc_error.h"
#include "anc_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANC_PROTO_VERSION 1
/* nng's receive limit (NNG_OPT_RECVMAXSZ) counts the REQ/REP header too
 * (a 4-byte request ID per hop): sockets allow max_message plus this, so
 * that a message of exactly max_message bytes is read, and one up to 60
 * bytes over it (64 less the header) gets a TOO_LARGE answer from the
 * decoder, not a dropped connection. */
#define ANC_NNG_HEADER_SLACK 64
#define ANC_AUTH_MAX 256 /* bytes of an API key */

typedef enum {
	ANC_OP_PING = 0,
	ANC_OP_INFO,
	ANC_OP_COLLECTION_CREATE,
	ANC_OP_CONTRACT_REGISTER,
	ANC_OP_UPSERT,
	ANC_OP_QUERY,
	ANC_OP_RESOLVE,
	ANC_OP_DELETE,
	ANC_OP_CONTRACT_PROMOTE,
	ANC_OP_CONTRACT_RETIRE,
	ANC_OP_CONTRACT_CHECK,
	ANC_OP_DRIFT,    /* drift report of one contract (issue 4) */
	ANC_OP_VERIFY,   /* grounding check of claims (issue 8) */
	ANC_OP_RECEIPT_GET,    /* read a receipt, HMAC re-checked (issue 8) */
	ANC_OP_RECEIPT_REPLAY, /* re-run a receipt's request (issue 8) */
	ANC_OP__COUNT
} anc_op;

/* Wire names: "ping", "info", "collection_create", "contract_register",
 * "upsert", "query", "resolve", "delete", "contract_promote",
 * "contract_retire", "contract_check". */
const char *anc_op_name(anc_op op);
int anc_op_parse(const char *name); /* -1 if unknown */

/* The largest max_k a server may be configured with (--max-k). A client
 * lets k go up to it and leaves the server's own max_k to the server,
 * which refuses k over it with TOO_LARGE naming the limit. It and the
 * other ceilings are what the engine takes (index/engine.c): a limit
 * configured above them would be a promise the engine then breaks. */
#define ANC_MAX_K_CEILING 4096u
#define ANC_MAX_QUERIES_CEILING 4096u        /* limits.max_queries */
#define ANC_MAX_TEXT_CEILING (1u << 20)      /* limits.max_text, bytes */
#define ANC_MAX_META_CEILING (64u << 10)     /* limits.max_meta, bytes */

/* Bounds applied by the decoders. Zero fields are not allowed; start from
 * anc_limits_default(). */
typedef struct anc_limits {
	uint32_t max_message;  /* bytes in one message; default 64 MiB */
	uint32_t max_records;  /* records in one upsert; default 10000 */
	uint32_t max_queries;  /* vectors in one query; default 1024 */
	uint32_t max_k;        /* default 1000 */
	uint32_t max_text;     /* bytes of passage text; default 1 MiB */
	uint32_t max_meta;     /* bytes of a metadata map; default 64 KiB */
	uint32_t max_anchors;  /* anchors in one resolve/delete; default 10000 */
	uint32_t max_hits;     /* hits decoded in one response; default 1<<20 */
} anc_limits;

void anc_limits_default(anc_limits *lim);
/* ANC_EINVAL naming the first field that is 0 ("limits.max_k: 0 is not
 * allowed ..."): every decode under such limits would fail. */
int anc_limits_check(const anc_limits *lim, anc_error *err);

/* A growable byte buffer. Zero-initialise, or anc_buf_init; free with
 * anc_buf_free. anc_buf_reset keeps the allocation. */
typedef struct anc_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} anc_buf;

void anc_buf_init(anc_buf *b);
void anc_buf_reset(anc_buf *b);
void anc_buf_free(anc_buf *b);

/* ---- requests ------------------------------------------------------------
 *
 * body fields per op (see PROTOCOL.md for the exact wire form):
 *   ping               {}
 *   info               {}
 *   collection_create  {"name"}
 *   contract_register  {"collection", "contract":{name, model, revision, dim,
 *                       metric, normalize, preprocess?, index?:{kind, m?,
 *                       ef_construction?, ef_search?}},
 *                       "canaries"?:[{text, vector}] (<= ANC_CANARY_MAX)}
 *   contract_promote   {"collection", "contract", "force"?: bool}
 *   contract_retire    {"collection", "contract"}
 *   contract_check     {"collection", "contract", "vectors":[bin...]}
 *   upsert             {"collection", "contract", "records":[{source, chunk,
 *                       text?, meta?, vector}]}
 *   query              {"collection", "contract"?, "vectors":[bin...], "k"?,
 *                       "text"?, "ef"?, "nprobe"?, "exact"?, "rerank"?,
 *                       "receipt"?, "meta"?, "pins"?:[str...]}
 *   verify, receipt_get, receipt_replay: see anc_req_verify and
 *                      anc_req_receipt below
 *   resolve            {"collection", "anchors":[str...]}
 *   delete             {"collection", "anchors":[str...]}
 *
 * "contract" in upsert/query is a contract ID (16 hex digits) or
 * "name@revision"; omitted or "" in query means the collection's default.
 */

typedef struct anc_req_upsert {
	const char *collection;
	const char *contract;
	anc_record *records; /* vec/dim point into the request's arena */
	uint32_t nrecords;
} anc_req_upsert;

typedef struct anc_req_query {
	const char *collection;
	const char *contract; /* "" for the default */
	float *vectors;       /* nq * dim floats, row-major */
	uint32_t nq;
	uint32_t dim;         /* all query vectors must share it */
	uint32_t k;           /* default 10 */
	int with_text;        /* default 0 */
	int with_meta;        /* default 0: hits without their metadata */
	/* Per-request search parameters (issue 6; anc_index.h
	 * anc_query_opts). 0 / absent: the contract's own. */
	uint32_t ef;          /* HNSW kinds: 1..ANC_EF_MAX */
	uint32_t nprobe;      /* IVF kinds: 1..ANC_NLIST_MAX (and <= nlist) */
	int exact;            /* 1: exhaustive search */
	uint32_t rerank;      /* exact re-rank of this many candidates,
	                         1..ANC_RERANK_MAX */
	int receipt;          /* issue 8: 1 stores a receipt of the answer
	                         (its ID in provenance.receipt) */
	anc_anchor_str *pins; /* anchors the answer includes ("pinned"),
	                         0..ANC_QUERY_PINS_MAX; read only when
	                         encoding */
	uint32_t npins;
} anc_req_query;

/* verify (issue 8): {"collection", "contract"?, "claims":[{"vector": bin,
 * "cited": [anchor...], "revisions"?: [uint...]}], "receipt"?: bool}.
 * At most min(max_queries, ANC_VERIFY_CLAIMS_MAX) claims of at most
 * ANC_VERIFY_CITED_MAX cited anchors; "revisions", when present, has one
 * entry per cited anchor (0: any revision). */
typedef struct anc_req_verify {
	const char *collection;
	const char *contract; /* "" for the default */
	anc_claim *claims;    /* vec, cited, cited_rev in the arena */
	uint32_t n;
	int receipt;
} anc_req_verify;

/* receipt_get {"receipt": ID, "text"?: bool} and receipt_replay
 * {"receipt": ID} (issue 8). */
typedef struct anc_req_receipt {
	anc_receipt_id_str id;
	int with_text;
} anc_req_receipt;

typedef struct anc_req_anchors { /* resolve and delete */
	const char *collection;
	anc_anchor_str *anchors; /* each checked with anc_anchor_parse */
	uint32_t nanchors;
} anc_req_anchors;

typedef struct anc_req_check { /* contract_check */
	const char *collection;
	const char *contract; /* ID or name@revision, required */
	float *vectors;       /* n * dim floats, row-major: vector i is what
	                         the client's embedder gives for probe i */
	uint32_t n;
	uint32_t dim;
} anc_req_check;

/* drift: {"collection", "contract"?, "fresh"?, "set"?}. fresh 1 computes
 * a new report now (and records it in the history); 0 returns the latest
 * one, computing it only when there is none yet. set (optional, at most
 * ANC_DRIFT_SET_MAX bytes): "key=value,..." changes to the contract's drift
 * configuration (anc_drift_config_apply), applied and persisted before the
 * report is made; NULL or "" changes nothing. */
typedef struct anc_req_drift {
	const char *collection;
	const char *contract; /* "" for the default */
	int fresh;
	const char *set;      /* NULL or "" for none */
} anc_req_drift;

#define ANC_DRIFT_SET_MAX 512

/* Apply "key=value,key=value" to *cfg: keys are the field names of
 * anc_drift_config (window, reservoir, write_window, bootstrap, quantile,
 * component_threshold, component_share, permutations, p_value, auc, folds,
 * epochs, score_quantile, score_share, min_window, min_reference). Each
 * value is checked for syntax only (integers for the counts, numbers for
 * the rest); anc_drift_config_check (index/) checks the ranges. ANC_EINVAL
 * names the bad key or value; *cfg is unchanged on error. */
int anc_drift_config_apply(anc_drift_config *cfg, const char *set,
                           anc_error *err);

typedef struct anc_req {
	uint64_t id;
	anc_op op;
	union {
		struct { const char *name; } collection_create;
		struct {
			const char *collection;
			anc_contract contract; /* decoded, not yet validated */
			anc_canary *canaries;  /* NULL when none; vec/dim in arena */
			uint32_t ncanaries;
		} contract_register;
		struct {
			const char *collection;
			const char *contract; /* ID or name@revision, required */
			int force;            /* promote only; default 0 */
		} contract_state; /* contract_promote and contract_retire */
		anc_req_check contract_check;
		anc_req_upsert upsert;
		anc_req_query query;
		anc_req_anchors resolve;
		anc_req_anchors del;
		anc_req_drift drift;
		anc_req_verify verify;
		anc_req_receipt receipt; /* receipt_get, receipt_replay */
	} u;
	const char *auth; /* envelope "auth": the API key, or NULL (at most
	                     ANC_AUTH_MAX bytes; never logged or echoed) */
	void *arena_; /* private */
} anc_req;

/* Decode one request. On success *out owns everything (anc_req_free).
 * On failure *out is NULL, *id_out holds the request ID when the envelope
 * was readable far enough to find it (else 0), and err says what is wrong.
 * id_out may be NULL. */
int anc_req_decode(const void *buf, size_t len, const anc_limits *lim,
                   anc_req **out, uint64_t *id_out, anc_error *err);
/* The same, and *op_out (may be NULL) the operation once the envelope
 * named a known one, -1 before: so that a request refused for its body
 * is counted under its operation, not as undecodable. */
int anc_req_decode_op(const void *buf, size_t len, const anc_limits *lim,
                      anc_req **out, uint64_t *id_out, int *op_out,
                      anc_error *err);
void anc_req_free(anc_req *req); /* NULL is fine */

/* Encode a request built by the caller (arena_ ignored). Appends to *out
 * after anc_buf_reset by the caller. ANC_EINVAL for a field the decoder
 * would refuse (so a client fails before it sends). */
int anc_req_encode(const anc_req *req, anc_buf *out, anc_error *err);

/* ---- responses --------------------------------------------------------- */

typedef struct anc_resp {
	uint64_t id;
	anc_op op;           /* set by the decoder from its argument */
	int code;            /* 0, or the error code from the server */
	char *message;       /* error message, or NULL */
	union {
		struct { char version[32]; } ping;
		anc_info info;
		struct { int created; } collection_create;
		struct { anc_contract_id_str id; int created; } contract_register;
		struct {
			anc_upsert_result *results;
			uint32_t n;
			uint64_t seq;
		} upsert;
		struct {
			anc_hitlist *lists; /* one per query vector */
			uint32_t nq;
			anc_provenance prov;
			anc_resolved *pinned; /* the request's pins, in its
			                         order (as resolve answers) */
			uint32_t npinned;
		} query;
		struct { anc_resolved *results; uint32_t n; } resolve;
		struct {
			anc_delete_result *results;
			uint32_t n;
			uint64_t seq;
		} del;
		/* contract_promote and contract_retire:
		 * {"id", "state", "previous"} */
		struct {
			anc_contract_id_str id;       /* the contract acted on */
			int state;                    /* its state now */
			anc_contract_id_str previous; /* promote: the old default
			                                 ("" if unchanged) */
		} contract_state;
		/* contract_check: {"contract", "results":[{probe, cosine,
		 * pass}], "threshold", "min_cosine", "pass", "checked_at"} */
		anc_check_result check;
		anc_drift_report drift; /* body {"report": {...}} */
		/* issue 8 (PROTOCOL.md "Grounding checks and receipts") */
		anc_verify_result verify;
		anc_receipt receipt;       /* receipt_get */
		anc_replay_result replay;  /* receipt_replay */
	} u;
	void *arena_; /* private */
} anc_resp;

/* Encode a success response for op from the body in resp->u (borrowed). */
int anc_resp_encode(const anc_resp *resp, anc_buf *out, anc_error *err);

/* Encode an error response. Never fails except for ANC_ENOMEM. */
int anc_resp_encode_error(uint64_t id, const anc_error *e, anc_buf *out);

/* Decode a response to a request of kind op. A well-formed error response
 * decodes successfully with resp->code != 0 and resp->message set. */
int anc_resp_decode(const void *buf, size_t len, anc_op op,
                    const anc_limits *lim, anc_resp **out, anc_error *err);
void anc_resp_free(anc_resp *resp); /* NULL is fine */

#ifdef __cplusplus
}
#endif
#endif /* ANC_PROTO_H */
