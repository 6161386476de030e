/*
 * cli_json.c — the CLI's JSON inputs: contract files and JSONL record lines.
 *
 * Design note
 * -----------
 * Both parsers are strict because their mistakes are silent otherwise: a
 * contract file with "dimension" instead of "dim" would register a contract
 * with the wrong shape, and a JSONL file whose chunk key is misnamed would
 * collapse every passage of a source onto one anchor. So unknown keys in a
 * contract are errors naming the key, duplicate keys are refused (jansson's
 * JSON_REJECT_DUPLICATES), every type is checked and named, and a contract
 * passes anc_contract_validate before it leaves this file.
 *
 * Record lines are parsed one at a time into an anc_cli_line that owns
 * copies of its strings, so the jansson tree can be released at once and a
 * batch holds only what it sends. \u0000 inside strings is refused by
 * jansson's default decoder, which matches the protocol's "no embedded NUL".
 *
 * --meta-field values become the passage's metadata: one msgpack map built
 * with msgpack-c's packer, keys in flag order, each value keeping its JSON
 * type (integers stay integers, reals are float64, nesting is bounded), so
 * the same line always packs to the same bytes and a reload is detected as
 * "unchanged" by the server's byte comparison.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "cli.h"

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "real";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* ---- contracts ----------------------------------------------------------- */

static int
contract_str(json_t *obj, const char *key, int required, char *dst,
             size_t max, const char *origin, anc_error *err)
{
	json_t *v = json_object_get(obj, key);
	size_t n;

	if (v == NULL) {
		if (required)
			return anc_error_set(err, ANC_EINVAL,
			    "%s: \"%s\": missing (required string)", origin, key);
		dst[0] = '\0';
		return ANC_OK;
	}
	if (!json_is_string(v))
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"%s\": expected string, got %s", origin, key,
		    json_type_name(v));
	n = json_string_length(v);
	if (n > max)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"%s\": expected at most %zu bytes, got %zu", origin,
		    key, max, n);
	memcpy(dst, json_string_value(v), n);
	dst[n] = '\0';
	return ANC_OK;
}

/* An integer field in [min, max]; missing leaves *out untouched unless
 * required. */
static int
contract_u32(json_t *obj, const char *key, const char *label, int required,
             uint32_t min, uint32_t max, uint32_t *out, const char *origin,
             anc_error *err)
{
	json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (v == NULL) {
		if (required)
			return anc_error_set(err, ANC_EINVAL,
			    "%s: \"%s\": missing (required integer %u..%u)",
			    origin, label, min, max);
		return ANC_OK;
	}
	if (!json_is_integer(v))
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"%s\": expected integer %u..%u, got %s", origin,
		    label, min, max, json_type_name(v));
	n = json_integer_value(v);
	if (n < (json_int_t)min || n > (json_int_t)max)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"%s\": expected integer %u..%u, got %" JSON_INTEGER_FORMAT,
		    origin, label, min, max, n);
	*out = (uint32_t)n;
	return ANC_OK;
}

const char *
anc_cli_json_unknown_key(json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return key;
	}
	return NULL;
}

static int
contract_check_keys(json_t *obj, const char *const *allowed,
                    const char *where, const char *origin, anc_error *err)
{
	const char *key = anc_cli_json_unknown_key(obj, allowed);

	if (key != NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: %s\"%s\": unknown key (expected one of %s)",
		    origin, where, key,
		    where[0] ? "kind, m, ef_construction, ef_search, "
		               "nlist, nprobe, pq_m, pq_nbits"
		             : "name, model, revision, dim, metric, "
		               "normalize, preprocess, dtype, index");
	return ANC_OK;
}

static int
contract_index(json_t *idx, anc_index_spec *spec, const char *origin,
               anc_error *err)
{
	static const char *const keys[] = {"kind", "m", "ef_construction",
	                                   "ef_search", "nlist", "nprobe",
	                                   "pq_m", "pq_nbits", NULL};
	json_t *kind;
	int k;
	int code;

	if (!json_is_object(idx))
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"index\": expected object, got %s", origin,
		    json_type_name(idx));
	if ((code = contract_check_keys(idx, keys, "index.", origin, err)))
		return code;
	kind = json_object_get(idx, "kind");
	if (kind == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"index.kind\": missing (expected \"flat\", \"hnsw\", "
		    "\"hnsw_sq8\", \"ivf_flat\" or \"ivf_pq\")", origin);
	if (!json_is_string(kind))
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"index.kind\": expected string, got %s", origin,
		    json_type_name(kind));
	if ((k = anc_index_kind_parse(json_string_value(kind))) < 0)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"index.kind\": expected \"flat\", \"hnsw\", "
		    "\"hnsw_sq8\", \"ivf_flat\" or \"ivf_pq\", got \"%s\"",
		    origin, json_string_value(kind));
	spec->kind = (anc_index_kind)k;
	spec->m = 0;
	spec->ef_construction = 0;
	spec->ef_search = 0;
	spec->nlist = spec->nprobe = spec->pq_m = spec->pq_nbits = 0;
	if (spec->kind == ANC_INDEX_IVF_FLAT || spec->kind == ANC_INDEX_IVF_PQ) {
		/* Zero means "default"; anc_contract_validate fills them and
		 * names a parameter that belongs to another kind. */
		if ((code = contract_u32(idx, "nlist", "index.nlist", 0, 1,
		         ANC_NLIST_MAX, &spec->nlist, origin, err)) ||
		    (code = contract_u32(idx, "nprobe", "index.nprobe", 0, 1,
		         ANC_NLIST_MAX, &spec->nprobe, origin, err)) ||
		    (code = contract_u32(idx, "pq_m", "index.pq_m", 0, 1,
		         ANC_PQ_M_MAX, &spec->pq_m, origin, err)) ||
		    (code = contract_u32(idx, "pq_nbits", "index.pq_nbits", 0,
		         ANC_PQ_NBITS_MIN, ANC_PQ_NBITS_MAX, &spec->pq_nbits,
		         origin, err)))
			return code;
		if (json_object_get(idx, "ef_construction") != NULL ||
		    json_object_get(idx, "ef_search") != NULL ||
		    json_object_get(idx, "m") != NULL)
			return anc_error_set(err, ANC_EINVAL,
			    "%s: \"index\": m, ef_construction and ef_search "
			    "are for the hnsw kinds, not \"%s\"", origin,
			    anc_index_kind_name(spec->kind));
		return ANC_OK;
	}
	if (json_object_get(idx, "nlist") != NULL ||
	    json_object_get(idx, "nprobe") != NULL ||
	    json_object_get(idx, "pq_m") != NULL ||
	    json_object_get(idx, "pq_nbits") != NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "%s: \"index\": nlist, nprobe, pq_m and pq_nbits are for "
		    "the ivf kinds, not \"%s\"", origin,
		    anc_index_kind_name(spec->kind));
	if (spec->kind == ANC_INDEX_FLAT) {
		if (json_object_size(idx) != 1)
			return anc_error_set(err, ANC_EINVAL,
			    "%s: \"index\": kind \"flat\" takes no parameters "
			    "(m, ef_construction, ef_search are for \"hnsw\")",
			    origin);
		return ANC_OK;
	}
	/* Zero means "default": anc_contract_validate fills them. */
	if ((code = contract_u32(idx, "m", "index.m", 0, 2, ANC_HNSW_M_MAX,
	         &spec->m, origin, err)) ||
	    (code = contract_u32(idx, "ef_construction",
	         "index.ef_construction", 0, 1, ANC_EF_MAX,
	         &spec->ef_construction, origin, err)) ||
	    (code = contract_u32(idx, "ef_search", "index.ef_search", 0, 1,
	         ANC_EF_MAX, &spec->ef_search, origin, err)))
		return code;
	return ANC_OK;
}

int
anc_cli_contract_parse(const char *json, size_t len, const char *origin,
                       anc_contract *out, anc_error *err)
{
	static const char *const keys[] = {"name", "model", "revision", "dim",
	    "metric", "normalize", "preprocess", "dtype", "index", NULL};
	json_error_t jerr;
	json_t *root = NULL;
	json_t *v;
	anc_contract c;
	int metric;
	int code;

	if (origin == NULL)
		origin = "contract";
	anc_contract_init(&c);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return anc_error_set(err, ANC_EMALFORMED, "%s:%d:%d: %s", origin,
		    jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: expected a JSON object, got %s", origin,
		    json_type_name(root));
		goto leave;
	}
	if ((code = contract_check_keys(root, keys, "", origin, err)) ||
	    (code = contract_str(root, "name", 1, c.name, ANC_CNAME_MAX,
	         origin, err)) ||
	    (code = contract_str(root, "model", 1, c.model, ANC_MODEL_MAX,
	         origin, err)) ||
	    (code = contract_str(root, "revision", 1, c.revision,
	         ANC_REVISION_MAX, origin, err)) ||
	    (code = contract_str(root, "preprocess", 0, c.preprocess,
	         ANC_PREPROCESS_MAX, origin, err)) ||
	    (code = contract_u32(root, "dim", "dim", 1, 1, ANC_DIM_MAX, &c.dim,
	         origin, err)))
		goto leave;

	v = json_object_get(root, "metric");
	if (v == NULL || !json_is_string(v)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: \"metric\": %s%s (expected \"l2\", \"ip\" or "
		    "\"cosine\")", origin, v ? "expected string, got " :
		    "missing", v ? json_type_name(v) : "");
		goto leave;
	}
	if ((metric = anc_metric_parse(json_string_value(v))) < 0) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: \"metric\": expected \"l2\", \"ip\" or \"cosine\", got "
		    "\"%s\"", origin, json_string_value(v));
		goto leave;
	}
	c.metric = (anc_metric)metric;

	v = json_object_get(root, "normalize");
	if (v == NULL || !json_is_boolean(v)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: \"normalize\": %s%s (expected true or false)", origin,
		    v ? "expected boolean, got " : "missing",
		    v ? json_type_name(v) : "");
		goto leave;
	}
	c.normalize = json_is_true(v) ? 1 : 0;

	v = json_object_get(root, "dtype");
	if (v != NULL && (!json_is_string(v) ||
	                  strcmp(json_string_value(v), "f32") != 0)) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s: \"dtype\": expected \"f32\" (the only dtype), got %s%s%s",
		    origin, json_is_string(v) ? "\"" : "",
		    json_is_string(v) ? json_string_value(v) : json_type_name(v),
		    json_is_string(v) ? "\"" : "");
		goto leave;
	}

	v = json_object_get(root, "index");
	if (v != NULL && (code = contract_index(v, &c.index, origin, err)))
		goto leave;

	if ((code = anc_contract_validate(&c, err)) != ANC_OK) {
		anc_error_wrap(err, "%s", origin);
		goto leave;
	}
	*out = c;
leave:
	json_decref(root);
	return code;
}

int
anc_cli_contract_load(const char *path, anc_contract *out, anc_error *err)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n;
	int code;

	if ((f = fopen(path, "rb")) == NULL)
		return anc_error_set(err, ANC_EIO, "%s: cannot open: %s", path,
		    strerror(errno));
	if ((buf = malloc(ANC_CLI_CONTRACT_FILE_MAX + 1)) == NULL) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "%s: cannot allocate a read buffer", path);
		goto leave;
	}
	n = fread(buf, 1, ANC_CLI_CONTRACT_FILE_MAX + 1, f);
	if (ferror(f)) {
		code = anc_error_set(err, ANC_EIO, "%s: read failed: %s", path,
		    strerror(errno));
		goto leave;
	}
	if (n > ANC_CLI_CONTRACT_FILE_MAX) {
		code = anc_error_set(err, ANC_ETOOBIG,
		    "%s: larger than %u bytes: not a contract file", path,
		    ANC_CLI_CONTRACT_FILE_MAX);
		goto leave;
	}
	code = anc_cli_contract_parse(buf, n, path, out, err);
leave:
	free(buf);
	(void)fclose(f); /* opened read-only */
	return code;
}

/* ---- JSONL lines ------------------------------------------------------- */

void
anc_cli_fields_default(anc_cli_fields *f)
{
	anc_limits lim;

	anc_limits_default(&lim);
	memset(f, 0, sizeof(*f));
	f->source = "source";
	f->chunk = "chunk";
	f->text = "text";
	f->vector = "vector";
	f->want_vector = 1;
	f->max_text = lim.max_text;
	f->max_meta = lim.max_meta;
}

/* msgpack_sbuffer-like writer into a caller-owned growable buffer. */
typedef struct meta_out {
	uint8_t **buf;
	size_t *len;
	size_t *cap;
	int oom;
} meta_out;

static int
meta_write(void *data, const char *p, size_t n)
{
	meta_out *o = data;
	size_t ncap;
	uint8_t *nb;

	if (*o->len + n > *o->cap) {
		ncap = *o->cap ? *o->cap : 256;
		while (ncap < *o->len + n)
			ncap *= 2;
		if ((nb = realloc(*o->buf, ncap)) == NULL) {
			o->oom = 1;
			return -1;
		}
		*o->buf = nb;
		*o->cap = ncap;
	}
	memcpy(*o->buf + *o->len, p, n);
	*o->len += n;
	return 0;
}

static int
meta_pack_rec(msgpack_packer *pk, json_t *v, const char *what, int depth,
              anc_error *err)
{
	const char *key;
	json_t *e;
	size_t i;
	int code;

	/* containers only: a scalar adds no level (as in mpk_scan) */
	if (depth > ANC_CLI_META_DEPTH &&
	    (json_is_array(v) || json_is_object(v)))
		return anc_error_set(err, ANC_ETOOBIG,
		    "%s: nested deeper than %d levels (the metadata map "
		    "counts as one)", what, ANC_CLI_META_DEPTH);
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (msgpack_pack_str_with_body(pk, json_string_value(v),
		        json_string_length(v)))
			goto oom;
		return ANC_OK;
	case JSON_INTEGER:
		if (msgpack_pack_int64(pk, (int64_t)json_integer_value(v)))
			goto oom;
		return ANC_OK;
	case JSON_REAL:
		if (msgpack_pack_double(pk, json_real_value(v)))
			goto oom;
		return ANC_OK;
	case JSON_TRUE:
		return msgpack_pack_true(pk) ? anc_error_set(err, ANC_ENOMEM,
		    "%s: out of memory", what) : ANC_OK;
	case JSON_FALSE:
		return msgpack_pack_false(pk) ? anc_error_set(err, ANC_ENOMEM,
		    "%s: out of memory", what) : ANC_OK;
	case JSON_NULL:
		return msgpack_pack_nil(pk) ? anc_error_set(err, ANC_ENOMEM,
		    "%s: out of memory", what) : ANC_OK;
	case JSON_ARRAY:
		if (msgpack_pack_array(pk, json_array_size(v)))
			goto oom;
		json_array_foreach(v, i, e)
			if ((code = meta_pack_rec(pk, e, what, depth + 1, err)))
				return code;
		return ANC_OK;
	case JSON_OBJECT:
		if (msgpack_pack_map(pk, json_object_size(v)))
			goto oom;
		json_object_foreach(v, key, e) {
			if (msgpack_pack_str_with_body(pk, key, strlen(key)))
				goto oom;
			if ((code = meta_pack_rec(pk, e, what, depth + 1, err)))
				return code;
		}
		return ANC_OK;
	}
	return anc_error_set(err, ANC_EINTERNAL, "%s: unknown JSON type",
	    what);
oom:
	return anc_error_set(err, ANC_ENOMEM, "%s: out of memory", what);
}

int
anc_cli_meta_pack(json_t *v, const char *what, uint8_t **buf, size_t *len,
                  size_t *cap, anc_error *err)
{
	meta_out o = {buf, len, cap, 0};
	msgpack_packer pk;

	msgpack_packer_init(&pk, &o, meta_write);
	return meta_pack_rec(&pk, v, what, 2, err);
}

/* The metadata map of a line: the --meta-field values it has. */
static int
line_meta(json_t *root, const anc_cli_fields *f, anc_cli_line *out,
          anc_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	uint32_t i, present = 0;
	meta_out o = {&buf, &len, &cap, 0};
	msgpack_packer pk;
	char what[300];
	json_t *v;
	int code = ANC_OK;

	for (i = 0; i < f->nmeta; i++)
		present += json_object_get(root, f->meta[i]) != NULL;
	msgpack_packer_init(&pk, &o, meta_write);
	if (msgpack_pack_map(&pk, present)) {
		code = anc_error_set(err, ANC_ENOMEM, "metadata: out of memory");
		goto leave;
	}
	for (i = 0; i < f->nmeta; i++) {
		if ((v = json_object_get(root, f->meta[i])) == NULL)
			continue;
		snprintf(what, sizeof(what), "meta field \"%.256s\"",
		    f->meta[i]);
		if (msgpack_pack_str_with_body(&pk, f->meta[i],
		        strlen(f->meta[i]))) {
			code = anc_error_set(err, ANC_ENOMEM, "%s: out of memory",
			    what);
			goto leave;
		}
		if ((code = anc_cli_meta_pack(v, what, &buf, &len, &cap, err)))
			goto leave;
	}
	if (f->max_meta != 0 && len > f->max_meta) {
		code = anc_error_set(err, ANC_ETOOBIG,
		    "metadata (--meta-field): %zu bytes packed, at most %u", len,
		    f->max_meta);
		goto leave;
	}
	out->meta = buf;
	out->meta_len = (uint32_t)len;
	buf = NULL;
leave:
	free(buf);
	return code;
}

void
anc_cli_line_clear(anc_cli_line *l)
{
	if (l == NULL)
		return;
	free(l->source);
	free(l->chunk);
	free(l->text);
	free(l->vec);
	free(l->meta);
	memset(l, 0, sizeof(*l));
}

/* A key field (source or chunk): string or integer, min..ANC_STR_MAX bytes.
 * *out is malloc'd. */
static int
line_key(json_t *root, const char *field, const char *what, size_t min,
         int required, const char *flag, char **out, anc_error *err)
{
	json_t *v = json_object_get(root, field);
	char num[32];
	const char *s;
	size_t n;

	*out = NULL;
	if (v == NULL) {
		if (required)
			return anc_error_set(err, ANC_EINVAL,
			    "%s field \"%s\": missing (pick another field with "
			    "%s)", what, field, flag);
		s = "";
		n = 0;
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		n = json_string_length(v);
	} else if (json_is_integer(v)) {
		n = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		s = num;
	} else {
		return anc_error_set(err, ANC_EINVAL,
		    "%s field \"%s\": expected string or integer, got %s", what,
		    field, json_type_name(v));
	}
	if (n < min || n > ANC_STR_MAX)
		return anc_error_set(err, ANC_EINVAL,
		    "%s field \"%s\": expected %zu..%d bytes, got %zu", what,
		    field, min, ANC_STR_MAX, n);
	if ((*out = malloc(n + 1)) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "%s field \"%s\": out of memory", what, field);
	memcpy(*out, s, n);
	(*out)[n] = '\0';
	return ANC_OK;
}

static int
line_vector(json_t *root, const anc_cli_fields *f, uint32_t expect_dim,
            anc_cli_line *out, anc_error *err)
{
	json_t *v = json_object_get(root, f->vector);
	json_t *e;
	size_t n, i;
	double x;

	if (v == NULL)
		return anc_error_set(err, ANC_EINVAL,
		    "vector field \"%s\": missing (pick another field with "
		    "--vector-field, or give --vectors FILE.fvecs)", f->vector);
	if (!json_is_array(v))
		return anc_error_set(err, ANC_EINVAL,
		    "vector field \"%s\": expected array of numbers, got %s",
		    f->vector, json_type_name(v));
	n = json_array_size(v);
	if (n == 0 || n > ANC_DIM_MAX)
		return anc_error_set(err, n ? ANC_ETOOBIG : ANC_EINVAL,
		    "vector field \"%s\": expected 1..%d numbers, got %zu",
		    f->vector, ANC_DIM_MAX, n);
	if (expect_dim != 0 && n != expect_dim)
		return anc_error_set(err, ANC_EDIM,
		    "vector field \"%s\": expected %u numbers (the contract's "
		    "dim), got %zu", f->vector, expect_dim, n);
	if ((out->vec = malloc(n * sizeof(float))) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		    "vector field \"%s\": cannot allocate %zu floats", f->vector,
		    n);
	json_array_foreach(v, i, e) {
		if (!json_is_number(e))
			return anc_error_set(err, ANC_EINVAL,
			    "vector field \"%s\"[%zu]: expected number, got %s",
			    f->vector, i, json_type_name(e));
		x = json_number_value(e);
		out->vec[i] = (float)x;
		if (!isfinite(out->vec[i]))
			return anc_error_set(err, ANC_ENONFINITE,
			    "vector field \"%s\"[%zu]: %g is not a finite "
			    "float32", f->vector, i, x);
	}
	out->dim = (uint32_t)n;
	return ANC_OK;
}

int
anc_cli_line_parse(const char *line, size_t len, const anc_cli_fields *f,
                   uint32_t expect_dim, anc_cli_line *out, anc_error *err)
{
	json_error_t jerr;
	json_t *root;
	json_t *v;
	size_t n;
	int code;

	memset(out, 0, sizeof(*out));
	{
		/* jansson would report it as "end of file expected" */
		const char *nul = memchr(line, '\0', len);
		if (nul != NULL)
			return anc_error_set(err, ANC_EMALFORMED,
			    "NUL byte at column %zu (JSONL: text, one object "
			    "per line)", (size_t)(nul - line) + 1);
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return anc_error_set(err, ANC_EMALFORMED,
		    "invalid JSON at column %d: %s", jerr.column, jerr.text);
	if (!json_is_object(root)) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "expected a JSON object per line, got %s",
		    json_type_name(root));
		goto leave;
	}
	if ((code = line_key(root, f->source, "source", 1, 1,
	         "--source-field", &out->source, err)) ||
	    (code = line_key(root, f->chunk, "chunk", 0, f->chunk_explicit,
	         "--chunk-field", &out->chunk, err)))
		goto leave;

	v = json_object_get(root, f->text);
	if (v == NULL && f->text_explicit) {
		code = anc_error_set(err, ANC_EINVAL,
		    "text field \"%s\": missing (pick another field with "
		    "--text-field)", f->text);
		goto leave;
	}
	if (v != NULL) {
		if (!json_is_string(v)) {
			code = anc_error_set(err, ANC_EINVAL,
			    "text field \"%s\": expected string, got %s",
			    f->text, json_type_name(v));
			goto leave;
		}
		n = json_string_length(v);
		if (f->max_text != 0 && n > f->max_text) {
			code = anc_error_set(err, ANC_ETOOBIG,
			    "text field \"%s\": %zu bytes, at most %u", f->text,
			    n, f->max_text);
			goto leave;
		}
		if ((out->text = strdup(json_string_value(v))) == NULL) {
			code = anc_error_set(err, ANC_ENOMEM,
			    "text field \"%s\": out of memory", f->text);
			goto leave;
		}
	}
	if (f->want_vector &&
	    (code = line_vector(root, f, expect_dim, out, err)))
		goto leave;
	if (!f->want_vector && f->vector != NULL) {
		json_t *iv = json_object_get(root, f->vector);
		out->vec_ignored = iv != NULL && !json_is_null(iv);
	}
	{
		const char *key;
		json_t *val;
		json_object_foreach(root, key, val) {
			const char *names[4] = {f->source, f->chunk, f->text,
			                        f->vector};
			int used = 0;
			for (int i = 0; !used && i < 4; i++)
				used = names[i] != NULL && strcmp(key, names[i]) == 0;
			for (uint32_t i = 0; !used && i < f->nmeta; i++)
				used = strcmp(key, f->meta[i]) == 0;
			if (used || !(json_is_object(val) || json_is_array(val)))
				continue;
			/* named only when short and plain: advice to map a
			 * cut name would load nothing, and the name goes to
			 * a terminal and into a shell command */
			size_t kl = strlen(key);
			out->unmapped_any = 1;
			if (kl > 0 && kl < sizeof out->unmapped[0] &&
			    out->nunmapped < ANC_CLI_UNMAPPED_MAX &&
			    strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklm"
			                "nopqrstuvwxyz0123456789_.-") == kl)
				memcpy(out->unmapped[out->nunmapped++], key,
				    kl + 1);
			else
				out->unmapped_unnamed = 1;
		}
	}
	if (f->nmeta > 0 && (code = line_meta(root, f, out, err)))
		goto leave;
	code = ANC_OK;
leave:
	json_decref(root);
	if (code != ANC_OK)
		anc_cli_line_clear(out);
	return code;
}

/* ---- metadata back to JSON (resolve) ------------------------------------ */

static json_t *
mp_json(const msgpack_object *o, int depth)
{
	json_t *v;

	if (depth > 64) /* the server bounds nesting far below this */
		return json_null();
	switch (o->type) {
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return o->via.u64 <= (uint64_t)INT64_MAX
		    ? json_integer((json_int_t)o->via.u64)
		    : json_real((double)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer((json_int_t)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return isfinite(o->via.f64) ? json_real(o->via.f64)
		                            : json_null();
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN: {
		char *s = malloc((size_t)o->via.str.size + 1);
		if (s == NULL)
			return NULL;
		memcpy(s, o->via.str.ptr, o->via.str.size);
		s[o->via.str.size] = '\0';
		v = anc_cli_json_str(s); /* invalid UTF-8 -> U+FFFD */
		free(s);
		return v;
	}
	case MSGPACK_OBJECT_ARRAY:
		if ((v = json_array()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.array.size; i++)
			if (json_array_append_new(v, mp_json(&o->via.array.ptr[i],
			        depth + 1)) != 0) {
				json_decref(v);
				return NULL;
			}
		return v;
	case MSGPACK_OBJECT_MAP:
		if ((v = json_object()) == NULL)
			return NULL;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			json_t *k = mp_json(&kv->key, depth + 1);
			const char *ks = json_is_string(k) ? json_string_value(k)
			                                   : NULL;
			int bad = ks == NULL ||
			    json_object_set_new(v, ks, mp_json(&kv->val,
			        depth + 1)) != 0;
			json_decref(k);
			if (bad) {
				json_decref(v);
				return NULL;
			}
		}
		return v;
	default:
		return json_null();
	}
}

json_t *
anc_cli_meta_json(const uint8_t *meta, uint32_t len)
{
	msgpack_unpacked u;
	size_t off = 0;
	json_t *v = NULL;

	if (meta == NULL || len == 0)
		return NULL;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)meta, len, &off) ==
	    MSGPACK_UNPACK_SUCCESS)
		v = mp_json(&u.data, 0);
	msgpack_unpacked_destroy(&u);
	return v;
}
