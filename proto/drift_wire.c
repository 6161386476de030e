/*
 * drift_wire.c — the `drift` operation on the wire, and the names of the
 * drift statuses and statistics (anc_types.h).
 *
 * Design note
 * -----------
 * Kept apart from anc_proto.c / anc_proto_resp.c so the drift report, which
 * has more fields than any other body, does not crowd the codec of the
 * core operations; those files call in through proto_int.h. Wire form:
 *
 *   request  body {"collection", "contract"?: ID | name@revision | "",
 *                  "fresh"?: bool, "set"?: "key=value,..."}
 *   response body {"report": {"collection", "contract", "status",
 *                  "nfired", "time", "compute_seconds", "reference_count",
 *                  "reference_sample", "reference_scores", "window",
 *                  "window_flagged", "window_size" (optional),
 *                  "queries_seen", "queries_flagged",
 *                  "writes_seen", "write_centroid_distance",
 *                  "stats": [{"name", "value", "threshold", "detail",
 *                             "fired", "computed"} x 5, in the order of
 *                            anc_types.h]}}
 *
 * Floating-point fields travel as float64 (a p-value or a compute time
 * loses nothing); the decoder accepts any msgpack number for them and
 * refuses NaN, which no report contains.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_int.h"

static const char *const status_names[] = {"ok", "warn", "drift",
                                           "insufficient_data"};
static const char *const stat_names[ANC_DRIFT_NSTATS] = {
	"centroid_distance", "drifted_components", "mmd", "classifier_auc",
	"top1_score_shift"};

const char *
anc_drift_status_name(int s)
{
	if (s < 0 || s > ANC_DRIFT_INSUFFICIENT)
		return "unknown";
	return status_names[s];
}

int
anc_drift_status_parse(const char *s)
{
	for (int i = 0; s != NULL && i <= ANC_DRIFT_INSUFFICIENT; i++)
		if (strcmp(status_names[i], s) == 0)
			return i;
	return -1;
}

const char *
anc_drift_stat_name(int i)
{
	if (i < 0 || i >= ANC_DRIFT_NSTATS)
		return NULL;
	return stat_names[i];
}

/* ---- configuration changes ("set") ------------------------------------------ */

static const struct cfg_field {
	const char *name;
	size_t off;
	int is_u32; /* else double */
} cfg_fields[] = {
    {"window", offsetof(anc_drift_config, window), 1},
    {"reservoir", offsetof(anc_drift_config, reservoir), 1},
    {"write_window", offsetof(anc_drift_config, write_window), 1},
    {"bootstrap", offsetof(anc_drift_config, bootstrap), 1},
    {"quantile", offsetof(anc_drift_config, quantile), 0},
    {"component_threshold", offsetof(anc_drift_config, component_threshold),
     0},
    {"component_share", offsetof(anc_drift_config, component_share), 0},
    {"permutations", offsetof(anc_drift_config, permutations), 1},
    {"p_value", offsetof(anc_drift_config, p_value), 0},
    {"auc", offsetof(anc_drift_config, auc), 0},
    {"folds", offsetof(anc_drift_config, folds), 1},
    {"epochs", offsetof(anc_drift_config, epochs), 1},
    {"score_quantile", offsetof(anc_drift_config, score_quantile), 0},
    {"score_share", offsetof(anc_drift_config, score_share), 0},
    {"min_window", offsetof(anc_drift_config, min_window), 1},
    {"min_reference", offsetof(anc_drift_config, min_reference), 1},
};

/* s as it can be quoted in a one-line message: control characters as
 * \n, \t or \xHH (error lines show them as spaces otherwise), at most 64
 * input bytes. */
static const char *
quoted(const char *s, char out[4 * 64 + 1])
{
	size_t o = 0;
	for (size_t i = 0; s[i] != '\0' && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\t')
			o += (size_t)sprintf(out + o, "\\%c", c == '\n' ? 'n' : 't');
		else if (c < 0x20 || c == 0x7f)
			o += (size_t)sprintf(out + o, "\\x%02x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

_Static_assert(sizeof cfg_fields / sizeof *cfg_fields <= 32,
               "anc_drift_config_apply's seen mask");

int
anc_drift_config_apply(anc_drift_config *cfg, const char *set, anc_error *err)
{
	anc_drift_config c;
	char buf[ANC_DRIFT_SET_MAX + 1];
	char *save = NULL, *item;
	uint32_t seen = 0; /* cfg_fields set so far, by index */
	size_t len;

	if (cfg == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift set: cfg is NULL");
	if (set == NULL || set[0] == '\0')
		return ANC_OK;
	if ((len = strlen(set)) > ANC_DRIFT_SET_MAX)
		return anc_error_set(err, ANC_EINVAL,
		                     "drift set: %zu bytes, expected at most %d",
		                     len, ANC_DRIFT_SET_MAX);
	memcpy(buf, set, len + 1);
	c = *cfg;
	for (item = strtok_r(buf, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *end;
		char q[4 * 64 + 1];
		const struct cfg_field *f = NULL;
		size_t fi = 0;
		if (eq == NULL || eq == item)
			return anc_error_set(err, ANC_EINVAL,
			                     "drift set: '%s': expected "
			                     "key=value",
			                     quoted(item, q));
		*eq = '\0';
		for (size_t i = 0; i < sizeof cfg_fields / sizeof *cfg_fields;
		     i++)
			if (strcmp(cfg_fields[i].name, item) == 0)
				f = &cfg_fields[(fi = i)];
		if (f == NULL)
			return anc_error_set(err, ANC_EINVAL,
			                     "drift set: unknown key '%s' "
			                     "(expected a field of the drift "
			                     "configuration, e.g. window, "
			                     "permutations, p_value)",
			                     quoted(item, q));
		if (seen & (1u << fi))
			return anc_error_set(err, ANC_EINVAL,
			                     "drift set: %s given twice, expected "
			                     "each key once",
			                     f->name);
		seen |= 1u << fi;
		const char *v = eq + 1;
		errno = 0;
		if (f->is_u32) {
			unsigned long long u = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end != '\0' ||
			    errno != 0 || u > UINT32_MAX)
				return anc_error_set(err, ANC_EINVAL,
				                     "drift set: %s: expected an "
				                     "unsigned integer, got "
				                     "'%s'",
				                     f->name, quoted(v, q));
			*(uint32_t *)(void *)((char *)&c + f->off) = (uint32_t)u;
		} else {
			double x = strtod(v, &end);
			if (v[0] == '\0' || *end != '\0' || errno != 0 ||
			    !isfinite(x))
				return anc_error_set(err, ANC_EINVAL,
				                     "drift set: %s: expected a "
				                     "number, got '%s'",
				                     f->name, quoted(v, q));
			*(double *)(void *)((char *)&c + f->off) = x;
		}
	}
	*cfg = c;
	return ANC_OK;
}

/* ---- request ---------------------------------------------------------------- */

int
pr_drift_req_decode(const mpk_dec *d, const msgpack_object *body,
                    anc_req_drift *q)
{
	int rv, present;
	q->contract = "";
	q->fresh = 0;
	q->set = "";
	if ((rv = mpk_get_str(d, body, "body", "set", 0, ANC_DRIFT_SET_MAX,
	                      ANC_EINVAL, &q->set, &present)) ||
	    (rv = mpk_get_str(d, body, "body", "collection", 1,
	                      ANC_COLLECTION_MAX, ANC_EINVAL, &q->collection,
	                      NULL)) ||
	    (rv = mpk_get_str(d, body, "body", "contract", 0,
	                      PR_CONTRACT_REF_MAX, ANC_EINVAL, &q->contract,
	                      &present)) ||
	    (rv = mpk_get_bool(d, body, "body", "fresh", 0, &q->fresh,
	                       &present)))
		return rv;
	/* The syntax now, with the field named; ranges are the engine's. */
	anc_drift_config probe;
	memset(&probe, 0, sizeof probe);
	if ((rv = anc_drift_config_apply(&probe, q->set, d->err)) != ANC_OK) {
		anc_error_wrap(d->err, "body.set");
		return rv;
	}
	return ANC_OK;
}

int
pr_drift_req_encode(mpk_w *w, const anc_req_drift *q, anc_error *err)
{
	int rv;
	if ((rv = pr_str_check(q->collection, "body.collection",
	                       ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = pr_str_check(q->contract, "body.contract",
	                       PR_CONTRACT_REF_MAX, 0, err)) ||
	    (rv = pr_str_check(q->set, "body.set", ANC_DRIFT_SET_MAX, 0, err)))
		return rv;
	int has_set = q->set != NULL && q->set[0] != '\0';
	mpk_w_map(w, has_set ? 4 : 3);
	mpk_w_kstr(w, "collection", q->collection);
	mpk_w_kstr(w, "contract", q->contract != NULL ? q->contract : "");
	mpk_w_kbool(w, "fresh", q->fresh);
	if (has_set)
		mpk_w_kstr(w, "set", q->set);
	return ANC_OK;
}

/* ---- response ---------------------------------------------------------------- */

static void
kdouble(mpk_w *w, const char *key, double v)
{
	mpk_w_key(w, key);
	/* infinity is a legal msgpack float64; the report never holds NaN
	 * (checked by the encoder below). */
	msgpack_pack_double(&w->pk, v);
}

static int
finite_or_inf(double v, const char *path, anc_error *err)
{
	if (isnan(v))
		return anc_error_set(err, ANC_EINVAL, "%s: NaN", path);
	return ANC_OK;
}

int
pr_drift_resp_encode(mpk_w *w, const anc_drift_report *r, anc_error *err)
{
	int rv;
	char p[MPK_PATH_MAX];
	if (r->status < 0 || r->status > ANC_DRIFT_INSUFFICIENT)
		return anc_error_set(err, ANC_EINVAL,
		                     "body.report.status: %d is not a status",
		                     r->status);
	if ((rv = pr_str_check(r->collection, "body.report.collection",
	                       ANC_COLLECTION_MAX, 1, err)) ||
	    (rv = finite_or_inf(r->time, "body.report.time", err)) ||
	    (rv = finite_or_inf(r->compute_seconds,
	                        "body.report.compute_seconds", err)) ||
	    (rv = finite_or_inf(r->write_centroid_distance,
	                        "body.report.write_centroid_distance", err)))
		return rv;
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		snprintf(p, sizeof p, "body.report.stats[%d]", i);
		if ((rv = finite_or_inf(r->stats[i].value, p, err)) ||
		    (rv = finite_or_inf(r->stats[i].threshold, p, err)) ||
		    (rv = finite_or_inf(r->stats[i].detail, p, err)))
			return rv;
	}
	mpk_w_map(w, 1);
	mpk_w_key(w, "report");
	mpk_w_map(w, 17);
	mpk_w_kstr(w, "collection", r->collection);
	mpk_w_kstr(w, "contract", r->contract);
	mpk_w_kstr(w, "status", anc_drift_status_name(r->status));
	mpk_w_kuint(w, "nfired", r->nfired);
	kdouble(w, "time", r->time);
	kdouble(w, "compute_seconds", r->compute_seconds);
	mpk_w_kuint(w, "reference_count", r->reference_count);
	mpk_w_kuint(w, "reference_sample", r->reference_sample);
	mpk_w_kuint(w, "reference_scores", r->reference_scores);
	mpk_w_kuint(w, "window", r->window);
	mpk_w_kuint(w, "window_flagged", r->window_flagged);
	mpk_w_kuint(w, "window_size", r->window_size);
	mpk_w_kuint(w, "queries_seen", r->queries_seen);
	mpk_w_kuint(w, "queries_flagged", r->queries_flagged);
	mpk_w_kuint(w, "writes_seen", r->writes_seen);
	kdouble(w, "write_centroid_distance", r->write_centroid_distance);
	mpk_w_key(w, "stats");
	mpk_w_array(w, ANC_DRIFT_NSTATS);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++) {
		const anc_drift_stat *s = &r->stats[i];
		mpk_w_map(w, 6);
		mpk_w_kstr(w, "name", stat_names[i]);
		kdouble(w, "value", s->value);
		kdouble(w, "threshold", s->threshold);
		kdouble(w, "detail", s->detail);
		mpk_w_kbool(w, "fired", s->fired);
		mpk_w_kbool(w, "computed", s->computed);
	}
	return ANC_OK;
}

static int
get_double(const mpk_dec *d, const msgpack_object *map, const char *parent,
           const char *key, double *out)
{
	const msgpack_object *o;
	char p[MPK_PATH_MAX];
	int rv;
	mpk_path(p, parent, key);
	if ((rv = mpk_find(d, map, parent, key, &o)) != ANC_OK)
		return rv;
	if (o == NULL)
		return anc_error_set(d->err, ANC_EMALFORMED,
		                     "%s: required field missing", p);
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*out = o->via.f64;
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*out = (double)o->via.u64;
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*out = (double)o->via.i64;
		break;
	default:
		return mpk_type_error(d, p, "number", o);
	}
	if (isnan(*out))
		return anc_error_set(d->err, ANC_EINVAL, "%s: NaN", p);
	return ANC_OK;
}

static int
get_u32(const mpk_dec *d, const msgpack_object *map, const char *parent,
        const char *key, uint32_t *out)
{
	uint64_t v;
	int rv = mpk_get_uint(d, map, parent, key, 1, UINT32_MAX, &v, NULL);
	if (rv == ANC_OK)
		*out = (uint32_t)v;
	return rv;
}

int
pr_drift_resp_decode(const mpk_dec *d, const msgpack_object *body,
                     anc_drift_report *r)
{
	const msgpack_object *rm;
	const msgpack_object_array *arr;
	const char *status, *cid;
	char sp[MPK_PATH_MAX];
	const char *P = "body.report";
	uint64_t wsz = 0;
	int rv;

	memset(r, 0, sizeof *r);
	if ((rv = mpk_get_map(d, body, "body", "report", 1, &rm, NULL)) ||
	    (rv = mpk_get_strbuf(d, rm, P, "collection", 1, r->collection,
	                         sizeof r->collection, NULL)) ||
	    (rv = mpk_get_str(d, rm, P, "contract", 1, ANC_CONTRACT_ID_LEN,
	                      ANC_EINVAL, &cid, NULL)) ||
	    (rv = mpk_get_str(d, rm, P, "status", 1, 32, ANC_EINVAL, &status,
	                      NULL)) ||
	    (rv = get_u32(d, rm, P, "nfired", &r->nfired)) ||
	    (rv = get_double(d, rm, P, "time", &r->time)) ||
	    (rv = get_double(d, rm, P, "compute_seconds",
	                     &r->compute_seconds)) ||
	    (rv = mpk_get_uint(d, rm, P, "reference_count", 1, UINT64_MAX,
	                       &r->reference_count, NULL)) ||
	    (rv = get_u32(d, rm, P, "reference_sample", &r->reference_sample)) ||
	    (rv = get_u32(d, rm, P, "reference_scores", &r->reference_scores)) ||
	    (rv = get_u32(d, rm, P, "window", &r->window)) ||
	    (rv = get_u32(d, rm, P, "window_flagged", &r->window_flagged)) ||
	    /* optional: older servers do not send it */
	    (rv = mpk_get_uint(d, rm, P, "window_size", 0, UINT32_MAX, &wsz,
	                       NULL)) ||
	    (rv = mpk_get_uint(d, rm, P, "queries_seen", 1, UINT64_MAX,
	                       &r->queries_seen, NULL)) ||
	    (rv = mpk_get_uint(d, rm, P, "queries_flagged", 1, UINT64_MAX,
	                       &r->queries_flagged, NULL)) ||
	    (rv = mpk_get_uint(d, rm, P, "writes_seen", 1, UINT64_MAX,
	                       &r->writes_seen, NULL)) ||
	    (rv = get_double(d, rm, P, "write_centroid_distance",
	                     &r->write_centroid_distance)) ||
	    (rv = mpk_get_array(d, rm, P, "stats", ANC_DRIFT_NSTATS > 0,
	                        ANC_DRIFT_NSTATS, "stats", &arr)))
		return rv;
	r->window_size = (uint32_t)wsz;
	snprintf(r->contract, sizeof r->contract, "%s", cid);
	if ((r->status = anc_drift_status_parse(status)) < 0)
		return anc_error_set(d->err, ANC_EINVAL,
		                     "body.report.status: '%s' is not ok, warn, "
		                     "drift or insufficient_data",
		                     status);
	if (arr->size != ANC_DRIFT_NSTATS)
		return anc_error_set(d->err, ANC_EINVAL,
		                     "body.report.stats: %u entries, expected %d",
		                     arr->size, ANC_DRIFT_NSTATS);
	for (uint32_t i = 0; i < arr->size; i++) {
		const msgpack_object *o = &arr->ptr[i];
		anc_drift_stat *s = &r->stats[i];
		const char *name;
		mpk_path_idx(sp, "body.report.stats", i);
		if (o->type != MSGPACK_OBJECT_MAP)
			return mpk_type_error(d, sp, "map", o);
		if ((rv = mpk_get_str(d, o, sp, "name", 1, 64, ANC_EINVAL, &name,
		                      NULL)) ||
		    (rv = get_double(d, o, sp, "value", &s->value)) ||
		    (rv = get_double(d, o, sp, "threshold", &s->threshold)) ||
		    (rv = get_double(d, o, sp, "detail", &s->detail)) ||
		    (rv = mpk_get_bool(d, o, sp, "fired", 1, &s->fired, NULL)) ||
		    (rv = mpk_get_bool(d, o, sp, "computed", 1, &s->computed,
		                       NULL)))
			return rv;
		if (strcmp(name, stat_names[i]) != 0)
			return anc_error_set(d->err, ANC_EINVAL,
			                     "%s.name: expected '%s', got '%.64s'",
			                     sp, stat_names[i], name);
	}
	return ANC_OK;
}
