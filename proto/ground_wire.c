/*
 * ground_wire.c — grounding checks and receipts on the wire (issue 8): the
 * verify, receipt_get and receipt_replay operations, the calibration map
 * (in info and verify answers), the provenance map with its receipt ID,
 * and the names of verdicts, confidence levels and replay changes.
 *
 * Design note
 * -----------
 * Kept apart from anc_proto.c / anc_proto_resp.c like drift_wire.c, which
 * call in through proto_int.h. PROTOCOL.md, "Grounding checks and
 * receipts", is the reference for the wire form. The decoders follow the
 * house rules of mpk.h: every field typed, every count bounded before an
 * allocation (claims by min(max_queries, ANC_VERIFY_CLAIMS_MAX), cited
 * anchors by ANC_VERIFY_CITED_MAX, hits by max_hits), anchors and IDs
 * parsed, the field path in every message. Scores that do not exist (a
 * deleted cited anchor) are left out rather than sent as NaN; decoders
 * give NaN for an absent optional score.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proto_int.h"

static const char *const verdict_names[] = {"supported", "weakly_supported",
                                            "unsupported", "miscited"};
static const char *const conf_names[] = {"unknown", "none", "weak",
                                         "strong"};
static const char *const change_names[] = {"gone", "deleted", "revised",
                                           "new", "verdict"};

const char *
anc_verdict_name(int v)
{
	return v >= 0 && v <= ANC_VERDICT_LAST ? verdict_names[v] : "unknown";
}

int
anc_verdict_parse(const char *s)
{
	for (int i = 0; s != NULL && i <= ANC_VERDICT_LAST; i++)
		if (strcmp(verdict_names[i], s) == 0)
			return i;
	return -1;
}

const char *
anc_confidence_name(int c)
{
	return c >= 0 && c <= ANC_CONF_STRONG ? conf_names[c] : "unknown";
}

int
anc_confidence_parse(const char *s)
{
	for (int i = 0; s != NULL && i <= ANC_CONF_STRONG; i++)
		if (strcmp(conf_names[i], s) == 0)
			return i;
	return -1;
}

const char *
anc_change_kind_name(int k)
{
	return k >= 0 && k <= ANC_CHANGE_LAST ? change_names[k] : "unknown";
}

int
anc_change_kind_parse(const char *s)
{
	for (int i = 0; s != NULL && i <= ANC_CHANGE_LAST; i++)
		if (strcmp(change_names[i], s) == 0)
			return i;
	return -1;
}

/* ---- shared pieces ---------------------------------------------------------------- */

static const char *verdict_fn(int v) { return anc_verdict_name(v); }
static const char *change_fn(int v) { return anc_change_kind_name(v); }
static const char *kind_fn(int v) { return anc_index_kind_name(v); }
static const char *metric_fn(int v) { return anc_metric_name(v); }
static const char *status_fn(int v) { return anc_anchor_status_name(v); }
static const char *rkind_fn(int v)
{
	return v == ANC_RECEIPT_QUERY ? "query"
	       : v == ANC_RECEIPT_VERIFY ? "verify" : "unknown";
}

static int
dec_name(const mpk_dec *d, const msgpack_object *map, const char *parent,
         const char *key, const char *(*name)(int), int n, int *out)
{
	char s[32], p[MPK_PATH_MAX];
	int rv, v;
	if ((rv = mpk_get_strbuf(d, map, parent, key, 1, s, sizeof s, NULL)))
		return rv;
	if ((v = pr_name_parse(name, n, s)) < 0) {
		mpk_path(p, parent, key);
		return anc_error_set(d->err, ANC_EMALFORMED,
		                     "%s: unknown value '%s'", p, s);
	}
	*out = v;
	return ANC_OK;
}

static int
dec_anchor_key(const mpk_dec *d, const msgpack_object *map,
               const char *parent, const char *key, anc_anchor_str out)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	char p[MPK_PATH_MAX];
	int rv;
	if ((rv = mpk_get_strbuf(d, map, parent, key, 1, out,
	                         ANC_ANCHOR_LEN + 1, NULL)))
		return rv;
	if ((rv = anc_anchor_parse(out, raw, d->err))) {
		mpk_path(p, parent, key);
		anc_error_wrap(d->err, "%s", p);
	}
	return rv;
}

static int
dec_id(const mpk_dec *d, const msgpack_object *map, const char *parent,
       const char *key, int allow_empty, anc_receipt_id_str out)
{
	char p[MPK_PATH_MAX];
	int rv;
	if ((rv = mpk_get_strbuf(d, map, parent, key, 1, out,
	                         ANC_RECEIPT_ID_LEN + 1, NULL)))
		return rv;
	if (allow_empty && out[0] == '\0')
		return ANC_OK;
	for (int i = 0; i < ANC_RECEIPT_ID_LEN; i++)
		if (!((out[i] >= '0' && out[i] <= '9') ||
		      (out[i] >= 'a' && out[i] <= 'f'))) {
			mpk_path(p, parent, key);
			return anc_error_set(d->err, ANC_EINVAL,
			                     "%s: '%s' is not a receipt ID (%d "
			                     "lower-case hex digits)",
			                     p, out, ANC_RECEIPT_ID_LEN);
		}
	if (strlen(out) != ANC_RECEIPT_ID_LEN) {
		mpk_path(p, parent, key);
		return anc_error_set(d->err, ANC_EINVAL,
		                     "%s: '%s' is not a receipt ID (%d lower-case "
		                     "hex digits)", p, out, ANC_RECEIPT_ID_LEN);
	}
	return ANC_OK;
}

static int
id_check(const char *id, const char *path, int allow_empty, anc_error *err)
{
	size_t n = strnlen(id, ANC_RECEIPT_ID_LEN + 1);
	if (allow_empty && n == 0)
		return ANC_OK;
	if (n != ANC_RECEIPT_ID_LEN)
		return anc_error_set(err, ANC_EINVAL,
		                     "%s: expected %d lower-case hex digits", path,
		                     ANC_RECEIPT_ID_LEN);
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		      (id[i] >= 'a' && id[i] <= 'f')))
			return anc_error_set(err, ANC_EINVAL,
			                     "%s: expected %d lower-case hex "
			                     "digits", path, ANC_RECEIPT_ID_LEN);
	return ANC_OK;
}

/* Optional float: NaN when absent. */
static int
get_opt_float(const mpk_dec *d, const msgpack_object *map, const char *parent,
              const char *key, float *out)
{
	int present, rv;
	if ((rv = mpk_get_float(d, map, parent, key, 0, out, &present)))
		return rv;
	if (!present)
		*out = NAN;
	return ANC_OK;
}

static void
put_opt_float(mpk_w *w, const char *key, float v)
{
	if (!isnan(v))
		mpk_w_kfloat(w, key, v);
}

/* ---- calibration and provenance ------------------------------------------------- */

void
pr_calib_encode(mpk_w *w, const anc_calibration *c)
{
	mpk_w_map(w, 12);
	mpk_w_kuint(w, "computed_at", c->computed_at);
	mpk_w_kuint(w, "vectors", c->vectors);
	mpk_w_kuint(w, "sample", c->sample);
	mpk_w_kuint(w, "pairs", c->pairs);
	mpk_w_kstr(w, "metric", anc_metric_name((anc_metric)c->metric));
	mpk_w_kfloat(w, "random_p50", c->random_p50);
	mpk_w_kfloat(w, "random_p99", c->random_p99);
	mpk_w_kfloat(w, "nn_p05", c->nn_p05);
	mpk_w_kfloat(w, "nn_p50", c->nn_p50);
	mpk_w_kfloat(w, "weak", c->weak);
	mpk_w_kfloat(w, "strong", c->strong);
	mpk_w_kfloat(w, "margin", c->margin);
}

int
pr_calib_decode(const mpk_dec *d, const msgpack_object *m, const char *path,
                anc_calibration *c)
{
	uint64_t u;
	int rv, metric;
	static const char *const fk[] = {"random_p50", "random_p99", "nn_p05",
	                                 "nn_p50", "weak", "strong", "margin"};
	float *fv[] = {&c->random_p50, &c->random_p99, &c->nn_p05, &c->nn_p50,
	               &c->weak, &c->strong, &c->margin};
	memset(c, 0, sizeof *c);
	if ((rv = mpk_get_uint(d, m, path, "computed_at", 1, UINT64_MAX,
	                       &c->computed_at, NULL)) ||
	    (rv = mpk_get_uint(d, m, path, "vectors", 1, UINT64_MAX, &c->vectors,
	                       NULL)) ||
	    (rv = mpk_get_uint(d, m, path, "sample", 1, UINT32_MAX, &u, NULL)))
		return rv;
	c->sample = (uint32_t)u;
	if ((rv = mpk_get_uint(d, m, path, "pairs", 1, UINT32_MAX, &u, NULL)) ||
	    (rv = dec_name(d, m, path, "metric", metric_fn, ANC_METRIC_COSINE + 1,
	                   &metric)))
		return rv;
	c->pairs = (uint32_t)u;
	c->metric = metric;
	for (int i = 0; i < 7; i++)
		if ((rv = mpk_get_float(d, m, path, fk[i], 1, fv[i], NULL)))
			return rv;
	return ANC_OK;
}

int
pr_prov_check(const anc_provenance *pv, const char *path, anc_error *err)
{
	char p[MPK_PATH_MAX];
	if ((int)pv->index < 0 || pv->index > ANC_INDEX_KIND_LAST)
		return anc_error_set(err, ANC_EINVAL,
		                     "%s.index: %d is not an index kind", path,
		                     (int)pv->index);
	mpk_path(p, path, "receipt");
	return id_check(pv->receipt, p, 1, err);
}

void
pr_prov_encode(mpk_w *w, const anc_provenance *pv)
{
	int has = pv->receipt[0] != '\0';
	int hm = pv->has_metric != 0;
	mpk_w_map(w, 8 + has + hm);
	mpk_w_kstr(w, "contract", pv->contract);
	mpk_w_kstr(w, "index", anc_index_kind_name(pv->index));
	mpk_w_kbool(w, "exact", pv->exact);
	mpk_w_kuint(w, "ef_search", pv->ef_search);
	mpk_w_kuint(w, "seq", pv->seq);
	mpk_w_kuint(w, "generation", pv->generation);
	mpk_w_kuint(w, "nprobe", pv->nprobe);
	mpk_w_kuint(w, "rerank", pv->rerank);
	if (has)
		mpk_w_kstr(w, "receipt", pv->receipt);
	if (hm)
		mpk_w_kstr(w, "metric", anc_metric_name(pv->metric));
}

int
pr_prov_decode(const mpk_dec *d, const msgpack_object *pm, const char *path,
               anc_provenance *pv)
{
	uint64_t u = 0;
	int rv, kind, present;
	if ((rv = mpk_get_strbuf(d, pm, path, "contract", 1, pv->contract,
	                         sizeof pv->contract, NULL)) ||
	    (rv = dec_name(d, pm, path, "index", kind_fn,
	                   ANC_INDEX_KIND_LAST + 1, &kind)) ||
	    (rv = mpk_get_bool(d, pm, path, "exact", 1, &pv->exact, NULL)) ||
	    (rv = mpk_get_uint(d, pm, path, "ef_search", 1, UINT32_MAX, &u,
	                       NULL)) ||
	    (rv = mpk_get_uint(d, pm, path, "seq", 1, UINT64_MAX, &pv->seq,
	                       NULL)) ||
	    (rv = mpk_get_uint(d, pm, path, "generation", 1, UINT64_MAX,
	                       &pv->generation, NULL)))
		return rv;
	pv->index = (anc_index_kind)kind;
	pv->ef_search = (uint32_t)u;
	u = 0;
	if ((rv = mpk_get_uint(d, pm, path, "nprobe", 0, UINT32_MAX, &u, NULL)))
		return rv;
	pv->nprobe = (uint32_t)u;
	u = 0;
	if ((rv = mpk_get_uint(d, pm, path, "rerank", 0, UINT32_MAX, &u, NULL)))
		return rv;
	pv->rerank = (uint32_t)u;
	pv->receipt[0] = '\0';
	pv->has_metric = 0;
	pv->metric = ANC_METRIC_L2;
	{
		const msgpack_object *o;
		int m;
		if ((rv = mpk_find(d, pm, path, "metric", &o)))
			return rv;
		if (o != NULL && o->type != MSGPACK_OBJECT_NIL) {
			if ((rv = dec_name(d, pm, path, "metric", metric_fn,
			                   ANC_METRIC_COSINE + 1, &m)))
				return rv;
			pv->has_metric = 1;
			pv->metric = (anc_metric)m;
		}
		if ((rv = mpk_find(d, pm, path, "receipt", &o)))
			return rv;
		present = o != NULL && o->type != MSGPACK_OBJECT_NIL;
	}
	if (present)
		return dec_id(d, pm, path, "receipt", 1, pv->receipt);
	return ANC_OK;
}

/* ---- requests ---------------------------------------------------------------------- */

int
pr_verify_req_decode(const mpk_dec *d, const msgpack_object *body,
                     anc_req_verify *v)
{
	const msgpack_object_array *cl;
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX];
	uint32_t max = d->lim->max_queries < ANC_VERIFY_CLAIMS_MAX
	                   ? d->lim->max_queries : ANC_VERIFY_CLAIMS_MAX;
	int rv, present;

	v->contract = "";
	v->receipt = 0;
	if ((rv = mpk_get_str(d, body, "body", "collection", 1,
	                      ANC_COLLECTION_MAX, ANC_EINVAL, &v->collection,
	                      NULL)) ||
	    (rv = mpk_get_str(d, body, "body", "contract", 0,
	                      PR_CONTRACT_REF_MAX, ANC_EINVAL, &v->contract,
	                      &present)) ||
	    (rv = mpk_get_bool(d, body, "body", "receipt", 0, &v->receipt,
	                       NULL)) ||
	    (rv = mpk_get_array(d, body, "body", "claims", 1, max,
	                        "max_queries", &cl)))
		return rv;
	if (!present)
		v->contract = "";
	v->n = cl->size;
	if ((v->claims = pa_calloc(d->arena, cl->size, sizeof *v->claims)) ==
	    NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		                     "body.claims: out of memory");
	for (uint32_t i = 0; i < cl->size; i++) {
		const msgpack_object *o = &cl->ptr[i], *vo;
		const msgpack_object_array *ca, *ra = NULL;
		anc_claim *c = &v->claims[i];
		anc_anchor_str *cited;
		uint64_t *revs = NULL;
		uint32_t dim;
		float *vec;

		mpk_path_idx(p, "body.claims", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, p, "map", o);
		if ((rv = mpk_find(d, o, p, "vector", &vo)))
			return rv;
		mpk_path(q, p, "vector");
		if (vo == NULL)
			return anc_error_set(d->err, ANC_EMALFORMED,
			                     "%s: required field missing", q);
		if ((rv = mpk_vec_check(d, vo, q, &dim)))
			return rv;
		if ((vec = pa_calloc(d->arena, dim, sizeof *vec)) == NULL)
			return anc_error_set(d->err, ANC_ENOMEM,
			                     "%s: out of memory", q);
		mpk_vec_copy(vec, vo, dim);
		c->vec = vec;
		c->dim = dim;
		if ((rv = mpk_get_array(d, o, p, "cited", 0, ANC_VERIFY_CITED_MAX,
		                        "ANC_VERIFY_CITED_MAX", &ca)))
			return rv;
		{
			const msgpack_object *ro;
			if ((rv = mpk_find(d, o, p, "revisions", &ro)))
				return rv;
			if (ro != NULL && ro->type != MSGPACK_OBJECT_NIL &&
			    (rv = mpk_get_array(d, o, p, "revisions", 0,
			                        ANC_VERIFY_CITED_MAX,
			                        "ANC_VERIFY_CITED_MAX", &ra)))
				return rv;
		}
		if (ra != NULL && ra->size != ca->size) {
			mpk_path(q, p, "revisions");
			return anc_error_set(d->err, ANC_EINVAL,
			                     "%s: %u entries, expected one per cited "
			                     "anchor (%u)", q, ra->size, ca->size);
		}
		c->ncited = ca->size;
		if ((cited = pa_calloc(d->arena, ca->size ? ca->size : 1,
		                       sizeof *cited)) == NULL ||
		    (ra != NULL &&
		     (revs = pa_calloc(d->arena, ra->size ? ra->size : 1,
		                       sizeof *revs)) == NULL))
			return anc_error_set(d->err, ANC_ENOMEM,
			                     "%s: out of memory", p);
		for (uint32_t j = 0; j < ca->size; j++) {
			const char *s;
			uint8_t raw[ANC_ANCHOR_RAW];
			char cp[MPK_PATH_MAX];
			mpk_path(q, p, "cited");
			mpk_path_idx(cp, q, j);
			if ((rv = mpk_str_dup(d, &ca->ptr[j], cp, ANC_ANCHOR_LEN,
			                      ANC_EINVAL, &s)))
				return rv;
			if ((rv = anc_anchor_parse(s, raw, d->err))) {
				anc_error_wrap(d->err, "%s", cp);
				return rv;
			}
			memcpy(cited[j], s, ANC_ANCHOR_LEN + 1);
			if (ra != NULL) {
				const msgpack_object *r = &ra->ptr[j];
				mpk_path(q, p, "revisions");
				mpk_path_idx(cp, q, j);
				if (r->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
					return anc_error_set(d->err, ANC_EINVAL,
					    "%s: %lld is negative, expected a "
					    "revision (0: any)", cp,
					    (long long)r->via.i64);
				if (r->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
					return mpk_type_error(d, cp, "uint", r);
				revs[j] = r->via.u64;
			}
		}
		c->cited = (const anc_anchor_str *)cited;
		c->cited_rev = revs;
	}
	return ANC_OK;
}

int
pr_verify_req_encode(mpk_w *w, const anc_req_verify *v, anc_error *err)
{
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX];
	int rv, has_contract = v->contract != NULL && v->contract[0] != '\0';

	if ((rv = pr_str_check(v->collection, "body.collection",
	                       ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = pr_str_check(v->contract, "body.contract",
	                       PR_CONTRACT_REF_MAX, 0, err)))
		return rv;
	if (v->n == 0 || v->claims == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "body.claims: empty, expected 1..%d claims",
		                     ANC_VERIFY_CLAIMS_MAX);
	if (v->n > ANC_VERIFY_CLAIMS_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "body.claims: %u claims, over the limit %d",
		                     v->n, ANC_VERIFY_CLAIMS_MAX);
	for (uint32_t i = 0; i < v->n; i++) {
		const anc_claim *c = &v->claims[i];
		mpk_path_idx(p, "body.claims", i);
		if (c->vec == NULL || c->dim == 0 || c->dim > ANC_DIM_MAX)
			return anc_error_set(err, ANC_EINVAL,
			                     "%s.vector: expected 1..%d floats", p,
			                     ANC_DIM_MAX);
		if (c->ncited > ANC_VERIFY_CITED_MAX)
			return anc_error_set(err, ANC_ETOOBIG,
			                     "%s.cited: %u anchors, over the limit "
			                     "%d", p, c->ncited,
			                     ANC_VERIFY_CITED_MAX);
		if (c->ncited > 0 && c->cited == NULL)
			return anc_error_set(err, ANC_EINVAL,
			                     "%s.cited: NULL with %u anchors", p,
			                     c->ncited);
		for (uint32_t j = 0; j < c->ncited; j++) {
			uint8_t raw[ANC_ANCHOR_RAW];
			mpk_path(q, p, "cited");
			if (strnlen(c->cited[j], ANC_ANCHOR_LEN + 1) >
			        ANC_ANCHOR_LEN ||
			    anc_anchor_parse(c->cited[j], raw, err) != ANC_OK)
				return anc_error_set(err, ANC_EINVAL,
				                     "%s[%u]: not an anchor", q, j);
		}
	}
	mpk_w_map(w, 2 + has_contract + (v->receipt != 0));
	mpk_w_kstr(w, "collection", v->collection);
	if (has_contract)
		mpk_w_kstr(w, "contract", v->contract);
	if (v->receipt)
		mpk_w_kbool(w, "receipt", 1);
	mpk_w_key(w, "claims");
	mpk_w_array(w, v->n);
	for (uint32_t i = 0; i < v->n; i++) {
		const anc_claim *c = &v->claims[i];
		mpk_w_map(w, 2 + (c->cited_rev != NULL));
		mpk_w_key(w, "vector");
		mpk_w_vec(w, c->vec, c->dim);
		mpk_w_key(w, "cited");
		mpk_w_array(w, c->ncited);
		for (uint32_t j = 0; j < c->ncited; j++)
			mpk_w_str(w, c->cited[j]);
		if (c->cited_rev != NULL) {
			mpk_w_key(w, "revisions");
			mpk_w_array(w, c->ncited);
			for (uint32_t j = 0; j < c->ncited; j++)
				msgpack_pack_uint64(&w->pk, c->cited_rev[j]);
		}
	}
	return ANC_OK;
}

int
pr_receipt_req_decode(const mpk_dec *d, const msgpack_object *body,
                      int with_text_allowed, anc_req_receipt *r)
{
	int rv;
	r->with_text = 0;
	if ((rv = dec_id(d, body, "body", "receipt", 0, r->id)))
		return rv;
	if (with_text_allowed)
		return mpk_get_bool(d, body, "body", "text", 0, &r->with_text,
		                    NULL);
	return ANC_OK;
}

int
pr_receipt_req_encode(mpk_w *w, const anc_req_receipt *r,
                      int with_text_allowed, anc_error *err)
{
	int rv, t = with_text_allowed && r->with_text;
	if ((rv = id_check(r->id, "body.receipt", 0, err)))
		return rv;
	mpk_w_map(w, 1 + t);
	mpk_w_kstr(w, "receipt", r->id);
	if (t)
		mpk_w_kbool(w, "text", 1);
	return ANC_OK;
}

/* ---- responses: verify ---------------------------------------------------------- */

int
pr_verify_resp_encode(mpk_w *w, const anc_verify_result *v, anc_error *err)
{
	int rv;
	if (v->n > 0 && v->claims == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "body.claims: NULL with %u entries", v->n);
	if ((rv = pr_prov_check(&v->prov, "body.provenance", err)))
		return rv;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->claims[i].verdict < 0 ||
		    v->claims[i].verdict > ANC_VERDICT_LAST ||
		    (v->claims[i].ncited > 0 && v->claims[i].cited == NULL))
			return anc_error_set(err, ANC_EINVAL,
			                     "body.claims[%u]: bad verdict or cited",
			                     i);
	mpk_w_map(w, 3);
	mpk_w_key(w, "claims");
	mpk_w_array(w, v->n);
	for (uint32_t i = 0; i < v->n; i++) {
		const anc_claim_result *c = &v->claims[i];
		int sug = c->suggested[0] != '\0';
		mpk_w_map(w, 2 + c->has_best + c->has_cited_score + sug);
		mpk_w_kstr(w, "verdict", anc_verdict_name(c->verdict));
		mpk_w_key(w, "cited");
		mpk_w_array(w, c->ncited);
		for (uint32_t j = 0; j < c->ncited; j++) {
			const anc_cited *x = &c->cited[j];
			mpk_w_map(w, 5 + x->scored);
			mpk_w_kstr(w, "anchor", x->anchor);
			mpk_w_kstr(w, "status", anc_anchor_status_name(x->status));
			mpk_w_kuint(w, "revision", x->revision);
			mpk_w_kuint(w, "cited_revision", x->cited_revision);
			mpk_w_kbool(w, "at_revision", x->at_revision);
			if (x->scored)
				mpk_w_kfloat(w, "score", x->score);
		}
		if (c->has_best) {
			mpk_w_key(w, "best");
			mpk_w_map(w, 4);
			mpk_w_kstr(w, "anchor", c->best);
			mpk_w_kuint(w, "revision", c->best_revision);
			mpk_w_kfloat(w, "score", c->best_score);
			mpk_w_kbool(w, "cited", c->best_cited);
		}
		if (c->has_cited_score)
			mpk_w_kfloat(w, "cited_score", c->cited_score);
		if (sug)
			mpk_w_kstr(w, "suggested", c->suggested);
	}
	mpk_w_key(w, "thresholds");
	pr_calib_encode(w, &v->calib);
	mpk_w_key(w, "provenance");
	pr_prov_encode(w, &v->prov);
	return ANC_OK;
}

int
pr_verify_resp_decode(const mpk_dec *d, const msgpack_object *body,
                      anc_verify_result *v)
{
	const msgpack_object_array *cl, *ca;
	const msgpack_object *m;
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX], r[MPK_PATH_MAX];
	int rv, present;

	if ((rv = mpk_get_array(d, body, "body", "claims", 0,
	                        d->lim->max_queries < ANC_VERIFY_CLAIMS_MAX
	                            ? d->lim->max_queries
	                            : ANC_VERIFY_CLAIMS_MAX,
	                        "max_queries", &cl)))
		return rv;
	v->n = cl->size;
	if (cl->size > 0 &&
	    (v->claims = pa_calloc(d->arena, cl->size, sizeof *v->claims)) ==
	        NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		                     "body.claims: out of memory");
	for (uint32_t i = 0; i < cl->size; i++) {
		anc_claim_result *c = &v->claims[i];
		const msgpack_object *o = &cl->ptr[i], *bo;
		mpk_path_idx(p, "body.claims", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, p, "map", o);
		if ((rv = dec_name(d, o, p, "verdict", verdict_fn,
		                   ANC_VERDICT_LAST + 1, &c->verdict)) ||
		    (rv = mpk_get_array(d, o, p, "cited", 0,
		                        ANC_VERIFY_CITED_MAX,
		                        "ANC_VERIFY_CITED_MAX", &ca)))
			return rv;
		c->ncited = ca->size;
		mpk_path(q, p, "cited");
		if (ca->size > 0 &&
		    (c->cited = pa_calloc(d->arena, ca->size,
		                          sizeof *c->cited)) == NULL)
			return anc_error_set(d->err, ANC_ENOMEM,
			                     "%s: out of memory", q);
		for (uint32_t j = 0; j < ca->size; j++) {
			anc_cited *x = &c->cited[j];
			const msgpack_object *xo = &ca->ptr[j];
			mpk_path_idx(r, q, j);
			if (xo->type != MSGPACK_OBJECT_MAP)
				return mpk_type_error(d, r, "map", xo);
			if ((rv = dec_anchor_key(d, xo, r, "anchor", x->anchor)) ||
			    (rv = dec_name(d, xo, r, "status", status_fn,
			                   ANC_ANCHOR_UNKNOWN + 1, &x->status)) ||
			    (rv = mpk_get_uint(d, xo, r, "revision", 1,
			                       UINT64_MAX, &x->revision, NULL)) ||
			    (rv = mpk_get_uint(d, xo, r, "cited_revision", 1,
			                       UINT64_MAX, &x->cited_revision,
			                       NULL)) ||
			    (rv = mpk_get_bool(d, xo, r, "at_revision", 1,
			                       &x->at_revision, NULL)) ||
			    (rv = mpk_get_float(d, xo, r, "score", 0, &x->score,
			                        &x->scored)))
				return rv;
		}
		if ((rv = mpk_get_map(d, o, p, "best", 0, &bo, &c->has_best)))
			return rv;
		if (c->has_best) {
			mpk_path(q, p, "best");
			if ((rv = dec_anchor_key(d, bo, q, "anchor", c->best)) ||
			    (rv = mpk_get_uint(d, bo, q, "revision", 1,
			                       UINT64_MAX, &c->best_revision,
			                       NULL)) ||
			    (rv = mpk_get_float(d, bo, q, "score", 1,
			                        &c->best_score, NULL)) ||
			    (rv = mpk_get_bool(d, bo, q, "cited", 1,
			                       &c->best_cited, NULL)))
				return rv;
		}
		if ((rv = mpk_get_float(d, o, p, "cited_score", 0,
		                        &c->cited_score, &c->has_cited_score)))
			return rv;
		{
			const msgpack_object *so;
			if ((rv = mpk_find(d, o, p, "suggested", &so)))
				return rv;
			present = so != NULL && so->type != MSGPACK_OBJECT_NIL;
		}
		if (present &&
		    (rv = dec_anchor_key(d, o, p, "suggested", c->suggested)))
			return rv;
	}
	if ((rv = mpk_get_map(d, body, "body", "thresholds", 1, &m, NULL)) ||
	    (rv = pr_calib_decode(d, m, "body.thresholds", &v->calib)) ||
	    (rv = mpk_get_map(d, body, "body", "provenance", 1, &m, NULL)))
		return rv;
	return pr_prov_decode(d, m, "body.provenance", &v->prov);
}

/* ---- responses: receipt_get ----------------------------------------------------- */

int
pr_receipt_resp_encode(mpk_w *w, const anc_receipt *r, anc_error *err)
{
	int rv;
	if ((rv = pr_prov_check(&r->prov, "body.receipt.provenance", err)) ||
	    (rv = id_check(r->id, "body.receipt.id", 0, err)) ||
	    (rv = pr_str_check(r->collection, "body.receipt.collection",
	                       ANC_COLLECTION_MAX, 1, err)))
		return rv;
	if (r->nq > 0 && r->lists == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "body.receipt.lists: NULL with %u entries",
		                     r->nq);
	mpk_w_map(w, 1);
	mpk_w_key(w, "receipt");
	mpk_w_map(w, 13);
	mpk_w_kstr(w, "id", r->id);
	mpk_w_kstr(w, "kind", rkind_fn(r->kind));
	mpk_w_kuint(w, "time_us", r->time_us);
	mpk_w_kstr(w, "collection", r->collection);
	mpk_w_kuint(w, "k", r->k);
	mpk_w_kbool(w, "text", r->with_text);
	mpk_w_kstr(w, "digest", r->digest);
	mpk_w_kuint(w, "nq", r->nq);
	mpk_w_kuint(w, "dim", r->dim);
	mpk_w_kuint(w, "record_bytes", r->record_bytes);
	mpk_w_kbool(w, "authentic", r->authentic);
	mpk_w_key(w, "provenance");
	pr_prov_encode(w, &r->prov);
	mpk_w_key(w, "lists");
	mpk_w_array(w, r->nq);
	for (uint32_t i = 0; i < r->nq; i++) {
		const anc_receipt_list *l = &r->lists[i];
		int hv = l->verdict >= 0 && l->verdict <= ANC_VERDICT_LAST;
		mpk_w_map(w, 1 + hv);
		if (hv)
			mpk_w_kstr(w, "verdict", anc_verdict_name(l->verdict));
		mpk_w_key(w, "hits");
		mpk_w_array(w, l->nhits);
		for (uint32_t j = 0; j < l->nhits; j++) {
			const anc_receipt_hit *h = &l->hits[j];
			mpk_w_map(w, 2 + !isnan(h->score) + (h->text != NULL));
			mpk_w_kstr(w, "anchor", h->anchor);
			mpk_w_kuint(w, "revision", h->revision);
			put_opt_float(w, "score", h->score);
			if (h->text != NULL)
				mpk_w_kstr(w, "text", h->text);
		}
	}
	return ANC_OK;
}

int
pr_receipt_resp_decode(const mpk_dec *d, const msgpack_object *body,
                       anc_receipt *r)
{
	const msgpack_object *ro, *pm;
	const msgpack_object_array *ls, *hs;
	const char *P = "body.receipt";
	char p[MPK_PATH_MAX], q[MPK_PATH_MAX], hp[MPK_PATH_MAX];
	uint64_t u, total = 0;
	int rv;

	if ((rv = mpk_get_map(d, body, "body", "receipt", 1, &ro, NULL)) ||
	    (rv = dec_id(d, ro, P, "id", 0, r->id)) ||
	    (rv = dec_name(d, ro, P, "kind", rkind_fn, ANC_RECEIPT_VERIFY + 1,
	                   &r->kind)) ||
	    (rv = mpk_get_uint(d, ro, P, "time_us", 1, UINT64_MAX, &r->time_us,
	                       NULL)) ||
	    (rv = mpk_get_strbuf(d, ro, P, "collection", 1, r->collection,
	                         sizeof r->collection, NULL)) ||
	    (rv = mpk_get_uint(d, ro, P, "k", 1, UINT32_MAX, &u, NULL)))
		return rv;
	r->k = (uint32_t)u;
	if ((rv = mpk_get_bool(d, ro, P, "text", 1, &r->with_text, NULL)) ||
	    (rv = mpk_get_strbuf(d, ro, P, "digest", 1, r->digest,
	                         sizeof r->digest, NULL)) ||
	    (rv = mpk_get_uint(d, ro, P, "nq", 1, UINT32_MAX, &u, NULL)))
		return rv;
	r->nq = (uint32_t)u;
	if ((rv = mpk_get_uint(d, ro, P, "dim", 1, ANC_DIM_MAX, &u, NULL)))
		return rv;
	r->dim = (uint32_t)u;
	if ((rv = mpk_get_uint(d, ro, P, "record_bytes", 1, UINT32_MAX, &u,
	                       NULL)) ||
	    (rv = mpk_get_bool(d, ro, P, "authentic", 1, &r->authentic, NULL)) ||
	    (rv = mpk_get_map(d, ro, P, "provenance", 1, &pm, NULL)) ||
	    (rv = pr_prov_decode(d, pm, "body.receipt.provenance", &r->prov)) ||
	    (rv = mpk_get_array(d, ro, P, "lists", 0, d->lim->max_queries,
	                        "max_queries", &ls)))
		return rv;
	r->record_bytes = (uint32_t)u;
	if (ls->size != r->nq)
		return anc_error_set(d->err, ANC_EMALFORMED,
		                     "body.receipt.lists: %u entries, nq says %u",
		                     ls->size, r->nq);
	if (ls->size > 0 &&
	    (r->lists = pa_calloc(d->arena, ls->size, sizeof *r->lists)) == NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		                     "body.receipt.lists: out of memory");
	for (uint32_t i = 0; i < ls->size; i++) {
		anc_receipt_list *l = &r->lists[i];
		const msgpack_object *o = &ls->ptr[i], *vo;
		mpk_path_idx(p, "body.receipt.lists", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, p, "map", o);
		l->verdict = -1;
		if ((rv = mpk_find(d, o, p, "verdict", &vo)))
			return rv;
		if (vo != NULL && vo->type != MSGPACK_OBJECT_NIL &&
		    (rv = dec_name(d, o, p, "verdict", verdict_fn,
		                   ANC_VERDICT_LAST + 1, &l->verdict)))
			return rv;
		if ((rv = mpk_get_array(d, o, p, "hits", 0, d->lim->max_hits,
		                        "max_hits", &hs)))
			return rv;
		total += hs->size;
		mpk_path(q, p, "hits");
		if (total > d->lim->max_hits)
			return anc_error_set(d->err, ANC_ETOOBIG,
			                     "%s: %llu hits in all, over the limit "
			                     "max_hits=%u", q,
			                     (unsigned long long)total,
			                     d->lim->max_hits);
		l->nhits = hs->size;
		if (hs->size > 0 &&
		    (l->hits = pa_calloc(d->arena, hs->size, sizeof *l->hits)) ==
		        NULL)
			return anc_error_set(d->err, ANC_ENOMEM,
			                     "%s: out of memory", q);
		for (uint32_t j = 0; j < hs->size; j++) {
			anc_receipt_hit *h = &l->hits[j];
			const msgpack_object *ho = &hs->ptr[j];
			const char *s = NULL;
			mpk_path_idx(hp, q, j);
			if (ho->type != MSGPACK_OBJECT_MAP)
				return mpk_type_error(d, hp, "map", ho);
			if ((rv = dec_anchor_key(d, ho, hp, "anchor", h->anchor)) ||
			    (rv = mpk_get_uint(d, ho, hp, "revision", 1,
			                       UINT64_MAX, &h->revision, NULL)) ||
			    (rv = get_opt_float(d, ho, hp, "score", &h->score)) ||
			    (rv = mpk_get_str(d, ho, hp, "text", 0,
			                      d->lim->max_text, ANC_ETOOBIG, &s,
			                      NULL)))
				return rv;
			h->text = (char *)s;
		}
	}
	return ANC_OK;
}

/* ---- responses: receipt_replay ------------------------------------------------- */

int
pr_replay_resp_encode(mpk_w *w, const anc_replay_result *r, anc_error *err)
{
	int rv;
	if ((rv = id_check(r->id, "body.receipt", 0, err)) ||
	    (rv = pr_prov_check(&r->then, "body.then", err)) ||
	    (rv = pr_prov_check(&r->now, "body.now", err)))
		return rv;
	if (r->nchanges > 0 && r->changes == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "body.changes: NULL with %u entries",
		                     r->nchanges);
	mpk_w_map(w, 7);
	mpk_w_kstr(w, "receipt", r->id);
	mpk_w_kstr(w, "kind", rkind_fn(r->kind));
	mpk_w_key(w, "then");
	pr_prov_encode(w, &r->then);
	mpk_w_key(w, "now");
	pr_prov_encode(w, &r->now);
	mpk_w_kuint(w, "nlists", r->nlists);
	mpk_w_kbool(w, "unchanged", r->unchanged);
	mpk_w_key(w, "changes");
	mpk_w_array(w, r->nchanges);
	for (uint32_t i = 0; i < r->nchanges; i++) {
		const anc_replay_change *c = &r->changes[i];
		int verdict = c->kind == ANC_CHANGE_VERDICT;
		mpk_w_map(w, 4 + (c->anchor[0] != '\0') + !isnan(c->old_score) +
		                 !isnan(c->new_score) + 2 * verdict);
		mpk_w_kuint(w, "list", c->list);
		mpk_w_kstr(w, "kind", anc_change_kind_name(c->kind));
		if (c->anchor[0] != '\0')
			mpk_w_kstr(w, "anchor", c->anchor);
		mpk_w_kuint(w, "old_revision", c->old_revision);
		mpk_w_kuint(w, "new_revision", c->new_revision);
		put_opt_float(w, "old_score", c->old_score);
		put_opt_float(w, "new_score", c->new_score);
		if (verdict) {
			mpk_w_kstr(w, "old_verdict",
			           anc_verdict_name((int)c->old_revision));
			mpk_w_kstr(w, "new_verdict",
			           anc_verdict_name((int)c->new_revision));
		}
	}
	return ANC_OK;
}

int
pr_replay_resp_decode(const mpk_dec *d, const msgpack_object *body,
                      anc_replay_result *r)
{
	const msgpack_object *m;
	const msgpack_object_array *cs;
	char p[MPK_PATH_MAX];
	uint64_t u;
	int rv;

	if ((rv = dec_id(d, body, "body", "receipt", 0, r->id)) ||
	    (rv = dec_name(d, body, "body", "kind", rkind_fn,
	                   ANC_RECEIPT_VERIFY + 1, &r->kind)) ||
	    (rv = mpk_get_map(d, body, "body", "then", 1, &m, NULL)) ||
	    (rv = pr_prov_decode(d, m, "body.then", &r->then)) ||
	    (rv = mpk_get_map(d, body, "body", "now", 1, &m, NULL)) ||
	    (rv = pr_prov_decode(d, m, "body.now", &r->now)) ||
	    (rv = mpk_get_uint(d, body, "body", "nlists", 1, UINT32_MAX, &u,
	                       NULL)) ||
	    (rv = mpk_get_bool(d, body, "body", "unchanged", 1, &r->unchanged,
	                       NULL)) ||
	    (rv = mpk_get_array(d, body, "body", "changes", 0, d->lim->max_hits,
	                        "max_hits", &cs)))
		return rv;
	r->nlists = (uint32_t)u;
	r->nchanges = cs->size;
	if (cs->size > 0 &&
	    (r->changes = pa_calloc(d->arena, cs->size, sizeof *r->changes)) ==
	        NULL)
		return anc_error_set(d->err, ANC_ENOMEM,
		                     "body.changes: out of memory");
	for (uint32_t i = 0; i < cs->size; i++) {
		anc_replay_change *c = &r->changes[i];
		const msgpack_object *o = &cs->ptr[i], *ao;
		mpk_path_idx(p, "body.changes", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, p, "map", o);
		if ((rv = mpk_get_uint(d, o, p, "list", 1, UINT32_MAX, &u, NULL)) ||
		    (rv = dec_name(d, o, p, "kind", change_fn,
		                   ANC_CHANGE_LAST + 1, &c->kind)) ||
		    (rv = mpk_get_uint(d, o, p, "old_revision", 1, UINT64_MAX,
		                       &c->old_revision, NULL)) ||
		    (rv = mpk_get_uint(d, o, p, "new_revision", 1, UINT64_MAX,
		                       &c->new_revision, NULL)) ||
		    (rv = get_opt_float(d, o, p, "old_score", &c->old_score)) ||
		    (rv = get_opt_float(d, o, p, "new_score", &c->new_score)) ||
		    (rv = mpk_find(d, o, p, "anchor", &ao)))
			return rv;
		c->list = (uint32_t)u;
		if (ao != NULL && ao->type != MSGPACK_OBJECT_NIL &&
		    (rv = dec_anchor_key(d, o, p, "anchor", c->anchor)))
			return rv;
	}
	return ANC_OK;
}
