/*
 * anc_proto.c — wire protocol v1: limits, op names, buffers, and the
 * request codec. Responses are in anc_proto_resp.c; PROTOCOL.md is the
 * reference for the wire form.
 *
 * Design note
 * -----------
 * Decoding runs in three passes, so untrusted bytes never steer an
 * allocation: (1) the size check against lim->max_message, (2) mpk_scan,
 * which walks the raw bytes once and proves they are one complete, bounded
 * msgpack map with nothing after it, (3) msgpack-c unpacks into a zone and
 * the op decoder reads the tree field by field, checking type, presence and
 * bounds before it copies anything into the message's arena. The first
 * problem wins and is reported with its field path.
 *
 * The arena holds the anc_req itself, so anc_req_free frees one arena.
 *
 * Encoders write straight into the caller's anc_buf; on any failure the
 * buffer is cut back to its length on entry, so a half-written message
 * never escapes.
 */
#include "proto_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- names, limits, buffers -------------------------------------------- */

static const char *const op_names[ANC_OP__COUNT] = {
	[ANC_OP_PING] = "ping",
	[ANC_OP_INFO] = "info",
	[ANC_OP_COLLECTION_CREATE] = "collection_create",
	[ANC_OP_CONTRACT_REGISTER] = "contract_register",
	[ANC_OP_UPSERT] = "upsert",
	[ANC_OP_QUERY] = "query",
	[ANC_OP_RESOLVE] = "resolve",
	[ANC_OP_DELETE] = "delete",
	[ANC_OP_CONTRACT_PROMOTE] = "contract_promote",
	[ANC_OP_CONTRACT_RETIRE] = "contract_retire",
	[ANC_OP_CONTRACT_CHECK] = "contract_check",
	[ANC_OP_DRIFT] = "drift",
	[ANC_OP_VERIFY] = "verify",
	[ANC_OP_RECEIPT_GET] = "receipt_get",
	[ANC_OP_RECEIPT_REPLAY] = "receipt_replay",
};

const char *
anc_op_name(anc_op op)
{
	if ((int)op < 0 || op >= ANC_OP__COUNT)
		return "unknown";
	return op_names[op];
}

int
anc_op_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < ANC_OP__COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

void
anc_limits_default(anc_limits *lim)
{
	lim->max_message = 64u << 20;
	lim->max_records = 10000;
	lim->max_queries = 1024;
	lim->max_k = 1000;
	lim->max_text = 1u << 20;
	lim->max_meta = 64u << 10;
	lim->max_anchors = 10000;
	lim->max_hits = 1u << 20;
}

int
pr_limits(const anc_limits *lim, anc_limits *use, anc_error *err)
{
	if (lim == NULL) {
		anc_limits_default(use);
		return ANC_OK;
	}
	*use = *lim;
	return anc_limits_check(use, err);
}

int
anc_limits_check(const anc_limits *use, anc_error *err)
{
#define PR_NONZERO(f) \
	if (use->f == 0) \
		return anc_error_set(err, ANC_EINVAL, \
		    "limits." #f ": 0 is not allowed (start from " \
		    "anc_limits_default)")
	PR_NONZERO(max_message);
	PR_NONZERO(max_records);
	PR_NONZERO(max_queries);
	PR_NONZERO(max_k);
	PR_NONZERO(max_text);
	PR_NONZERO(max_meta);
	PR_NONZERO(max_anchors);
	PR_NONZERO(max_hits);
#undef PR_NONZERO
	return ANC_OK;
}

void
anc_buf_init(anc_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void
anc_buf_reset(anc_buf *b)
{
	b->len = 0;
}

void
anc_buf_free(anc_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	anc_buf_init(b);
}

int
pr_name_parse(const char *(*name)(int), int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (strcmp(name(i), s) == 0)
			return i;
	return -1;
}

int
pr_str_check(const char *s, const char *path, size_t max, int required,
             anc_error *err)
{
	if (s == NULL) {
		if (!required)
			return ANC_OK;
		return anc_error_set(err, ANC_EINVAL,
		    "%s: required, got NULL", path);
	}
	size_t n = strnlen(s, max + 1);
	if (n > max)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: longer than the limit of %zu bytes", path, max);
	return ANC_OK;
}

/* ---- shared decoding steps ------------------------------------------------ */

int
pr_unpack(const void *buf, size_t len, const anc_limits *lim,
          uint64_t max_objects, msgpack_unpacked *up, anc_error *err)
{
	size_t off = 0;
	int rv;

	msgpack_unpacked_init(up);
	if (buf == NULL && len > 0)
		return anc_error_set(err, ANC_EINVAL, "message: NULL buffer");
	if (len > lim->max_message)
		return anc_error_set(err, ANC_ETOOBIG,
		    "message: %zu bytes, over the limit max_message=%u", len,
		    lim->max_message);
	if ((rv = mpk_scan_objects(buf, len, MPK_MAX_DEPTH, max_objects, NULL,
	         "message", err)) != ANC_OK)
		return rv;
	switch (msgpack_unpack_next(up, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		return anc_error_set(err, ANC_ENOMEM,
		    "message: out of memory unpacking %zu bytes", len);
	default:
		/* mpk_scan accepted it, so msgpack-c should have too. */
		return anc_error_set(err, ANC_EMALFORMED,
		    "message: msgpack-c refused a message the scanner accepted");
	}
	if (up->data.type != MSGPACK_OBJECT_MAP)
		return anc_error_set(err, ANC_EMALFORMED,
		    "message: expected map, got %s", mpk_type_name(&up->data));
	return ANC_OK;
}

int
pr_contract_decode(const mpk_dec *d, const msgpack_object *map,
                   const char *path, anc_contract *c)
{
	char sub[MPK_PATH_MAX], name[16];
	const msgpack_object *idx = NULL;
	uint64_t u;
	int rv, present, v;

	anc_contract_init(c);
	if ((rv = mpk_get_strbuf(d, map, path, "name", 1, c->name,
	         sizeof(c->name), NULL)) ||
	    (rv = mpk_get_strbuf(d, map, path, "model", 1, c->model,
	         sizeof(c->model), NULL)) ||
	    (rv = mpk_get_strbuf(d, map, path, "revision", 1, c->revision,
	         sizeof(c->revision), NULL)) ||
	    (rv = mpk_get_strbuf(d, map, path, "preprocess", 0, c->preprocess,
	         sizeof(c->preprocess), NULL)))
		return rv;
	if ((rv = mpk_get_uint(d, map, path, "dim", 1, UINT32_MAX, &u, NULL)))
		return rv;
	c->dim = (uint32_t)u;
	if ((rv = mpk_get_strbuf(d, map, path, "metric", 1, name, sizeof(name),
	         NULL)))
		return rv;
	if ((v = anc_metric_parse(name)) < 0) {
		mpk_path(sub, path, "metric");
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: expected l2, ip or cosine, got '%s'", sub, name);
	}
	c->metric = (anc_metric)v;
	if ((rv = mpk_get_bool(d, map, path, "normalize", 1, &c->normalize,
	         NULL)))
		return rv;
	if ((rv = mpk_get_map(d, map, path, "index", 0, &idx, &present)) ||
	    !present)
		return rv;
	mpk_path(sub, path, "index");
	if ((rv = mpk_get_strbuf(d, idx, sub, "kind", 1, name, sizeof(name),
	         NULL)))
		return rv;
	if ((v = anc_index_kind_parse(name)) < 0) {
		char kp[MPK_PATH_MAX];
		mpk_path(kp, sub, "kind");
		return anc_error_set(d->err, ANC_EINVAL,
		    "%s: expected flat, hnsw, hnsw_sq8, ivf_flat or ivf_pq, "
		    "got '%s'", kp, name);
	}
	c->index.kind = (anc_index_kind)v;
	if ((rv = mpk_get_uint(d, idx, sub, "m", 0, UINT32_MAX, &u, &present)))
		return rv;
	if (present)
		c->index.m = (uint32_t)u;
	if ((rv = mpk_get_uint(d, idx, sub, "ef_construction", 0, UINT32_MAX,
	         &u, &present)))
		return rv;
	if (present)
		c->index.ef_construction = (uint32_t)u;
	if ((rv = mpk_get_uint(d, idx, sub, "ef_search", 0, UINT32_MAX, &u,
	         &present)))
		return rv;
	if (present)
		c->index.ef_search = (uint32_t)u;
	{
		static const char *const ivf[] = {"nlist", "nprobe", "pq_m",
		                                  "pq_nbits"};
		uint32_t *dst[] = {&c->index.nlist, &c->index.nprobe,
		                   &c->index.pq_m, &c->index.pq_nbits};
		for (int i = 0; i < 4; i++) {
			if ((rv = mpk_get_uint(d, idx, sub, ivf[i], 0, UINT32_MAX,
			         &u, &present)))
				return rv;
			if (present)
				*dst[i] = (uint32_t)u;
		}
	}
	return ANC_OK;
}

int
pr_contract_check(const anc_contract *c, const char *path, anc_error *err)
{
	char p[MPK_PATH_MAX];
	int rv;

	if (c == NULL)
		return anc_error_set(err, ANC_EINVAL, "%s: NULL", path);
#define PR_FIELD(f) \
	mpk_path(p, path, #f); \
	if ((rv = pr_str_check(c->f, p, sizeof(c->f) - 1, 1, err))) \
		return rv
	PR_FIELD(name);
	PR_FIELD(model);
	PR_FIELD(revision);
	PR_FIELD(preprocess);
#undef PR_FIELD
	if ((int)c->metric < 0 || c->metric > ANC_METRIC_COSINE) {
		mpk_path(p, path, "metric");
		return anc_error_set(err, ANC_EINVAL,
		    "%s: %d is not a metric, expected l2, ip or cosine", p,
		    (int)c->metric);
	}
	if ((int)c->index.kind < 0 || c->index.kind > ANC_INDEX_KIND_LAST) {
		mpk_path(p, path, "index.kind");
		return anc_error_set(err, ANC_EINVAL,
		    "%s: %d is not an index kind, expected flat, hnsw, "
		    "hnsw_sq8, ivf_flat or ivf_pq", p, (int)c->index.kind);
	}
	return ANC_OK;
}

void
pr_contract_encode(mpk_w *w, const anc_contract *c)
{
	int hnsw = c->index.kind == ANC_INDEX_HNSW ||
	           c->index.kind == ANC_INDEX_HNSW_SQ8;
	int ivf = c->index.kind == ANC_INDEX_IVF_FLAT ||
	          c->index.kind == ANC_INDEX_IVF_PQ;
	int pq = c->index.kind == ANC_INDEX_IVF_PQ;

	mpk_w_map(w, 8);
	mpk_w_kstr(w, "name", c->name);
	mpk_w_kstr(w, "model", c->model);
	mpk_w_kstr(w, "revision", c->revision);
	mpk_w_kuint(w, "dim", c->dim);
	mpk_w_kstr(w, "metric", anc_metric_name(c->metric));
	mpk_w_kbool(w, "normalize", c->normalize);
	mpk_w_kstr(w, "preprocess", c->preprocess);
	mpk_w_key(w, "index");
	mpk_w_map(w, 1 + (hnsw ? 3 : 0) + (ivf ? 2 : 0) + (pq ? 2 : 0));
	mpk_w_kstr(w, "kind", anc_index_kind_name(c->index.kind));
	if (hnsw) {
		mpk_w_kuint(w, "m", c->index.m);
		mpk_w_kuint(w, "ef_construction", c->index.ef_construction);
		mpk_w_kuint(w, "ef_search", c->index.ef_search);
	}
	if (ivf) {
		mpk_w_kuint(w, "nlist", c->index.nlist);
		mpk_w_kuint(w, "nprobe", c->index.nprobe);
	}
	if (pq) {
		mpk_w_kuint(w, "pq_m", c->index.pq_m);
		mpk_w_kuint(w, "pq_nbits", c->index.pq_nbits);
	}
}

/* ---- request decoding ------------------------------------------------------ */

static int
dec_collection(const mpk_dec *d, const msgpack_object *body, const char **out)
{
	return mpk_get_str(d, body, "body", "collection", 1, ANC_COLLECTION_MAX,
	    ANC_EINVAL, out, NULL);
}

static int
dec_upsert(const mpk_dec *d, const msgpack_object *body, anc_req_upsert *u)
{
	const msgpack_object_array *recs;
	char rp[MPK_PATH_MAX], p[MPK_PATH_MAX];
	int rv;

	if ((rv = dec_collection(d, body, &u->collection)) ||
	    (rv = mpk_get_str(d, body, "body", "contract", 1,
	         PR_CONTRACT_REF_MAX, ANC_EINVAL, &u->contract, NULL)))
		return rv;
	if (u->contract[0] == '\0')
		return anc_error_set(d->err, ANC_EINVAL,
		    "body.contract: empty, expected a contract ID or "
		    "name@revision");
	if ((rv = mpk_get_array(d, body, "body", "records", 1,
	         d->lim->max_records, "max_records", &recs)))
		return rv;
	u->records = pa_calloc(d->arena, recs->size, sizeof(anc_record));
	if (u->records == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "body.records: out of memory for %u records", recs->size);
	u->nrecords = recs->size;
	for (uint32_t i = 0; i < recs->size; i++) {
		const msgpack_object *r = &recs->ptr[i], *o;
		anc_record *rec = &u->records[i];
		float *vec;

		mpk_path_idx(rp, "body.records", i);
		if (r->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, rp, "map", r);
		if ((rv = mpk_get_str(d, r, rp, "source", 1, ANC_STR_MAX,
		         ANC_EINVAL, &rec->source, NULL)) ||
		    (rv = mpk_get_str(d, r, rp, "chunk", 1, ANC_STR_MAX,
		         ANC_EINVAL, &rec->chunk, NULL)) ||
		    (rv = mpk_get_str(d, r, rp, "text", 0, d->lim->max_text,
		         ANC_ETOOBIG, &rec->text, NULL)))
			return rv;
		if (rec->source[0] == '\0') {
			mpk_path(p, rp, "source");
			return anc_error_set(d->err, ANC_EINVAL,
			    "%s: empty, expected 1..%d bytes", p, ANC_STR_MAX);
		}
		/* Text for prompts and JSON, keys that any client must be
		 * able to spell to derive the anchor: UTF-8, or refused
		 * before anything is stored. */
		{
			static const char *const f[3] = {"source", "chunk",
			                                 "text"};
			const char *v[3] = {rec->source, rec->chunk, rec->text};
			for (int j = 0; j < 3; j++) {
				if (v[j] == NULL)
					continue;
				mpk_path(p, rp, f[j]);
				if ((rv = anc_utf8_check(v[j], strlen(v[j]), p,
				         d->err)))
					return rv;
			}
		}
		if ((rv = mpk_find(d, r, rp, "meta", &o)))
			return rv;
		if (o != NULL) {
			mpk_path(p, rp, "meta");
			if ((rv = mpk_meta_dup(d, o, p, &rec->meta,
			         &rec->meta_len)))
				return rv;
		}
		mpk_path(p, rp, "vector");
		if ((rv = mpk_find(d, r, rp, "vector", &o)))
			return rv;
		if (o == NULL)
			return anc_error_set(d->err, ANC_EMALFORMED,
			    "%s: required field missing", p);
		if ((rv = mpk_vec_check(d, o, p, &rec->dim)))
			return rv;
		vec = pa_calloc(d->arena, rec->dim, sizeof(float));
		if (vec == NULL)
			return anc_error_set(d->err, ANC_ENOMEM,
			    "%s: out of memory for %u floats", p, rec->dim);
		mpk_vec_copy(vec, o, rec->dim);
		rec->vec = vec;
	}
	return ANC_OK;
}

static int dec_anchor_list(const mpk_dec *d, const msgpack_object_array *arr,
                           const char *what, anc_anchor_str **out,
                           uint32_t *n);

static int
dec_query(const mpk_dec *d, const msgpack_object *body, anc_req_query *q)
{
	const msgpack_object_array *vecs;
	char p[MPK_PATH_MAX];
	uint64_t k = 10;
	int rv, present;

	if ((rv = dec_collection(d, body, &q->collection)) ||
	    (rv = mpk_get_str(d, body, "body", "contract", 0,
	         PR_CONTRACT_REF_MAX, ANC_EINVAL, &q->contract, &present)))
		return rv;
	if (!present)
		q->contract = "";
	if ((rv = mpk_get_array(d, body, "body", "vectors", 1,
	         d->lim->max_queries, "max_queries", &vecs)))
		return rv;
	for (uint32_t i = 0; i < vecs->size; i++) {
		uint32_t dim;
		mpk_path_idx(p, "body.vectors", i);
		if ((rv = mpk_vec_check(d, &vecs->ptr[i], p, &dim)))
			return rv;
		if (i == 0)
			q->dim = dim;
		else if (dim != q->dim)
			return anc_error_set(d->err, ANC_EDIM,
			    "%s: %u floats, vectors[0] has %u", p, dim, q->dim);
	}
	q->nq = vecs->size;
	q->vectors = pa_calloc(d->arena, (size_t)q->nq * q->dim, sizeof(float));
	if (q->vectors == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "body.vectors: out of memory for %u x %u floats", q->nq,
		    q->dim);
	for (uint32_t i = 0; i < q->nq; i++)
		mpk_vec_copy(q->vectors + (size_t)i * q->dim, &vecs->ptr[i],
		    q->dim);
	if ((rv = mpk_get_uint(d, body, "body", "k", 0, UINT64_MAX, &k, NULL)))
		return rv;
	if (k == 0)
		return anc_error_set(d->err, ANC_EINVAL,
		    "body.k: 0 is out of range, expected 1..%u", d->lim->max_k);
	if (k > d->lim->max_k)
		return anc_error_set(d->err, ANC_ETOOBIG,
		    "body.k: %llu, over the limit max_k=%u",
		    (unsigned long long)k, d->lim->max_k);
	q->k = (uint32_t)k;
	q->with_text = 0;
	q->with_meta = 0;
	{
		/* pinned anchors (optional): the answer includes them */
		const msgpack_object *po;
		if ((rv = mpk_find(d, body, "body", "pins", &po)))
			return rv;
		if (po != NULL && po->type == MSGPACK_OBJECT_NIL)
			po = NULL; /* nil is absent (section 3) */
		if (po != NULL && po->type != MSGPACK_OBJECT_ARRAY)
			return mpk_type_error(d, "body.pins", "array", po);
		if (po != NULL && po->via.array.size > ANC_QUERY_PINS_MAX)
			return anc_error_set(d->err, ANC_ETOOBIG,
			    "body.pins: %u elements, over the limit "
			    "ANC_QUERY_PINS_MAX=%d", po->via.array.size,
			    ANC_QUERY_PINS_MAX);
		if (po != NULL && po->via.array.size > 0 &&
		    (rv = dec_anchor_list(d, &po->via.array, "body.pins",
		                          &q->pins, &q->npins)))
			return rv;
	}
	if ((rv = mpk_get_bool(d, body, "body", "text", 0, &q->with_text,
	         NULL)) ||
	    (rv = mpk_get_bool(d, body, "body", "meta", 0, &q->with_meta,
	         NULL)) ||
	    (rv = mpk_get_bool(d, body, "body", "exact", 0, &q->exact, NULL)) ||
	    (rv = mpk_get_bool(d, body, "body", "receipt", 0, &q->receipt,
	         NULL)))
		return rv;
	{
		/* Search parameters: absent means the contract's; present
		 * must be in range (0 is never a setting). */
		static const char *const keys[] = {"ef", "nprobe", "rerank"};
		static const uint32_t max[] = {ANC_EF_MAX, ANC_NLIST_MAX,
		                               ANC_RERANK_MAX};
		uint32_t *dst[] = {&q->ef, &q->nprobe, &q->rerank};
		for (int i = 0; i < 3; i++) {
			int present;
			if ((rv = mpk_get_uint(d, body, "body", keys[i], 0,
			         UINT64_MAX, &k, &present)))
				return rv;
			if (!present)
				continue;
			if (k == 0 || k > max[i])
				return anc_error_set(d->err, ANC_EINVAL,
				    "body.%s: %llu is out of range, expected "
				    "1..%u", keys[i], (unsigned long long)k,
				    max[i]);
			*dst[i] = (uint32_t)k;
		}
	}
	return ANC_OK;
}

/* The anchors of arr (named what) into *out, allocated in the arena. */
static int
dec_anchor_list(const mpk_dec *d, const msgpack_object_array *arr,
                const char *what, anc_anchor_str **out, uint32_t *n)
{
	char p[MPK_PATH_MAX];
	uint8_t raw[ANC_ANCHOR_RAW];
	int rv;

	*out = pa_calloc(d->arena, arr->size ? arr->size : 1,
	                 sizeof(anc_anchor_str));
	if (*out == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "%s: out of memory for %u anchors", what, arr->size);
	*n = arr->size;
	for (uint32_t i = 0; i < arr->size; i++) {
		const msgpack_object *o = &arr->ptr[i];
		mpk_path_idx(p, what, i);
		if (o->type != MSGPACK_OBJECT_STR)
			return mpk_type_error(d, p, "str", o);
		if (o->via.str.size != ANC_ANCHOR_LEN)
			return anc_error_set(d->err, ANC_EINVAL,
			    "%s: %u bytes, expected a %d-character anchor", p,
			    o->via.str.size, ANC_ANCHOR_LEN);
		if (memchr(o->via.str.ptr, '\0', ANC_ANCHOR_LEN) != NULL)
			return anc_error_set(d->err, ANC_EINVAL,
			    "%s: embedded NUL byte", p);
		memcpy((*out)[i], o->via.str.ptr, ANC_ANCHOR_LEN);
		(*out)[i][ANC_ANCHOR_LEN] = '\0';
		if ((rv = anc_anchor_parse((*out)[i], raw, d->err))) {
			anc_error_wrap(d->err, "%s", p);
			return rv;
		}
	}
	return ANC_OK;
}

static int
dec_anchors(const mpk_dec *d, const msgpack_object *body, anc_req_anchors *a)
{
	const msgpack_object_array *arr;
	int rv;

	if ((rv = dec_collection(d, body, &a->collection)) ||
	    (rv = mpk_get_array(d, body, "body", "anchors", 1,
	         d->lim->max_anchors, "max_anchors", &arr)))
		return rv;
	return dec_anchor_list(d, arr, "body.anchors", &a->anchors,
	                       &a->nanchors);
}

/* A required contract reference (ID or name@revision). */
static int
dec_contract_ref(const mpk_dec *d, const msgpack_object *body,
                 const char **out)
{
	int rv;
	if ((rv = mpk_get_str(d, body, "body", "contract", 1,
	         PR_CONTRACT_REF_MAX, ANC_EINVAL, out, NULL)))
		return rv;
	if ((*out)[0] == '\0')
		return anc_error_set(d->err, ANC_EINVAL,
		    "body.contract: empty, expected a contract ID or "
		    "name@revision");
	return ANC_OK;
}

/* "canaries": [{text, vector}], optional. */
static int
dec_canaries(const mpk_dec *d, const msgpack_object *body, anc_req *req)
{
	const msgpack_object_array *arr;
	const msgpack_object *o;
	char ep[MPK_PATH_MAX], p[MPK_PATH_MAX];
	int rv;

	if ((rv = mpk_find(d, body, "body", "canaries", &o)))
		return rv;
	if (o == NULL)
		return ANC_OK;
	if ((rv = mpk_get_array(d, body, "body", "canaries", 0, ANC_CANARY_MAX,
	         "ANC_CANARY_MAX", &arr)))
		return rv;
	if (arr->size == 0)
		return ANC_OK;
	anc_canary *cs = pa_calloc(d->arena, arr->size, sizeof(anc_canary));
	if (cs == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "body.canaries: out of memory for %u probes", arr->size);
	for (uint32_t i = 0; i < arr->size; i++) {
		const msgpack_object *c = &arr->ptr[i], *v;
		float *vec;
		mpk_path_idx(ep, "body.canaries", i);
		if (c->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, ep, "map", c);
		if ((rv = mpk_get_str(d, c, ep, "text", 1, ANC_CANARY_TEXT_MAX,
		         ANC_ETOOBIG, &cs[i].text, NULL)) ||
		    (rv = mpk_find(d, c, ep, "vector", &v)))
			return rv;
		mpk_path(p, ep, "vector");
		if (v == NULL)
			return anc_error_set(d->err, ANC_EMALFORMED,
			    "%s: required field missing", p);
		if ((rv = mpk_vec_check(d, v, p, &cs[i].dim)))
			return rv;
		if ((vec = pa_calloc(d->arena, cs[i].dim, sizeof(float))) == NULL)
			return anc_error_set(d->err, ANC_ENOMEM,
			    "%s: out of memory for %u floats", p, cs[i].dim);
		mpk_vec_copy(vec, v, cs[i].dim);
		cs[i].vec = vec;
	}
	req->u.contract_register.canaries = cs;
	req->u.contract_register.ncanaries = arr->size;
	return ANC_OK;
}

static int
dec_check(const mpk_dec *d, const msgpack_object *body, anc_req *req)
{
	const msgpack_object_array *vecs;
	char p[MPK_PATH_MAX];
	int rv;
	anc_req_check *c = &req->u.contract_check;

	if ((rv = dec_collection(d, body, &c->collection)) ||
	    (rv = dec_contract_ref(d, body, &c->contract)) ||
	    (rv = mpk_get_array(d, body, "body", "vectors", 1, ANC_CANARY_MAX,
	         "ANC_CANARY_MAX", &vecs)))
		return rv;
	for (uint32_t i = 0; i < vecs->size; i++) {
		uint32_t dim;
		mpk_path_idx(p, "body.vectors", i);
		if ((rv = mpk_vec_check(d, &vecs->ptr[i], p, &dim)))
			return rv;
		if (i == 0)
			c->dim = dim;
		else if (dim != c->dim)
			return anc_error_set(d->err, ANC_EDIM,
			    "%s: %u floats, vectors[0] has %u", p, dim, c->dim);
	}
	c->n = vecs->size;
	if (c->n == 0)
		return anc_error_set(d->err, ANC_EINVAL,
		    "body.vectors: empty, expected one vector per canary probe");
	c->vectors = pa_calloc(d->arena, (size_t)c->n * c->dim, sizeof(float));
	if (c->vectors == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		    "body.vectors: out of memory for %u x %u floats", c->n,
		    c->dim);
	for (uint32_t i = 0; i < c->n; i++)
		mpk_vec_copy(c->vectors + (size_t)i * c->dim, &vecs->ptr[i],
		    c->dim);
	return ANC_OK;
}

static int
dec_body(const mpk_dec *d, const msgpack_object *body, anc_req *req)
{
	int rv;

	switch (req->op) {
	case ANC_OP_PING:
	case ANC_OP_INFO:
		return ANC_OK;
	case ANC_OP_COLLECTION_CREATE:
		return mpk_get_str(d, body, "body", "name", 1, ANC_COLLECTION_MAX,
		        ANC_EINVAL, &req->u.collection_create.name, NULL);
	case ANC_OP_CONTRACT_REGISTER: {
		const msgpack_object *cm;
		if ((rv = dec_collection(d, body,
		         &req->u.contract_register.collection)) ||
		    (rv = mpk_get_map(d, body, "body", "contract", 1, &cm, NULL)) ||
		    (rv = pr_contract_decode(d, cm, "body.contract",
		         &req->u.contract_register.contract)))
			return rv;
		return dec_canaries(d, body, req);
	}
	case ANC_OP_CONTRACT_PROMOTE:
	case ANC_OP_CONTRACT_RETIRE:
		if ((rv = dec_collection(d, body,
		         &req->u.contract_state.collection)) ||
		    (rv = dec_contract_ref(d, body,
		         &req->u.contract_state.contract)))
			return rv;
		req->u.contract_state.force = 0;
		if (req->op == ANC_OP_CONTRACT_RETIRE)
			return ANC_OK;
		return mpk_get_bool(d, body, "body", "force", 0,
		    &req->u.contract_state.force, NULL);
	case ANC_OP_CONTRACT_CHECK:
		return dec_check(d, body, req);
	case ANC_OP_UPSERT:
		return dec_upsert(d, body, &req->u.upsert);
	case ANC_OP_QUERY:
		return dec_query(d, body, &req->u.query);
	case ANC_OP_RESOLVE:
		return dec_anchors(d, body, &req->u.resolve);
	case ANC_OP_DELETE:
		return dec_anchors(d, body, &req->u.del);
	case ANC_OP_DRIFT:
		return pr_drift_req_decode(d, body, &req->u.drift);
	case ANC_OP_VERIFY:
		return pr_verify_req_decode(d, body, &req->u.verify);
	case ANC_OP_RECEIPT_GET:
	case ANC_OP_RECEIPT_REPLAY:
		return pr_receipt_req_decode(d, body,
		    req->op == ANC_OP_RECEIPT_GET, &req->u.receipt);
	default:
		return anc_error_set(d->err, ANC_EINTERNAL,
		    "op %d has no decoder", (int)req->op);
	}
}

int
anc_req_decode(const void *buf, size_t len, const anc_limits *lim,
               anc_req **out, uint64_t *id_out, anc_error *err)
{
	return anc_req_decode_op(buf, len, lim, out, id_out, NULL, err);
}

int
anc_req_decode_op(const void *buf, size_t len, const anc_limits *lim,
                  anc_req **out, uint64_t *id_out, int *op_out,
                  anc_error *err)
{
	msgpack_unpacked up;
	anc_limits use;
	pa_arena *arena = NULL;
	anc_req *req;
	const msgpack_object *body = NULL, *opobj;
	char opname[32];
	uint64_t v;
	int rv, op, present;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "request decode: NULL out");
	*out = NULL;
	if (id_out != NULL)
		*id_out = 0;
	if (op_out != NULL)
		*op_out = -1;
	if ((rv = pr_limits(lim, &use, err)) != ANC_OK)
		return rv;
	/* pr_unpack initialises up whatever happens: one exit from here. */
	if ((rv = pr_unpack(buf, len, &use, MPK_REQ_OBJECTS_MAX, &up, err)) !=
	    ANC_OK)
		goto leave;
	if ((arena = pa_arena_new()) == NULL ||
	    (req = pa_alloc(arena, sizeof(*req))) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "message: out of memory");
		goto leave;
	}
	req->arena_ = arena;
	mpk_dec d = { arena, &use, err };
	const msgpack_object *root = &up.data;

	if ((rv = mpk_get_uint(&d, root, "", "id", 1, UINT64_MAX, &req->id,
	         NULL)) != ANC_OK)
		goto leave;
	if (id_out != NULL)
		*id_out = req->id;
	if ((rv = mpk_get_uint(&d, root, "", "v", 1, UINT64_MAX, &v, NULL)))
		goto leave;
	if (v != ANC_PROTO_VERSION) {
		rv = anc_error_set(err, ANC_EUNSUPPORTED,
		    "v: protocol version %llu is not supported, expected %d",
		    (unsigned long long)v, ANC_PROTO_VERSION);
		goto leave;
	}
	if ((rv = mpk_find(&d, root, "", "op", &opobj)) != ANC_OK)
		goto leave;
	if (opobj == NULL) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		    "op: required field missing");
		goto leave;
	}
	if (opobj->type != MSGPACK_OBJECT_STR) {
		rv = mpk_type_error(&d, "op", "str", opobj);
		goto leave;
	}
	if (opobj->via.str.size >= sizeof(opname)) {
		rv = anc_error_set(err, ANC_EUNSUPPORTED,
		    "op: unknown operation (a %u-byte name)",
		    opobj->via.str.size);
		goto leave;
	}
	if ((rv = mpk_get_strbuf(&d, root, "", "op", 1, opname, sizeof(opname),
	         NULL)) != ANC_OK)
		goto leave;
	if ((op = anc_op_parse(opname)) < 0) {
		rv = anc_error_set(err, ANC_EUNSUPPORTED,
		    "op: unknown operation '%s'", opname);
		goto leave;
	}
	req->op = (anc_op)op;
	if (op_out != NULL)
		*op_out = op;
	if ((rv = mpk_get_str(&d, root, "", "auth", 0, ANC_AUTH_MAX, ANC_EINVAL,
	         &req->auth, NULL)) != ANC_OK)
		goto leave;
	if (req->auth != NULL && req->auth[0] == '\0') {
		/* The encoder refuses an empty key; so does the decoder, or
		 * decode . encode would not be the identity (fuzz_req). */
		rv = anc_error_set(err, ANC_EINVAL,
		    "auth: empty, the API key must be 1..%d bytes",
		    ANC_AUTH_MAX);
		goto leave;
	}
	/* ping and info carry nothing: their body may be left out. */
	if ((rv = mpk_get_map(&d, root, "", "body",
	         op != ANC_OP_PING && op != ANC_OP_INFO, &body, &present)))
		goto leave;
	if ((rv = dec_body(&d, body, req)) != ANC_OK)
		goto leave;
	*out = req;
	arena = NULL;
leave:
	msgpack_unpacked_destroy(&up);
	pa_arena_free(arena);
	return rv;
}

void
anc_req_free(anc_req *req)
{
	if (req != NULL)
		pa_arena_free(req->arena_);
}

/* ---- request encoding ------------------------------------------------------ */

static int
enc_vec_check(const float *v, uint32_t dim, const char *path, anc_error *err)
{
	if (v == NULL)
		return anc_error_set(err, ANC_EINVAL, "%s: required, got NULL",
		    path);
	if (dim == 0 || dim > UINT32_MAX / 4)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: dim %u, expected 1..%u", path, dim, UINT32_MAX / 4);
	return ANC_OK;
}

static int
enc_upsert(mpk_w *w, const anc_req_upsert *u, anc_error *err)
{
	char rp[MPK_PATH_MAX], p[MPK_PATH_MAX];
	int rv;

	if ((rv = pr_str_check(u->collection, "body.collection",
	         ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = pr_str_check(u->contract, "body.contract",
	         PR_CONTRACT_REF_MAX, 1, err)))
		return rv;
	if (u->contract[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		    "body.contract: empty, expected a contract ID or "
		    "name@revision");
	if (u->nrecords == 0 || u->records == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "body.records: empty, expected at least one record");
	mpk_w_map(w, 3);
	mpk_w_kstr(w, "collection", u->collection);
	mpk_w_kstr(w, "contract", u->contract);
	mpk_w_key(w, "records");
	mpk_w_array(w, u->nrecords);
	for (uint32_t i = 0; i < u->nrecords; i++) {
		const anc_record *r = &u->records[i];
		mpk_path_idx(rp, "body.records", i);
		mpk_path(p, rp, "source");
		if ((rv = pr_str_check(r->source, p, ANC_STR_MAX, 1, err)))
			return rv;
		if (r->source[0] == '\0')
			return anc_error_set(err, ANC_EINVAL,
			    "%s: empty, expected 1..%d bytes", p, ANC_STR_MAX);
		mpk_path(p, rp, "chunk");
		if ((rv = pr_str_check(r->chunk, p, ANC_STR_MAX, 1, err)))
			return rv;
		mpk_path(p, rp, "vector");
		if ((rv = enc_vec_check(r->vec, r->dim, p, err)))
			return rv;
		if (r->meta != NULL) {
			mpk_path(p, rp, "meta");
			if ((rv = mpk_meta_check(r->meta, r->meta_len, p, err)))
				return rv;
		}
		mpk_w_map(w, 3 + (r->text != NULL) + (r->meta != NULL));
		mpk_w_kstr(w, "source", r->source);
		mpk_w_kstr(w, "chunk", r->chunk);
		if (r->text != NULL)
			mpk_w_kstr(w, "text", r->text);
		if (r->meta != NULL) {
			mpk_w_key(w, "meta");
			mpk_w_raw(w, r->meta, r->meta_len);
		}
		mpk_w_key(w, "vector");
		mpk_w_vec(w, r->vec, r->dim);
	}
	return ANC_OK;
}

/* Anchor i of the array named what, before it is sent. */
static int
enc_anchor_check(const anc_anchor_str a, const char *what, uint32_t i,
                 anc_error *err)
{
	char p[MPK_PATH_MAX];
	uint8_t raw[ANC_ANCHOR_RAW];
	int rv;

	mpk_path_idx(p, what, i);
	if (strnlen(a, ANC_ANCHOR_LEN + 1) > ANC_ANCHOR_LEN)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: not NUL-terminated within %d characters", p,
		    ANC_ANCHOR_LEN);
	if ((rv = anc_anchor_parse(a, raw, err))) {
		anc_error_wrap(err, "%s", p);
		return rv;
	}
	return ANC_OK;
}

static int
enc_query(mpk_w *w, const anc_req_query *q, anc_error *err)
{
	int rv, has_contract = q->contract != NULL && q->contract[0] != '\0';

	if ((rv = pr_str_check(q->collection, "body.collection",
	         ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = pr_str_check(q->contract, "body.contract",
	         PR_CONTRACT_REF_MAX, 0, err)))
		return rv;
	if (q->nq == 0)
		return anc_error_set(err, ANC_EINVAL,
		    "body.vectors: empty, expected at least one vector");
	if ((rv = enc_vec_check(q->vectors, q->dim, "body.vectors", err)))
		return rv;
	/* k 0 means "the server's default" (10): the field is left out; so
	 * are search parameters at 0 (the contract's own). */
	if (q->npins > 0 && q->pins == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "body.pins: NULL with %u anchors", q->npins);
	if (q->npins > ANC_QUERY_PINS_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		    "body.pins: %u anchors, expected 0..%d", q->npins,
		    ANC_QUERY_PINS_MAX);
	for (uint32_t i = 0; i < q->npins; i++)
		if ((rv = enc_anchor_check(q->pins[i], "body.pins", i, err)))
			return rv;
	mpk_w_map(w, 3 + has_contract + (q->k != 0) + (q->ef != 0) +
	    (q->nprobe != 0) + (q->exact != 0) + (q->rerank != 0) +
	    (q->receipt != 0) + (q->with_meta != 0) + (q->npins != 0));
	mpk_w_kstr(w, "collection", q->collection);
	if (has_contract)
		mpk_w_kstr(w, "contract", q->contract);
	mpk_w_key(w, "vectors");
	mpk_w_array(w, q->nq);
	for (uint32_t i = 0; i < q->nq; i++)
		mpk_w_vec(w, q->vectors + (size_t)i * q->dim, q->dim);
	if (q->k != 0)
		mpk_w_kuint(w, "k", q->k);
	mpk_w_kbool(w, "text", q->with_text);
	if (q->ef != 0)
		mpk_w_kuint(w, "ef", q->ef);
	if (q->nprobe != 0)
		mpk_w_kuint(w, "nprobe", q->nprobe);
	if (q->exact != 0)
		mpk_w_kbool(w, "exact", 1);
	if (q->rerank != 0)
		mpk_w_kuint(w, "rerank", q->rerank);
	if (q->receipt != 0)
		mpk_w_kbool(w, "receipt", 1);
	if (q->with_meta != 0) /* only when asked: older servers */
		mpk_w_kbool(w, "meta", 1);
	if (q->npins != 0) {
		mpk_w_key(w, "pins");
		mpk_w_array(w, q->npins);
		for (uint32_t i = 0; i < q->npins; i++)
			mpk_w_str(w, q->pins[i]);
	}
	return ANC_OK;
}

static int
enc_anchors(mpk_w *w, const anc_req_anchors *a, anc_error *err)
{
	int rv;

	if ((rv = pr_str_check(a->collection, "body.collection",
	         ANC_COLLECTION_MAX, 1, err)))
		return rv;
	if (a->nanchors == 0)
		return anc_error_set(err, ANC_EINVAL,
		    "body.anchors: empty, expected at least one anchor");
	if (a->anchors == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "body.anchors: NULL with a count of %u", a->nanchors);
	mpk_w_map(w, 2);
	mpk_w_kstr(w, "collection", a->collection);
	mpk_w_key(w, "anchors");
	mpk_w_array(w, a->nanchors);
	for (uint32_t i = 0; i < a->nanchors; i++) {
		if ((rv = enc_anchor_check(a->anchors[i], "body.anchors", i,
		         err)))
			return rv;
		mpk_w_str(w, a->anchors[i]);
	}
	return ANC_OK;
}

static int
enc_canaries(mpk_w *w, const anc_canary *cs, uint32_t n, anc_error *err)
{
	char ep[MPK_PATH_MAX], p[MPK_PATH_MAX];
	int rv;

	if (n > ANC_CANARY_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		    "body.canaries: %u probes, over the limit %d", n,
		    ANC_CANARY_MAX);
	if (cs == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "body.canaries: NULL with %u probes", n);
	for (uint32_t i = 0; i < n; i++) {
		mpk_path_idx(ep, "body.canaries", i);
		mpk_path(p, ep, "text");
		if ((rv = pr_str_check(cs[i].text, p, ANC_CANARY_TEXT_MAX, 1,
		         err)))
			return rv;
		mpk_path(p, ep, "vector");
		if ((rv = enc_vec_check(cs[i].vec, cs[i].dim, p, err)))
			return rv;
	}
	mpk_w_key(w, "canaries");
	mpk_w_array(w, n);
	for (uint32_t i = 0; i < n; i++) {
		mpk_w_map(w, 2);
		mpk_w_kstr(w, "text", cs[i].text);
		mpk_w_key(w, "vector");
		mpk_w_vec(w, cs[i].vec, cs[i].dim);
	}
	return ANC_OK;
}

static int
enc_contract_ref(const char *collection, const char *contract, anc_error *err)
{
	int rv;
	if ((rv = pr_str_check(collection, "body.collection",
	         ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = pr_str_check(contract, "body.contract", PR_CONTRACT_REF_MAX,
	         1, err)))
		return rv;
	if (contract[0] == '\0')
		return anc_error_set(err, ANC_EINVAL,
		    "body.contract: empty, expected a contract ID or "
		    "name@revision");
	return ANC_OK;
}

static int
enc_body(mpk_w *w, const anc_req *req, anc_error *err)
{
	int rv;

	switch (req->op) {
	case ANC_OP_PING:
	case ANC_OP_INFO:
		mpk_w_map(w, 0);
		return ANC_OK;
	case ANC_OP_COLLECTION_CREATE:
		if ((rv = pr_str_check(req->u.collection_create.name,
		         "body.name", ANC_COLLECTION_MAX, 1, err)))
			return rv;
		mpk_w_map(w, 1);
		mpk_w_kstr(w, "name", req->u.collection_create.name);
		return ANC_OK;
	case ANC_OP_CONTRACT_REGISTER:
		if ((rv = pr_str_check(req->u.contract_register.collection,
		         "body.collection", ANC_COLLECTION_MAX, 1, err)) ||
		    (rv = pr_contract_check(&req->u.contract_register.contract,
		         "body.contract", err)))
			return rv;
		mpk_w_map(w, 2 + (req->u.contract_register.ncanaries > 0));
		mpk_w_kstr(w, "collection", req->u.contract_register.collection);
		mpk_w_key(w, "contract");
		pr_contract_encode(w, &req->u.contract_register.contract);
		if (req->u.contract_register.ncanaries > 0)
			return enc_canaries(w, req->u.contract_register.canaries,
			    req->u.contract_register.ncanaries, err);
		return ANC_OK;
	case ANC_OP_CONTRACT_PROMOTE:
	case ANC_OP_CONTRACT_RETIRE: {
		int promote = req->op == ANC_OP_CONTRACT_PROMOTE;
		if ((rv = enc_contract_ref(req->u.contract_state.collection,
		         req->u.contract_state.contract, err)))
			return rv;
		mpk_w_map(w, 2 + promote);
		mpk_w_kstr(w, "collection", req->u.contract_state.collection);
		mpk_w_kstr(w, "contract", req->u.contract_state.contract);
		if (promote)
			mpk_w_kbool(w, "force", req->u.contract_state.force);
		return ANC_OK;
	}
	case ANC_OP_CONTRACT_CHECK: {
		const anc_req_check *c = &req->u.contract_check;
		if ((rv = enc_contract_ref(c->collection, c->contract, err)))
			return rv;
		if (c->n == 0 || c->n > ANC_CANARY_MAX)
			return anc_error_set(err, ANC_EINVAL,
			    "body.vectors: %u vectors, expected 1..%d (one per "
			    "canary probe)", c->n, ANC_CANARY_MAX);
		if ((rv = enc_vec_check(c->vectors, c->dim, "body.vectors",
		         err)))
			return rv;
		mpk_w_map(w, 3);
		mpk_w_kstr(w, "collection", c->collection);
		mpk_w_kstr(w, "contract", c->contract);
		mpk_w_key(w, "vectors");
		mpk_w_array(w, c->n);
		for (uint32_t i = 0; i < c->n; i++)
			mpk_w_vec(w, c->vectors + (size_t)i * c->dim, c->dim);
		return ANC_OK;
	}
	case ANC_OP_UPSERT:
		return enc_upsert(w, &req->u.upsert, err);
	case ANC_OP_QUERY:
		return enc_query(w, &req->u.query, err);
	case ANC_OP_RESOLVE:
		return enc_anchors(w, &req->u.resolve, err);
	case ANC_OP_DELETE:
		return enc_anchors(w, &req->u.del, err);
	case ANC_OP_DRIFT:
		return pr_drift_req_encode(w, &req->u.drift, err);
	case ANC_OP_VERIFY:
		return pr_verify_req_encode(w, &req->u.verify, err);
	case ANC_OP_RECEIPT_GET:
	case ANC_OP_RECEIPT_REPLAY:
		return pr_receipt_req_encode(w, &req->u.receipt,
		    req->op == ANC_OP_RECEIPT_GET, err);
	default:
		return anc_error_set(err, ANC_EINVAL,
		    "op: %d is not an operation", (int)req->op);
	}
}

int
anc_req_encode(const anc_req *req, anc_buf *out, anc_error *err)
{
	mpk_w w;
	size_t start;
	int rv;

	if (req == NULL || out == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "request encode: NULL %s", req == NULL ? "request" : "buffer");
	if ((int)req->op < 0 || req->op >= ANC_OP__COUNT)
		return anc_error_set(err, ANC_EINVAL,
		    "op: %d is not an operation", (int)req->op);
	start = out->len;
	mpk_w_init(&w, out);
	if (req->auth != NULL && (req->auth[0] == '\0' ||
	                          strlen(req->auth) > ANC_AUTH_MAX))
		return anc_error_set(err, ANC_EINVAL,
		    "auth: the API key must be 1..%d bytes", ANC_AUTH_MAX);
	mpk_w_map(&w, req->auth != NULL ? 5 : 4);
	mpk_w_kuint(&w, "v", ANC_PROTO_VERSION);
	mpk_w_kstr(&w, "op", anc_op_name(req->op));
	mpk_w_kuint(&w, "id", req->id);
	if (req->auth != NULL)
		mpk_w_kstr(&w, "auth", req->auth);
	mpk_w_key(&w, "body");
	if ((rv = enc_body(&w, req, err)) == ANC_OK && w.oom)
		rv = anc_error_set(err, ANC_ENOMEM,
		    "%s request: out of memory encoding", anc_op_name(req->op));
	if (rv != ANC_OK)
		out->len = start;
	return rv;
}
