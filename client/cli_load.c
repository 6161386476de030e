/*
 * cli_load.c — `anchorage load`: bulk upsert of a JSONL file.
 *
 * Design note
 * -----------
 * Two passes over the file. The first parses every line, computes its
 * anchor and refuses the whole load before anything is sent when a line is
 * bad, when the --vectors file has another number of rows than the JSONL
 * file has lines, or when two lines map to the same (source, chunk) slot.
 * That last check matters on real data: a chunker that writes no chunk key
 * (the SOTU corpus has "source" and "row" but no "chunk") would otherwise
 * collapse every passage of a document onto one anchor, each line silently
 * overwriting the previous one. The second pass parses again and sends
 * batches of --batch records (also cut at ~16 MiB of payload so a batch of
 * 4096-d vectors stays well under the server's message limit).
 *
 * Anything the server refuses stops the load at that batch; the earlier
 * batches are acknowledged (committed) and upserts are idempotent, so the
 * fix is to correct the file and run the same command again. The error
 * message says how many records were loaded before the failing batch.
 *
 * The contract and its dim are looked up with an info request first so
 * that a vector of the wrong length is reported with its file:line locally.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_vecfile.h"

#define LOAD_BATCH_BYTES (16u << 20)
#define LOAD_LINE_MAX (64u << 20)

/* ---- anchor set: detects two lines with the same (source, chunk) ------ */

typedef struct anchor_slot {
	uint8_t raw[ANC_ANCHOR_RAW];
	uint64_t line; /* 0: empty slot */
} anchor_slot;

typedef struct anchor_set {
	anchor_slot *slots;
	size_t cap; /* power of two */
	size_t n;
} anchor_set;

static void
anchor_set_free(anchor_set *s)
{
	free(s->slots);
	memset(s, 0, sizeof(*s));
}

static size_t
anchor_hash(const uint8_t raw[ANC_ANCHOR_RAW])
{
	size_t h;

	memcpy(&h, raw, sizeof(h)); /* the anchor is already a hash */
	return h;
}

/* Insert raw seen on line; if already present, *first is its line. */
static int
anchor_set_add(anchor_set *s, const uint8_t raw[ANC_ANCHOR_RAW],
               uint64_t line, uint64_t *first)
{
	anchor_slot *old = s->slots;
	size_t oldcap = s->cap;
	size_t i, j;

	*first = 0;
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 1024;
		anchor_slot *ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return ANC_ENOMEM;
		for (i = 0; i < oldcap; i++) {
			if (old[i].line == 0)
				continue;
			for (j = anchor_hash(old[i].raw) & (ncap - 1);
			     ns[j].line != 0; j = (j + 1) & (ncap - 1))
				;
			ns[j] = old[i];
		}
		free(old);
		s->slots = ns;
		s->cap = ncap;
	}
	for (j = anchor_hash(raw) & (s->cap - 1); s->slots[j].line != 0;
	     j = (j + 1) & (s->cap - 1)) {
		if (memcmp(s->slots[j].raw, raw, ANC_ANCHOR_RAW) == 0) {
			*first = s->slots[j].line;
			return ANC_OK;
		}
	}
	memcpy(s->slots[j].raw, raw, ANC_ANCHOR_RAW);
	s->slots[j].line = line;
	s->n++;
	return ANC_OK;
}

/* ---- the load state ------------------------------------------------------ */

typedef struct load_state {
	anc_cli_ctx *ctx;
	const char *collection;
	const char *path;
	anc_contract_id_str contract; /* canonical ID sent with upserts */
	uint32_t dim;
	anc_cli_fields fields;
	uint32_t batch_max;
	float *fv;         /* --vectors rows, or NULL */
	uint32_t fv_rows;
	/* current batch */
	anc_cli_line *lines;
	anc_record *recs;
	uint64_t *lineno;
	uint8_t (*anchors)[ANC_ANCHOR_RAW];
	uint32_t nbatch;
	size_t batch_bytes;
	/* totals */
	uint64_t loaded, created, updated, unchanged;
} load_state;

static void
load_batch_clear(load_state *st)
{
	uint32_t i;

	for (i = 0; i < st->nbatch; i++)
		anc_cli_line_clear(&st->lines[i]);
	st->nbatch = 0;
	st->batch_bytes = 0;
}

/* Find the collection and contract in an info answer. */
static int
load_find_contract(load_state *st, const char *want, anc_error *err)
{
	const anc_info *info;
	const anc_collection_info *ci = NULL;
	const anc_contract_info *k;
	anc_resp *resp = NULL;
	char nr[ANC_CNAME_MAX + ANC_REVISION_MAX + 2];
	uint32_t i;
	int code;

	if ((code = anc_client_info(st->ctx->client, &resp, err)))
		return code;
	info = &resp->u.info;
	for (i = 0; i < info->ncollections; i++)
		if (strcmp(info->collections[i].name, st->collection) == 0)
			ci = &info->collections[i];
	if (ci == NULL) {
		code = anc_error_set(err, ANC_ENOCOLL,
		    "collection '%s' does not exist (create it with: anchorage "
		    "collection create %s)", st->collection, st->collection);
		goto leave;
	}
	if (want == NULL || want[0] == '\0')
		want = ci->default_contract;
	if (want[0] == '\0') {
		code = anc_error_set(err, ANC_ENOCONTRACT,
		    "collection '%s' has no contract (register one with: "
		    "anchorage contract register %s FILE.json)", st->collection,
		    st->collection);
		goto leave;
	}
	for (i = 0; i < ci->ncontracts; i++) {
		k = &ci->contracts[i];
		snprintf(nr, sizeof(nr), "%s@%s", k->contract.name,
		    k->contract.revision);
		if (strcmp(k->id, want) == 0 || strcmp(nr, want) == 0) {
			memcpy(st->contract, k->id, sizeof(st->contract));
			st->dim = k->contract.dim;
			goto leave;
		}
	}
	code = anc_error_set(err, ANC_ENOCONTRACT,
	    "--contract: collection '%s' has no contract '%s' (see anchorage "
	    "info)", st->collection, want);
leave:
	anc_resp_free(resp);
	return code;
}

/* Read one line into *buf; strips "\n" and "\r\n". *len = (size_t)-1 at
 * end of file. */
static int
load_getline(FILE *f, const char *path, uint64_t lineno, char **buf,
             size_t *cap, size_t *len, anc_error *err)
{
	ssize_t n;

	errno = 0;
	n = getline(buf, cap, f);
	if (n < 0) {
		if (ferror(f))
			return anc_error_set(err, ANC_EIO, "%s:%llu: read failed: "
			    "%s", path, (unsigned long long)lineno,
			    strerror(errno));
		*len = (size_t)-1;
		return ANC_OK;
	}
	if ((size_t)n > LOAD_LINE_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		    "%s:%llu: line of %zd bytes, at most %u", path,
		    (unsigned long long)lineno, n, LOAD_LINE_MAX);
	if (n > 0 && (*buf)[n - 1] == '\n')
		n--;
	if (n > 0 && (*buf)[n - 1] == '\r')
		n--;
	(*buf)[n] = '\0';
	*len = (size_t)n;
	return ANC_OK;
}

static int
line_is_blank(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* Pass 1: every line valid, no duplicate slots; count the records. */
static int
load_check(load_state *st, FILE *f, uint64_t *nrec, anc_error *err)
{
	anchor_set set = {NULL, 0, 0};
	anc_cli_line l = {0};
	uint8_t raw[ANC_ANCHOR_RAW];
	anc_anchor_str a;
	char *buf = NULL;
	size_t cap = 0, len;
	uint64_t lineno, first;
	int code = ANC_OK;

	*nrec = 0;
	for (lineno = 1;; lineno++) {
		if ((code = load_getline(f, st->path, lineno, &buf, &cap, &len,
		         err)) || len == (size_t)-1)
			break;
		if (line_is_blank(buf, len)) {
			code = anc_error_set(err, ANC_EMALFORMED,
			    "%s:%llu: empty line (JSONL: one object per line)",
			    st->path, (unsigned long long)lineno);
			break;
		}
		if ((code = anc_cli_line_parse(buf, len, &st->fields, st->dim,
		         &l, err))) {
			anc_error_wrap(err, "%s:%llu", st->path,
			    (unsigned long long)lineno);
			break;
		}
		if ((code = anc_anchor_compute(st->collection, l.source,
		         l.chunk, raw)) ||
		    (code = anchor_set_add(&set, raw, lineno, &first))) {
			anc_error_set(err, code, "%s:%llu: out of memory",
			    st->path, (unsigned long long)lineno);
			break;
		}
		if (first != 0) {
			anc_anchor_format(raw, a);
			code = anc_error_set(err, ANC_EINVAL,
			    "%s:%llu: same source '%.200s' and chunk '%.200s' as "
			    "line %llu (anchor %s); every line needs its own "
			    "chunk key (is --chunk-field right?)", st->path,
			    (unsigned long long)lineno, l.source, l.chunk,
			    (unsigned long long)first, a);
			break;
		}
		anc_cli_line_clear(&l);
		(*nrec)++;
	}
	anc_cli_line_clear(&l);
	anchor_set_free(&set);
	free(buf);
	return code;
}

static int
load_flush(load_state *st, anc_error *err)
{
	anc_resp *resp = NULL;
	anc_anchor_str mine;
	const anc_upsert_result *r;
	json_t *o;
	uint32_t i;
	int code = ANC_OK;

	if (st->nbatch == 0)
		return ANC_OK;
	if ((code = anc_client_upsert(st->ctx->client, st->collection,
	         st->contract, st->recs, st->nbatch, &resp, err))) {
		anc_cli_error_strip_name(err);
		anc_error_wrap(err, "%s:%llu-%llu (%llu records before line "
		    "%llu are loaded)", st->path,
		    (unsigned long long)st->lineno[0],
		    (unsigned long long)st->lineno[st->nbatch - 1],
		    (unsigned long long)st->loaded,
		    (unsigned long long)st->lineno[0]);
		goto leave;
	}
	if (resp->u.upsert.n != st->nbatch) {
		code = anc_error_set(err, ANC_EMALFORMED,
		    "upsert reply for %s:%llu-%llu: expected %u results, got %u",
		    st->path, (unsigned long long)st->lineno[0],
		    (unsigned long long)st->lineno[st->nbatch - 1], st->nbatch,
		    resp->u.upsert.n);
		goto leave;
	}
	for (i = 0; i < st->nbatch; i++) {
		r = &resp->u.upsert.results[i];
		anc_anchor_format(st->anchors[i], mine);
		if (strcmp(mine, r->anchor) != 0) {
			code = anc_error_set(err, ANC_EINTERNAL,
			    "%s:%llu: server returned anchor %s, expected %s",
			    st->path, (unsigned long long)st->lineno[i],
			    r->anchor, mine);
			goto leave;
		}
		st->loaded++;
		st->created += r->status == ANC_UPSERT_CREATED;
		st->updated += r->status == ANC_UPSERT_UPDATED;
		st->unchanged += r->status == ANC_UPSERT_UNCHANGED;
		if (st->ctx->json) {
			o = json_pack("{s:I,s:s,s:s,s:I}", "line",
			    (json_int_t)st->lineno[i], "anchor", r->anchor,
			    "status", anc_upsert_status_name(r->status),
			    "revision", (json_int_t)r->revision);
			if ((code = anc_cli_json_emit(stdout, o, err)))
				goto leave;
		}
	}
leave:
	anc_resp_free(resp);
	load_batch_clear(st);
	return code;
}

/* Pass 2: parse again and send. */
static int
load_send(load_state *st, FILE *f, anc_error *err)
{
	anc_cli_line *l;
	anc_record *r;
	char *buf = NULL;
	size_t cap = 0, len;
	uint64_t lineno, row = 0;
	int code = ANC_OK;

	for (lineno = 1;; lineno++) {
		if ((code = load_getline(f, st->path, lineno, &buf, &cap, &len,
		         err)) || len == (size_t)-1)
			break;
		l = &st->lines[st->nbatch];
		if ((code = anc_cli_line_parse(buf, len, &st->fields, st->dim, l,
		         err))) {
			/* Pass 1 accepted it: the file changed under us. */
			anc_error_wrap(err, "%s:%llu (changed during the load?)",
			    st->path, (unsigned long long)lineno);
			break;
		}
		r = &st->recs[st->nbatch];
		memset(r, 0, sizeof(*r));
		r->source = l->source;
		r->chunk = l->chunk;
		r->text = l->text;
		if (st->fv != NULL) {
			if (row >= st->fv_rows) {
				code = anc_error_set(err, ANC_EINVAL,
				    "%s:%llu: more lines than vectors (changed "
				    "during the load?)", st->path,
				    (unsigned long long)lineno);
				break;
			}
			r->vec = st->fv + (size_t)row * st->dim;
		} else {
			r->vec = l->vec;
		}
		r->dim = st->dim;
		row++;
		if ((code = anc_anchor_compute(st->collection, l->source,
		         l->chunk, st->anchors[st->nbatch]))) {
			anc_error_set(err, code, "%s:%llu: out of memory",
			    st->path, (unsigned long long)lineno);
			st->nbatch++;
			break;
		}
		st->lineno[st->nbatch] = lineno;
		st->nbatch++;
		st->batch_bytes += (size_t)st->dim * 4 + strlen(l->source) +
		    strlen(l->chunk) + (l->text ? strlen(l->text) : 0) + 64;
		if ((st->nbatch == st->batch_max ||
		     st->batch_bytes >= LOAD_BATCH_BYTES) &&
		    (code = load_flush(st, err)))
			break;
	}
	if (code == ANC_OK)
		code = load_flush(st, err);
	load_batch_clear(st);
	free(buf);
	return code;
}

static const char load_usage[] =
    "usage: anchorage load COLLECTION [--contract ID|NAME@REV] FILE.jsonl\n"
    "                      [--vectors FILE.fvecs] [--source-field F]\n"
    "                      [--chunk-field F] [--text-field F]\n"
    "                      [--vector-field F] [--batch N]\n\n"
    "Upsert one record per JSONL line. Fields (defaults): source "
    "(\"source\"), chunk\n(\"chunk\"; missing means \"\" unless "
    "--chunk-field is given), text (\"text\"),\nvector (\"vector\", an "
    "array of numbers). Sources and chunks may be strings or\nintegers. "
    "With --vectors, row i of the .fvecs file is the vector of line i.\n"
    "--contract defaults to the collection's default contract; --batch "
    "defaults to 256.\n\n"
    "The whole file is checked first (JSON, fields, vector lengths, two "
    "lines with\nthe same source and chunk); nothing is sent if any line "
    "is bad. A load stopped\nby a server error can be re-run: upserts are "
    "idempotent.\n";

int
anc_cli_cmd_load(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *contract = NULL, *vectors = NULL, *batch = NULL;
	const char *sf = NULL, *cf = NULL, *tf = NULL, *vf = NULL;
	int want_help = 0;
	const anc_cli_optspec specs[] = {
		{"--contract", &contract, NULL}, {"--vectors", &vectors, NULL},
		{"--source-field", &sf, NULL}, {"--chunk-field", &cf, NULL},
		{"--text-field", &tf, NULL}, {"--vector-field", &vf, NULL},
		{"--batch", &batch, NULL}, {"--help", NULL, &want_help},
		{"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[2];
	load_state st;
	anc_limits lim;
	FILE *f = NULL;
	struct timespec t0, t1;
	uint64_t nrec = 0;
	uint32_t fvdim = 0;
	double secs;
	int npos, code;

	memset(&st, 0, sizeof(st));
	st.ctx = ctx;
	anc_limits_default(&lim);
	anc_cli_fields_default(&st.fields);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((code = anc_cli_args_parse(ctx, argc, argv, specs, pos, 2, &npos,
	         err)))
		goto leave;
	if (want_help) {
		fputs(load_usage, stdout);
		goto leave;
	}
	if (npos < 2) {
		code = anc_cli_usage(ctx, err, "load: missing %s (see anchorage "
		    "load --help)", npos ? "FILE.jsonl" : "COLLECTION and "
		    "FILE.jsonl");
		goto leave;
	}
	st.collection = pos[0];
	st.path = pos[1];
	st.batch_max = 256;
	if (batch != NULL && (code = anc_cli_u32_parse(batch, "--batch", 1,
	                          lim.max_records, &st.batch_max, err))) {
		ctx->usage_error = 1;
		goto leave;
	}
	if (sf) st.fields.source = sf;
	if (cf) st.fields.chunk = cf, st.fields.chunk_explicit = 1;
	if (tf) st.fields.text = tf, st.fields.text_explicit = 1;
	if (vf) st.fields.vector = vf;
	if (vectors != NULL && vf != NULL) {
		code = anc_cli_usage(ctx, err, "load: --vectors and "
		    "--vector-field exclude each other");
		goto leave;
	}
	st.fields.want_vector = vectors == NULL;
	st.fields.max_text = lim.max_text;
	if ((code = anc_collection_name_check(st.collection, err)))
		goto leave;
	if ((f = fopen(st.path, "r")) == NULL) {
		code = anc_error_set(err, ANC_EIO, "%s: cannot open: %s",
		    st.path, strerror(errno));
		goto leave;
	}
	if ((code = anc_cli_connect(ctx, err)) ||
	    (code = load_find_contract(&st, contract, err)))
		goto leave;
	if (vectors != NULL) {
		if ((code = anc_fvecs_read(vectors, 0, UINT32_MAX, &st.fv,
		         &st.fv_rows, &fvdim, err)))
			goto leave;
		if (fvdim != st.dim) {
			code = anc_error_set(err, ANC_EDIM,
			    "%s: vectors have d=%u, contract %s has dim %u",
			    vectors, fvdim, st.contract, st.dim);
			goto leave;
		}
	}
	if ((code = load_check(&st, f, &nrec, err)))
		goto leave;
	if (vectors != NULL && nrec != st.fv_rows) {
		code = anc_error_set(err, ANC_EINVAL,
		    "%s has %llu records but %s has %u vectors: expected one "
		    "vector per line", st.path, (unsigned long long)nrec,
		    vectors, st.fv_rows);
		goto leave;
	}
	st.lines = calloc(st.batch_max, sizeof(*st.lines));
	st.recs = calloc(st.batch_max, sizeof(*st.recs));
	st.lineno = calloc(st.batch_max, sizeof(*st.lineno));
	st.anchors = calloc(st.batch_max, sizeof(*st.anchors));
	if (!st.lines || !st.recs || !st.lineno || !st.anchors) {
		code = anc_error_set(err, ANC_ENOMEM,
		    "cannot allocate a batch of %u records", st.batch_max);
		goto leave;
	}
	rewind(f);
	if ((code = load_send(&st, f, err)))
		goto leave;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (ctx->json)
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:I,s:I,s:I,s:I,s:f,s:s}", "loaded", (json_int_t)st.loaded,
		    "created", (json_int_t)st.created, "updated",
		    (json_int_t)st.updated, "unchanged",
		    (json_int_t)st.unchanged, "seconds", secs, "contract",
		    st.contract), err);
	else
		printf("loaded %llu records (%llu created, %llu updated, %llu "
		    "unchanged) in %.2f s\n", (unsigned long long)st.loaded,
		    (unsigned long long)st.created,
		    (unsigned long long)st.updated,
		    (unsigned long long)st.unchanged, secs);
leave:
	if (f != NULL)
		(void)fclose(f); /* read-only */
	free(st.fv);
	free(st.lines);
	free(st.recs);
	free(st.lineno);
	free(st.anchors);
	return code;
}
