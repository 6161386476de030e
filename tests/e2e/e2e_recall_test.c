/*
 * e2e_recall_test.c — search quality through the whole stack on real SIFT
 * descriptors: sift5k's 5000 base vectors loaded through the client library
 * into a flat L2 contract must give exact answers (recall@10 = 1.0 against
 * the published ground truth); loaded into an HNSW contract (M 32,
 * efConstruction 200, efSearch 128) they must give recall@10 >= 0.95 on the
 * 100 siftsmall queries.
 *
 * Records are keyed source = row number (decimal), chunk = "", so a hit's
 * row is read back from its source and cross-checked against the anchor.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anc_client.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"

TestSuite(e2e_recall, .fini = tu_cleanup, .timeout = 180);

#define BATCH 1000

static tu_server srv;

/* All rows of a data file. */
static float *
read_fvecs(const char *rel, uint32_t *n, uint32_t *dim)
{
	return tu_fvecs(rel, 0, UINT32_MAX, n, dim);
}

static int32_t *
read_ivecs(const char *rel, uint32_t *n, uint32_t *dim)
{
	return tu_ivecs(rel, 0, UINT32_MAX, n, dim);
}

/* Create collection coll with contract c and upsert all base rows;
 * returns the contract ID. */
static void
load_base(anc_client *cl, const char *coll, const anc_contract *c,
          const float *base, uint32_t n, uint32_t dim,
          anc_contract_id_str cid)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc;
	tu_client_setup(cl, coll, c, cid);

	static char keys[5000][16];
	anc_record *recs = calloc(BATCH, sizeof *recs);
	cr_assert_not_null(recs);
	for (uint32_t b = 0; b < n; b += BATCH) {
		uint32_t m = n - b < BATCH ? n - b : BATCH;
		for (uint32_t i = 0; i < m; i++) {
			uint32_t row = b + i;
			cr_assert_lt(row, 5000);
			snprintf(keys[row], sizeof keys[row], "%u", row);
			recs[i] = (anc_record){.source = keys[row], .chunk = "",
			                       .text = NULL, .vec = base +
			                       (size_t)row * dim, .dim = dim};
		}
		rc = anc_client_upsert(cl, coll, cid, recs, m, &resp, &err);
		cr_assert_eq(rc, 0, "upsert %s rows %u..%u: %s: %s", coll, b,
		             b + m - 1, anc_errname(rc), err.msg);
		cr_assert_eq(resp->u.upsert.n, m);
		for (uint32_t i = 0; i < m; i++) {
			anc_anchor_str a;
			tu_anchor(coll, keys[b + i], "", a);
			cr_assert_str_eq(resp->u.upsert.results[i].anchor, a);
			cr_assert_eq(resp->u.upsert.results[i].status,
			             ANC_UPSERT_CREATED);
		}
		anc_resp_free(resp);
	}
	free(recs);
}

/* recall@10 of the query answers against ground truth gt (nq x gdim). */
static double
recall_at_10(anc_client *cl, const char *coll, const char *cid,
             const float *q, uint32_t nq, uint32_t dim, const int32_t *gt,
             uint32_t gdim, int expect_exact)
{
	anc_resp *resp = NULL;
	anc_error err = {0};
	int rc = anc_client_query(cl, coll, cid, q, nq, dim, 10, 0, &resp, &err);
	cr_assert_eq(rc, 0, "query %s: %s: %s", coll, anc_errname(rc), err.msg);
	cr_assert_eq(resp->u.query.nq, nq);
	cr_assert_eq(resp->u.query.prov.exact, expect_exact,
	             "%s: provenance.exact %d", coll, resp->u.query.prov.exact);
	cr_assert_str_eq(resp->u.query.prov.contract, cid);
	cr_assert_eq(resp->u.query.prov.index,
	             expect_exact ? ANC_INDEX_FLAT : ANC_INDEX_HNSW);
	if (!expect_exact)
		cr_assert_eq(resp->u.query.prov.ef_search, 128,
		             "provenance.ef_search %u",
		             resp->u.query.prov.ef_search);
	uint32_t found = 0;
	for (uint32_t i = 0; i < nq; i++) {
		const anc_hitlist *l = &resp->u.query.lists[i];
		cr_assert_eq(l->nhits, 10, "%s query %u: %u hits", coll, i,
		             l->nhits);
		for (uint32_t h = 0; h < l->nhits; h++) {
			char *end = NULL;
			long row = strtol(l->hits[h].source, &end, 10);
			cr_assert(end != l->hits[h].source && *end == '\0' &&
			          row >= 0 && row < 5000, "hit source '%s'",
			          l->hits[h].source);
			anc_anchor_str a;
			tu_anchor(coll, l->hits[h].source, "", a);
			cr_assert_str_eq(l->hits[h].anchor, a);
			if (h > 0)
				cr_assert_leq(l->hits[h - 1].score,
				              l->hits[h].score,
				              "l2 hits must be nearest first");
			for (uint32_t g = 0; g < 10; g++)
				if (gt[(size_t)i * gdim + g] == row) {
					found++;
					break;
				}
		}
	}
	anc_resp_free(resp);
	return (double)found / (10.0 * nq);
}

Test(e2e_recall, flat_and_hnsw_on_sift5k)
{
	const char *tmp = tu_tmpdir();
	tu_server_start(&srv, tu_path(tmp, "data"), tu_ipc_url(tmp, "s.sock"),
	                "--nosync", NULL);
	uint32_t n, dim, nq3, qd, ng, gd, nq100, qd2, ng2, gd2;
	float *base = read_fvecs("sift5k/sift5k_base.fvecs", &n, &dim);
	cr_assert_eq(n, 5000);
	cr_assert_eq(dim, 128);
	float *q3 = read_fvecs("sift5k/sift5k_query3.fvecs", &nq3, &qd);
	int32_t *gt3 = read_ivecs("sift5k/sift5k_query3_groundtruth_l2_k100.ivecs",
	                          &ng, &gd);
	cr_assert_eq(nq3, 3);
	cr_assert_eq(ng, 3);
	cr_assert_geq(gd, 10);
	float *q100 = read_fvecs("sift5k/siftsmall100_query.fvecs", &nq100,
	                         &qd2);
	int32_t *gt100 = read_ivecs(
	    "sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100.ivecs",
	    &ng2, &gd2);
	cr_assert_eq(nq100, 100);
	cr_assert_eq(ng2, 100);

	anc_client *cl = tu_client(&srv);
	anc_contract flat;
	tu_contract_l2(&flat, "sift", "inria-texmex-sift", 128);

	anc_contract hnsw = flat;
	hnsw.index.kind = ANC_INDEX_HNSW;
	hnsw.index.m = 32;
	hnsw.index.ef_construction = 200;
	hnsw.index.ef_search = 128;

	anc_contract_id_str cid_flat, cid_hnsw;
	double t0 = tu_now();
	load_base(cl, "sift_flat", &flat, base, n, dim, cid_flat);
	double t1 = tu_now();
	load_base(cl, "sift_hnsw", &hnsw, base, n, dim, cid_hnsw);
	double t2 = tu_now();
	/* Same meaning, different index: same contract ID. */
	cr_assert_str_eq(cid_flat, cid_hnsw);

	double r_flat3 = recall_at_10(cl, "sift_flat", cid_flat, q3, nq3, qd,
	                              gt3, gd, 1);
	double r_flat100 = recall_at_10(cl, "sift_flat", cid_flat, q100, nq100,
	                                qd2, gt100, gd2, 1);
	double r_hnsw = recall_at_10(cl, "sift_hnsw", cid_hnsw, q100, nq100,
	                             qd2, gt100, gd2, 0);
	printf("e2e_recall: load flat %.2f s, hnsw %.2f s; recall@10 flat "
	       "(3 queries) %.3f, flat (100 queries) %.3f, hnsw m32 efc200 "
	       "efs128 (100 queries) %.3f\n", t1 - t0, t2 - t1, r_flat3,
	       r_flat100, r_hnsw);
	cr_log_info("recall@10: flat %.3f / %.3f, hnsw %.3f", r_flat3,
	            r_flat100, r_hnsw);
	cr_assert_float_eq(r_flat3, 1.0, 1e-9, "flat recall@10 %.3f", r_flat3);
	cr_assert_float_eq(r_flat100, 1.0, 1e-9, "flat recall@10 %.3f",
	                   r_flat100);
	cr_assert_geq(r_hnsw, 0.95, "hnsw recall@10 %.3f < 0.95", r_hnsw);

	anc_client_close(cl);
	tu_server_stop(&srv);
	free(base);
	free(q3);
	free(gt3);
	free(q100);
	free(gt100);
}
