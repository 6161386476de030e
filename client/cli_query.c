/*
 * cli_query.c — `anchorage query`: search with one vector (--vector JSON)
 * or rows of a .fvecs file (--vectors, --rows A-B).
 *
 * Design note: all requested rows go to the server in as few requests as
 * the protocol allows: at most max_queries vectors per request, and at most
 * max_hits / k of them so that the answer also fits the decoder's bound on
 * hits. Queries are numbered by their row in the file (0 for --vector), so
 * the output lines up with ground-truth files.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ground.h"
#include "cli_vecfile.h"

static const char query_usage[] =
    "usage: anchorage query COLLECTION [--contract ID|NAME@REV]\n"
    "                       (--vector JSON_ARRAY | --vectors FILE "
    "[--rows A-B])\n"
    "                       [-k N] [--text] [--ef N] [--nprobe N] "
    "[--exact]\n                       [--rerank N] [--receipt] [--meta] "
    "[--pin ANCHOR]...\n\n"
    "Search the collection. FILE is .fvecs or .npy (float32), gzip-compressed "
    "or\nnot, as for `anchorage load`. --rows A-B is inclusive and 0-based (or "
    "a single\nrow A); without it every row of the file is a query. -k "
    "defaults to 10 (at\nmost the server's --max-k, 1000 by default). --text "
    "prints each hit's text (one\nline, ~100 characters); --meta its "
    "passage's metadata (JSON). With --json, one "
    "JSON object per query:\n{\"hits\":[...], \"provenance\":{...}}; the "
    "provenance names the contract's \"metric\"\n(for l2 a lower score is "
    "better).\n\n"
    "--pin ANCHOR (repeatable, at most 256): the answer includes these "
    "passages\nwhatever the search finds, in the order given, read with "
    "the hits (JSON:\n\"pinned\", as `anchorage resolve` prints them; "
    "`anchorage assemble` puts them\nfirst): the context assembler's "
    "working set.\n\n"
    "Search parameters (this request only; the provenance says what was "
    "applied):\n  --ef N      HNSW kinds: efSearch, 1..8192\n"
    "  --nprobe N  IVF kinds: inverted lists searched, 1..nlist\n"
    "  --exact     exhaustive search over the stored vectors\n"
    "  --rerank N  re-score the best N candidates exactly, 1..4096\n"
    "\nGrounding (README \"Grounding checks and receipts\"): every query's "
    "top hit\ncarries a confidence (strong|weak|none, or unknown before the "
    "contract is\ncalibrated). --receipt stores a tamper-evident receipt of "
    "each request's\nanswer on the server; its ID is printed (\"receipt\" "
    "in the JSON provenance)\nfor `anchorage receipt show|replay`.\n"
    "\nDrift (README \"Drift detection\"): a query vector that looks foreign "
    "to the\ncontract's indexed vectors is marked \"drift: foreign query\" "
    "(JSON: \"drift\"\ntrue, with \"drift_score\", its distance to the "
    "indexed vectors' centroid\nover their 99th percentile).\n";

/* A search parameter the server did not apply (the provenance shows 0 for
 * a parameter of another index kind, and for both on an exact search) is
 * said once on stderr, with the reason, so a user tuning --nprobe on an
 * HNSW contract does not read unchanged results as a tuning result. */
static void
param_warn(const anc_client_query_opts *qo, const anc_provenance *prov)
{
	const char *kind = anc_index_kind_name(prov->index);
	int hnsw = prov->index == ANC_INDEX_HNSW ||
	           prov->index == ANC_INDEX_HNSW_SQ8;
	int ivf = prov->index == ANC_INDEX_IVF_FLAT ||
	          prov->index == ANC_INDEX_IVF_PQ;
	char why[160];

	if (qo->exact)
		snprintf(why, sizeof why, "--exact searches every stored "
		         "vector");
	else if (prov->index == ANC_INDEX_FLAT)
		snprintf(why, sizeof why, "contract %s is a flat index: every "
		         "search is exact", prov->contract);
	else if (prov->exact)
		snprintf(why, sizeof why, "the %s index of contract %s is not "
		         "trained yet (searches are exact until it is)", kind,
		         prov->contract);
	else
		snprintf(why, sizeof why, "contract %s has index kind %s",
		         prov->contract, kind);
	if (qo->ef != 0 && prov->ef_search == 0)
		fprintf(stderr, "anchorage: warning: --ef %u not applied: %s%s\n",
		        qo->ef, why, hnsw ? "" : " (--ef is for hnsw kinds)");
	if (qo->nprobe != 0 && prov->nprobe == 0)
		fprintf(stderr, "anchorage: warning: --nprobe %u not applied: "
		        "%s%s\n", qo->nprobe, why,
		        ivf ? "" : " (--nprobe is for ivf kinds)");
}

int
anc_cli_cmd_query(anc_cli_ctx *ctx, int argc, char **argv, anc_error *err)
{
	const char *contract = NULL, *vector = NULL, *vectors = NULL;
	const char *rows = NULL, *kstr = NULL;
	const char *efstr = NULL, *npstr = NULL, *rrstr = NULL, *pin = NULL;
	anc_client_query_opts qo;
	anc_anchor_str *pins = NULL;
	int want_help = 0, with_text = 0, receipt = 0;
	const anc_cli_optspec specs[] = {
		{"--contract", &contract, NULL}, {"--vector", &vector, NULL},
		{"--vectors", &vectors, NULL}, {"--rows", &rows, NULL},
		{"-k", &kstr, NULL}, {"--k", &kstr, NULL},
		{"--text", NULL, &with_text}, {"--ef", &efstr, NULL},
		{"--nprobe", &npstr, NULL}, {"--rerank", &rrstr, NULL},
		{"--exact", NULL, &qo.exact}, {"--receipt", NULL, &receipt},
		{"--meta", NULL, &qo.meta}, {"--pin", &pin, NULL},
		{"--help", NULL, &want_help},
		{"-h", NULL, &want_help}, {NULL, NULL, NULL}};
	const char *pos[1];
	anc_limits lim;
	anc_resp *resp = NULL;
	float *vecs = NULL;
	uint32_t nq = 0, dim = 0, k = 10, begin = 0, end = UINT32_MAX;
	uint32_t done, n, per, i;
	anc_metric metric = ANC_METRIC_L2;
	int npos, code, have_metric = 0;

	memset(&qo, 0, sizeof qo);
	anc_limits_default(&lim);
	if ((code = anc_cli_args_parse(ctx, argc, argv, specs, pos, 1, &npos,
	         err)))
		goto leave;
	/* Every --pin, in order. (--help wins.) */
	if (pin != NULL && !want_help) {
		const char **v = calloc((size_t)argc, sizeof *v);
		uint32_t nv;
		if (v == NULL || (pins = calloc((size_t)argc, sizeof *pins)) ==
		                     NULL) {
			free(v);
			code = anc_error_set(err, ANC_ENOMEM, "out of memory");
			goto leave;
		}
		nv = anc_cli_args_all(argc, argv, specs, "--pin", v);
		for (uint32_t j = 0; j < nv; j++) {
			uint8_t raw[ANC_ANCHOR_RAW];
			if (qo.npins == ANC_QUERY_PINS_MAX) {
				free(v);
				code = anc_cli_usage(ctx, err, "query: more than "
				    "%d --pin", ANC_QUERY_PINS_MAX);
				goto leave;
			}
			if ((code = anc_anchor_parse(v[j], raw, err))) {
				free(v);
				anc_error_wrap(err, "--pin");
				ctx->usage_error = 1;
				goto leave;
			}
			anc_anchor_format(raw, pins[qo.npins++]);
		}
		free(v);
		qo.pins = pins;
	}
	if (want_help) {
		fputs(query_usage, stdout);
		goto leave;
	}
	if (npos < 1) {
		code = anc_cli_usage(ctx, err, "query: missing COLLECTION (see "
		    "anchorage query --help)");
		goto leave;
	}
	if ((vector == NULL) == (vectors == NULL)) {
		code = anc_cli_usage(ctx, err, "query: give exactly one of "
		    "--vector JSON_ARRAY and --vectors FILE");
		goto leave;
	}
	if (rows != NULL && vectors == NULL) {
		code = anc_cli_usage(ctx, err, "query: --rows needs --vectors");
		goto leave;
	}
	if ((kstr != NULL &&
	     (code = anc_cli_u32_parse(kstr, "-k", 1, ANC_MAX_K_CEILING, &k,
	         err))) ||
	    (rows != NULL &&
	     (code = anc_cli_rows_parse(rows, &begin, &end, err))) ||
	    (efstr != NULL && (code = anc_cli_u32_parse(efstr, "--ef", 1,
	         ANC_EF_MAX, &qo.ef, err))) ||
	    (npstr != NULL && (code = anc_cli_u32_parse(npstr, "--nprobe", 1,
	         ANC_NLIST_MAX, &qo.nprobe, err))) ||
	    (rrstr != NULL && (code = anc_cli_u32_parse(rrstr, "--rerank", 1,
	         ANC_RERANK_MAX, &qo.rerank, err)))) {
		ctx->usage_error = 1;
		goto leave;
	}
	if ((code = anc_collection_name_check(pos[0], err))) {
		ctx->usage_error = 1;
		goto leave;
	}
	if (vector != NULL) {
		/* a malformed argument: a usage error, as --batch abc */
		if ((code = anc_cli_vector_parse(vector, "--vector", &vecs, &dim,
		         err))) {
			ctx->usage_error = code == ANC_EINVAL ||
			                   code == ANC_EMALFORMED;
			goto leave;
		}
		nq = 1;
		begin = 0;
	} else {
		if ((code = anc_cli_vectors_read(vectors, begin, end, &vecs, &nq,
		         &dim, err)))
			goto leave;
	}
	if ((code = anc_cli_connect(ctx, err)))
		goto leave;
	per = lim.max_hits / k;
	if (per > lim.max_queries)
		per = lim.max_queries;
	for (done = 0; done < nq; done += n) {
		n = nq - done < per ? nq - done : per;
		if (receipt) {
			/* the receipt field has no anc_client_query2 slot:
			 * build the request (issue 8) */
			anc_req req;
			memset(&req, 0, sizeof req);
			req.op = ANC_OP_QUERY;
			req.u.query.collection = pos[0];
			req.u.query.contract = contract != NULL ? contract : "";
			req.u.query.vectors = vecs + (size_t)done * dim;
			req.u.query.nq = n;
			req.u.query.dim = dim;
			req.u.query.k = k;
			req.u.query.with_text = with_text;
			req.u.query.ef = qo.ef;
			req.u.query.nprobe = qo.nprobe;
			req.u.query.exact = qo.exact;
			req.u.query.rerank = qo.rerank;
			req.u.query.receipt = 1;
			req.u.query.with_meta = qo.meta;
			req.u.query.pins = pins;
			req.u.query.npins = qo.npins;
			if ((code = anc_client_call(ctx->client, &req, &resp,
			         err)) ||
			    (qo.npins > 0 && (code = anc_client_pins_check(resp,
			         pins, qo.npins, err))))
				goto leave;
		} else if ((code = anc_client_query2(ctx->client, pos[0],
		                contract, vecs + (size_t)done * dim, n, dim, k,
		                with_text, &qo, &resp, err))) {
			goto leave;
		}
		if (done == 0)
			param_warn(&qo, &resp->u.query.prov);
		if (resp->u.query.nq != n) {
			code = anc_error_set(err, ANC_EMALFORMED,
			    "query reply: expected %u hit lists, got %u", n,
			    resp->u.query.nq);
			goto leave;
		}
		/* The metric says how scores compare (l2: lower is
		 * better); consumers such as `anchorage assemble` need it.
		 * The provenance says it; a server before 2026-11-30 gives
		 * only the contract ID, and info tells. */
		if (ctx->json && !have_metric && resp->u.query.prov.has_metric) {
			metric = resp->u.query.prov.metric;
			have_metric = 1;
		}
		if (ctx->json && !have_metric) {
			if ((code = anc_cli_contract_metric(ctx,
			         resp->u.query.prov.contract, &metric, err)))
				goto leave;
			have_metric = 1;
		}
		for (i = 0; i < n; i++) {
			if (ctx->json) {
				json_t *o = anc_cli_hits_json(
				    &resp->u.query.lists[i], &resp->u.query.prov);

				/* the collection too: assemble refuses
				 * hits of another than the one it is
				 * given (pins resolve there) */
				if (o != NULL && (json_object_set_new(
				        json_object_get(o, "provenance"), "metric",
				        json_string(anc_metric_name(metric))) != 0 ||
				    json_object_set_new(json_object_get(o,
				        "provenance"), "collection",
				        json_string(pos[0])) != 0)) {
					json_decref(o);
					o = NULL;
				}
				/* issue 8: confidence of the top hit, receipt */
				if (o != NULL) {
					json_object_set_new(o, "confidence",
					    json_string(anc_confidence_name(
					        resp->u.query.lists[i].confidence)));
					/* per-query drift flag (README "Drift
					 * detection") */
					/* NaN: not scored (no reference
					 * thresholds yet, or drift off) */
					float ds =
					    resp->u.query.lists[i].drift_score;
					json_object_set_new(o, "drift",
					    isnan(ds) ? json_null() : json_boolean(
					    resp->u.query.lists[i].drift_flag));
					json_object_set_new(o, "drift_score",
					    isnan(ds) ? json_null()
					              : json_real(ds));
					if (resp->u.query.prov.receipt[0])
						json_object_set_new(
						    json_object_get(o, "provenance"),
						    "receipt", json_string(
						        resp->u.query.prov.receipt));
				}
				/* the pins, on every line: each line is a
				 * whole input for assemble */
				if (o != NULL && resp->u.query.npinned > 0) {
					json_t *pa = json_array();
					for (uint32_t j = 0; pa != NULL &&
					     j < resp->u.query.npinned; j++)
						if (json_array_append_new(pa,
						        anc_cli_resolved_json(
						            &resp->u.query.pinned[j]))) {
							json_decref(pa);
							pa = NULL;
						}
					if (pa == NULL || json_object_set_new(o,
					        "pinned", pa) != 0) {
						json_decref(o);
						o = NULL;
					}
				}
				if ((code = anc_cli_json_emit(stdout, o, err)))
					goto leave;
			} else {
				if (done == 0 && i == 0)
					for (uint32_t j = 0;
					     j < resp->u.query.npinned; j++) {
						printf("pinned %u: ", j + 1);
						anc_cli_resolved_print(stdout,
						    &resp->u.query.pinned[j]);
					}
				anc_cli_hits_print(stdout, begin + done + i,
				    &resp->u.query.lists[i], &resp->u.query.prov,
				    with_text);
				printf("  confidence %s%s%s",
				    anc_confidence_name(
				        resp->u.query.lists[i].confidence),
				    resp->u.query.prov.receipt[0] ? ", receipt "
				                                  : "",
				    resp->u.query.prov.receipt);
				if (resp->u.query.lists[i].drift_flag)
					printf(", drift: foreign query (score "
					       "%.2f)",
					       resp->u.query.lists[i].drift_score);
				printf("\n");
			}
		}
		anc_resp_free(resp);
		resp = NULL;
	}
leave:
	anc_resp_free(resp);
	free(vecs);
	free(pins);
	return code;
}
