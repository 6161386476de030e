/*
 * cli_out.c — what the anchorage CLI prints: JSON values (built with
 * jansson, never by hand-escaping) and the human-readable forms.
 *
 * Design note: server strings are supposed to be UTF-8 but the CLI must
 * print valid JSON whatever arrives, so anc_cli_json_str replaces invalid
 * sequences with U+FFFD instead of failing the whole answer. Scores are JSON
 * reals, revisions and counts JSON integers (clamped to the int64 range
 * jansson can hold).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

json_t *
anc_cli_json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, i, o, sl;
	char *fixed;
	json_t *v;

	if (s == NULL)
		return json_null();
	n = strlen(s);
	if ((v = json_stringn(s, n)) != NULL)
		return v;
	/* Invalid UTF-8 (or no memory): rebuild with U+FFFD (3 bytes) for
	 * each bad byte. */
	if ((fixed = malloc(n * 3 + 1)) == NULL)
		return NULL;
	for (i = 0, o = 0; i < n;) {
		sl = anc_utf8_seq(p + i, n - i);
		if (sl == 0) {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(fixed + o, p + i, sl);
			o += sl;
			i += sl;
		}
	}
	v = json_stringn(fixed, o);
	free(fixed);
	return v;
}

static json_t *
json_u64(uint64_t x)
{
	return json_integer(x > (uint64_t)LLONG_MAX ? (json_int_t)LLONG_MAX
	                                                      : (json_int_t)x);
}

/* Build an object from (key, value) pairs, stealing each value; NULL
 * values (allocation failures) make the whole object fail. */
static json_t *
json_obj_steal(json_t *obj, const char *key, json_t *val)
{
	if (obj == NULL || val == NULL ||
	    json_object_set_new(obj, key, val) != 0) {
		json_decref(obj);
		json_decref(val);
		return NULL;
	}
	return obj;
}

static json_t *
contract_info_json(const anc_contract_info *ci)
{
	const anc_contract *c = &ci->contract;
	json_t *idx = json_object();
	json_t *o = json_object();

	idx = json_obj_steal(idx, "kind",
	    json_string(anc_index_kind_name(c->index.kind)));
	if (c->index.nlist != 0) {
		idx = json_obj_steal(idx, "nlist", json_integer(c->index.nlist));
		idx = json_obj_steal(idx, "nprobe",
		    json_integer(c->index.nprobe));
	}
	if (c->index.pq_m != 0) {
		idx = json_obj_steal(idx, "pq_m", json_integer(c->index.pq_m));
		idx = json_obj_steal(idx, "pq_nbits",
		    json_integer(c->index.pq_nbits));
	}
	if (c->index.kind == ANC_INDEX_HNSW ||
	    c->index.kind == ANC_INDEX_HNSW_SQ8) {
		idx = json_obj_steal(idx, "m", json_integer(c->index.m));
		idx = json_obj_steal(idx, "ef_construction",
		    json_integer(c->index.ef_construction));
		idx = json_obj_steal(idx, "ef_search",
		    json_integer(c->index.ef_search));
	}
	o = json_obj_steal(o, "id", anc_cli_json_str(ci->id));
	o = json_obj_steal(o, "name", anc_cli_json_str(c->name));
	o = json_obj_steal(o, "model", anc_cli_json_str(c->model));
	o = json_obj_steal(o, "revision", anc_cli_json_str(c->revision));
	o = json_obj_steal(o, "dim", json_integer(c->dim));
	o = json_obj_steal(o, "metric", json_string(anc_metric_name(c->metric)));
	o = json_obj_steal(o, "normalize", json_boolean(c->normalize));
	o = json_obj_steal(o, "preprocess", anc_cli_json_str(c->preprocess));
	o = json_obj_steal(o, "index", idx);
	o = json_obj_steal(o, "state",
	    json_string(anc_contract_state_name(ci->state)));
	/* a retired contract is not counted (its index is dropped) */
	o = json_obj_steal(o, "vectors", ci->state == ANC_CSTATE_RETIRED
	    ? json_null() : json_u64(ci->vectors));
	o = json_obj_steal(o, "index_ntotal", json_u64(ci->index_ntotal));
	o = json_obj_steal(o, "index_bytes_per_vector",
	    json_integer(ci->index_bytes));
	o = json_obj_steal(o, "code_bytes_per_vector",
	    json_integer(ci->code_bytes));
	o = json_obj_steal(o, "trained", json_boolean(ci->trained));
	return o;
}

json_t *
anc_cli_info_json(const anc_info *info)
{
	const anc_collection_info *ci;
	json_t *colls = json_array();
	json_t *contracts;
	json_t *o;
	uint32_t i, j;

	for (i = 0; colls != NULL && i < info->ncollections; i++) {
		ci = &info->collections[i];
		contracts = json_array();
		for (j = 0; contracts != NULL && j < ci->ncontracts; j++)
			if (json_array_append_new(contracts,
			        contract_info_json(&ci->contracts[j])) != 0) {
				json_decref(contracts);
				contracts = NULL;
			}
		o = json_object();
		o = json_obj_steal(o, "name", anc_cli_json_str(ci->name));
		o = json_obj_steal(o, "live", json_u64(ci->live));
		o = json_obj_steal(o, "deleted", json_u64(ci->deleted));
		o = json_obj_steal(o, "default_contract",
		    anc_cli_json_str(ci->default_contract));
		o = json_obj_steal(o, "contracts", contracts);
		if (o == NULL || json_array_append_new(colls, o) != 0) {
			json_decref(colls);
			colls = NULL;
		}
	}
	o = json_object();
	o = json_obj_steal(o, "version", anc_cli_json_str(info->version));
	o = json_obj_steal(o, "seq", json_u64(info->seq));
	o = json_obj_steal(o, "collections", colls);
	return o;
}

static json_t *
json_score(float s)
{
	return isfinite(s) ? json_real((double)s) : json_null();
}

json_t *
anc_cli_hits_json(const anc_hitlist *hl, const anc_provenance *prov)
{
	json_t *hits = json_array();
	json_t *h;
	json_t *p;
	json_t *o;
	uint32_t i;

	for (i = 0; hits != NULL && i < hl->nhits; i++) {
		const anc_hit *x = &hl->hits[i];

		h = json_object();
		h = json_obj_steal(h, "anchor", anc_cli_json_str(x->anchor));
		h = json_obj_steal(h, "score", json_score(x->score));
		h = json_obj_steal(h, "source", anc_cli_json_str(x->source));
		h = json_obj_steal(h, "chunk", anc_cli_json_str(x->chunk));
		h = json_obj_steal(h, "revision", json_u64(x->revision));
		if (x->text != NULL)
			h = json_obj_steal(h, "text", anc_cli_json_str(x->text));
		if (x->meta_len > 0) {
			json_t *m = anc_cli_meta_json(x->meta, x->meta_len);
			if (m != NULL) /* undecodable: no "meta", as resolve */
				h = json_obj_steal(h, "meta", m);
		}
		if (h == NULL || json_array_append_new(hits, h) != 0) {
			json_decref(hits);
			hits = NULL;
		}
	}
	p = json_object();
	p = json_obj_steal(p, "contract", anc_cli_json_str(prov->contract));
	p = json_obj_steal(p, "index",
	    json_string(anc_index_kind_name(prov->index)));
	p = json_obj_steal(p, "exact", json_boolean(prov->exact));
	p = json_obj_steal(p, "seq", json_u64(prov->seq));
	p = json_obj_steal(p, "generation", json_u64(prov->generation));
	if (prov->ef_search != 0)
		p = json_obj_steal(p, "ef_search", json_integer(prov->ef_search));
	if (prov->nprobe != 0)
		p = json_obj_steal(p, "nprobe", json_integer(prov->nprobe));
	if (prov->rerank != 0)
		p = json_obj_steal(p, "rerank", json_integer(prov->rerank));
	o = json_object();
	o = json_obj_steal(o, "hits", hits);
	o = json_obj_steal(o, "provenance", p);
	return o;
}

json_t *
anc_cli_resolved_json(const anc_resolved *r)
{
	json_t *o = json_object();

	o = json_obj_steal(o, "anchor", anc_cli_json_str(r->anchor));
	o = json_obj_steal(o, "status",
	    json_string(anc_anchor_status_name(r->status)));
	if (r->status == ANC_ANCHOR_UNKNOWN)
		return o;
	o = json_obj_steal(o, "revision", json_u64(r->revision));
	o = json_obj_steal(o, "source", anc_cli_json_str(r->source));
	o = json_obj_steal(o, "chunk", anc_cli_json_str(r->chunk));
	if (r->status == ANC_ANCHOR_LIVE) {
		o = json_obj_steal(o, "hash", anc_cli_json_str(r->hash));
		o = json_obj_steal(o, "text", anc_cli_json_str(r->text));
		json_t *m = anc_cli_meta_json(r->meta, r->meta_len);
		if (m != NULL) /* none, or undecodable: no "meta" */
			o = json_obj_steal(o, "meta", m);
	}
	return o;
}

json_t *
anc_cli_deleted_json(const anc_delete_result *d)
{
	json_t *o = json_object();

	o = json_obj_steal(o, "anchor", anc_cli_json_str(d->anchor));
	o = json_obj_steal(o, "status",
	    json_string(anc_delete_status_name(d->status)));
	if (d->status != ANC_DELETE_UNKNOWN)
		o = json_obj_steal(o, "revision", json_u64(d->revision));
	return o;
}

int
anc_cli_json_emit(FILE *fp, json_t *v, anc_error *err)
{
	char *s;
	int rc;

	if (v == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "cannot build JSON output: out of memory");
	s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (s == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "cannot serialise JSON output: out of memory");
	rc = fprintf(fp, "%s\n", s);
	free(s);
	if (rc < 0)
		return anc_error_set(err, ANC_EIO, "cannot write output");
	return ANC_OK;
}

/* ---- human output ------------------------------------------------------ */

static const char *
str_or(const char *s, const char *dflt)
{
	return s != NULL ? s : dflt;
}

void
anc_cli_info_print(FILE *fp, const anc_info *info)
{
	const anc_collection_info *ci;
	const anc_contract_info *k;
	char nr[ANC_CNAME_MAX + ANC_REVISION_MAX + 2];
	uint32_t i, j;

	fprintf(fp, "server %s, seq %llu, %u collection%s\n", info->version,
	    (unsigned long long)info->seq, info->ncollections,
	    info->ncollections == 1 ? "" : "s");
	for (i = 0; i < info->ncollections; i++) {
		ci = &info->collections[i];
		fprintf(fp, "\ncollection %s: %llu live, %llu deleted, default "
		    "contract %s\n", ci->name, (unsigned long long)ci->live,
		    (unsigned long long)ci->deleted,
		    ci->default_contract[0] ? ci->default_contract : "(none)");
		if (ci->ncontracts > 0)
			fprintf(fp, "  %-16s  %-28s %6s  %-6s  %-8s  %-9s  %s\n",
			    "ID", "NAME@REVISION", "DIM", "METRIC", "INDEX",
			    "STATE", "VECTORS");
		for (j = 0; j < ci->ncontracts; j++) {
			k = &ci->contracts[j];
			snprintf(nr, sizeof(nr), "%s@%s", k->contract.name,
			    k->contract.revision);
			char vec[24] = "-";
			if (k->state != ANC_CSTATE_RETIRED)
				snprintf(vec, sizeof vec, "%llu",
				    (unsigned long long)k->vectors);
			fprintf(fp, "  %-16s  %-28s %6u  %-6s  %-8s  %-9s  %s\n",
			    k->id, nr, k->contract.dim,
			    anc_metric_name(k->contract.metric),
			    anc_index_kind_name(k->contract.index.kind),
			    anc_contract_state_name(k->state), vec);
		}
	}
}

/* A passage's metadata on one line of human output. */
static void
meta_print(FILE *fp, const char *indent, const uint8_t *meta, uint32_t len)
{
	json_t *m;
	char *s;

	if (len == 0)
		return;
	m = anc_cli_meta_json(meta, len);
	s = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
	fprintf(fp, "%smeta ", indent);
	if (s == NULL)
		fputs("(undecodable)", fp);
	/* JSON leaves DEL and C1 controls raw: escaped here, as they
	 * would reach the terminal (U+009B starts an escape sequence) */
	for (const unsigned char *c = (const unsigned char *)s;
	     c != NULL && *c != '\0'; c++) {
		size_t cl = anc_text_control(c, 2); /* c[1]: at worst NUL */
		if (cl == 0)
			fputc(*c, fp);
		else
			fprintf(fp, "\\u%04x", c[cl - 1]), c += cl - 1;
	}
	fputc('\n', fp);
	free(s);
	json_decref(m);
}

void
anc_cli_hits_print(FILE *fp, uint32_t qno, const anc_hitlist *hl,
                   const anc_provenance *prov, int with_text)
{
	char line[128];
	uint32_t i;

	char params[64] = "";
	if (prov->ef_search != 0 || prov->nprobe != 0 || prov->rerank != 0)
		snprintf(params, sizeof params, "%s%u%s%.0u",
		    prov->ef_search != 0 ? " ef " : " nprobe ",
		    prov->ef_search != 0 ? prov->ef_search : prov->nprobe,
		    prov->rerank != 0 ? " rerank " : "", prov->rerank);
	fprintf(fp, "query %u: %u hit%s (contract %s, %s, %s%s, seq %llu)\n",
	    qno, hl->nhits, hl->nhits == 1 ? "" : "s", prov->contract,
	    anc_index_kind_name(prov->index),
	    prov->exact ? "exact" : "approximate", params,
	    (unsigned long long)prov->seq);
	for (i = 0; i < hl->nhits; i++) {
		const anc_hit *h = &hl->hits[i];

		fprintf(fp, "  %3u  %10.4f  %s  %s#%s  rev %llu\n", i + 1,
		    (double)h->score, h->anchor, str_or(h->source, "?"),
		    str_or(h->chunk, ""), (unsigned long long)h->revision);
		if (with_text && h->text != NULL) {
			anc_cli_text_oneline(h->text, 100, line, sizeof(line));
			fprintf(fp, "       %s\n", line);
		}
		meta_print(fp, "       ", h->meta, h->meta_len);
	}
}

void
anc_cli_resolved_print(FILE *fp, const anc_resolved *r)
{
	char line[128];

	switch (r->status) {
	case ANC_ANCHOR_LIVE:
		anc_cli_text_oneline(r->text, 100, line, sizeof(line));
		fprintf(fp, "%s  live  rev %llu  hash %s  %s#%s\n    %s\n",
		    r->anchor, (unsigned long long)r->revision, r->hash,
		    str_or(r->source, "?"), str_or(r->chunk, ""), line);
		meta_print(fp, "    ", r->meta, r->meta_len);
		break;
	case ANC_ANCHOR_DELETED:
		fprintf(fp, "%s  deleted  rev %llu  %s#%s\n", r->anchor,
		    (unsigned long long)r->revision, str_or(r->source, "?"),
		    str_or(r->chunk, ""));
		break;
	default:
		fprintf(fp, "%s  unknown\n", r->anchor);
		break;
	}
}

void
anc_cli_deleted_print(FILE *fp, const anc_delete_result *d)
{
	switch (d->status) {
	case ANC_DELETE_DELETED:
		fprintf(fp, "%s  deleted  rev %llu\n", d->anchor,
		    (unsigned long long)d->revision);
		break;
	case ANC_DELETE_ALREADY:
		fprintf(fp, "%s  already deleted  rev %llu\n", d->anchor,
		    (unsigned long long)d->revision);
		break;
	default:
		fprintf(fp, "%s  unknown\n", d->anchor);
		break;
	}
}
