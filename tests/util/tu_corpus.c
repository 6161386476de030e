/*
 * tu_corpus.c — see tu_corpus.h.
 */
#include "tu_corpus.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_vecfile.h"

void
tu_anchor(const char *collection, const char *source, const char *chunk,
          anc_anchor_str out)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	int rc = anc_anchor_compute(collection, source, chunk, raw);
	if (rc != 0)
		cr_assert_fail("anc_anchor_compute(%s, %s, %s): %s", collection,
		               source, chunk, anc_errname(rc));
	anc_anchor_format(raw, out);
}

float *
tu_fvecs(const char *rel, uint32_t begin, uint32_t end, uint32_t *n,
         uint32_t *dim)
{
	float *v = NULL;
	anc_error err = {0};
	int rc = anc_fvecs_read(tu_data_path(rel), begin, end, &v, n, dim, &err);
	cr_assert_eq(rc, ANC_OK, "%s: %s", rel, err.msg);
	return v;
}

int32_t *
tu_ivecs(const char *rel, uint32_t begin, uint32_t end, uint32_t *n,
         uint32_t *dim)
{
	int32_t *v = NULL;
	anc_error err = {0};
	int rc = anc_ivecs_read(tu_data_path(rel), begin, end, &v, n, dim, &err);
	cr_assert_eq(rc, ANC_OK, "%s: %s", rel, err.msg);
	return v;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		cr_assert_fail("out of memory");
	return d;
}

void
tu_sotu_read(tu_sotu *s, const char *collection)
{
	memset(s, 0, sizeof *s);
	snprintf(s->collection, sizeof s->collection, "%s", collection);
	anc_error err = {0};
	uint32_t nrows = 0, dim = 0;
	const char *fv =
	    tu_data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs");
	int rc = anc_fvecs_read(fv, 0, UINT32_MAX, &s->vecs, &nrows, &dim, &err);
	if (rc != 0)
		cr_assert_fail("anc_fvecs_read(%s): %s: %s", fv, anc_errname(rc),
		               err.msg);
	cr_assert_eq(nrows, TU_SOTU_ROWS, "%s: %u rows", fv, nrows);
	cr_assert_eq(dim, TU_SOTU_DIM, "%s: dim %u", fv, dim);
	s->n = nrows;
	s->dim = dim;
	s->text = calloc(nrows, sizeof *s->text);
	s->source = calloc(nrows, sizeof *s->source);
	s->chunk = calloc(nrows, sizeof *s->chunk);
	s->anchors = calloc(nrows, sizeof *s->anchors);
	cr_assert(s->text && s->source && s->chunk && s->anchors);

	const char *jl = tu_data_path("sotu-2models/sotu_chunks.jsonl");
	FILE *f = fopen(jl, "r");
	cr_assert_not_null(f, "fopen(%s)", jl);
	char *line = NULL;
	size_t cap = 0;
	uint32_t i = 0;
	while (getline(&line, &cap, f) > 0) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		cr_assert_not_null(o, "%s:%u: %s", jl, i + 1, je.text);
		cr_assert(i < nrows, "%s: more lines than vectors", jl);
		json_t *row = json_object_get(o, "row");
		json_t *src = json_object_get(o, "source");
		json_t *txt = json_object_get(o, "text");
		cr_assert(json_is_integer(row) && json_is_string(src) &&
		          json_is_string(txt), "%s:%u: fields", jl, i + 1);
		cr_assert_eq(json_integer_value(row), (json_int_t)i,
		             "%s:%u: row %lld", jl, i + 1,
		             (long long)json_integer_value(row));
		char key[32];
		snprintf(key, sizeof key, "%u", i);
		s->chunk[i] = xstrdup(key);
		s->source[i] = xstrdup(json_string_value(src));
		s->text[i] = xstrdup(json_string_value(txt));
		tu_anchor(collection, s->source[i], s->chunk[i], s->anchors[i]);
		json_decref(o);
		i++;
	}
	free(line);
	fclose(f);
	cr_assert_eq(i, nrows, "%s: %u lines for %u vectors", jl, i, nrows);
}

void
tu_sotu_free(tu_sotu *s)
{
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->n; i++) {
		if (s->text) free(s->text[i]);
		if (s->source) free(s->source[i]);
		if (s->chunk) free(s->chunk[i]);
	}
	free(s->text);
	free(s->source);
	free(s->chunk);
	free(s->anchors);
	free(s->vecs);
	memset(s, 0, sizeof *s);
}

int
tu_sotu_row(const tu_sotu *s, const char *anchor)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (strcmp(s->anchors[i], anchor) == 0)
			return (int)i;
	return -1;
}

void
tu_contract_minilm(anc_contract *c)
{
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "minilm");
	snprintf(c->model, sizeof c->model,
	         "sentence-transformers/all-MiniLM-L6-v2");
	snprintf(c->revision, sizeof c->revision, "1");
	c->dim = 384;
	c->metric = ANC_METRIC_COSINE;
	c->normalize = 1;
	c->index.kind = ANC_INDEX_FLAT;
}

anc_record
tu_sotu_record(const tu_sotu *s, uint32_t i)
{
	anc_record r;

	cr_assert_lt(i, s->n);
	memset(&r, 0, sizeof r);
	r.source = s->source[i];
	r.chunk = s->chunk[i];
	r.text = s->text[i];
	r.vec = s->vecs + (size_t)i * s->dim;
	r.dim = s->dim;
	return r;
}

void
tu_contract_l2(anc_contract *c, const char *name, const char *model,
               uint32_t dim)
{
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(c->model, sizeof c->model, "%s", model);
	snprintf(c->revision, sizeof c->revision, "1");
	c->dim = dim;
	c->metric = ANC_METRIC_L2;
	c->normalize = 0;
	c->index.kind = ANC_INDEX_FLAT;
}

void
tu_contract_sift(anc_contract *c, const char *name, anc_index_kind kind)
{
	tu_contract_l2(c, name, "sift", 128);
	c->index.kind = kind;
	if (kind == ANC_INDEX_HNSW || kind == ANC_INDEX_HNSW_SQ8) {
		c->index.ef_construction = 200;
		c->index.ef_search = 128;
	} else if (kind == ANC_INDEX_IVF_FLAT) {
		c->index.nlist = 32; /* trains at 39 x 32 = 1248 vectors */
		c->index.nprobe = 8;
	} else if (kind == ANC_INDEX_IVF_PQ) {
		c->index.nlist = 16;
		c->index.nprobe = 8;
		c->index.pq_m = 32; /* 4 dims a code */
		c->index.pq_nbits = 6; /* 64 centroids: trains at 39 x 64 */
	}
}

void
tu_client_setup(anc_client *cl, const char *collection,
                const anc_contract *c, anc_contract_id_str id)
{
	anc_error err = {0};
	anc_resp *resp = NULL;

	cr_assert_eq(anc_client_collection_create(cl, collection, &resp, &err),
	             0, "collection create %s: %s", collection, err.msg);
	anc_resp_free(resp);
	resp = NULL;
	cr_assert_eq(anc_client_contract_register(cl, collection, c, &resp,
	                                          &err),
	             0, "contract register %s@%s: %s", c->name, c->revision,
	             err.msg);
	if (id != NULL)
		memcpy(id, resp->u.contract_register.id,
		       sizeof(anc_contract_id_str));
	anc_resp_free(resp);
}

void
tu_contract_minilm_id(anc_contract_id_str out)
{
	anc_contract c;
	uint8_t raw[ANC_CONTRACT_ID_RAW];

	tu_contract_minilm(&c);
	anc_contract_id(&c, raw);
	anc_contract_id_format(raw, out);
}

void
tu_contract_minilm_write(const char *path)
{
	tu_file_write(path,
	    "{\"name\":\"minilm\",\"model\":\"sentence-transformers/"
	    "all-MiniLM-L6-v2\",\"revision\":\"1\",\"dim\":384,"
	    "\"metric\":\"cosine\",\"normalize\":true}\n", (size_t)-1);
}

void
tu_sotu_load_cli(const char *dir, const char *collection,
                 anc_contract_id_str id, char **load_json)
{
	char *out = NULL, *err = NULL;
	int st = tu_cli(&out, &err, "collection", "create", collection, NULL);
	cr_assert_eq(st, 0, "collection create %s: exit %d: %s", collection,
	             st, err);
	free(out);
	free(err);

	char cpath[TU_PATH_MAX];
	snprintf(cpath, sizeof cpath, "%s/minilm.json", dir);
	tu_contract_minilm_write(cpath);
	st = tu_cli(&out, &err, "contract", "register", collection, cpath,
	            NULL);
	cr_assert_eq(st, 0, "contract register: exit %d: %s", st, err);
	char *last = tu_last_line(out);
	cr_assert_not_null(last);
	cr_assert_eq(strlen(last), ANC_CONTRACT_ID_LEN,
	             "contract register: last line '%s' is not an ID", last);
	snprintf(id, sizeof(anc_contract_id_str), "%s", last);
	free(last);
	free(out);
	free(err);

	char jl[TU_PATH_MAX], fv[TU_PATH_MAX];
	snprintf(jl, sizeof jl, "%s",
	         tu_data_path("sotu-2models/sotu_chunks.jsonl"));
	snprintf(fv, sizeof fv, "%s",
	         tu_data_path("sotu-2models/sotu_all-MiniLM-L6-v2_384.fvecs"));
	if (load_json != NULL)
		st = tu_cli(&out, &err, "--json", "load", collection,
		            "--contract", id, jl, "--vectors", fv,
		            "--chunk-field", "row", NULL);
	else
		st = tu_cli(&out, &err, "load", collection, "--contract", id,
		            jl, "--vectors", fv, "--chunk-field", "row", NULL);
	cr_assert_eq(st, 0, "load: exit %d: stderr: %s", st, err);
	if (load_json != NULL)
		*load_json = out;
	else
		free(out);
	free(err);
}

void
tu_sotu_serve(tu_server *srv, const char *tmp, anc_contract_id_str id)
{
	tu_server_start(srv, tu_path(tmp, "data"), tu_ipc_url(tmp, "s.sock"),
	                "--nosync", NULL);
	tu_sotu_load_cli(tmp, "sotu", id, NULL);
}
