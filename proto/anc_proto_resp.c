/*
 * anc_proto_resp.c — wire protocol v1: the response codec (see the design
 * note of anc_proto.c; PROTOCOL.md is the reference for the wire form).
 *
 * A client must survive a hostile or broken server as well as a server
 * survives a hostile client, so anc_resp_decode is exactly as strict as
 * anc_req_decode: same size check and raw scan first, every field typed,
 * every count bounded by the anc_limits (hits across all lists by
 * max_hits), every anchor and contract ID parsed.
 */
#include "proto_int.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- encoding -------------------------------------------------------------- */

static void
enc_info(mpk_w *w, const anc_info *in)
{
	mpk_w_map(w, 3);
	mpk_w_kstr(w, "version", in->version);
	mpk_w_kuint(w, "seq", in->seq);
	mpk_w_key(w, "collections");
	mpk_w_array(w, in->ncollections);
	for (uint32_t i = 0; i < in->ncollections; i++) {
		const anc_collection_info *c = &in->collections[i];
		mpk_w_map(w, 5);
		mpk_w_kstr(w, "name", c->name);
		mpk_w_kuint(w, "live", c->live);
		mpk_w_kuint(w, "deleted", c->deleted);
		mpk_w_kstr(w, "default_contract", c->default_contract);
		mpk_w_key(w, "contracts");
		mpk_w_array(w, c->ncontracts);
		for (uint32_t j = 0; j < c->ncontracts; j++) {
			const anc_contract_info *ci = &c->contracts[j];
			mpk_w_map(w, 12 + (ci->calib.computed_at != 0));
			mpk_w_kstr(w, "id", ci->id);
			mpk_w_kstr(w, "state",
			    anc_contract_state_name(ci->state));
			mpk_w_kuint(w, "vectors", ci->vectors);
			mpk_w_kuint(w, "index_ntotal", ci->index_ntotal);
			mpk_w_kuint(w, "code_bytes", ci->code_bytes);
			mpk_w_kuint(w, "index_bytes", ci->index_bytes);
			mpk_w_kbool(w, "trained", ci->trained);
			mpk_w_kuint(w, "canaries", ci->canaries);
			mpk_w_kuint(w, "checked_at", ci->checked_at);
			mpk_w_kbool(w, "check_pass", ci->check_pass);
			mpk_w_kfloat(w, "check_min_cosine",
			    ci->check_min_cosine);
			mpk_w_key(w, "contract");
			pr_contract_encode(w, &ci->contract);
			/* issue 8; absent until the contract is calibrated */
			if (ci->calib.computed_at != 0) {
				mpk_w_key(w, "calibration");
				pr_calib_encode(w, &ci->calib);
			}
		}
	}
}

/* Check what enc_info writes into fixed arrays and enums, so the peer's
 * decoder will not refuse it. */
static int
check_info(const anc_info *in, anc_error *err)
{
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX];
	int rv;

	if ((rv = pr_str_check(in->version, "body.version",
	         sizeof(in->version) - 1, 1, err)))
		return rv;
	if (in->ncollections > 0 && in->collections == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "body.collections: NULL with %u entries", in->ncollections);
	for (uint32_t i = 0; i < in->ncollections; i++) {
		const anc_collection_info *c = &in->collections[i];
		mpk_path_idx(p, "body.collections", i);
		if (c->ncontracts > 0 && c->contracts == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "%s.contracts: NULL with %u entries", p,
			    c->ncontracts);
		for (uint32_t j = 0; j < c->ncontracts; j++) {
			const anc_contract_info *ci = &c->contracts[j];
			mpk_path_idx(q, p, j);
			if (ci->state < 0 || ci->state > ANC_CSTATE_RETIRED)
				return anc_error_set(err, ANC_EINVAL,
				    "%s.state: %d is not a contract state", q,
				    ci->state);
			if ((rv = pr_contract_check(&ci->contract, q, err)))
				return rv;
		}
	}
	return ANC_OK;
}

static int
check_status(int s, int max, const char *path, uint32_t i, anc_error *err)
{
	if (s < 0 || s > max)
		return anc_error_set(err, ANC_EINVAL,
		    "%s[%u].status: %d is out of range 0..%d", path, i, s, max);
	return ANC_OK;
}

/* Resolved anchors (resolve's results, query's pinned): checked, then
 * written as an array. */
static int
enc_resolved_check(const anc_resolved *v, uint32_t n, const char *what,
                   anc_error *err)
{
	int rv;
	if (n > 0 && v == NULL)
		return anc_error_set(err, ANC_EINVAL, "%s: NULL with %u entries",
		                     what, n);
	for (uint32_t i = 0; i < n; i++) {
		char p[MPK_PATH_MAX];
		if ((rv = check_status(v[i].status, ANC_ANCHOR_UNKNOWN, what, i,
		         err)))
			return rv;
		snprintf(p, sizeof(p), "%s[%u].meta", what, i);
		if (v[i].meta != NULL &&
		    (rv = mpk_meta_check(v[i].meta, v[i].meta_len, p, err)))
			return rv;
	}
	return ANC_OK;
}

static void
enc_resolved(mpk_w *w, const anc_resolved *v, uint32_t n)
{
	mpk_w_array(w, n);
	for (uint32_t i = 0; i < n; i++) {
		const anc_resolved *x = &v[i];
		int known = x->status != ANC_ANCHOR_UNKNOWN;
		int has_hash = x->hash[0] != '\0';
		mpk_w_map(w, 2 + known + (x->source != NULL) +
		    (x->chunk != NULL) + (x->text != NULL) +
		    (x->meta != NULL) + has_hash);
		mpk_w_kstr(w, "anchor", x->anchor);
		mpk_w_kstr(w, "status", anc_anchor_status_name(x->status));
		if (known)
			mpk_w_kuint(w, "revision", x->revision);
		if (x->source != NULL)
			mpk_w_kstr(w, "source", x->source);
		if (x->chunk != NULL)
			mpk_w_kstr(w, "chunk", x->chunk);
		if (x->text != NULL)
			mpk_w_kstr(w, "text", x->text);
		if (x->meta != NULL) {
			mpk_w_key(w, "meta");
			mpk_w_raw(w, x->meta, x->meta_len);
		}
		if (has_hash)
			mpk_w_kstr(w, "hash", x->hash);
	}
}

static int
enc_body(mpk_w *w, const anc_resp *r, anc_error *err)
{
	int rv;

	switch (r->op) {
	case ANC_OP_PING:
		if ((rv = pr_str_check(r->u.ping.version, "body.version",
		         sizeof(r->u.ping.version) - 1, 1, err)))
			return rv;
		mpk_w_map(w, 1);
		mpk_w_kstr(w, "version", r->u.ping.version);
		return ANC_OK;
	case ANC_OP_INFO:
		if ((rv = check_info(&r->u.info, err)))
			return rv;
		enc_info(w, &r->u.info);
		return ANC_OK;
	case ANC_OP_COLLECTION_CREATE:
		mpk_w_map(w, 1);
		mpk_w_kbool(w, "created", r->u.collection_create.created);
		return ANC_OK;
	case ANC_OP_CONTRACT_REGISTER:
		mpk_w_map(w, 2);
		mpk_w_kstr(w, "id", r->u.contract_register.id);
		mpk_w_kbool(w, "created", r->u.contract_register.created);
		return ANC_OK;
	case ANC_OP_UPSERT:
		if (r->u.upsert.n > 0 && r->u.upsert.results == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "body.results: NULL with %u entries", r->u.upsert.n);
		for (uint32_t i = 0; i < r->u.upsert.n; i++)
			if ((rv = check_status(r->u.upsert.results[i].status,
			         ANC_UPSERT_UNCHANGED, "body.results", i, err)))
				return rv;
		mpk_w_map(w, 2);
		mpk_w_key(w, "results");
		mpk_w_array(w, r->u.upsert.n);
		for (uint32_t i = 0; i < r->u.upsert.n; i++) {
			const anc_upsert_result *u = &r->u.upsert.results[i];
			mpk_w_map(w, 3);
			mpk_w_kstr(w, "anchor", u->anchor);
			mpk_w_kuint(w, "revision", u->revision);
			mpk_w_kstr(w, "status", anc_upsert_status_name(u->status));
		}
		mpk_w_kuint(w, "seq", r->u.upsert.seq);
		return ANC_OK;
	case ANC_OP_QUERY: {
		const anc_provenance *pv = &r->u.query.prov;
		if (r->u.query.nq > 0 && r->u.query.lists == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "body.results: NULL with %u entries", r->u.query.nq);
		if ((rv = pr_prov_check(pv, "body.provenance", err)) ||
		    (rv = enc_resolved_check(r->u.query.pinned,
		         r->u.query.npinned, "body.pinned", err)))
			return rv;
		for (uint32_t i = 0; i < r->u.query.nq; i++)
			for (uint32_t j = 0; j < r->u.query.lists[i].nhits;
			     j++) {
				const anc_hit *h = &r->u.query.lists[i].hits[j];
				char p[MPK_PATH_MAX];
				if (h->meta == NULL)
					continue;
				snprintf(p, sizeof(p),
				    "body.results[%u].hits[%u].meta", i, j);
				if ((rv = mpk_meta_check(h->meta, h->meta_len, p,
				         err)))
					return rv;
			}
		mpk_w_map(w, 2 + (r->u.query.npinned > 0));
		mpk_w_key(w, "results");
		mpk_w_array(w, r->u.query.nq);
		for (uint32_t i = 0; i < r->u.query.nq; i++) {
			const anc_hitlist *l = &r->u.query.lists[i];
			if (l->nhits > 0 && l->hits == NULL)
				return anc_error_set(err, ANC_EINVAL,
				    "body.results[%u].hits: NULL with %u "
				    "entries", i, l->nhits);
			/* not scored (NaN): neither field, which a
			 * decoder of any language reads without meeting a
			 * NaN (JSON has none) */
			int scored = !isnan(l->drift_score);
			mpk_w_map(w, scored ? 4 : 2);
			mpk_w_kstr(w, "confidence",
			    anc_confidence_name(l->confidence));
			if (scored) {
				mpk_w_kbool(w, "drift", l->drift_flag);
				mpk_w_kfloat(w, "drift_score", l->drift_score);
			}
			mpk_w_key(w, "hits");
			mpk_w_array(w, l->nhits);
			for (uint32_t j = 0; j < l->nhits; j++) {
				const anc_hit *h = &l->hits[j];
				mpk_w_map(w, 5 + (h->text != NULL) +
				    (h->meta != NULL));
				mpk_w_kstr(w, "anchor", h->anchor);
				mpk_w_kfloat(w, "score", h->score);
				mpk_w_kuint(w, "revision", h->revision);
				mpk_w_kstr(w, "source",
				    h->source != NULL ? h->source : "");
				mpk_w_kstr(w, "chunk",
				    h->chunk != NULL ? h->chunk : "");
				if (h->text != NULL)
					mpk_w_kstr(w, "text", h->text);
				if (h->meta != NULL) {
					mpk_w_key(w, "meta");
					mpk_w_raw(w, h->meta, h->meta_len);
				}
			}
		}
		mpk_w_key(w, "provenance");
		pr_prov_encode(w, pv); /* + "receipt" when one was made */
		if (r->u.query.npinned > 0) { /* only when asked: older clients */
			mpk_w_key(w, "pinned");
			enc_resolved(w, r->u.query.pinned, r->u.query.npinned);
		}
		return ANC_OK;
	}
	case ANC_OP_RESOLVE:
		if ((rv = enc_resolved_check(r->u.resolve.results, r->u.resolve.n,
		         "body.results", err)))
			return rv;
		mpk_w_map(w, 1);
		mpk_w_key(w, "results");
		enc_resolved(w, r->u.resolve.results, r->u.resolve.n);
		return ANC_OK;
	case ANC_OP_CONTRACT_PROMOTE:
	case ANC_OP_CONTRACT_RETIRE:
		if (r->u.contract_state.state < 0 ||
		    r->u.contract_state.state > ANC_CSTATE_RETIRED)
			return anc_error_set(err, ANC_EINVAL,
			    "body.state: %d is not a contract state",
			    r->u.contract_state.state);
		mpk_w_map(w, 3);
		mpk_w_kstr(w, "id", r->u.contract_state.id);
		mpk_w_kstr(w, "state",
		    anc_contract_state_name(r->u.contract_state.state));
		mpk_w_kstr(w, "previous", r->u.contract_state.previous);
		return ANC_OK;
	case ANC_OP_CONTRACT_CHECK: {
		const anc_check_result *c = &r->u.check;
		if (c->n > 0 && c->results == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "body.results: NULL with %u entries", c->n);
		mpk_w_map(w, 6);
		mpk_w_kstr(w, "contract", c->contract);
		mpk_w_key(w, "results");
		mpk_w_array(w, c->n);
		for (uint32_t i = 0; i < c->n; i++) {
			mpk_w_map(w, 3);
			mpk_w_kuint(w, "probe", c->results[i].probe);
			mpk_w_kfloat(w, "cosine", c->results[i].cosine);
			mpk_w_kbool(w, "pass", c->results[i].pass);
		}
		mpk_w_kfloat(w, "threshold", c->threshold);
		mpk_w_kfloat(w, "min_cosine", c->min_cosine);
		mpk_w_kbool(w, "pass", c->pass);
		mpk_w_kuint(w, "checked_at", c->checked_at);
		return ANC_OK;
	}
	case ANC_OP_DELETE:
		if (r->u.del.n > 0 && r->u.del.results == NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "body.results: NULL with %u entries", r->u.del.n);
		for (uint32_t i = 0; i < r->u.del.n; i++)
			if ((rv = check_status(r->u.del.results[i].status,
			         ANC_DELETE_UNKNOWN, "body.results", i, err)))
				return rv;
		mpk_w_map(w, 2);
		mpk_w_key(w, "results");
		mpk_w_array(w, r->u.del.n);
		for (uint32_t i = 0; i < r->u.del.n; i++) {
			const anc_delete_result *x = &r->u.del.results[i];
			mpk_w_map(w, 3);
			mpk_w_kstr(w, "anchor", x->anchor);
			mpk_w_kstr(w, "status", anc_delete_status_name(x->status));
			mpk_w_kuint(w, "revision", x->revision);
		}
		mpk_w_kuint(w, "seq", r->u.del.seq);
		return ANC_OK;
	case ANC_OP_DRIFT:
		return pr_drift_resp_encode(w, &r->u.drift, err);
	case ANC_OP_VERIFY:
		return pr_verify_resp_encode(w, &r->u.verify, err);
	case ANC_OP_RECEIPT_GET:
		return pr_receipt_resp_encode(w, &r->u.receipt, err);
	case ANC_OP_RECEIPT_REPLAY:
		return pr_replay_resp_encode(w, &r->u.replay, err);
	default:
		return anc_error_set(err, ANC_EINVAL,
		    "op: %d is not an operation", (int)r->op);
	}
}

int
anc_resp_encode(const anc_resp *resp, anc_buf *out, anc_error *err)
{
	mpk_w w;
	size_t start;
	int rv;

	if (resp == NULL || out == NULL)
		return anc_error_set(err, ANC_EINVAL, "response encode: NULL %s",
		    resp == NULL ? "response" : "buffer");
	start = out->len;
	mpk_w_init(&w, out);
	mpk_w_map(&w, 4);
	mpk_w_kuint(&w, "v", ANC_PROTO_VERSION);
	mpk_w_kuint(&w, "id", resp->id);
	mpk_w_kbool(&w, "ok", 1);
	mpk_w_key(&w, "body");
	if ((rv = enc_body(&w, resp, err)) == ANC_OK && w.oom)
		rv = anc_error_set(err, ANC_ENOMEM,
		    "%s response: out of memory encoding", anc_op_name(resp->op));
	if (rv != ANC_OK)
		out->len = start;
	return rv;
}

int
anc_resp_encode_error(uint64_t id, const anc_error *e, anc_buf *out)
{
	mpk_w w;
	size_t start;
	int code = e != NULL ? e->code : ANC_EINTERNAL;
	const char *msg = e != NULL ? e->msg : "no error given";

	if (out == NULL)
		return ANC_EINVAL;
	/* An error response always carries a failure code: 0 would tell the
	 * client "ok:false, but nothing went wrong". */
	if (code <= 0 || code >= ANC_ECODE_MAX)
		code = ANC_EINTERNAL;
	start = out->len;
	mpk_w_init(&w, out);
	mpk_w_map(&w, 4);
	mpk_w_kuint(&w, "v", ANC_PROTO_VERSION);
	mpk_w_kuint(&w, "id", id);
	mpk_w_kbool(&w, "ok", 0);
	mpk_w_key(&w, "error");
	mpk_w_map(&w, 3);
	mpk_w_kint(&w, "code", code);
	mpk_w_kstr(&w, "name", anc_errname(code));
	mpk_w_key(&w, "message");
	mpk_w_strn(&w, msg, strnlen(msg, ANC_ERRMSG_MAX - 1));
	if (w.oom) {
		out->len = start;
		return ANC_ENOMEM;
	}
	return ANC_OK;
}

/* ---- decoding ---------------------------------------------------------------- */

static int
dec_anchor(const mpk_dec *d, const msgpack_object *map, const char *parent,
           char out[ANC_ANCHOR_LEN + 1])
{
	uint8_t raw[ANC_ANCHOR_RAW];
	char p[MPK_PATH_MAX];
	int rv;

	if ((rv = mpk_get_strbuf(d, map, parent, "anchor", 1, out,
	         ANC_ANCHOR_LEN + 1, NULL)))
		return rv;
	if ((rv = anc_anchor_parse(out, raw, d->err))) {
		mpk_path(p, parent, "anchor");
		anc_error_wrap(d->err, "%s", p);
	}
	return rv;
}

static int
dec_contract_id(const mpk_dec *d, const msgpack_object *map,
                const char *parent, const char *key, int allow_empty,
                char out[ANC_CONTRACT_ID_LEN + 1])
{
	uint8_t raw[ANC_CONTRACT_ID_RAW];
	char p[MPK_PATH_MAX];
	int rv;

	if ((rv = mpk_get_strbuf(d, map, parent, key, 1, out,
	         ANC_CONTRACT_ID_LEN + 1, NULL)))
		return rv;
	if (allow_empty && out[0] == '\0')
		return ANC_OK;
	if ((rv = anc_contract_id_parse(out, raw, d->err))) {
		mpk_path(p, parent, key);
		anc_error_wrap(d->err, "%s", p);
	}
	return rv;
}

/* Status or state name: str, one of the names of name(0..n-1). */
static int
dec_enum(const mpk_dec *d, const msgpack_object *map, const char *parent,
         const char *key, const char *(*name)(int), int n, int *out)
{
	char s[32], p[MPK_PATH_MAX];
	int rv, v;

	if ((rv = mpk_get_strbuf(d, map, parent, key, 1, s, sizeof(s), NULL)))
		return rv;
	if ((v = pr_name_parse(name, n, s)) < 0) {
		mpk_path(p, parent, key);
		return anc_error_set(d->err, ANC_EMALFORMED,
		    "%s: unknown value '%s'", p, s);
	}
	*out = v;
	return ANC_OK;
}

static const char *state_name(int s) { return anc_contract_state_name(s); }

/* Index memory per vector (issue 6): optional, for servers before it;
 * "trained" defaults to 1 (flat and hnsw need no training). */
static int
dec_index_mem(const mpk_dec *d, const msgpack_object *co, const char *path,
              anc_contract_info *ci)
{
	uint64_t u = 0;
	int rv, present;

	if ((rv = mpk_get_uint(d, co, path, "code_bytes", 0, UINT32_MAX, &u,
	         NULL)))
		return rv;
	ci->code_bytes = (uint32_t)u;
	u = 0;
	if ((rv = mpk_get_uint(d, co, path, "index_bytes", 0, UINT32_MAX, &u,
	         NULL)))
		return rv;
	ci->index_bytes = (uint32_t)u;
	if ((rv = mpk_get_bool(d, co, path, "trained", 0, &ci->trained,
	         &present)))
		return rv;
	if (!present)
		ci->trained = 1;
	return ANC_OK;
}

/* Check that element i of arr (named path) is a map; set ep to its path. */
static int
elem_map(const mpk_dec *d, const msgpack_object_array *arr, uint32_t i,
         const char *path, char ep[MPK_PATH_MAX], const msgpack_object **o)
{
	mpk_path_idx(ep, path, i);
	*o = &arr->ptr[i];
	if ((*o)->type != MSGPACK_OBJECT_MAP)
		return mpk_type_error(d, ep, "map", *o);
	return ANC_OK;
}

static void *
arr_alloc(const mpk_dec *d, uint32_t n, size_t size, const char *path,
          int *rv)
{
	void *p = pa_calloc(d->arena, n, size);
	if (p == NULL)
		*rv = anc_error_set(d->err, ANC_ENOMEM,
		    "%s: out of memory for %u entries", path, n);
	return p;
}

/* The canary fields of a contract in info: optional, so that a client
 * still reads a server that predates them. */
static int
dec_contract_check_info(const mpk_dec *d, const msgpack_object *co,
                        const char *path, anc_contract_info *ci)
{
	uint64_t u = 0;
	int rv;

	if ((rv = mpk_get_uint(d, co, path, "canaries", 0, ANC_CANARY_MAX, &u,
	         NULL)))
		return rv;
	ci->canaries = (uint32_t)u;
	if ((rv = mpk_get_uint(d, co, path, "checked_at", 0, UINT64_MAX,
	         &ci->checked_at, NULL)) ||
	    (rv = mpk_get_bool(d, co, path, "check_pass", 0, &ci->check_pass,
	         NULL)))
		return rv;
	return mpk_get_float(d, co, path, "check_min_cosine", 0,
	    &ci->check_min_cosine, NULL);
}

static int
dec_check(const mpk_dec *d, const msgpack_object *body, anc_resp *resp)
{
	const msgpack_object_array *res;
	const msgpack_object *o;
	char p[MPK_PATH_MAX];
	anc_check_result *c = &resp->u.check;
	uint64_t u;
	int rv = ANC_OK;

	if ((rv = dec_contract_id(d, body, "body", "contract", 0,
	         c->contract)) ||
	    (rv = mpk_get_array(d, body, "body", "results", 0, ANC_CANARY_MAX,
	         "ANC_CANARY_MAX", &res)) ||
	    (rv = mpk_get_float(d, body, "body", "threshold", 1, &c->threshold,
	         NULL)) ||
	    (rv = mpk_get_float(d, body, "body", "min_cosine", 1,
	         &c->min_cosine, NULL)) ||
	    (rv = mpk_get_bool(d, body, "body", "pass", 1, &c->pass, NULL)) ||
	    (rv = mpk_get_uint(d, body, "body", "checked_at", 1, UINT64_MAX,
	         &c->checked_at, NULL)))
		return rv;
	c->n = res->size;
	if (res->size > 0 &&
	    (c->results = arr_alloc(d, res->size, sizeof(anc_canary_result),
	         "body.results", &rv)) == NULL)
		return rv;
	for (uint32_t i = 0; i < res->size; i++) {
		anc_canary_result *x = &c->results[i];
		if ((rv = elem_map(d, res, i, "body.results", p, &o)) ||
		    (rv = mpk_get_uint(d, o, p, "probe", 1, ANC_CANARY_MAX, &u,
		         NULL)) ||
		    (rv = mpk_get_float(d, o, p, "cosine", 1, &x->cosine, NULL)) ||
		    (rv = mpk_get_bool(d, o, p, "pass", 1, &x->pass, NULL)))
			return rv;
		x->probe = (uint32_t)u;
	}
	return ANC_OK;
}

static int
dec_info(const mpk_dec *d, const msgpack_object *body, anc_info *in)
{
	const msgpack_object_array *cols, *cons;
	const msgpack_object *o, *co, *cm;
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX], r[MPK_PATH_MAX];
	int rv = ANC_OK;

	if ((rv = mpk_get_strbuf(d, body, "body", "version", 1, in->version,
	         sizeof(in->version), NULL)) ||
	    (rv = mpk_get_uint(d, body, "body", "seq", 1, UINT64_MAX, &in->seq,
	         NULL)) ||
	    (rv = mpk_get_array(d, body, "body", "collections", 0,
	         d->lim->max_hits, "max_hits", &cols)))
		return rv;
	in->ncollections = cols->size;
	if (cols->size > 0 &&
	    (in->collections = arr_alloc(d, cols->size,
	         sizeof(anc_collection_info), "body.collections", &rv)) == NULL)
		return rv;
	for (uint32_t i = 0; i < cols->size; i++) {
		anc_collection_info *c = &in->collections[i];
		if ((rv = elem_map(d, cols, i, "body.collections", p, &o)) ||
		    (rv = mpk_get_strbuf(d, o, p, "name", 1, c->name,
		         sizeof(c->name), NULL)) ||
		    (rv = mpk_get_uint(d, o, p, "live", 1, UINT64_MAX, &c->live,
		         NULL)) ||
		    (rv = mpk_get_uint(d, o, p, "deleted", 1, UINT64_MAX,
		         &c->deleted, NULL)) ||
		    (rv = dec_contract_id(d, o, p, "default_contract", 1,
		         c->default_contract)) ||
		    (rv = mpk_get_array(d, o, p, "contracts", 0,
		         d->lim->max_hits, "max_hits", &cons)))
			return rv;
		mpk_path(q, p, "contracts");
		c->ncontracts = cons->size;
		if (cons->size > 0 &&
		    (c->contracts = arr_alloc(d, cons->size,
		         sizeof(anc_contract_info), q, &rv)) == NULL)
			return rv;
		for (uint32_t j = 0; j < cons->size; j++) {
			anc_contract_info *ci = &c->contracts[j];
			if ((rv = elem_map(d, cons, j, q, r, &co)) ||
			    (rv = dec_contract_id(d, co, r, "id", 0, ci->id)) ||
			    (rv = dec_enum(d, co, r, "state", state_name,
			         ANC_CSTATE_RETIRED + 1, &ci->state)) ||
			    (rv = mpk_get_uint(d, co, r, "vectors", 1,
			         UINT64_MAX, &ci->vectors, NULL)) ||
			    (rv = mpk_get_uint(d, co, r, "index_ntotal", 1,
			         UINT64_MAX, &ci->index_ntotal, NULL)) ||
			    (rv = dec_index_mem(d, co, r, ci)) ||
			    (rv = mpk_get_map(d, co, r, "contract", 1, &cm,
			         NULL)) ||
			    (rv = dec_contract_check_info(d, co, r, ci)))
				return rv;
			char cp[MPK_PATH_MAX];
			mpk_path(cp, r, "contract");
			if ((rv = pr_contract_decode(d, cm, cp, &ci->contract)))
				return rv;
			{
				const msgpack_object *km;
				int has;
				mpk_path(cp, r, "calibration");
				if ((rv = mpk_get_map(d, co, r, "calibration", 0,
				         &km, &has)))
					return rv;
				if (has && (rv = pr_calib_decode(d, km, cp,
				                 &ci->calib)))
					return rv;
			}
		}
	}
	return ANC_OK;
}

static int dec_resolved(const mpk_dec *d, const msgpack_object_array *res,
                        const char *what, anc_resolved **out, uint32_t *n);

static int
dec_query(const mpk_dec *d, const msgpack_object *body, anc_resp *resp)
{
	const msgpack_object_array *res, *hits;
	const msgpack_object *o, *ho, *pm, *m;
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX], hp[MPK_PATH_MAX];
	uint64_t total = 0;
	int rv = ANC_OK;

	if ((rv = mpk_get_array(d, body, "body", "results", 0,
	         d->lim->max_queries, "max_queries", &res)))
		return rv;
	resp->u.query.nq = res->size;
	if (res->size > 0 &&
	    (resp->u.query.lists = arr_alloc(d, res->size, sizeof(anc_hitlist),
	         "body.results", &rv)) == NULL)
		return rv;
	for (uint32_t i = 0; i < res->size; i++) {
		anc_hitlist *l = &resp->u.query.lists[i];
		if ((rv = elem_map(d, res, i, "body.results", p, &o)) ||
		    (rv = mpk_get_array(d, o, p, "hits", 0, d->lim->max_hits,
		         "max_hits", &hits)))
			return rv;
		mpk_path(q, p, "hits");
		total += hits->size;
		if (total > d->lim->max_hits)
			return anc_error_set(d->err, ANC_ETOOBIG,
			    "%s: %llu hits in all, over the limit max_hits=%u", q,
			    (unsigned long long)total, d->lim->max_hits);
		l->nhits = hits->size;
		/* per-query drift flag: absent when not scored (and from
		 * servers before it): NaN */
		l->drift_score = NAN;
		if ((rv = mpk_get_bool(d, o, p, "drift", 0, &l->drift_flag,
		         NULL)) ||
		    (rv = mpk_get_float(d, o, p, "drift_score", 0,
		         &l->drift_score, NULL)))
			return rv;
		/* confidence (issue 8): optional, "unknown" when absent */
		{
			const msgpack_object *co;
			char cs[16];
			int c;
			if ((rv = mpk_find(d, o, p, "confidence", &co)))
				return rv;
			if (co != NULL && co->type != MSGPACK_OBJECT_NIL) {
				if ((rv = mpk_get_strbuf(d, o, p, "confidence",
				         1, cs, sizeof cs, NULL)))
					return rv;
				if ((c = anc_confidence_parse(cs)) < 0)
					return anc_error_set(d->err,
					    ANC_EMALFORMED,
					    "%s.confidence: unknown value '%s'",
					    p, cs);
				l->confidence = c;
			}
		}
		if (hits->size > 0 &&
		    (l->hits = arr_alloc(d, hits->size, sizeof(anc_hit), q,
		         &rv)) == NULL)
			return rv;
		for (uint32_t j = 0; j < hits->size; j++) {
			anc_hit *h = &l->hits[j];
			const char *s;
			if ((rv = elem_map(d, hits, j, q, hp, &ho)) ||
			    (rv = dec_anchor(d, ho, hp, h->anchor)) ||
			    (rv = mpk_get_float(d, ho, hp, "score", 1, &h->score,
			         NULL)) ||
			    (rv = mpk_get_uint(d, ho, hp, "revision", 1,
			         UINT64_MAX, &h->revision, NULL)) ||
			    (rv = mpk_get_str(d, ho, hp, "source", 1, ANC_STR_MAX,
			         ANC_EINVAL, &s, NULL)))
				return rv;
			h->source = (char *)s;
			if ((rv = mpk_get_str(d, ho, hp, "chunk", 1, ANC_STR_MAX,
			         ANC_EINVAL, &s, NULL)))
				return rv;
			h->chunk = (char *)s;
			s = NULL;
			if ((rv = mpk_get_str(d, ho, hp, "text", 0,
			         d->lim->max_text, ANC_ETOOBIG, &s, NULL)))
				return rv;
			h->text = (char *)s;
			if ((rv = mpk_find(d, ho, hp, "meta", &m)))
				return rv;
			if (m != NULL) {
				const uint8_t *meta = NULL;
				char mp[MPK_PATH_MAX];
				mpk_path(mp, hp, "meta");
				if ((rv = mpk_meta_dup(d, m, mp, &meta,
				         &h->meta_len)))
					return rv;
				h->meta = (uint8_t *)meta;
			}
		}
	}
	if ((rv = mpk_get_map(d, body, "body", "provenance", 1, &pm, NULL)) ||
	    (rv = pr_prov_decode(d, pm, "body.provenance",
	         &resp->u.query.prov)))
		return rv;
	{
		/* the request's pins (optional: only when it had some) */
		const msgpack_object *po;
		if ((rv = mpk_find(d, body, "body", "pinned", &po)))
			return rv;
		if (po == NULL || po->type == MSGPACK_OBJECT_NIL)
			return ANC_OK;
		if (po->type != MSGPACK_OBJECT_ARRAY)
			return mpk_type_error(d, "body.pinned", "array", po);
		if (po->via.array.size > ANC_QUERY_PINS_MAX)
			return anc_error_set(d->err, ANC_ETOOBIG,
			    "body.pinned: %u elements, over the limit "
			    "ANC_QUERY_PINS_MAX=%d", po->via.array.size,
			    ANC_QUERY_PINS_MAX);
		return dec_resolved(d, &po->via.array, "body.pinned",
		                    &resp->u.query.pinned,
		                    &resp->u.query.npinned);
	}
}

static const char *upsert_name(int s) { return anc_upsert_status_name(s); }
static const char *anchor_name(int s) { return anc_anchor_status_name(s); }
static const char *delete_name(int s) { return anc_delete_status_name(s); }

/* Resolved anchors: the array arr, named what, into *out (n). */
static int
dec_resolved(const mpk_dec *d, const msgpack_object_array *res,
             const char *what, anc_resolved **out, uint32_t *n)
{
	const msgpack_object *o, *m;
	char p[MPK_PATH_MAX], mp[MPK_PATH_MAX];
	int rv = ANC_OK;

	*n = res->size;
	if (res->size > 0 &&
	    (*out = arr_alloc(d, res->size, sizeof(anc_resolved), what, &rv)) ==
	        NULL)
		return rv;
	for (uint32_t i = 0; i < res->size; i++) {
		anc_resolved *x = &(*out)[i];
		const char *src = NULL, *chk = NULL, *txt = NULL;
		const uint8_t *meta = NULL;
		if ((rv = elem_map(d, res, i, what, p, &o)) ||
		    (rv = dec_anchor(d, o, p, x->anchor)) ||
		    (rv = dec_enum(d, o, p, "status", anchor_name,
		         ANC_ANCHOR_UNKNOWN + 1, &x->status)) ||
		    (rv = mpk_get_uint(d, o, p, "revision", 0, UINT64_MAX,
		         &x->revision, NULL)) ||
		    (rv = mpk_get_str(d, o, p, "source", 0, ANC_STR_MAX,
		         ANC_EINVAL, &src, NULL)) ||
		    (rv = mpk_get_str(d, o, p, "chunk", 0, ANC_STR_MAX,
		         ANC_EINVAL, &chk, NULL)) ||
		    (rv = mpk_get_str(d, o, p, "text", 0, d->lim->max_text,
		         ANC_ETOOBIG, &txt, NULL)) ||
		    (rv = mpk_get_strbuf(d, o, p, "hash", 0, x->hash,
		         sizeof(x->hash), NULL)) ||
		    (rv = mpk_find(d, o, p, "meta", &m)))
			return rv;
		x->source = (char *)src;
		x->chunk = (char *)chk;
		x->text = (char *)txt;
		if (m != NULL) {
			mpk_path(mp, p, "meta");
			if ((rv = mpk_meta_dup(d, m, mp, &meta, &x->meta_len)))
				return rv;
			x->meta = (uint8_t *)meta;
		}
	}
	return ANC_OK;
}

static int
dec_resolve(const mpk_dec *d, const msgpack_object *body, anc_resp *resp)
{
	const msgpack_object_array *res;
	int rv;

	if ((rv = mpk_get_array(d, body, "body", "results", 0,
	         d->lim->max_anchors, "max_anchors", &res)))
		return rv;
	return dec_resolved(d, res, "body.results", &resp->u.resolve.results,
	                    &resp->u.resolve.n);
}

static int
dec_body(const mpk_dec *d, const msgpack_object *body, anc_resp *resp)
{
	const msgpack_object_array *res;
	const msgpack_object *o;
	char p[MPK_PATH_MAX];
	int rv = ANC_OK;

	switch (resp->op) {
	case ANC_OP_PING:
		return mpk_get_strbuf(d, body, "body", "version",
		    1, resp->u.ping.version, sizeof(resp->u.ping.version), NULL);
	case ANC_OP_INFO:
		return dec_info(d, body, &resp->u.info);
	case ANC_OP_COLLECTION_CREATE:
		return mpk_get_bool(d, body, "body", "created", 1,
		    &resp->u.collection_create.created, NULL);
	case ANC_OP_CONTRACT_REGISTER:
		if ((rv = dec_contract_id(d, body, "body", "id", 0,
		         resp->u.contract_register.id)))
			return rv;
		return mpk_get_bool(d, body, "body", "created", 1,
		    &resp->u.contract_register.created, NULL);
	case ANC_OP_UPSERT:
		if ((rv = mpk_get_array(d, body, "body", "results", 0,
		         d->lim->max_records, "max_records", &res)) ||
		    (rv = mpk_get_uint(d, body, "body", "seq", 1, UINT64_MAX,
		         &resp->u.upsert.seq, NULL)))
			return rv;
		resp->u.upsert.n = res->size;
		if (res->size > 0 &&
		    (resp->u.upsert.results = arr_alloc(d, res->size,
		         sizeof(anc_upsert_result), "body.results", &rv)) == NULL)
			return rv;
		for (uint32_t i = 0; i < res->size; i++) {
			anc_upsert_result *x = &resp->u.upsert.results[i];
			if ((rv = elem_map(d, res, i, "body.results", p, &o)) ||
			    (rv = dec_anchor(d, o, p, x->anchor)) ||
			    (rv = mpk_get_uint(d, o, p, "revision", 1, UINT64_MAX,
			         &x->revision, NULL)) ||
			    (rv = dec_enum(d, o, p, "status", upsert_name,
			         ANC_UPSERT_UNCHANGED + 1, &x->status)))
				return rv;
		}
		return ANC_OK;
	case ANC_OP_QUERY:
		return dec_query(d, body, resp);
	case ANC_OP_RESOLVE:
		return dec_resolve(d, body, resp);
	case ANC_OP_CONTRACT_PROMOTE:
	case ANC_OP_CONTRACT_RETIRE:
		if ((rv = dec_contract_id(d, body, "body", "id", 0,
		         resp->u.contract_state.id)) ||
		    (rv = dec_enum(d, body, "body", "state", state_name,
		         ANC_CSTATE_RETIRED + 1, &resp->u.contract_state.state)))
			return rv;
		return dec_contract_id(d, body, "body", "previous", 1,
		    resp->u.contract_state.previous);
	case ANC_OP_CONTRACT_CHECK:
		return dec_check(d, body, resp);
	case ANC_OP_DELETE:
		if ((rv = mpk_get_array(d, body, "body", "results", 0,
		         d->lim->max_anchors, "max_anchors", &res)) ||
		    (rv = mpk_get_uint(d, body, "body", "seq", 1, UINT64_MAX,
		         &resp->u.del.seq, NULL)))
			return rv;
		resp->u.del.n = res->size;
		if (res->size > 0 &&
		    (resp->u.del.results = arr_alloc(d, res->size,
		         sizeof(anc_delete_result), "body.results", &rv)) == NULL)
			return rv;
		for (uint32_t i = 0; i < res->size; i++) {
			anc_delete_result *x = &resp->u.del.results[i];
			if ((rv = elem_map(d, res, i, "body.results", p, &o)) ||
			    (rv = dec_anchor(d, o, p, x->anchor)) ||
			    (rv = dec_enum(d, o, p, "status", delete_name,
			         ANC_DELETE_UNKNOWN + 1, &x->status)) ||
			    (rv = mpk_get_uint(d, o, p, "revision", 1, UINT64_MAX,
			         &x->revision, NULL)))
				return rv;
		}
		return ANC_OK;
	case ANC_OP_DRIFT:
		return pr_drift_resp_decode(d, body, &resp->u.drift);
	case ANC_OP_VERIFY:
		return pr_verify_resp_decode(d, body, &resp->u.verify);
	case ANC_OP_RECEIPT_GET:
		return pr_receipt_resp_decode(d, body, &resp->u.receipt);
	case ANC_OP_RECEIPT_REPLAY:
		return pr_replay_resp_decode(d, body, &resp->u.replay);
	default:
		return anc_error_set(d->err, ANC_EINTERNAL,
		    "op %d has no decoder", (int)resp->op);
	}
}

/* ok:false: {"code", "name"?, "message"}. */
static int
dec_error(const mpk_dec *d, const msgpack_object *root, anc_resp *resp)
{
	const msgpack_object *e;
	const char *msg, *name;
	uint64_t code;
	int rv;

	if ((rv = mpk_get_map(d, root, "", "error", 1, &e, NULL)) ||
	    (rv = mpk_get_uint(d, e, "error", "code", 1, INT_MAX, &code,
	         NULL)) ||
	    (rv = mpk_get_str(d, e, "error", "message", 1, d->lim->max_text,
	         ANC_ETOOBIG, &msg, NULL)) ||
	    (rv = mpk_get_str(d, e, "error", "name", 0, 64, ANC_EINVAL, &name,
	         NULL)))
		return rv;
	if (code == 0)
		return anc_error_set(d->err, ANC_EMALFORMED,
		    "error.code: 0 in a response with ok false");
	resp->code = (int)code;
	resp->message = (char *)msg;
	return ANC_OK;
}

int
anc_resp_decode(const void *buf, size_t len, anc_op op, const anc_limits *lim,
                anc_resp **out, anc_error *err)
{
	msgpack_unpacked up;
	anc_limits use;
	pa_arena *arena = NULL;
	anc_resp *resp;
	const msgpack_object *body;
	uint64_t v;
	int rv, ok;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "response decode: NULL out");
	*out = NULL;
	if ((int)op < 0 || op >= ANC_OP__COUNT)
		return anc_error_set(err, ANC_EINVAL,
		    "op: %d is not an operation", (int)op);
	if ((rv = pr_limits(lim, &use, err)) != ANC_OK)
		return rv;
	if ((rv = pr_unpack(buf, len, &use, UINT64_MAX, &up, err)) != ANC_OK)
		goto leave;
	if ((arena = pa_arena_new()) == NULL ||
	    (resp = pa_alloc(arena, sizeof(*resp))) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "message: out of memory");
		goto leave;
	}
	resp->arena_ = arena;
	resp->op = op;
	mpk_dec d = { arena, &use, err };
	const msgpack_object *root = &up.data;

	if ((rv = mpk_get_uint(&d, root, "", "id", 1, UINT64_MAX, &resp->id,
	         NULL)) ||
	    (rv = mpk_get_uint(&d, root, "", "v", 1, UINT64_MAX, &v, NULL)))
		goto leave;
	if (v != ANC_PROTO_VERSION) {
		rv = anc_error_set(err, ANC_EUNSUPPORTED,
		    "v: protocol version %llu is not supported, expected %d",
		    (unsigned long long)v, ANC_PROTO_VERSION);
		goto leave;
	}
	if ((rv = mpk_get_bool(&d, root, "", "ok", 1, &ok, NULL)))
		goto leave;
	if (!ok)
		rv = dec_error(&d, root, resp);
	else if ((rv = mpk_get_map(&d, root, "", "body", 1, &body, NULL)) ==
	         ANC_OK)
		rv = dec_body(&d, body, resp);
	if (rv != ANC_OK)
		goto leave;
	*out = resp;
	arena = NULL;
leave:
	msgpack_unpacked_destroy(&up);
	pa_arena_free(arena);
	return rv;
}

void
anc_resp_free(anc_resp *resp)
{
	if (resp != NULL)
		pa_arena_free(resp->arena_);
}
