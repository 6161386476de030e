/*
 * cli_ground.c — `anchorage verify` (grounding check of generated claims)
 * and `anchorage receipt show|replay` (retrieval receipts), issue 8.
 *
 * Design note: the claims file is JSONL, one claim per line,
 *   {"vector": [floats], "cited": ["anchor", ...], "revisions"?: [n, ...]}
 * or, with --vectors FILE.fvecs, {"row": i, "cited": [...]} to take the
 * claim's vector from row i (0-based) of that file. Claims go to the
 * server in requests of at most 256 claims; claim numbers in the output
 * are line numbers of the file (1-based), so a report lines up with its
 * input. The verdict is data, not a failure: exit status 0 whatever the
 * verdicts (scripts read them from --json). A receipt that fails its HMAC
 * is an error (TAMPERED, exit 1), never printed as if it were valid.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_ground.h"
#include "cli_vecfile.h"

#define CLAIMS_PER_REQUEST ANC_VERIFY_CLAIMS_MAX

static const char verify_usage[] =
    "usage: anchorage verify COLLECTION [--contract ID|NAME@REV] --claims "
    "FILE.jsonl\n"
    "                        [--vectors FILE.fvecs|FILE.npy] [--receipt]\n\n"
    "Check generated claims against the passages they cite. FILE.jsonl "
    "holds one\nclaim per line: {\"vector\":[...], \"cited\":[\"ANCHOR\","
    "...], \"revisions\":[N,...]}\n(revisions optional, one per cited "
    "anchor), or {\"row\":I, \"cited\":[...]} with\n--vectors: the claim's "
    "vector is row I (0-based) of that file (gzip or not).\n\n"
    "Per claim: the exact score against each cited anchor's current "
    "vector, whether\nit is live and at the cited revision, the best "
    "passage of the whole collection,\nand a verdict: supported | "
    "weakly_supported | unsupported | miscited (a better\nuncited passage "
    "clearly outscores the cited ones; the suggested anchor is\nprinted). "
    "The thresholds come from the contract's calibration (see\n`anchorage "
    "contract show`). --receipt stores a tamper-evident receipt of the\n"
    "check on the server and prints its ID. Exit status 0 whatever the "
    "verdicts.\n";

static const char receipt_usage[] =
    "usage: anchorage receipt show ID [--text]\n"
    "       anchorage receipt replay ID\n\n"
    "show: print the receipt stored for a query or verify request made "
    "with\n--receipt: request digest, contract, index generation and "
    "sequence,\nparameters, the returned anchors with revisions and scores, "
    "and the time.\nThe server re-checks its HMAC-SHA256 first; a receipt "
    "altered after it was\nwritten is reported as TAMPERED (exit 1). --text "
    "adds the passage text of\neach returned revision, kept by the server "
    "for receipts (README, bounded\nretention).\n\n"
    "replay: re-run the receipt's request against the current store and "
    "list what\nchanged: anchors gone from the answer, deleted, revisions "
    "bumped, new better\nhits, and (verify receipts) changed verdicts.\n";

/* ---- shared JSON and text pieces ------------------------------------------------ */

static void
time_fmt(uint64_t secs, char *buf, size_t len)
{
	time_t t = (time_t)secs;
	struct tm tm;
	if (secs == 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "never");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
jnum(float v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *
anc_cli_prov_json(const anc_provenance *p)
{
	json_t *o = json_pack("{s:o,s:s,s:b,s:I,s:I,s:I,s:I,s:I}",
	    "contract", anc_cli_json_str(p->contract),
	    "index", anc_index_kind_name(p->index), "exact", p->exact,
	    "ef_search", (json_int_t)p->ef_search, "nprobe",
	    (json_int_t)p->nprobe, "rerank", (json_int_t)p->rerank, "seq",
	    (json_int_t)p->seq, "generation", (json_int_t)p->generation);
	if (o != NULL && p->receipt[0] != '\0')
		json_object_set_new(o, "receipt", json_string(p->receipt));
	return o;
}

json_t *
anc_cli_calib_json(const anc_calibration *c)
{
	char ts[32];
	if (c->computed_at == 0)
		return json_null();
	time_fmt(c->computed_at, ts, sizeof ts);
	return json_pack("{s:I,s:s,s:I,s:I,s:I,s:s,s:o,s:o,s:o,s:o,s:o,s:o,"
	                 "s:o}",
	    "computed_at", (json_int_t)c->computed_at, "time", ts,
	    "vectors", (json_int_t)c->vectors, "sample", (json_int_t)c->sample,
	    "pairs", (json_int_t)c->pairs,
	    "metric", anc_metric_name((anc_metric)c->metric),
	    "random_p50", jnum(c->random_p50), "random_p99",
	    jnum(c->random_p99), "nn_p05", jnum(c->nn_p05), "nn_p50",
	    jnum(c->nn_p50), "weak", jnum(c->weak), "strong", jnum(c->strong),
	    "margin", jnum(c->margin));
}

void
anc_cli_calib_line(const anc_calibration *c, char *buf, size_t len)
{
	char ts[32];
	const char *cmp = c->metric == ANC_METRIC_L2 ? "<=" : ">=";
	if (c->computed_at == 0) {
		snprintf(buf, len, "not calibrated yet");
		return;
	}
	time_fmt(c->computed_at, ts, sizeof ts);
	snprintf(buf, len, "weak %s %.4f, strong %s %.4f, miscited margin "
	         "%.4f (%s; %u of %llu vectors sampled, computed %s)",
	         cmp, (double)c->weak, cmp, (double)c->strong,
	         (double)c->margin, anc_metric_name((anc_metric)c->metric),
	         c->sample, (unsigned long long)c->vectors, ts);
}

static void
prov_print(FILE *fp, const anc_provenance *p)
{
	fprintf(fp, "contract %s, %s, %s, seq %llu, generation %llu%s%s\n",
	        p->contract, anc_index_kind_name(p->index),
	        p->exact ? "exact" : "approximate",
	        (unsigned long long)p->seq, (unsigned long long)p->generation,
	        p->receipt[0] ? ", receipt " : "", p->receipt);
}

/* ---- verify ---------------------------------------------------------------------- */

/* What one claims-file line becomes. */
typedef struct claim_buf {
	anc_claim *claims;
	float *vecs;              /* n * dim */
	anc_anchor_str **cited;   /* per claim */
	uint64_t **revs;          /* per claim, or NULL */
	uint64_t *lineno;
	uint32_t n, cap, dim;
} claim_buf;

static void
claim_buf_free(claim_buf *b)
{
	for (uint32_t i = 0; i < b->n; i++) {
		free(b->cited[i]);
		free(b->revs[i]);
	}
	free(b->claims);
	free(b->vecs);
	free(b->cited);
	free(b->revs);
	free(b->lineno);
	memset(b, 0, sizeof *b);
}

static int
claim_buf_grow(claim_buf *b, anc_error *err)
{
	uint32_t nc = b->cap ? 2 * b->cap : 64;
	void *p;
	if (b->n < b->cap)
		return ANC_OK;
	if ((p = realloc(b->claims, nc * sizeof *b->claims)) == NULL)
		goto oom;
	b->claims = p;
	if ((p = realloc(b->cited, nc * sizeof *b->cited)) == NULL)
		goto oom;
	b->cited = p;
	if ((p = realloc(b->revs, nc * sizeof *b->revs)) == NULL)
		goto oom;
	b->revs = p;
	if ((p = realloc(b->lineno, nc * sizeof *b->lineno)) == NULL)
		goto oom;
	b->lineno = p;
	if (b->dim > 0) {
		if ((p = realloc(b->vecs, (size_t)nc * b->dim * sizeof(float))) ==
		    NULL)
			goto oom;
		b->vecs = p;
	}
	b->cap = nc;
	return ANC_OK;
oom:
	return anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
}

/* An error from the server about "claims[i]" of a request that started at
 * claim done: name the claims file's line too. */
static void
claims_error_line(anc_error *err, const claim_buf *b, uint32_t done,
                  uint32_t n, const char *path)
{
	const char *p = strstr(err->msg, "claims[");
	unsigned long i;
	char *end;

	if (p == NULL)
		return;
	i = strtoul(p + 7, &end, 10);
	if (end == p + 7 || *end != ']' || i >= n)
		return;
	anc_error_wrap(err, "%s:%llu", path,
	               (unsigned long long)b->lineno[done + i]);
}

/* Parse one line into claim b->n. rows/nrows: the --vectors file. */
static int
claim_parse(const char *line, size_t len, const char *where,
            const float *rows, uint32_t nrows, uint32_t rdim, claim_buf *b,
            anc_error *err)
{
	json_error_t je;
	json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	json_t *vec, *row, *cited, *revs;
	uint32_t dim, i = b->n;
	float *dst;
	int rv = ANC_OK;

	b->cited[i] = NULL;
	b->revs[i] = NULL;
	if (o == NULL || !json_is_object(o)) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "%s: expected a JSON object%s%s", where,
		                   o == NULL ? ": " : "", o == NULL ? je.text : "");
		goto leave;
	}
	{
		/* a misspelt key ("cite") would silently make a claim that
		 * cites nothing: refused, as in contract files */
		static const char *const known[] = {"vector", "row", "cited",
		                                    "revisions", NULL};
		const char *key = anc_cli_json_unknown_key(o, known);
		if (key != NULL) {
			rv = anc_error_set(err, ANC_EINVAL,
			    "%s: unknown key '%.64s', expected vector or row, "
			    "cited, revisions", where, key);
			goto leave;
		}
	}
	vec = json_object_get(o, "vector");
	row = json_object_get(o, "row");
	cited = json_object_get(o, "cited");
	revs = json_object_get(o, "revisions");
	if (cited == NULL) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "%s: cited: required, expected an array of "
		                   "anchors ([] for a claim that cites nothing)",
		                   where);
		goto leave;
	}
	if ((vec == NULL) == (row == NULL)) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "%s: give exactly one of \"vector\" and \"row\"",
		                   where);
		goto leave;
	}
	if (row != NULL && rows == NULL) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "%s: \"row\" needs --vectors FILE (.fvecs or "
		                   ".npy)", where);
		goto leave;
	}
	if (vec != NULL) {
		if (!json_is_array(vec) || json_array_size(vec) == 0 ||
		    json_array_size(vec) > ANC_DIM_MAX) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "%s: vector: expected an array of 1..%d "
			                   "numbers", where, ANC_DIM_MAX);
			goto leave;
		}
		dim = (uint32_t)json_array_size(vec);
	} else {
		json_int_t r = json_is_integer(row) ? json_integer_value(row) : -1;
		if (r < 0 || (uint64_t)r >= nrows) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "%s: row: expected an integer 0..%u (rows of "
			                   "--vectors)", where, nrows ? nrows - 1 : 0);
			goto leave;
		}
		dim = rdim;
	}
	if (b->dim == 0) {
		b->dim = dim;
		if ((b->vecs = malloc((size_t)b->cap * dim * sizeof(float))) ==
		    NULL) {
			rv = anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
			goto leave;
		}
	} else if (dim != b->dim) {
		rv = anc_error_set(err, ANC_EDIM,
		                   "%s: vector has %u values, the first claim %u",
		                   where, dim, b->dim);
		goto leave;
	}
	dst = b->vecs + (size_t)i * dim;
	if (vec != NULL) {
		for (uint32_t k = 0; k < dim; k++) {
			json_t *x = json_array_get(vec, k);
			if (!json_is_number(x)) {
				rv = anc_error_set(err, ANC_EINVAL,
				                   "%s: vector[%u]: expected a number",
				                   where, k);
				goto leave;
			}
			dst[k] = (float)json_number_value(x);
		}
	} else {
		memcpy(dst, rows + (size_t)json_integer_value(row) * rdim,
		       (size_t)dim * sizeof(float));
	}
	if (cited != NULL && (!json_is_array(cited) ||
	                      json_array_size(cited) > ANC_VERIFY_CITED_MAX)) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "%s: cited: expected an array of at most %d "
		                   "anchors", where, ANC_VERIFY_CITED_MAX);
		goto leave;
	}
	b->claims[i].ncited = cited != NULL ? (uint32_t)json_array_size(cited)
	                                    : 0;
	if (revs != NULL && (!json_is_array(revs) ||
	                     json_array_size(revs) != b->claims[i].ncited)) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "%s: revisions: expected one integer per cited "
		                   "anchor (%u)", where, b->claims[i].ncited);
		goto leave;
	}
	if ((b->cited[i] = calloc(b->claims[i].ncited + 1,
	                          sizeof(anc_anchor_str))) == NULL ||
	    (revs != NULL && (b->revs[i] = calloc(b->claims[i].ncited + 1,
	                                          sizeof(uint64_t))) == NULL)) {
		rv = anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
		goto leave;
	}
	for (uint32_t k = 0; k < b->claims[i].ncited; k++) {
		const char *s = json_string_value(json_array_get(cited, k));
		uint8_t raw[ANC_ANCHOR_RAW];
		if (s == NULL || strlen(s) != ANC_ANCHOR_LEN ||
		    anc_anchor_parse(s, raw, NULL) != ANC_OK) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "%s: cited[%u]: expected an anchor (%d "
			                   "base32 characters)", where, k,
			                   ANC_ANCHOR_LEN);
			goto leave;
		}
		memcpy(b->cited[i][k], s, ANC_ANCHOR_LEN + 1);
		if (revs != NULL) {
			json_t *r = json_array_get(revs, k);
			if (!json_is_integer(r) || json_integer_value(r) < 0) {
				rv = anc_error_set(err, ANC_EINVAL,
				                   "%s: revisions[%u]: expected a "
				                   "non-negative integer", where, k);
				goto leave;
			}
			b->revs[i][k] = (uint64_t)json_integer_value(r);
		}
	}
	b->claims[i].dim = dim;
	b->claims[i].cited = (const anc_anchor_str *)b->cited[i];
	b->claims[i].cited_rev = b->revs[i];
	b->n++;
leave:
	if (rv != ANC_OK) {
		free(b->cited[i]);
		free(b->revs[i]);
	}
	json_decref(o);
	return rv;
}

static int
claims_read(const char *path, const char *vpath, claim_buf *b,
            anc_error *err)
{
	anc_cli_lines *lr = NULL;
	float *rows = NULL;
	uint32_t nrows = 0, rdim = 0;
	const char *line;
	size_t len;
	char where[1200];
	int rv;

	if (vpath != NULL &&
	    (rv = anc_cli_vectors_read(vpath, 0, UINT32_MAX, &rows, &nrows, &rdim,
	                         err)) != ANC_OK)
		return rv;
	if ((rv = anc_cli_lines_open(path, &lr, err)) != ANC_OK)
		goto leave;
	for (;;) {
		if ((rv = anc_cli_lines_next(lr, &line, &len, err)) != ANC_OK ||
		    line == NULL)
			break;
		if (len == 0 || strspn(line, " \t") == len)
			continue;
		snprintf(where, sizeof where, "%s:%llu", path,
		         (unsigned long long)anc_cli_lines_lineno(lr));
		if ((rv = claim_buf_grow(b, err)) != ANC_OK ||
		    (rv = claim_parse(line, len, where, rows, nrows, rdim, b,
		                      err)) != ANC_OK)
			break;
		b->lineno[b->n - 1] = anc_cli_lines_lineno(lr);
	}
	if (rv == ANC_OK && b->n == 0)
		rv = anc_error_set(err, ANC_EINVAL, "%s: no claims", path);
	/* vectors may have moved while growing: point the claims at them */
	for (uint32_t i = 0; rv == ANC_OK && i < b->n; i++)
		b->claims[i].vec = b->vecs + (size_t)i * b->dim;
leave:
	anc_cli_lines_close(lr);
	free(rows);
	return rv;
}

static json_t *
claim_json(uint64_t lineno, const anc_claim_result *c)
{
	json_t *o = json_object(), *arr = json_array();
	if (o == NULL || arr == NULL) {
		json_decref(o);
		json_decref(arr);
		return NULL;
	}
	json_object_set_new(o, "claim", json_integer((json_int_t)lineno));
	json_object_set_new(o, "verdict",
	                    json_string(anc_verdict_name(c->verdict)));
	for (uint32_t j = 0; j < c->ncited; j++) {
		const anc_cited *x = &c->cited[j];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,s:b,s:o}",
		    "anchor", x->anchor, "status",
		    anc_anchor_status_name(x->status), "revision",
		    (json_int_t)x->revision, "cited_revision",
		    (json_int_t)x->cited_revision, "at_revision", x->at_revision,
		    "score", x->scored ? jnum(x->score) : json_null()));
	}
	json_object_set_new(o, "cited", arr);
	json_object_set_new(o, "cited_score", c->has_cited_score
	                                          ? jnum(c->cited_score)
	                                          : json_null());
	json_object_set_new(o, "best", c->has_best
	    ? json_pack("{s:s,s:I,s:o,s:b}", "anchor", c->best, "revision",
	                (json_int_t)c->best_revision, "score",
	                jnum(c->best_score), "cited", c->best_cited)
	    : json_null());
	json_object_set_new(o, "suggested", c->suggested[0]
	                                        ? json_string(c->suggested)
	                                        : json_null());
	return o;
}

static void
claim_print(FILE *fp, uint64_t lineno, const anc_claim_result *c)
{
	fprintf(fp, "claim %llu: %s", (unsigned long long)lineno,
	        anc_verdict_name(c->verdict));
	if (c->has_cited_score)
		fprintf(fp, "  (best cited %.4f)", (double)c->cited_score);
	if (c->suggested[0])
		fprintf(fp, "  suggested %s", c->suggested);
	fputc('\n', fp);
	for (uint32_t j = 0; j < c->ncited; j++) {
		const anc_cited *x = &c->cited[j];
		char sc[32] = "         -";
		if (x->scored)
			snprintf(sc, sizeof sc, "%10.4f", (double)x->score);
		if (x->status != ANC_ANCHOR_LIVE &&
		    x->status != ANC_ANCHOR_DELETED) {
			/* no such passage: no revision to show */
			fprintf(fp, "  cited %s  %s  %s\n", x->anchor, sc,
			        anc_anchor_status_name(x->status));
			continue;
		}
		fprintf(fp, "  cited %s  %s  %-7s rev %llu%s\n", x->anchor, sc,
		        anc_anchor_status_name(x->status),
		        (unsigned long long)x->revision,
		        x->status == ANC_ANCHOR_LIVE && !x->at_revision
		            ? "  (not the cited revision)" : "");
	}
	if (c->has_best)
		fprintf(fp, "  best  %s  %10.4f  rev %llu  %s\n", c->best,
		        (double)c->best_score,
		        (unsigned long long)c->best_revision,
		        c->best_cited ? "cited" : "not cited");
}

int
anc_cli_cmd_verify(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *contract = NULL, *claims = NULL, *vectors = NULL;
	int want_help = 0, receipt = 0;
	const anc_cli_optspec specs[] = {
	    {"--contract", &contract, NULL}, {"--claims", &claims, NULL},
	    {"--vectors", &vectors, NULL}, {"--receipt", NULL, &receipt},
	    {"--help", NULL, &want_help}, {"-h", NULL, &want_help},
	    {NULL, NULL, NULL}};
	const char *pos[1];
	claim_buf b;
	anc_resp *resp = NULL;
	uint32_t counts[ANC_VERDICT_LAST + 1] = {0};
	char cal[256];
	int npos, helped, code;

	memset(&b, 0, sizeof b);
	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 1, &npos,
	                              verify_usage, &helped, err)) ||
	    helped)
		goto leave;
	if (npos < 1 || claims == NULL) {
		code = anc_cli_missing(ctx, "verify",
		                       npos < 1 ? "COLLECTION" : "--claims FILE",
		                       err);
		goto leave;
	}
	if ((code = anc_collection_name_check(pos[0], err)) ||
	    (code = claims_read(claims, vectors, &b, err)) ||
	    (code = anc_cli_connect(ctx, err)))
		goto leave;
	for (uint32_t done = 0; done < b.n;) {
		uint32_t n = b.n - done < CLAIMS_PER_REQUEST ? b.n - done
		                                             : CLAIMS_PER_REQUEST;
		anc_req req;
		memset(&req, 0, sizeof req);
		req.op = ANC_OP_VERIFY;
		req.u.verify.collection = pos[0];
		req.u.verify.contract = contract != NULL ? contract : "";
		req.u.verify.claims = b.claims + done;
		req.u.verify.n = n;
		req.u.verify.receipt = receipt;
		if ((code = anc_client_call(ctx->client, &req, &resp, err))) {
			claims_error_line(err, &b, done, n, claims);
			goto leave;
		}
		const anc_verify_result *v = &resp->u.verify;
		if (v->n != n) {
			code = anc_error_set(err, ANC_EMALFORMED,
			                     "verify reply: %u claims, expected %u",
			                     v->n, n);
			goto leave;
		}
		for (uint32_t i = 0; i < n; i++) {
			counts[v->claims[i].verdict]++;
			if (ctx->json) {
				if ((code = anc_cli_json_emit(stdout,
				         claim_json(b.lineno[done + i],
				                    &v->claims[i]), err)))
					goto leave;
			} else {
				claim_print(stdout, b.lineno[done + i],
				            &v->claims[i]);
			}
		}
		if (ctx->json) {
			code = anc_cli_json_emit(stdout, json_pack(
			    "{s:o,s:o}", "thresholds", anc_cli_calib_json(&v->calib),
			    "provenance", anc_cli_prov_json(&v->prov)), err);
			if (code)
				goto leave;
		} else {
			anc_cli_calib_line(&v->calib, cal, sizeof cal);
			printf("thresholds: %s\nprovenance: ", cal);
			prov_print(stdout, &v->prov);
		}
		/* A file of more claims than one request holds gets one
		 * receipt per request, whose claims count from 1: say which
		 * lines each one covers. */
		if (v->prov.receipt[0] && (done > 0 || n < b.n) && !ctx->json)
			printf("receipt %s covers lines %llu-%llu of %s (its "
			       "claims 1-%u)\n", v->prov.receipt,
			       (unsigned long long)b.lineno[done],
			       (unsigned long long)b.lineno[done + n - 1], claims,
			       n);
		done += n;
		anc_resp_free(resp);
		resp = NULL;
	}
	if (!ctx->json)
		printf("%u claims: %u supported, %u weakly_supported, %u "
		       "unsupported, %u miscited\n", b.n,
		       counts[ANC_VERDICT_SUPPORTED], counts[ANC_VERDICT_WEAK],
		       counts[ANC_VERDICT_UNSUPPORTED],
		       counts[ANC_VERDICT_MISCITED]);
leave:
	anc_resp_free(resp);
	claim_buf_free(&b);
	return code;
}

/* ---- receipt ---------------------------------------------------------------------- */

static const char *
kind_name(int k)
{
	return k == ANC_RECEIPT_VERIFY ? "verify" : "query";
}

static int
receipt_show(anc_cli_ctx *ctx, const char *id, int with_text,
             anc_error *err)
{
	anc_req req;
	anc_resp *resp = NULL;
	char ts[40], line[128];
	int code;

	memset(&req, 0, sizeof req);
	req.op = ANC_OP_RECEIPT_GET;
	snprintf(req.u.receipt.id, sizeof req.u.receipt.id, "%s", id);
	req.u.receipt.with_text = with_text;
	if ((code = anc_client_call(ctx->client, &req, &resp, err)))
		return code;
	const anc_receipt *r = &resp->u.receipt;
	time_fmt(r->time_us / 1000000u, ts, sizeof ts);
	if (ctx->json) {
		json_t *lists = json_array();
		for (uint32_t i = 0; lists != NULL && i < r->nq; i++) {
			json_t *hs = json_array();
			for (uint32_t j = 0; hs != NULL && j < r->lists[i].nhits;
			     j++) {
				const anc_receipt_hit *h = &r->lists[i].hits[j];
				json_t *ho = json_pack("{s:s,s:I,s:o}", "anchor",
				    h->anchor, "revision", (json_int_t)h->revision,
				    "score", jnum(h->score));
				if (ho != NULL && h->text != NULL)
					json_object_set_new(ho, "text",
					    anc_cli_json_str(h->text));
				json_array_append_new(hs, ho);
			}
			json_array_append_new(lists, json_pack("{s:o,s:o}",
			    "verdict", r->lists[i].verdict >= 0
			        ? json_string(anc_verdict_name(r->lists[i].verdict))
			        : json_null(),
			    "hits", hs));
		}
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:s,s:s,s:b,s:I,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o,s:o}",
		    "id", r->id, "kind", kind_name(r->kind), "authentic",
		    r->authentic, "time_us", (json_int_t)r->time_us, "time", ts,
		    "collection", r->collection, "digest", r->digest,
		    "k", (json_int_t)r->k, "nq", (json_int_t)r->nq, "dim",
		    (json_int_t)r->dim, "record_bytes",
		    (json_int_t)r->record_bytes,
		    "provenance", anc_cli_prov_json(&r->prov), "lists", lists),
		    err);
	} else {
		printf("receipt %s: %s, HMAC-SHA256 verified (%u bytes)\n",
		       r->id, kind_name(r->kind), r->record_bytes);
		printf("  time        %s (%llu us)\n", ts,
		       (unsigned long long)r->time_us);
		printf("  collection  %s\n", r->collection);
		printf("  request     sha256 %s\n", r->digest);
		printf("  answered by ");
		prov_print(stdout, &r->prov);
		if (r->kind == ANC_RECEIPT_QUERY)
			printf("  parameters  k %u, %u vector%s of %u floats, "
			       "text %s\n", r->k, r->nq, r->nq == 1 ? "" : "s",
			       r->dim, r->with_text ? "yes" : "no");
		for (uint32_t i = 0; i < r->nq; i++) {
			const anc_receipt_list *l = &r->lists[i];
			/* claims count from 1 as `verify` prints them,
			 * queries from 0 as the request's vectors */
			printf("  %s %u:%s%s\n",
			       r->kind == ANC_RECEIPT_VERIFY ? "claim" : "query",
			       r->kind == ANC_RECEIPT_VERIFY ? i + 1 : i,
			       l->verdict >= 0 ? " " : "",
			       l->verdict >= 0 ? anc_verdict_name(l->verdict) : "");
			for (uint32_t j = 0; j < l->nhits; j++) {
				const anc_receipt_hit *h = &l->hits[j];
				char sc[32] = "         -"; /* no score: not live */
				if (!isnan(h->score))
					snprintf(sc, sizeof sc, "%10.4f",
					         (double)h->score);
				printf("    %3u  %s  %s  rev %llu\n", j + 1, sc,
				       h->anchor, (unsigned long long)h->revision);
				if (h->text != NULL) {
					anc_cli_text_oneline(h->text, 100, line,
					                     sizeof line);
					printf("         %s\n", line);
				}
			}
		}
	}
	anc_resp_free(resp);
	return code;
}

static int
receipt_replay(anc_cli_ctx *ctx, const char *id, anc_error *err)
{
	anc_req req;
	anc_resp *resp = NULL;
	int code;

	memset(&req, 0, sizeof req);
	req.op = ANC_OP_RECEIPT_REPLAY;
	snprintf(req.u.receipt.id, sizeof req.u.receipt.id, "%s", id);
	if ((code = anc_client_call(ctx->client, &req, &resp, err)))
		return code;
	const anc_replay_result *r = &resp->u.replay;
	if (ctx->json) {
		json_t *cs = json_array();
		for (uint32_t i = 0; cs != NULL && i < r->nchanges; i++) {
			const anc_replay_change *c = &r->changes[i];
			json_t *o = json_pack("{s:I,s:s,s:I,s:I,s:o,s:o}", "list",
			    (json_int_t)c->list, "kind",
			    anc_change_kind_name(c->kind), "old_revision",
			    (json_int_t)c->old_revision, "new_revision",
			    (json_int_t)c->new_revision, "old_score",
			    jnum(c->old_score), "new_score", jnum(c->new_score));
			if (o != NULL && c->anchor[0])
				json_object_set_new(o, "anchor",
				                    json_string(c->anchor));
			if (o != NULL && c->kind == ANC_CHANGE_VERDICT) {
				json_object_set_new(o, "old_verdict", json_string(
				    anc_verdict_name((int)c->old_revision)));
				json_object_set_new(o, "new_verdict", json_string(
				    anc_verdict_name((int)c->new_revision)));
			}
			json_array_append_new(cs, o);
		}
		code = anc_cli_json_emit(stdout, json_pack(
		    "{s:s,s:s,s:b,s:o,s:o,s:o}", "receipt", r->id, "kind",
		    kind_name(r->kind), "unchanged", r->unchanged, "then",
		    anc_cli_prov_json(&r->then), "now", anc_cli_prov_json(&r->now),
		    "changes", cs), err);
	} else {
		printf("replay of receipt %s (%s): %s\n", r->id,
		       kind_name(r->kind),
		       r->unchanged ? "unchanged"
		                    : "changed since the receipt was made");
		printf("  then: ");
		prov_print(stdout, &r->then);
		printf("  now:  ");
		prov_print(stdout, &r->now);
		for (uint32_t i = 0; i < r->nchanges; i++) {
			const anc_replay_change *c = &r->changes[i];
			const char *what = r->kind == ANC_RECEIPT_VERIFY ? "claim"
			                                                  : "query";
			uint32_t no = r->kind == ANC_RECEIPT_VERIFY ? c->list + 1
			                                            : c->list;
			switch (c->kind) {
			case ANC_CHANGE_VERDICT:
				printf("  %s %u: verdict %s -> %s\n", what, no,
				       anc_verdict_name((int)c->old_revision),
				       anc_verdict_name((int)c->new_revision));
				break;
			case ANC_CHANGE_REVISED:
				printf("  %s %u: %s revised: rev %llu -> %llu\n",
				       what, no, c->anchor,
				       (unsigned long long)c->old_revision,
				       (unsigned long long)c->new_revision);
				break;
			case ANC_CHANGE_DELETED:
				printf("  %s %u: %s deleted (was rev %llu)\n", what,
				       no, c->anchor,
				       (unsigned long long)c->old_revision);
				break;
			case ANC_CHANGE_GONE:
				printf("  %s %u: %s no longer returned (score was "
				       "%.4f)\n", what, no, c->anchor,
				       (double)c->old_score);
				break;
			default:
				printf("  %s %u: %s new better hit, score %.4f, "
				       "rev %llu\n", what, no, c->anchor,
				       (double)c->new_score,
				       (unsigned long long)c->new_revision);
				break;
			}
		}
	}
	anc_resp_free(resp);
	return code;
}

int
anc_cli_cmd_receipt(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	int want_help = 0, with_text = 0, npos, helped, code;
	const anc_cli_optspec specs[] = {{"--text", NULL, &with_text},
	    {"--help", NULL, &want_help}, {"-h", NULL, &want_help},
	    {NULL, NULL, NULL}};
	const char *pos[2];

	if ((code = anc_cli_args_help(ctx, argc, argv, specs, pos, 2, &npos,
	                              receipt_usage, &helped, err)) ||
	    helped)
		return code;
	if (npos < 2 || (strcmp(pos[0], "show") != 0 &&
	                 strcmp(pos[0], "replay") != 0))
		return anc_cli_usage(ctx, err, "receipt: expected 'show ID' or "
		                     "'replay ID' (see anchorage receipt --help)");
	if (strlen(pos[1]) != ANC_RECEIPT_ID_LEN ||
	    strspn(pos[1], "0123456789abcdef") != ANC_RECEIPT_ID_LEN)
		return anc_cli_usage(ctx, err, "receipt %s: '%.40s' is not a "
		                     "receipt ID (%d lower-case hex digits)",
		                     pos[0], pos[1], ANC_RECEIPT_ID_LEN);
	if (strcmp(pos[0], "replay") == 0 && with_text)
		return anc_cli_usage(ctx, err, "receipt replay: --text applies "
		                     "to 'show' only");
	if ((code = anc_cli_connect(ctx, err)))
		return code;
	if (strcmp(pos[0], "show") == 0)
		return receipt_show(ctx, pos[1], with_text, err);
	return receipt_replay(ctx, pos[1], err);
}
