/*
 * ground_test.c — grounding checks and receipts (index/ground.c, issue 8)
 * on real data: the 90 SOTU passages with their all-MiniLM-L6-v2 vectors,
 * and the South African transport act embedded by the same model as the
 * unrelated claims.
 *
 * Design note: every test opens its own database in a temporary directory
 * (nosync). The calibration and confusion tests print what they measure
 * (thresholds, the margin between self-matches and unrelated claims, the
 * verdict confusion table: rows the expected verdict, columns the verdict
 * given) so that the numbers quoted in the README can be re-derived. The
 * tamper test opens the LMDB environment of a closed database directly with
 * liblmdb and flips one byte of a stored receipt.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anc_index.h"
#include "cli_vecfile.h"
#include "ground.h"
#include "testutil.h"
#include "tu_corpus.h"
#include "tu_db.h"

TestSuite(ground, .fini = tu_cleanup, .timeout = 120);

#define COLL "sotu"
#define TRANSPORT "minilm-za-transport/za_land_transport_act_all-MiniLM-L6-v2_384.fvecs"

static anc_db *
db_open(const char *dir)
{
	return tu_db_open(dir, 0, 0);
}

/* Load the SOTU corpus into COLL under the MiniLM contract. */
static void
load_sotu(anc_db *db, tu_sotu *s, anc_contract_id_str id)
{
	anc_contract c;
	anc_error err;
	anc_record *recs = calloc(s->n, sizeof *recs);
	anc_upsert_result *res = calloc(s->n, sizeof *res);
	cr_assert(recs != NULL && res != NULL);
	cr_assert_eq(anc_db_collection_create(db, COLL, NULL, &err), ANC_OK,
	             "%s", err.msg);
	tu_contract_minilm(&c);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, NULL, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < s->n; i++)
		recs[i] = tu_sotu_record(s, i);
	cr_assert_eq(anc_db_upsert(db, COLL, id, recs, s->n, res, NULL, &err),
	             ANC_OK, "%s", err.msg);
	free(recs);
	free(res);
}

/* What most tests start from: a fresh database in a temporary directory
 * (tu_db_open flags) holding the SOTU corpus under the MiniLM contract. */
typedef struct sotu_db {
	const char *dir;
	anc_db *db;
	tu_sotu s;
	anc_contract_id_str id;
} sotu_db;

static void
sotu_db_open(sotu_db *f, unsigned flags)
{
	f->dir = tu_tmpdir();
	f->db = tu_db_open(f->dir, flags, 0);
	tu_sotu_read(&f->s, COLL);
	load_sotu(f->db, &f->s, f->id);
}

static void
sotu_db_close(sotu_db *f)
{
	tu_sotu_free(&f->s);
	anc_db_close(f->db, NULL);
}

static float *
transport(uint32_t *n)
{
	float *v = NULL;
	uint32_t dim = 0;
	v = tu_fvecs(TRANSPORT, 0, UINT32_MAX, n, &dim);
	cr_assert_eq(dim, TU_SOTU_DIM);
	return v;
}

static float
dot(const float *a, const float *b)
{
	double s = 0;
	for (int i = 0; i < TU_SOTU_DIM; i++)
		s += (double)a[i] * b[i];
	return (float)s;
}

/* ---- calibration ---------------------------------------------------------------- */

Test(ground, calibration_separates_self_from_unrelated)
{
	sotu_db f;
	anc_calibration c;
	anc_error err;
	uint32_t nt;
	float *t, worst_unrelated = -1;

	sotu_db_open(&f, 0);
	cr_assert_eq(anc_db_calibration(f.db, COLL, f.id, 1, &c, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_gt(c.computed_at, 0);
	cr_assert_eq(c.vectors, 90);
	cr_assert_eq(c.sample, 90);
	cr_assert_eq(c.pairs, 90 * 89 / 2); /* every pair of a small sample */
	cr_assert_eq(c.metric, ANC_METRIC_COSINE);
	cr_assert(c.random_p50 < c.random_p99 && c.random_p99 <= c.weak + 1e-6f);
	cr_assert(c.weak < c.strong);
	cr_assert(c.nn_p05 <= c.nn_p50);
	cr_assert_gt(c.margin, 0);
	t = transport(&nt);
	for (uint32_t i = 0; i < nt; i++)
		for (uint32_t j = 0; j < f.s.n; j++) {
			float d = dot(t + (size_t)i * TU_SOTU_DIM,
			              f.s.vecs + (size_t)j * TU_SOTU_DIM);
			if (d > worst_unrelated)
				worst_unrelated = d;
		}
	printf("calibration (sotu MiniLM, cosine): random p50 %.4f p99 %.4f, "
	       "nearest-neighbour p05 %.4f p50 %.4f\n  thresholds: weak %.4f "
	       "strong %.4f margin %.4f\n  self-match score 1.0000 vs strong: "
	       "margin %.4f; best transport-act claim %.4f vs weak: margin "
	       "%.4f\n",
	       c.random_p50, c.random_p99, c.nn_p05, c.nn_p50, c.weak, c.strong,
	       c.margin, 1.0 - c.strong, worst_unrelated,
	       c.weak - worst_unrelated);
	/* Every self-match is strong; no unrelated claim reaches even weak. */
	cr_assert_gt(1.0f - 1e-4f, c.strong);
	cr_assert_lt(worst_unrelated, c.weak);
	/* the same vectors give the same numbers (seeded sampling) */
	anc_calibration c2;
	cr_assert_eq(anc_db_calibration(f.db, COLL, f.id, 1, &c2, &err),
	             ANC_OK);
	cr_assert_eq(c2.strong, c.strong);
	cr_assert_eq(c2.weak, c.weak);
	/* kept across a restart, and shown by info */
	cr_assert_eq(anc_db_close(f.db, &err), ANC_OK);
	f.db = db_open(f.dir);
	anc_info *info = NULL;
	cr_assert_eq(anc_db_info(f.db, &info, &err), ANC_OK);
	cr_assert_eq(info->collections[0].contracts[0].calib.strong, c.strong);
	cr_assert_eq(info->collections[0].contracts[0].calib.computed_at,
	             c2.computed_at);
	anc_info_free(info);
	free(t);
	sotu_db_close(&f);
}

Test(ground, calibration_l2_lower_is_closer)
{
	/* two tight clusters far apart in l2: near pairs are "close" */
	enum { N = 64, D = 8 };
	float v[N * D];
	anc_calibration c;
	anc_error err;
	uint64_t s = 12345;
	for (int i = 0; i < N; i++)
		for (int d = 0; d < D; d++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			v[i * D + d] = (float)((s >> 33) % 1000) / 1000.0f * 0.1f +
			               (i % 2 ? 10.0f : 0.0f);
		}
	cr_assert_eq(ground_calibrate_vectors(v, N, D, ANC_METRIC_L2, 7, &c,
	                                      &err), ANC_OK, "%s", err.msg);
	c.computed_at = 1;
	/* distances: strong is the smallest, then weak, then the median */
	cr_assert(c.strong <= c.weak, "strong %g weak %g", c.strong, c.weak);
	cr_assert(c.weak <= c.random_p50, "weak %g p50 %g", c.weak,
	          c.random_p50);
	cr_assert_eq(ground_confidence(&c, 0.0f), ANC_CONF_STRONG);
	cr_assert_eq(ground_confidence(&c, 1e6f), ANC_CONF_NONE);
	cr_assert_eq(ground_confidence(NULL, 0.0f), ANC_CONF_UNKNOWN);
	/* too few vectors */
	cr_assert_eq(ground_calibrate_vectors(v, 1, D, ANC_METRIC_L2, 7, &c,
	                                      &err), ANC_EINVAL);
	cr_assert_eq(ground_calibrate_vectors(NULL, 5, D, ANC_METRIC_IP, 7, &c,
	                                      &err), ANC_EINVAL);
}

/* One passage stored under several anchors (a corpus loaded twice under
 * two chunk keys) is not a random pair: a newcomer's store of 19 passages
 * loaded twice had random p99 = 1.0 = weak = strong, and a passage's own
 * vector scored "none". Copies, exact or re-embedded (equal to ~1e-6),
 * are left out of both distributions, on the all-pairs path (small
 * samples) and the sampled one. */
static void
copies_check(int n)
{
	enum { D = 16 };
	float *v = malloc(sizeof(float) * 2 * (size_t)n * D);
	anc_calibration one, twice;
	anc_error err;
	uint64_t s = 99;
	cr_assert_not_null(v);
	for (int i = 0; i < n; i++) {
		double norm = 0;
		for (int d = 0; d < D; d++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			v[i * D + d] = (float)((s >> 33) % 1000) / 1000.0f;
			norm += (double)v[i * D + d] * v[i * D + d];
		}
		for (int d = 0; d < D; d++)
			v[i * D + d] = (float)(v[i * D + d] / sqrt(norm));
	}
	/* the second half: the same vectors, every other one re-embedded
	 * (off by about 1e-6) */
	for (int i = 0; i < n * D; i++)
		v[n * D + i] = v[i] * (i % 2 ? 1.0f : 1.000001f);
	cr_assert_eq(ground_calibrate_vectors(v, (uint32_t)n, D,
	                                      ANC_METRIC_COSINE, 7, &one, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(ground_calibrate_vectors(v, 2 * (uint32_t)n, D,
	                                      ANC_METRIC_COSINE, 7, &twice,
	                                      &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_lt(twice.random_p99, 0.9999f, "n %d: copies counted: p99 %g",
	             n, twice.random_p99);
	cr_assert_float_eq(twice.random_p99, one.random_p99, 0.02,
	                   "n %d: %g vs %g", n, twice.random_p99,
	                   one.random_p99);
	cr_assert_float_eq(twice.nn_p50, one.nn_p50, 1e-5, "n %d: %g vs %g", n,
	                   twice.nn_p50, one.nn_p50);
	twice.computed_at = 1;
	cr_assert_eq(ground_confidence(&twice, 1.0f), ANC_CONF_STRONG);
	free(v);
}

Test(ground, calibration_ignores_copies)
{
	copies_check(19);  /* 38 vectors: every pair */
	copies_check(150); /* 300: 20,000 sampled pairs */
	/* Nothing but copies (a placeholder embedder's constant vector):
	 * calibrated on what there is, as before, not an error that would
	 * fail every verify. */
	enum { D = 4 };
	float same[12 * D];
	anc_calibration c;
	anc_error err;
	for (int i = 0; i < 12; i++)
		for (int d = 0; d < D; d++)
			same[i * D + d] = d == 0;
	cr_assert_eq(ground_calibrate_vectors(same, 12, D, ANC_METRIC_COSINE, 7,
	                                      &c, &err), ANC_OK, "%s", err.msg);
}

Test(ground, calibration_refuses_tiny_and_unknown)
{
	const char *dir = tu_tmpdir();
	anc_db *db = db_open(dir);
	anc_contract c;
	anc_contract_id_str id;
	anc_calibration cal;
	anc_error err;
	tu_sotu s;

	tu_sotu_read(&s, COLL);
	cr_assert_eq(anc_db_collection_create(db, COLL, NULL, &err), ANC_OK);
	tu_contract_minilm(&c);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, NULL, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_calibration(db, COLL, id, 0, &cal, &err),
	             ANC_EPRECONDITION);
	cr_assert(strstr(err.msg, "at least") != NULL, "%s", err.msg);
	cr_assert_eq(anc_db_calibration(db, "nope", NULL, 0, &cal, &err),
	             ANC_ENOCOLL);
	cr_assert_eq(anc_db_calibration(db, COLL, "x@y", 0, &cal, &err),
	             ANC_ENOCONTRACT);
	/* and a query is "unknown" until calibrated */
	anc_record r = {"src", "0", "t", NULL, 0, s.vecs, TU_SOTU_DIM};
	anc_upsert_result ur;
	anc_query_result *qr = NULL;
	cr_assert_eq(anc_db_upsert(db, COLL, id, &r, 1, &ur, NULL, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs, 1, TU_SOTU_DIM, 1, 0,
	                          &qr, &err), ANC_OK);
	cr_assert_eq(qr->lists[0].confidence, ANC_CONF_UNKNOWN);
	anc_query_result_free(qr);
	tu_sotu_free(&s);
	anc_db_close(db, NULL);
}

Test(ground, calibration_follows_the_corpus_in_the_background)
{
	sotu_db f;
	anc_calibration c;
	anc_error err;
	anc_delete_result dr[20];
	double t0;

	sotu_db_open(&f, TU_DB_CALIB);
	t0 = tu_now();
	do {
		anc_info *info = NULL;
		cr_assert_eq(anc_db_info(f.db, &info, &err), ANC_OK);
		c = info->collections[0].contracts[0].calib;
		anc_info_free(info);
		if (c.computed_at == 0)
			usleep(100000);
	} while (c.computed_at == 0 && tu_now() - t0 < 20);
	cr_assert_neq(c.computed_at, 0, "no background calibration in 20 s");
	cr_assert_eq(c.vectors, 90);
	/* delete 20 of 90 (22% > 10%): recalibrated on 70 */
	cr_assert_eq(anc_db_delete(f.db, COLL, f.s.anchors, 20, dr, NULL, &err),
	             ANC_OK);
	t0 = tu_now();
	do {
		anc_info *info = NULL;
		cr_assert_eq(anc_db_info(f.db, &info, &err), ANC_OK);
		c = info->collections[0].contracts[0].calib;
		anc_info_free(info);
		if (c.vectors != 70)
			usleep(100000);
	} while (c.vectors != 70 && tu_now() - t0 < 20);
	cr_assert_eq(c.vectors, 70, "not recalibrated after 22%% deleted");
	sotu_db_close(&f);
}

/* ---- query confidence ----------------------------------------------------------- */

Test(ground, query_carries_confidence)
{
	sotu_db f;
	anc_calibration c;
	anc_query_result *qr = NULL;
	anc_error err;
	uint32_t nt;
	float *t;

	sotu_db_open(&f, 0);
	cr_assert_eq(anc_db_calibration(f.db, COLL, f.id, 0, &c, &err), ANC_OK);
	cr_assert_eq(anc_db_query(f.db, COLL, NULL, f.s.vecs, f.s.n,
	                          TU_SOTU_DIM, 3, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < f.s.n; i++)
		cr_assert_eq(qr->lists[i].confidence, ANC_CONF_STRONG,
		             "passage %u: %s", i,
		             anc_confidence_name(qr->lists[i].confidence));
	anc_query_result_free(qr);
	t = transport(&nt);
	cr_assert_eq(anc_db_query(f.db, COLL, NULL, t, nt, TU_SOTU_DIM, 3, 0,
	                          &qr, &err), ANC_OK);
	for (uint32_t i = 0; i < nt; i++)
		cr_assert_eq(qr->lists[i].confidence, ANC_CONF_NONE,
		             "transport %u: %s (score %f)", i,
		             anc_confidence_name(qr->lists[i].confidence),
		             qr->lists[i].hits[0].score);
	anc_query_result_free(qr);
	free(t);
	sotu_db_close(&f);
}

/* ---- verify --------------------------------------------------------------------- */

static const char *const expect_names[] = {"supported", "miscited",
                                           "unsupported"};

Test(ground, verify_confusion_table)
{
	sotu_db f;
	anc_verify_result *vr = NULL;
	anc_error err;
	uint32_t nt, table[3][ANC_VERDICT_LAST + 1];
	float *t;
	anc_claim *cl;
	uint32_t n, k = 0;

	memset(table, 0, sizeof table);
	sotu_db_open(&f, 0);
	t = transport(&nt);
	n = 2 * f.s.n + nt;
	cl = calloc(n, sizeof *cl);
	cr_assert_not_null(cl);
	/* 0..89: passage i citing itself; 90..179: citing passage i+37;
	 * then every transport-act chunk citing SOTU passage j % 90 */
	for (uint32_t i = 0; i < f.s.n; i++, k++) {
		cl[k].vec = f.s.vecs + (size_t)i * TU_SOTU_DIM;
		cl[k].dim = TU_SOTU_DIM;
		cl[k].cited = &f.s.anchors[i];
		cl[k].ncited = 1;
	}
	for (uint32_t i = 0; i < f.s.n; i++, k++) {
		cl[k].vec = f.s.vecs + (size_t)i * TU_SOTU_DIM;
		cl[k].dim = TU_SOTU_DIM;
		cl[k].cited = &f.s.anchors[(i + 37) % f.s.n];
		cl[k].ncited = 1;
	}
	for (uint32_t j = 0; j < nt; j++, k++) {
		cl[k].vec = t + (size_t)j * TU_SOTU_DIM;
		cl[k].dim = TU_SOTU_DIM;
		cl[k].cited = &f.s.anchors[j % f.s.n];
		cl[k].ncited = 1;
	}
	cr_assert_eq(anc_db_verify(f.db, COLL, NULL, cl, n, 0, &vr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(vr->n, n);
	cr_assert_eq(vr->prov.exact, 1);
	cr_assert_str_eq(vr->prov.contract, f.id);
	for (uint32_t i = 0; i < n; i++) {
		int e = i < f.s.n ? 0 : i < 2 * f.s.n ? 1 : 2;
		table[e][vr->claims[i].verdict]++;
	}
	printf("verdict confusion table (rows expected, columns given; %u "
	       "claims)\n%-12s %10s %17s %12s %9s\n", n, "", "supported",
	       "weakly_supported", "unsupported", "miscited");
	for (int e = 0; e < 3; e++)
		printf("%-12s %10u %17u %12u %9u\n", expect_names[e],
		       table[e][0], table[e][1], table[e][2], table[e][3]);
	printf("thresholds used: weak %.4f strong %.4f margin %.4f\n",
	       vr->calib.weak, vr->calib.strong, vr->calib.margin);
	cr_assert_eq(table[0][ANC_VERDICT_SUPPORTED], f.s.n);
	cr_assert_eq(table[1][ANC_VERDICT_MISCITED], f.s.n);
	cr_assert_eq(table[2][ANC_VERDICT_UNSUPPORTED], nt);
	/* the details of one of each */
	const anc_claim_result *c = &vr->claims[5];
	cr_assert_str_eq(c->best, f.s.anchors[5]);
	cr_assert(c->best_cited);
	cr_assert_eq(c->cited[0].status, ANC_ANCHOR_LIVE);
	cr_assert(c->cited[0].at_revision);
	cr_assert(fabsf(c->cited[0].score - 1.0f) < 1e-4f);
	cr_assert_eq(c->suggested[0], '\0');
	c = &vr->claims[f.s.n + 5];
	cr_assert_str_eq(c->suggested, f.s.anchors[5]);
	cr_assert(!c->best_cited);
	cr_assert_str_eq(c->cited[0].anchor, f.s.anchors[42]);
	c = &vr->claims[2 * f.s.n];
	cr_assert_eq(c->suggested[0], '\0');
	cr_assert(c->has_best);
	anc_verify_result_free(vr);
	free(cl);
	free(t);
	sotu_db_close(&f);
}

Test(ground, verify_reports_stale_and_missing_citations)
{
	sotu_db f;
	anc_verify_result *vr = NULL;
	anc_delete_result dr;
	anc_error err;
	anc_anchor_str cited[3];
	uint64_t revs[3] = {7, 0, 0};
	anc_anchor_str unknown;

	sotu_db_open(&f, 0);
	tu_anchor(COLL, "no-such-source", "0", unknown);
	cr_assert_eq(anc_db_delete(f.db, COLL, &f.s.anchors[3], 1, &dr, NULL,
	                           &err), ANC_OK);
	memcpy(cited[0], f.s.anchors[1], sizeof cited[0]); /* wrong revision */
	memcpy(cited[1], f.s.anchors[3], sizeof cited[1]); /* deleted */
	memcpy(cited[2], unknown, sizeof cited[2]);      /* never existed */
	anc_claim cl = {f.s.vecs + 1 * TU_SOTU_DIM, TU_SOTU_DIM,
	                (const anc_anchor_str *)cited, revs, 3};
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &cl, 1, 0, &vr, &err),
	             ANC_OK, "%s", err.msg);
	const anc_claim_result *c = &vr->claims[0];
	cr_assert_eq(c->cited[0].status, ANC_ANCHOR_LIVE);
	cr_assert_eq(c->cited[0].revision, 1);
	cr_assert_eq(c->cited[0].cited_revision, 7);
	cr_assert_eq(c->cited[0].at_revision, 0);
	cr_assert(c->cited[0].scored);
	cr_assert_eq(c->cited[1].status, ANC_ANCHOR_DELETED);
	cr_assert_eq(c->cited[1].scored, 0);
	cr_assert_eq(c->cited[2].status, ANC_ANCHOR_UNKNOWN);
	cr_assert_eq(c->cited[2].revision, 0);
	/* supported by the live cited passage even though its revision is
	 * stale: the verdict reads current vectors */
	cr_assert_eq(c->verdict, ANC_VERDICT_SUPPORTED);
	anc_verify_result_free(vr);
	/* With a receipt: replayed at once, nothing has changed, the
	 * deleted and the unknown citation included (they were reported
	 * as deleted: a helper's hunt). */
	{
		anc_replay_result *rp = NULL;
		anc_receipt_id_str rid;
		cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &cl, 1, 1, &vr,
		                           &err), ANC_OK, "%s", err.msg);
		memcpy(rid, vr->prov.receipt, sizeof rid);
		anc_verify_result_free(vr);
		cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err), ANC_OK,
		             "%s", err.msg);
		for (uint32_t i = 0; i < rp->nchanges; i++)
			cr_log_error("change %u: kind %d anchor %s", i,
			             rp->changes[i].kind, rp->changes[i].anchor);
		cr_assert(rp->unchanged, "%u changes", rp->nchanges);
		anc_replay_result_free(rp);
		/* and deleting the live citation is a change */
		cr_assert_eq(anc_db_delete(f.db, COLL, &f.s.anchors[1], 1, &dr,
		                           NULL, &err), ANC_OK);
		cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err), ANC_OK,
		             "%s", err.msg);
		cr_assert_eq(rp->unchanged, 0);
		int deleted = 0;
		for (uint32_t i = 0; i < rp->nchanges; i++)
			if (rp->changes[i].kind == ANC_CHANGE_DELETED) {
				cr_assert_str_eq(rp->changes[i].anchor,
				                 f.s.anchors[1]);
				deleted++;
			}
		cr_assert_eq(deleted, 1);
		anc_replay_result_free(rp);
		/* back, for what follows */
		anc_record back = tu_sotu_record(&f.s, 1);
		anc_upsert_result ur;
		cr_assert_eq(anc_db_upsert(f.db, COLL, f.id, &back, 1, &ur, NULL,
		                           &err), ANC_OK, "%s", err.msg);
	}
	/* only dead citations: the claim's own passage is suggested */
	anc_claim cl2 = {f.s.vecs + 3 * TU_SOTU_DIM, TU_SOTU_DIM,
	                 (const anc_anchor_str *)&cited[2], NULL, 1};
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &cl2, 1, 0, &vr, &err),
	             ANC_OK);
	cr_assert_eq(vr->claims[0].verdict, ANC_VERDICT_MISCITED);
	cr_assert_neq(vr->claims[0].suggested[0], '\0');
	anc_verify_result_free(vr);
	/* nothing cited at all: the claim's own passage is suggested */
	anc_claim cl3 = {f.s.vecs, TU_SOTU_DIM, NULL, NULL, 0};
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &cl3, 1, 0, &vr, &err),
	             ANC_OK);
	cr_assert_eq(vr->claims[0].verdict, ANC_VERDICT_MISCITED);
	cr_assert_str_eq(vr->claims[0].suggested, f.s.anchors[0]);
	anc_verify_result_free(vr);
	sotu_db_close(&f);
}

Test(ground, verify_refuses_bad_input)
{
	sotu_db f;
	anc_verify_result *vr = NULL;
	anc_error err;
	float bad[TU_SOTU_DIM];
	anc_anchor_str junk = "not-an-anchor";

	sotu_db_open(&f, 0);
	anc_claim ok = {f.s.vecs, TU_SOTU_DIM, NULL, NULL, 0};
	anc_claim c = ok;
	c.dim = 100;
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &c, 1, 0, &vr, &err),
	             ANC_EDIM);
	cr_assert(strstr(err.msg, "claims[0]") != NULL, "%s", err.msg);
	memcpy(bad, f.s.vecs, sizeof bad);
	bad[17] = NAN;
	c = ok;
	c.vec = bad;
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &c, 1, 0, &vr, &err),
	             ANC_ENONFINITE);
	for (int i = 0; i < TU_SOTU_DIM; i++)
		bad[i] = f.s.vecs[i] * 3;
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &c, 1, 0, &vr, &err),
	             ANC_EVIOLATION);
	c = ok;
	c.cited = (const anc_anchor_str *)&junk;
	c.ncited = 1;
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &c, 1, 0, &vr, &err),
	             ANC_EINVAL);
	cr_assert(strstr(err.msg, "claims[0].cited[0]") != NULL, "%s", err.msg);
	c = ok;
	c.ncited = ANC_VERIFY_CITED_MAX + 1;
	c.cited = (const anc_anchor_str *)f.s.anchors;
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &c, 1, 0, &vr, &err),
	             ANC_ETOOBIG);
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &ok, 0, 0, &vr, &err),
	             ANC_EINVAL);
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, &ok,
	                           ANC_VERIFY_CLAIMS_MAX + 1, 0, &vr, &err),
	             ANC_ETOOBIG);
	cr_assert_eq(anc_db_verify(f.db, "nope", f.id, &ok, 1, 0, &vr, &err),
	             ANC_ENOCOLL);
	cr_assert_eq(anc_db_verify(f.db, COLL, "ffffffffffffffff", &ok, 1, 0,
	                           &vr, &err), ANC_ENOCONTRACT);
	cr_assert_null(vr);
	sotu_db_close(&f);
}

/* ---- receipts -------------------------------------------------------------------- */

Test(ground, receipt_roundtrip_tamper_and_replay)
{
	sotu_db f;
	anc_query_result *qr = NULL;
	anc_receipt *r = NULL;
	anc_replay_result *rp = NULL;
	anc_error err;
	anc_query_opts qo;
	memset(&qo, 0, sizeof qo);
	anc_receipt_id_str rid;
	struct stat sb;

	sotu_db_open(&f, 0);
	/* the secret was made on first open, readable by the owner only */
	cr_assert_eq(stat(tu_path(f.dir, "receipt.key"), &sb), 0);
	cr_assert_eq(sb.st_size, 32);
	cr_assert_eq(sb.st_mode & 0777, 0600);

	cr_assert_eq(anc_db_query2(f.db, COLL, NULL, f.s.vecs + 5 * TU_SOTU_DIM,
	                           1, TU_SOTU_DIM, 5, 0, &qo, &qr, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_receipt_query(f.db, COLL,
	                                  f.s.vecs + 5 * TU_SOTU_DIM, 1,
	                                  TU_SOTU_DIM, 5, 0, &qo, qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(strlen(qr->prov.receipt), ANC_RECEIPT_ID_LEN);
	memcpy(rid, qr->prov.receipt, sizeof rid);

	/* it reads back, authentic, with the same hits and old texts */
	cr_assert_eq(anc_db_receipt_get(f.db, rid, 1, &r, &err), ANC_OK, "%s",
	             err.msg);
	cr_assert(r->authentic);
	cr_assert_eq(r->kind, ANC_RECEIPT_QUERY);
	cr_assert_str_eq(r->prov.contract, f.id);
	cr_assert_eq(r->prov.seq, qr->prov.seq);
	cr_assert_eq(r->k, 5);
	cr_assert_eq(r->nq, 1);
	cr_assert_eq(r->dim, TU_SOTU_DIM);
	cr_assert_eq(strlen(r->digest), 64);
	cr_assert_eq(r->lists[0].nhits, 5);
	for (uint32_t j = 0; j < 5; j++) {
		cr_assert_str_eq(r->lists[0].hits[j].anchor,
		                 qr->lists[0].hits[j].anchor);
		cr_assert_eq(r->lists[0].hits[j].score,
		             qr->lists[0].hits[j].score);
		cr_assert_not_null(r->lists[0].hits[j].text);
	}
	cr_assert_str_eq(r->lists[0].hits[0].text, f.s.text[5]);
	printf("receipt %s: %u bytes for 1 query of %u floats and 5 hits\n",
	       rid, r->record_bytes, TU_SOTU_DIM);
	anc_receipt_free(r);
	r = NULL;

	/* nothing changed yet */
	cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err), ANC_OK, "%s",
	             err.msg);
	cr_assert(rp->unchanged);
	cr_assert_eq(rp->nchanges, 0);
	anc_replay_result_free(rp);

	/* edit the cited passage: replay reports the bumped revision, and
	 * the receipt still reads the text it vouched for */
	anc_record ed = {f.s.source[5], f.s.chunk[5], "edited text", NULL, 0,
	                 f.s.vecs + 5 * TU_SOTU_DIM, TU_SOTU_DIM};
	anc_upsert_result ur;
	cr_assert_eq(anc_db_upsert(f.db, COLL, f.id, &ed, 1, &ur, NULL, &err),
	             ANC_OK);
	cr_assert_eq(ur.revision, 2);
	/* and delete another hit */
	anc_delete_result dr;
	cr_assert_eq(anc_db_delete(f.db, COLL,
	                           (const anc_anchor_str *)qr->lists[0].hits[1]
	                               .anchor, 1, &dr, NULL, &err), ANC_OK);
	cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err), ANC_OK, "%s",
	             err.msg);
	cr_assert_eq(rp->unchanged, 0);
	int revised = 0, deleted = 0, added = 0;
	for (uint32_t i = 0; i < rp->nchanges; i++) {
		const anc_replay_change *c = &rp->changes[i];
		if (c->kind == ANC_CHANGE_REVISED) {
			cr_assert_str_eq(c->anchor, f.s.anchors[5]);
			cr_assert_eq(c->old_revision, 1);
			cr_assert_eq(c->new_revision, 2);
			revised++;
		} else if (c->kind == ANC_CHANGE_DELETED) {
			cr_assert_str_eq(c->anchor, qr->lists[0].hits[1].anchor);
			deleted++;
		} else if (c->kind == ANC_CHANGE_NEW) {
			added++;
		}
	}
	cr_assert_eq(revised, 1);
	cr_assert_eq(deleted, 1);
	/* the 6th best moved up into the top 5, but it is no better than
	 * what was returned: not a "new better hit" */
	cr_assert_eq(added, 0);
	cr_assert_gt(rp->now.seq, rp->then.seq);
	anc_replay_result_free(rp);
	/* a new passage with the query's own vector is */
	anc_record nw = {"new-source", "0", "new", NULL, 0,
	                 f.s.vecs + 5 * TU_SOTU_DIM, TU_SOTU_DIM};
	cr_assert_eq(anc_db_upsert(f.db, COLL, f.id, &nw, 1, &ur, NULL, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err), ANC_OK);
	added = 0;
	for (uint32_t i = 0; i < rp->nchanges; i++)
		if (rp->changes[i].kind == ANC_CHANGE_NEW) {
			cr_assert_str_eq(rp->changes[i].anchor, ur.anchor);
			cr_assert(rp->changes[i].new_score > 0.99f);
			added++;
		}
	cr_assert_eq(added, 1);
	anc_replay_result_free(rp);
	cr_assert_eq(anc_db_receipt_get(f.db, rid, 1, &r, &err), ANC_OK);
	cr_assert_str_eq(r->lists[0].hits[0].text, f.s.text[5]);
	anc_receipt_free(r);
	r = NULL;

	/* flip one byte of the text kept for the hits (the middle of each
	 * value: its text, past the 48-byte head and MAC): the record is
	 * intact, but the text it would print is not what it vouched for */
	cr_assert_eq(anc_db_close(f.db, &err), ANC_OK);
	cr_assert_gt(tu_db_tamper(f.dir, "revisions", 2, 0x01, 1), 0);
	f.db = db_open(f.dir);
	cr_assert_eq(anc_db_receipt_get(f.db, rid, 1, &r, &err), ANC_ETAMPERED);
	cr_assert_null(r);
	cr_assert(strstr(err.msg, rid) != NULL &&
	          strstr(err.msg, "the text kept for ") != NULL, "%s",
	          err.msg);
	/* without the text it still reads (the record is authentic) */
	cr_assert_eq(anc_db_receipt_get(f.db, rid, 0, &r, &err), ANC_OK, "%s",
	             err.msg);
	anc_receipt_free(r);
	r = NULL;

	/* flip one stored byte: show and replay refuse it as tampered */
	cr_assert_eq(anc_db_close(f.db, &err), ANC_OK);
	/* one byte in the middle of the only receipt */
	cr_assert_eq(tu_db_receipts_tamper(f.dir, 2, 0x01, 0), 1);
	f.db = db_open(f.dir);
	cr_assert_eq(anc_db_receipt_get(f.db, rid, 0, &r, &err), ANC_ETAMPERED);
	cr_assert(strstr(err.msg, "the stored record") != NULL &&
	          strstr(err.msg, "HMAC-SHA256") != NULL, "%s", err.msg);
	cr_assert_null(r);
	cr_assert_eq(anc_db_receipt_replay(f.db, rid, &rp, &err),
	             ANC_ETAMPERED);
	anc_ground_stats gs;
	cr_assert_eq(anc_db_ground_stats(f.db, &gs, &err), ANC_OK);
	cr_assert_eq(gs.receipts_tampered, 2);
	cr_assert_eq(gs.receipts_stored, 1);
	cr_assert_geq(gs.revisions_retained, 5);

	/* bad and unknown IDs */
	cr_assert_eq(anc_db_receipt_get(f.db, "xyz", 0, &r, &err), ANC_EINVAL);
	cr_assert_eq(anc_db_receipt_get(f.db,
	                                "0123456789abcdef0123456789ABCDEF",
	                                0, &r, &err), ANC_EINVAL);
	cr_assert_eq(anc_db_receipt_get(f.db,
	                                "0123456789abcdef0123456789abcdef",
	                                0, &r, &err), ANC_ENOTFOUND);

	/* An empty key file with receipts stored is refused, not made
	 * again: that would turn every stored receipt into TAMPERED. */
	{
		char kp[TU_PATH_MAX];
		size_t klen = 0;
		anc_db_options o;
		anc_db *db2 = NULL;
		snprintf(kp, sizeof kp, "%s", tu_path(f.dir, "receipt.key"));
		char *key = tu_file_read(kp, &klen);
		cr_assert_eq(klen, 32);
		cr_assert_eq(anc_db_close(f.db, &err), ANC_OK);
		cr_assert_eq(truncate(kp, 0), 0);
		tu_db_options(&o, 0, 0);
		cr_assert_eq(anc_db_open(f.dir, &o, &db2, &err), ANC_EINVAL,
		             "an empty key was replaced with receipts stored");
		cr_assert(strstr(err.msg, "0 bytes, expected 32") != NULL, "%s",
		          err.msg);
		tu_file_write(kp, key, klen);
		cr_assert_eq(chmod(kp, 0600), 0);
		free(key);
		f.db = db_open(f.dir);
	}
	anc_query_result_free(qr);
	sotu_db_close(&f);
}

Test(ground, verify_receipt_replay)
{
	sotu_db f;
	anc_verify_result *vr = NULL;
	anc_replay_result *rp = NULL;
	anc_receipt *r = NULL;
	anc_error err;

	sotu_db_open(&f, 0);
	anc_claim cl[2] = {
	    {f.s.vecs + 7 * TU_SOTU_DIM, TU_SOTU_DIM,
	     (const anc_anchor_str *)&f.s.anchors[7], NULL, 1},
	    {f.s.vecs + 8 * TU_SOTU_DIM, TU_SOTU_DIM,
	     (const anc_anchor_str *)&f.s.anchors[50], NULL, 1}};
	cr_assert_eq(anc_db_verify(f.db, COLL, f.id, cl, 2, 1, &vr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(strlen(vr->prov.receipt), ANC_RECEIPT_ID_LEN);
	cr_assert_eq(anc_db_receipt_get(f.db, vr->prov.receipt, 0, &r, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(r->kind, ANC_RECEIPT_VERIFY);
	cr_assert_eq(r->lists[0].verdict, ANC_VERDICT_SUPPORTED);
	cr_assert_eq(r->lists[1].verdict, ANC_VERDICT_MISCITED);
	cr_assert_eq(r->lists[1].nhits, 2); /* cited + the uncited best */
	anc_receipt_free(r);
	/* edit the cited passage 7 (new text, same vector) */
	anc_record ed = {f.s.source[7], f.s.chunk[7], "edited", NULL, 0,
	                 f.s.vecs + 7 * TU_SOTU_DIM, TU_SOTU_DIM};
	anc_upsert_result ur;
	cr_assert_eq(anc_db_upsert(f.db, COLL, f.id, &ed, 1, &ur, NULL, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_receipt_replay(f.db, vr->prov.receipt, &rp, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(rp->kind, ANC_RECEIPT_VERIFY);
	cr_assert_eq(rp->nchanges, 1);
	cr_assert_eq(rp->changes[0].kind, ANC_CHANGE_REVISED);
	cr_assert_str_eq(rp->changes[0].anchor, f.s.anchors[7]);
	cr_assert_eq(rp->changes[0].new_revision, 2);
	anc_replay_result_free(rp);
	anc_verify_result_free(vr);
	sotu_db_close(&f);
}

Test(ground, receipt_key_file_is_checked)
{
	const char *dir = tu_tmpdir();
	anc_db_options o;
	anc_db *db = NULL;
	anc_error err;
	char kp[1024];
	int fd;

	tu_db_options(&o, TU_DB_DRIFT, 0);
	cr_assert_eq(mkdir(tu_path(dir, "d"), 0755), 0);
	snprintf(kp, sizeof kp, "%s/d/receipt.key", dir);
	fd = open(kp, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	cr_assert_eq(chmod(kp, 0644), 0);
	cr_assert_eq(anc_db_open(tu_path(dir, "d"), &o, &db, &err),
	             ANC_EPRECONDITION);
	cr_assert(strstr(err.msg, "0600") != NULL, "%s", err.msg);
	cr_assert_eq(chmod(kp, 0600), 0);
	cr_assert_eq(truncate(kp, 31), 0);
	cr_assert_eq(anc_db_open(tu_path(dir, "d"), &o, &db, &err), ANC_EINVAL);
	cr_assert(strstr(err.msg, "31 bytes, expected 32") != NULL, "%s",
	          err.msg);
	cr_assert(strstr(err.msg, "move the file away") != NULL, "%s",
	          err.msg);
	cr_assert_eq(truncate(kp, 32), 0);
	cr_assert_eq(anc_db_open(tu_path(dir, "d"), &o, &db, &err), ANC_OK,
	             "%s", err.msg);
	anc_db_close(db, NULL);
	/* An empty key (a crash of the first start, before the key was
	 * written whole) is made again: no receipt can have used it. */
	{
		struct stat sb;
		char tmp[1100];
		cr_assert_eq(truncate(kp, 0), 0);
		cr_assert_eq(anc_db_open(tu_path(dir, "d"), &o, &db, &err),
		             ANC_OK, "%s", err.msg);
		anc_db_close(db, NULL);
		cr_assert_eq(stat(kp, &sb), 0);
		cr_assert_eq(sb.st_size, 32);
		cr_assert_eq(sb.st_mode & 0777, 0600);
		snprintf(tmp, sizeof tmp, "%s.tmp", kp);
		cr_assert_neq(access(tmp, F_OK), 0, "the temporary file stays");
	}
	/* a key given in the options wins, and the file is not needed */
	o.receipt_key_set = 1;
	memset(o.receipt_key, 7, sizeof o.receipt_key);
	cr_assert_eq(unlink(kp), 0);
	cr_assert_eq(anc_db_open(tu_path(dir, "d"), &o, &db, &err), ANC_OK);
	cr_assert_neq(access(kp, F_OK), 0);
	anc_db_close(db, NULL);
}
