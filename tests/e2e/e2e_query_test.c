/*
 * e2e_query_test.c — the query path through a real server (issue 6):
 * per-request search parameters and their provenance, exact search and
 * exact re-rank, refusals naming the field, the trained index kinds
 * served without a gap while they are trained in the background, deletes
 * never returned whatever the kind, and many readers beside one writer.
 *
 * Data: sift5k (5000 x 128 SIFT descriptors) with the 100 siftsmall
 * queries and their exact L2 ground truth. Records are keyed source = row
 * number, chunk = "", so a hit's row is its source.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anc_assemble.h"
#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_query, .fini = tu_cleanup, .timeout = 240);

#define NB 5000
#define NQ 100
#define D 128
#define K 10

static tu_server srv;
static float *base, *qv;
static int32_t *gt;
static uint32_t gdim;
static char keys[NB][8];

static void
data_load(void)
{
	anc_error err = {0};
	uint32_t n, d;
	cr_assert_eq(anc_fvecs_read(tu_data_path("sift5k/sift5k_base.fvecs"), 0,
	                            NB, &base, &n, &d, &err),
	             0, "%s", err.msg);
	cr_assert_eq(anc_fvecs_read(tu_data_path("sift5k/siftsmall100_query.fvecs"),
	                            0, NQ, &qv, &n, &d, &err),
	             0, "%s", err.msg);
	cr_assert_eq(anc_ivecs_read(tu_data_path(
	                 "sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100.ivecs"),
	                            0, NQ, &gt, &n, &gdim, &err),
	             0, "%s", err.msg);
	for (uint32_t i = 0; i < NB; i++)
		snprintf(keys[i], sizeof keys[i], "%u", i);
}

static void
data_free(void)
{
	free(base);
	free(qv);
	free(gt);
}

static void
start(void)
{
	const char *dir = tu_tmpdir();
	data_load();
	tu_server_start(&srv, tu_path(dir, "data"), tu_ipc_url(dir, "s"),
	                "--nosync", "--http", "off", "--drift-off", NULL);
}

static void
upsert_rows(anc_client *cl, const char *coll, const char *cid, uint32_t from,
            uint32_t to)
{
	anc_record recs[500];
	anc_resp *r = NULL;
	anc_error err = {0};
	for (uint32_t b = from; b < to; b += 500) {
		uint32_t m = to - b < 500 ? to - b : 500;
		for (uint32_t i = 0; i < m; i++)
			recs[i] = (anc_record){.source = keys[b + i], .chunk = "",
			                       .vec = base + (size_t)(b + i) * D,
			                       .dim = D};
		cr_assert_eq(anc_client_upsert(cl, coll, cid, recs, m, &r, &err), 0,
		             "upsert %s: %s", coll, err.msg);
		anc_resp_free(r);
	}
}

/* recall@10 of a query reply against the ground truth; every list must
 * hold K hits, best first. */
static double
reply_recall(const anc_resp *r)
{
	uint32_t found = 0;
	cr_assert_eq(r->u.query.nq, NQ);
	for (uint32_t q = 0; q < NQ; q++) {
		const anc_hitlist *l = &r->u.query.lists[q];
		cr_assert_eq(l->nhits, K, "query %u: %u hits", q, l->nhits);
		for (uint32_t h = 0; h < K; h++) {
			long row = strtol(l->hits[h].source, NULL, 10);
			if (h > 0)
				cr_assert_leq(l->hits[h - 1].score, l->hits[h].score);
			for (uint32_t g = 0; g < K; g++)
				if (gt[(size_t)q * gdim + g] == row) {
					found++;
					break;
				}
		}
	}
	return found / (double)(NQ * K);
}

static anc_resp *
query(anc_client *cl, const char *coll, const char *cid,
      const anc_client_query_opts *o)
{
	anc_resp *r = NULL;
	anc_error err = {0};
	int rc = anc_client_query2(cl, coll, cid, qv, NQ, D, K, 0, o, &r, &err);
	cr_assert_eq(rc, 0, "query %s: %s: %s", coll, anc_errname(rc), err.msg);
	return r;
}

/* Per-request ef, exact and rerank are applied and reported; more effort
 * buys recall; exact is exact. */
Test(e2e_query, params_and_provenance)
{
	anc_client *cl;
	anc_contract c;
	anc_contract_id_str cid;
	anc_resp *r;
	anc_client_query_opts o;
	double r16, r256, rex, rrr, rdef;

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift-hnsw", ANC_INDEX_HNSW);
	tu_client_setup(cl, "h", &c, cid);
	upsert_rows(cl, "h", cid, 0, NB);

	r = query(cl, "h", cid, NULL);
	cr_assert_eq(r->u.query.prov.ef_search, 128, "the contract's efSearch");
	cr_assert_eq(r->u.query.prov.exact, 0);
	cr_assert_eq(r->u.query.prov.rerank, 0);
	cr_assert_eq(r->u.query.prov.nprobe, 0);
	/* drift off (start()): not scored, which is NaN, never a score of
	 * 0 that reads as "ordinary" */
	cr_assert(isnan(r->u.query.lists[0].drift_score), "%g",
	          r->u.query.lists[0].drift_score);
	cr_assert_eq(r->u.query.lists[0].drift_flag, 0);
	rdef = reply_recall(r);
	anc_resp_free(r);

	o = (anc_client_query_opts){.ef = 16};
	r = query(cl, "h", cid, &o);
	cr_assert_eq(r->u.query.prov.ef_search, 16);
	r16 = reply_recall(r);
	anc_resp_free(r);

	o = (anc_client_query_opts){.ef = 256, .nprobe = 3};
	r = query(cl, "h", cid, &o);
	cr_assert_eq(r->u.query.prov.ef_search, 256);
	cr_assert_eq(r->u.query.prov.nprobe, 0, "nprobe is not for hnsw");
	r256 = reply_recall(r);
	anc_resp_free(r);
	cr_assert_geq(r256, r16);
	cr_assert_geq(r256, 0.95, "ef 256 recall %.3f", r256);

	o = (anc_client_query_opts){.exact = 1, .ef = 16};
	r = query(cl, "h", cid, &o);
	cr_assert_eq(r->u.query.prov.exact, 1);
	cr_assert_eq(r->u.query.prov.ef_search, 0, "no ef in an exact search");
	rex = reply_recall(r);
	anc_resp_free(r);
	cr_assert_float_eq(rex, 1.0, 1e-9, "exact recall %.3f", rex);

	o = (anc_client_query_opts){.ef = 16, .rerank = 100};
	r = query(cl, "h", cid, &o);
	cr_assert_eq(r->u.query.prov.rerank, 100);
	cr_assert_eq(r->u.query.prov.ef_search, 16);
	rrr = reply_recall(r);
	anc_resp_free(r);
	cr_assert_geq(rrr, r16, "rerank of 100 candidates %.3f < %.3f", rrr,
	              r16);
	cr_log_info("sift5k via server: ef16 %.3f, default(128) %.3f, ef256 %.3f, "
	            "ef16+rerank100 %.3f, exact %.3f", r16, rdef, r256, rrr, rex);
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}

/* "meta": true puts each hit's passage metadata in the answer, on every
 * search path (approximate, re-ranked, exact scan); without it, none. */
Test(e2e_query, hits_carry_metadata_when_asked)
{
	enum { N = 200, Q = 8 };
	anc_client *cl;
	anc_contract c;
	anc_contract_id_str cid;
	anc_record recs[N];
	uint8_t meta[N][16];
	anc_resp *r = NULL;
	anc_error err = {0};

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift-hnsw-meta", ANC_INDEX_HNSW);
	tu_client_setup(cl, "m", &c, cid);
	/* even rows: {"row": i, "tag": "ev"}, msgpack by hand in the
	 * shortest form (the server stores maps re-serialised); odd: none */
	for (uint32_t i = 0; i < N; i++) {
		static const uint8_t head[] = {0x82, 0xa3, 'r', 'o', 'w'};
		static const uint8_t tail[] = {0xa3, 't', 'a', 'g', 0xa2, 'e', 'v'};
		uint32_t n = 0;
		memcpy(meta[i], head, sizeof head);
		n = sizeof head;
		if (i >= 128)
			meta[i][n++] = 0xcc; /* uint8; below 128 a fixint */
		meta[i][n++] = (uint8_t)i;
		memcpy(meta[i] + n, tail, sizeof tail);
		n += sizeof tail;
		recs[i] = (anc_record){.source = keys[i], .chunk = "",
		                       .vec = base + (size_t)i * D, .dim = D};
		if (i % 2 == 0) {
			recs[i].meta = meta[i];
			recs[i].meta_len = n;
		}
	}
	cr_assert_eq(anc_client_upsert(cl, "m", cid, recs, N, &r, &err), 0,
	             "%s", err.msg);
	anc_resp_free(r);

	const anc_client_query_opts variants[] = {
		{.meta = 1}, {.meta = 1, .rerank = 20}, {.meta = 1, .exact = 1},
		{.meta = 0}};
	for (int v = 0; v < 4; v++) {
		int with_text = v == 1;
		r = NULL;
		cr_assert_eq(anc_client_query2(cl, "m", cid, base + 100 * D, Q, D,
		                               3, with_text, &variants[v], &r,
		                               &err),
		             0, "variant %d: %s", v, err.msg);
		cr_assert_eq(r->u.query.nq, Q);
		for (uint32_t q = 0; q < Q; q++) {
			const anc_hitlist *l = &r->u.query.lists[q];
			cr_assert_geq(l->nhits, 1);
			for (uint32_t h = 0; h < l->nhits; h++) {
				const anc_hit *x = &l->hits[h];
				long row = strtol(x->source, NULL, 10);
				cr_assert(row >= 0 && row < N, "%s", x->source);
				if (h == 0)
					cr_assert_eq(row, 100 + (long)q, "variant %d",
					             v);
				cr_assert_eq(x->text != NULL, with_text);
				if (variants[v].meta && row % 2 == 0) {
					cr_assert_eq(x->meta_len, recs[row].meta_len,
					             "variant %d row %ld: %u", v, row, x->meta_len);
					cr_assert_eq(memcmp(x->meta, meta[row],
					                    x->meta_len), 0);
				} else {
					cr_assert_null(x->meta, "variant %d row %ld",
					               v, row);
					cr_assert_eq(x->meta_len, 0);
				}
			}
		}
		if (v == 2)
			cr_assert_eq(r->u.query.prov.exact, 1);
		if (v == 1)
			cr_assert_eq(r->u.query.prov.rerank, 20);
		anc_resp_free(r);
	}
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}

/* What an integrator's generation service does with the C library: a
 * query with text and pins straight into the assembler (the metric from
 * the provenance), and the client's own limits held before sending. */
Test(e2e_query, client_library_integration)
{
	enum { N = 200, K3 = 3 };
	anc_client *cl, *small;
	anc_client_options o;
	anc_contract c;
	anc_contract_id_str cid;
	anc_record recs[N];
	char texts[N][16];
	anc_resp *r = NULL, *r2 = NULL;
	anc_error err = {0};
	uint8_t raw[ANC_ANCHOR_RAW];
	anc_anchor_str pins[2];

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift-flat-int", ANC_INDEX_FLAT);
	tu_client_setup(cl, "g", &c, cid);
	for (uint32_t i = 0; i < N; i++) {
		snprintf(texts[i], sizeof texts[i], "row %u", i);
		recs[i] = (anc_record){.source = keys[i], .chunk = "",
		                       .text = texts[i],
		                       .vec = base + (size_t)i * D, .dim = D};
	}
	cr_assert_eq(anc_client_upsert(cl, "g", cid, recs, N, NULL, &err), 0,
	             "%s", err.msg); /* out NULL: only the outcome */
	cr_assert_eq(anc_client_ping(cl, NULL, &err), 0, "%s", err.msg);

	/* pins: row 150 (live), and an anchor nothing was written under */
	cr_assert_eq(anc_anchor_compute("g", keys[150], "", raw), 0);
	anc_anchor_format(raw, pins[0]);
	cr_assert_eq(anc_anchor_compute("g", "never", "", raw), 0);
	anc_anchor_format(raw, pins[1]);
	anc_client_query_opts qo = {.pins = pins, .npins = 2};
	cr_assert_eq(anc_client_query2(cl, "g", NULL, base + 10 * D, 2, D, K3,
	                               1, &qo, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_client_pins_check(r, pins, 2, &err), 0, "%s", err.msg);
	cr_assert(r->u.query.prov.has_metric);
	cr_assert_eq(r->u.query.prov.metric, ANC_METRIC_L2);
	cr_assert_eq(anc_client_query2(cl, "g", NULL, base + 50 * D, 1, D, K3,
	                               1, NULL, &r2, &err), 0, "%s", err.msg);

	const anc_resp *rs[2] = {r, r2};
	anc_asm_input in = {0};
	in.budget = 1000;
	cr_assert_eq(anc_asm_input_from_query(rs, 2, &in, &err), 0, "%s",
	             err.msg);
	cr_assert_eq(in.metric, ANC_METRIC_L2);
	cr_assert_eq(in.nhits, 3 * K3);
	cr_assert_eq(in.npins, 2);
	cr_assert_str_eq(in.pins[0].text, "row 150");
	cr_assert_null(in.pins[1].text);
	anc_asm_result *ar = NULL;
	cr_assert_eq(anc_assemble(&in, &ar, &err), 0, "%s", err.msg);
	cr_assert_str_eq(ar->kept[0].anchor, pins[0]);
	cr_assert(ar->kept[0].pinned);
	/* the best hit of each query is its own row, at distance 0 (never
	 * below: clamped); every hit is kept once, the rest are duplicates */
	cr_assert_eq(r->u.query.lists[0].hits[0].score, 0.0f);
	cr_assert_eq(ar->nkept + ar->ndropped, 2 + 3 * K3);
	cr_assert_geq(ar->nkept, 1 + 3, "%u kept", ar->nkept);
	cr_assert(strstr(ar->rendered, "]\nrow 10\n\n") != NULL);
	cr_assert(strstr(ar->rendered, "]\nrow 11\n\n") != NULL);
	cr_assert(strstr(ar->rendered, "]\nrow 50\n\n") != NULL);
	cr_assert_eq(ar->dropped[0].reason, ANC_ASM_DROP_NOTEXT);
	cr_assert_str_eq(ar->dropped[0].anchor, pins[1]);
	for (uint32_t i = 1; i < ar->ndropped; i++)
		cr_assert_eq(ar->dropped[i].reason, ANC_ASM_DROP_DUPLICATE);
	anc_asm_result_free(ar);
	anc_asm_input_release(&in);
	cr_assert_null(in.hits);
	/* not a query's answer: refused, nothing allocated */
	anc_resp_free(r2);
	r2 = NULL;
	cr_assert_eq(anc_client_ping(cl, &r2, &err), 0, "%s", err.msg);
	rs[1] = r2;
	cr_assert_eq(anc_asm_input_from_query(rs, 2, &in, &err), ANC_EINVAL);
	cr_assert(strstr(err.msg, "replies[1] is ping") != NULL, "%s", err.msg);
	cr_assert_null(in.hits);
	anc_resp_free(r);
	anc_resp_free(r2);
	cr_assert_eq(anc_assemble(&in, NULL, &err), ANC_EINVAL);
	cr_assert_eq(anc_client_pins_check(NULL, pins, 2, &err), ANC_EINVAL);

	/* Receipts, verify and the contract life cycle without hand-built
	 * requests. */
	anc_client_query_opts ro = {.receipt = 1};
	cr_assert_eq(anc_client_query2(cl, "g", cid, base + 20 * D, 1, D, K3,
	                               0, &ro, &r, &err), 0, "%s", err.msg);
	anc_receipt_id_str rid;
	cr_assert_eq(strlen(r->u.query.prov.receipt), ANC_RECEIPT_ID_LEN);
	memcpy(rid, r->u.query.prov.receipt, sizeof rid);
	anc_resp_free(r);
	cr_assert_eq(anc_client_receipt_get(cl, rid, 1, &r, &err), 0, "%s",
	             err.msg);
	cr_assert(r->u.receipt.authentic);
	cr_assert_str_eq(r->u.receipt.id, rid);
	anc_resp_free(r);
	cr_assert_eq(anc_client_receipt_replay(cl, rid, &r, &err), 0, "%s",
	             err.msg);
	cr_assert(r->u.replay.unchanged);
	anc_resp_free(r);
	cr_assert_eq(anc_client_receipt_get(cl, "short", 0, &r, &err),
	             ANC_EINVAL);
	cr_assert_null(r);
	anc_anchor_str cited[1];
	cr_assert_eq(anc_anchor_compute("g", keys[20], "", raw), 0);
	anc_anchor_format(raw, cited[0]);
	anc_claim claim = {.vec = base + 20 * D, .dim = D, .cited = cited,
	                   .ncited = 1};
	cr_assert_eq(anc_client_verify(cl, "g", NULL, &claim, 1, 0, &r, &err),
	             0, "%s", err.msg);
	cr_assert_eq(r->u.verify.n, 1);
	cr_assert_eq(r->u.verify.claims[0].cited[0].status, ANC_ANCHOR_LIVE);
	cr_assert_eq(r->u.verify.claims[0].cited[0].revision, 1);
	anc_resp_free(r);
	anc_contract c2;
	anc_contract_id_str cid2;
	tu_contract_sift(&c2, "sift-flat-int2", ANC_INDEX_FLAT);
	cr_assert_eq(anc_client_contract_register(cl, "g", &c2, &r, &err), 0,
	             "%s", err.msg);
	memcpy(cid2, r->u.contract_register.id, sizeof cid2);
	anc_resp_free(r);
	/* out NULL: the outcome only, for every call */
	cr_assert_eq(anc_client_contract_register(cl, "g", &c2, NULL, &err), 0,
	             "%s", err.msg);
	cr_assert_eq(anc_client_query2(cl, "g", cid, base, 1, D, 1, 0, &qo,
	                               NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_client_contract_promote(cl, "g", cid2, 0, NULL, &err),
	             ANC_EPRECONDITION, "0%% coverage needs force");
	cr_assert_eq(anc_client_contract_promote(cl, "g", cid2, 1, NULL, &err),
	             0, "%s", err.msg);
	cr_assert_eq(anc_client_contract_retire(cl, "g", cid, NULL, &err), 0,
	             "%s", err.msg);
	cr_assert_eq(anc_client_query(cl, "g", cid, base, 1, D, 1, 0, &r,
	                              &err), ANC_ERETIRED);
	cr_assert_null(r);

	/* Client limits: zero refused at open, naming the field; a request
	 * over them refused before it is sent, so nothing is written. */
	anc_client_options_default(&o);
	o.limits.max_k = 0;
	cr_assert_eq(anc_client_open(srv.url, &o, &small, &err), ANC_EINVAL);
	cr_assert(strstr(err.msg, "limits.max_k: 0") != NULL, "%s", err.msg);
	anc_client_options_default(&o);
	o.limits.max_records = 1;
	o.limits.max_anchors = 1;
	o.limits.max_hits = 5;
	cr_assert_eq(anc_client_open(srv.url, &o, &small, &err), 0, "%s",
	             err.msg);
	anc_record two[2] = {
	    {.source = "lim-a", .chunk = "", .vec = base, .dim = D},
	    {.source = "lim-b", .chunk = "", .vec = base + D, .dim = D}};
	cr_assert_eq(anc_client_upsert(small, "g", cid, two, 2, &r, &err),
	             ANC_ETOOBIG);
	cr_assert_null(r);
	cr_assert(strstr(err.msg, "nothing was sent") != NULL &&
	          strstr(err.msg, "max_records=1") != NULL, "%s", err.msg);
	cr_assert_eq(anc_client_query(small, "g", NULL, base, 1, D, 6, 0, &r,
	                              &err), ANC_ETOOBIG);
	cr_assert(strstr(err.msg, "max_hits=5") != NULL, "%s", err.msg);
	anc_anchor_str la[2];
	cr_assert_eq(anc_anchor_compute("g", "lim-a", "", raw), 0);
	anc_anchor_format(raw, la[0]);
	cr_assert_eq(anc_anchor_compute("g", "lim-b", "", raw), 0);
	anc_anchor_format(raw, la[1]);
	cr_assert_eq(anc_client_delete(small, "g", la, 2, &r, &err),
	             ANC_ETOOBIG);
	cr_assert_eq(anc_client_resolve(cl, "g", la, 2, &r, &err), 0, "%s",
	             err.msg);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(r->u.resolve.results[i].status,
		             ANC_ANCHOR_UNKNOWN, "lim-%c was written", 'a' + i);
	anc_resp_free(r);
	anc_client_close(small);
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}

/* Out-of-range parameters are refused with the field named, and the
 * server goes on answering. */
Test(e2e_query, bad_params_named)
{
	anc_client *cl;
	anc_contract c;
	anc_contract_id_str cid, icid;
	anc_resp *r = NULL;
	anc_error err = {0};
	anc_client_query_opts o;
	int rc;

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift-hnsw", ANC_INDEX_HNSW);
	tu_client_setup(cl, "h", &c, cid);
	upsert_rows(cl, "h", cid, 0, 100);
	tu_contract_sift(&c, "sift-ivf", ANC_INDEX_IVF_FLAT);
	tu_client_setup(cl, "i", &c, icid);

	o = (anc_client_query_opts){.ef = ANC_EF_MAX + 1};
	rc = anc_client_query2(cl, "h", cid, qv, 1, D, K, 0, &o, &r, &err);
	cr_assert_eq(rc, ANC_EINVAL, "%s: %s", anc_errname(rc), err.msg);
	cr_assert_not_null(strstr(err.msg, "ef"), "%s", err.msg);
	o = (anc_client_query_opts){.rerank = ANC_RERANK_MAX + 1};
	rc = anc_client_query2(cl, "h", cid, qv, 1, D, K, 0, &o, &r, &err);
	cr_assert_eq(rc, ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "rerank"), "%s", err.msg);
	o = (anc_client_query_opts){.nprobe = 33}; /* nlist 32 */
	rc = anc_client_query2(cl, "i", icid, qv, 1, D, K, 0, &o, &r, &err);
	cr_assert_eq(rc, ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "nprobe"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "32"), "%s", err.msg);

	/* Bad index sections name the field. */
	tu_contract_sift(&c, "bad-pq", ANC_INDEX_IVF_PQ);
	c.index.pq_m = 30; /* does not divide 128 */
	rc = anc_client_contract_register(cl, "h", &c, &r, &err);
	cr_assert_eq(rc, ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "index.pq_m"), "%s", err.msg);
	/* A parameter of another kind: the encoder sends only the kind's
	 * own fields, so this is the validation every decoder applies. */
	tu_contract_sift(&c, "bad-ivf", ANC_INDEX_IVF_FLAT);
	c.index.m = 16;
	cr_assert_eq(anc_contract_validate(&c, &err), ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "index.m"), "%s", err.msg);
	tu_contract_sift(&c, "bad-hnsw", ANC_INDEX_HNSW);
	c.index.nlist = 64;
	cr_assert_eq(anc_contract_validate(&c, &err), ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "index.nlist"), "%s", err.msg);
	tu_contract_sift(&c, "bad-nprobe", ANC_INDEX_IVF_FLAT);
	c.index.nprobe = 64;
	rc = anc_client_contract_register(cl, "h", &c, &r, &err);
	cr_assert_eq(rc, ANC_EINVAL);
	cr_assert_not_null(strstr(err.msg, "index.nprobe"), "%s", err.msg);

	/* Still serving. */
	r = NULL;
	cr_assert_eq(anc_client_query(cl, "h", cid, qv, 1, D, K, 0, &r, &err), 0,
	             "%s", err.msg);
	cr_assert_eq(r->u.query.lists[0].nhits, K);
	anc_resp_free(r);
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}

/* ---- trained kinds: served throughout their training ------------------------ */

typedef struct {
	const char *url, *coll, *cid;
	volatile int stop;
	volatile uint32_t loaded; /* rows acknowledged so far */
	uint64_t queries, errors, gaps, exact_seen, approx_seen, gen_changes;
	char why[ANC_ERRMSG_MAX];
} reader;

static void *
reader_main(void *arg)
{
	reader *rd = arg;
	anc_client *cl = NULL;
	anc_client_options o;
	anc_error err = {0};
	uint64_t gen = 0;
	uint32_t q = 0;

	anc_client_options_default(&o);
	o.timeout_ms = 30000;
	if (anc_client_open(rd->url, &o, &cl, &err) != 0) {
		rd->errors++;
		snprintf(rd->why, sizeof rd->why, "%s", err.msg);
		return NULL;
	}
	while (!rd->stop) {
		anc_resp *r = NULL;
		uint32_t have = rd->loaded;
		int rc = anc_client_query(cl, rd->coll, rd->cid,
		                          qv + (size_t)(q++ % NQ) * D, 1, D, K, 0,
		                          &r, &err);
		rd->queries++;
		if (rc != 0) {
			rd->errors++;
			snprintf(rd->why, sizeof rd->why, "%s", err.msg);
			continue;
		}
		/* a gap: fewer hits than the vectors acknowledged before the
		 * query was sent */
		if (r->u.query.lists[0].nhits < (have < K ? have : K))
			rd->gaps++;
		if (r->u.query.prov.exact)
			rd->exact_seen++;
		else
			rd->approx_seen++;
		if (r->u.query.prov.generation != gen) {
			rd->gen_changes += gen != 0;
			gen = r->u.query.prov.generation;
		}
		anc_resp_free(r);
	}
	anc_client_close(cl);
	return NULL;
}

static int
trained(anc_client *cl, const char *coll, uint64_t n)
{
	anc_resp *r = NULL;
	anc_error err = {0};
	int t = 0;
	cr_assert_eq(anc_client_info(cl, &r, &err), 0, "%s", err.msg);
	for (uint32_t i = 0; i < r->u.info.ncollections; i++) {
		const anc_collection_info *ci = &r->u.info.collections[i];
		if (strcmp(ci->name, coll) == 0)
			t = ci->contracts[0].trained &&
			    ci->contracts[0].index_ntotal >= n;
	}
	anc_resp_free(r);
	return t;
}

static void
kind_served_throughout(anc_index_kind kind, double min_recall)
{
	anc_client *cl;
	anc_contract c;
	anc_contract_id_str cid;
	anc_resp *r;
	anc_client_query_opts o;
	reader rd;
	pthread_t thr;
	double rc;

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift", kind);
	tu_client_setup(cl, "k", &c, cid);
	memset(&rd, 0, sizeof rd);
	rd.url = srv.url;
	rd.coll = "k";
	rd.cid = cid;
	cr_assert_eq(pthread_create(&thr, NULL, reader_main, &rd), 0);
	for (uint32_t b = 0; b < NB; b += 250) {
		upsert_rows(cl, "k", cid, b, b + 250);
		rd.loaded = b + 250;
	}
	for (int i = 0; i < 1200 && !trained(cl, "k", NB); i++)
		usleep(50000);
	cr_assert(trained(cl, "k", NB), "not trained after 60 s");
	usleep(200000); /* a few queries on the trained index */
	rd.stop = 1;
	pthread_join(thr, NULL);
	cr_assert_eq(rd.errors, 0, "%llu of %llu queries failed: %s",
	             (unsigned long long)rd.errors,
	             (unsigned long long)rd.queries, rd.why);
	cr_assert_eq(rd.gaps, 0, "%llu answers missed vectors",
	             (unsigned long long)rd.gaps);
	cr_assert_gt(rd.exact_seen, 0, "served exactly before training");
	cr_assert_gt(rd.approx_seen, 0, "served by the trained index after");
	cr_assert_geq(rd.gen_changes, 1);

	r = query(cl, "k", cid, NULL);
	cr_assert_eq(r->u.query.prov.exact, 0);
	cr_assert_eq(r->u.query.prov.index, kind);
	if (kind != ANC_INDEX_HNSW_SQ8)
		cr_assert_eq(r->u.query.prov.nprobe, c.index.nprobe);
	rc = reply_recall(r);
	anc_resp_free(r);
	cr_assert_geq(rc, min_recall, "%s recall@10 %.3f",
	              anc_index_kind_name(kind), rc);

	/* nprobe = nlist with exact re-rank: exhaustive and exact scores */
	o = (anc_client_query_opts){.nprobe = c.index.nlist, .rerank = 50,
	                            .ef = 256};
	r = query(cl, "k", cid, &o);
	double rall = reply_recall(r);
	anc_resp_free(r);
	cr_assert_geq(rall, kind == ANC_INDEX_IVF_FLAT ? 0.99 : 0.9,
	              "%s full effort + rerank recall %.3f",
	              anc_index_kind_name(kind), rall);

	/* Deletes are never returned: delete the top hit of every query and
	 * look again (approximate, re-ranked and exact). */
	{
		anc_anchor_str *del = calloc(NQ, sizeof *del);
		uint32_t nd = 0;
		anc_error err = {0};
		r = query(cl, "k", cid, NULL);
		for (uint32_t q = 0; q < NQ; q++) {
			const char *a = r->u.query.lists[q].hits[0].anchor;
			int dup = 0;
			for (uint32_t i = 0; i < nd; i++)
				dup |= strcmp(del[i], a) == 0;
			if (!dup)
				memcpy(del[nd++], a, sizeof del[0]);
		}
		anc_resp_free(r);
		r = NULL;
		cr_assert_eq(anc_client_delete(cl, "k", del, nd, &r, &err), 0,
		             "%s", err.msg);
		anc_resp_free(r);
		anc_client_query_opts variants[3] = {
			{.ef = 0}, {.rerank = 40, .meta = 1}, {.exact = 1}};
		for (int v = 0; v < 3; v++) {
			r = query(cl, "k", cid, &variants[v]);
			for (uint32_t q = 0; q < NQ; q++) {
				const anc_hitlist *l = &r->u.query.lists[q];
				cr_assert_eq(l->nhits, K);
				for (uint32_t h = 0; h < l->nhits; h++)
					for (uint32_t i = 0; i < nd; i++)
						cr_assert_str_neq(l->hits[h].anchor,
						                  del[i],
						                  "deleted anchor returned");
			}
			anc_resp_free(r);
		}
		free(del);
	}
	cr_log_info("%s: %llu queries during load + training, %llu exact, "
	            "%llu approximate, recall@10 %.3f (full effort %.3f)",
	            anc_index_kind_name(kind), (unsigned long long)rd.queries,
	            (unsigned long long)rd.exact_seen,
	            (unsigned long long)rd.approx_seen, rc, rall);
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}

Test(e2e_query, ivf_flat_served_throughout) { kind_served_throughout(ANC_INDEX_IVF_FLAT, 0.75); }
Test(e2e_query, ivf_pq_served_throughout) { kind_served_throughout(ANC_INDEX_IVF_PQ, 0.55); }
Test(e2e_query, hnsw_sq8_served_throughout) { kind_served_throughout(ANC_INDEX_HNSW_SQ8, 0.93); }

/* Many readers and one writer: every read answers, with K hits. */
Test(e2e_query, many_readers_one_writer)
{
	enum { READERS = 8 };
	anc_client *cl;
	anc_contract c;
	anc_contract_id_str cid;
	reader rd[READERS];
	pthread_t thr[READERS];
	uint64_t total = 0;

	start();
	cl = tu_client(&srv);
	tu_contract_sift(&c, "sift-hnsw", ANC_INDEX_HNSW);
	c.index.ef_construction = 64;
	tu_client_setup(cl, "w", &c, cid);
	upsert_rows(cl, "w", cid, 0, 1000);
	for (int i = 0; i < READERS; i++) {
		memset(&rd[i], 0, sizeof rd[i]);
		rd[i].url = srv.url;
		rd[i].coll = "w";
		rd[i].cid = cid;
		rd[i].loaded = 1000;
		cr_assert_eq(pthread_create(&thr[i], NULL, reader_main, &rd[i]), 0);
	}
	/* the writer: the rest in batches, and deletes of early rows */
	for (uint32_t b = 1000; b < NB; b += 500) {
		anc_anchor_str a[50];
		anc_resp *r = NULL;
		anc_error err = {0};
		upsert_rows(cl, "w", cid, b, b + 500);
		for (uint32_t i = 0; i < 50; i++)
			tu_anchor("w", keys[(b - 1000) / 10 + i], "", a[i]);
		cr_assert_eq(anc_client_delete(cl, "w", a, 50, &r, &err), 0, "%s",
		             err.msg);
		anc_resp_free(r);
	}
	for (int i = 0; i < READERS; i++) {
		rd[i].stop = 1;
		pthread_join(thr[i], NULL);
		cr_assert_eq(rd[i].errors, 0, "reader %d: %s", i, rd[i].why);
		cr_assert_eq(rd[i].gaps, 0, "reader %d: short answers", i);
		total += rd[i].queries;
	}
	cr_assert_gt(total, READERS);
	cr_log_info("%d readers: %llu queries during 4000 upserts and 400 "
	            "deletes", READERS, (unsigned long long)total);
	anc_client_close(cl);
	tu_server_stop(&srv);
	data_free();
}
