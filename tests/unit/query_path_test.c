/*
 * query_path_test.c — issue 6's query-path fixes, each against its
 * reference:
 *
 *  - per-request HNSW efSearch (faiss_c_compat.cpp, hnsw_search_ef): faiss
 *    1.7.3 ignored SearchParametersHNSW::efSearch above the index's own
 *    value. A search with parameter ef must now return exactly what faiss
 *    itself returns with the index's efSearch set to ef, through an IDMap2,
 *    for L2 and inner product, one and two OpenMP threads; recall must
 *    grow with ef; wrong parameters stay faiss errors;
 *  - decoder paths (mpk.c) built without snprintf: byte-identical to the
 *    snprintf they replace, truncation included.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_ext.h"
#include "mpk.h"

#define D 32
#define NB 4000
#define NQ 200
#define K 10

static uint64_t rng_state;

static float
gauss(void)
{
	/* xorshift + Box-Muller: the same data on every run */
	double u[2];
	for (int i = 0; i < 2; i++) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		u[i] = ((rng_state >> 11) + 0.5) / 9007199254740992.0;
	}
	return (float)(sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]));
}

static float *
randn(size_t n)
{
	float *v = malloc(n * sizeof *v);
	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = gauss();
	return v;
}

static void
set_param(FaissIndex *idx, const char *name, double v)
{
	FaissParameterSpace *ps = NULL;
	cr_assert_eq(faiss_ParameterSpace_new(&ps), 0);
	cr_assert_eq(faiss_ParameterSpace_set_index_parameter(ps, idx, name, v),
	             0, "%s: %s", name, faiss_get_last_error());
	faiss_ParameterSpace_free(ps);
}

static double
recall(const idx_t *lab, const idx_t *gt)
{
	size_t found = 0;
	for (int q = 0; q < NQ; q++)
		for (int i = 0; i < K; i++)
			for (int j = 0; j < K; j++)
				if (lab[q * K + i] == gt[q * K + j]) {
					found++;
					break;
				}
	return (double)found / (NQ * K);
}

static void
ef_check(FaissMetricType metric)
{
	float *xb = randn((size_t)NB * D), *xq = randn((size_t)NQ * D);
	idx_t *ids = malloc(NB * sizeof *ids);
	idx_t gt[NQ * K], l1[NQ * K], l2[NQ * K];
	float gd[NQ * K], d1[NQ * K], d2[NQ * K];
	FaissIndex *idx = NULL, *flat = NULL;
	const int efs[] = {8, 16, 32, 128, 256};
	double rec[5];

	cr_assert_not_null(ids);
	for (int i = 0; i < NB; i++)
		ids[i] = 1000 + 3 * i; /* translated through the IDMap2 */
	cr_assert_eq(faiss_index_factory(&idx, D, "IDMap2,HNSW16", metric), 0);
	set_param(idx, "efConstruction", 40);
	cr_assert_eq(faiss_Index_add_with_ids(idx, NB, xb, ids), 0);
	cr_assert_eq(faiss_index_factory(&flat, D, "IDMap2,Flat", metric), 0);
	cr_assert_eq(faiss_Index_add_with_ids(flat, NB, xb, ids), 0);
	cr_assert_eq(faiss_Index_search(flat, NQ, xq, K, gd, gt), 0);

	for (int threads = 1; threads <= 2; threads++) {
		omp_set_num_threads(threads);
		for (size_t e = 0; e < sizeof efs / sizeof efs[0]; e++) {
			FaissSearchParametersHNSW *sp = NULL;
			/* reference: faiss with the index's own efSearch */
			set_param(idx, "efSearch", efs[e]);
			cr_assert_eq(faiss_Index_search(idx, NQ, xq, K, d1, l1), 0);
			/* under test: the index at 16, the request's ef */
			set_param(idx, "efSearch", 16);
			cr_assert_eq(faiss_SearchParametersHNSW_new_with(&sp, NULL,
			                                                 efs[e]),
			             0);
			cr_assert_eq(faiss_Index_search_with_params(
			                 idx, NQ, xq, K, (FaissSearchParameters *)sp,
			                 d2, l2),
			             0, "%s", faiss_get_last_error());
			faiss_SearchParameters_free((FaissSearchParameters *)sp);
			for (int i = 0; i < NQ * K; i++) {
				cr_assert_eq(l1[i], l2[i],
				             "ef %d, %d threads, entry %d: label %lld, "
				             "faiss says %lld", efs[e], threads, i,
				             (long long)l2[i], (long long)l1[i]);
				cr_assert_eq(d1[i], d2[i], "ef %d entry %d", efs[e], i);
			}
			rec[e] = recall(l2, gt);
		}
		/* the point of ef: more of it finds more */
		for (size_t e = 1; e < sizeof efs / sizeof efs[0]; e++)
			cr_assert_geq(rec[e], rec[e - 1] - 0.005,
			              "recall ef %d %.4f < ef %d %.4f", efs[e],
			              rec[e], efs[e - 1], rec[e - 1]);
		cr_assert_gt(rec[4], rec[1] + 0.05,
		             "ef 256 recall %.4f vs ef 16 %.4f: the parameter is "
		             "not honoured", rec[4], rec[1]);
	}
	omp_set_num_threads(1);
	faiss_Index_free(idx);
	faiss_Index_free(flat);
	free(ids);
	free(xb);
	free(xq);
}

Test(query_path, hnsw_ef_above_index_value_l2, .timeout = 120)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	ef_check(METRIC_L2);
}

Test(query_path, hnsw_ef_above_index_value_ip, .timeout = 120)
{
	rng_state = 0x2545f4914f6cdd1dull;
	ef_check(METRIC_INNER_PRODUCT);
}

/* What hnsw_search_ef does not handle still reaches faiss: the wrong
 * parameter type is faiss's error; an empty index answers -1 labels. */
Test(query_path, hnsw_ef_errors_and_empty)
{
	FaissIndex *idx = NULL;
	FaissSearchParametersIVF *pi = NULL;
	FaissSearchParametersHNSW *ph = NULL;
	float x[D] = {0}, dist[K];
	idx_t lab[K];

	cr_assert_eq(faiss_index_factory(&idx, D, "IDMap2,HNSW16", METRIC_L2), 0);
	cr_assert_eq(faiss_SearchParametersHNSW_new_with(&ph, NULL, 200), 0);
	cr_assert_eq(faiss_Index_search_with_params(
	                 idx, 1, x, K, (FaissSearchParameters *)ph, dist, lab),
	             0, "%s", faiss_get_last_error());
	for (int i = 0; i < K; i++)
		cr_assert_eq(lab[i], -1, "empty index, entry %d", i);
	cr_assert_eq(faiss_SearchParametersIVF_new_with(&pi, NULL, 4, 0), 0);
	cr_assert_eq(faiss_Index_search_with_params(
	                 idx, 1, x, K, (FaissSearchParameters *)pi, dist, lab),
	             -2);
	cr_assert_not_null(strstr(faiss_get_last_error(), "params"), "%s",
	                   faiss_get_last_error());
	faiss_SearchParameters_free((FaissSearchParameters *)ph);
	faiss_SearchParameters_free((FaissSearchParameters *)pi);
	faiss_Index_free(idx);
}

Test(query_path, mpk_paths_match_snprintf)
{
	/* snprintf into a buffer that holds everything, then cut where an
	 * MPK_PATH_MAX buffer would have: what snprintf(out, MPK_PATH_MAX)
	 * wrote, without a format-truncation warning */
	char got[MPK_PATH_MAX], want[400], longp[300];
	const char *parents[] = {"", "body", "body.results[3].hits", longp};
	const uint32_t idx[] = {0, 7, 10, 4294967295u};

	memset(longp, 'p', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	for (size_t p = 0; p < sizeof parents / sizeof parents[0]; p++) {
		/* lengths around the cut at MPK_PATH_MAX - 1 */
		for (size_t cut = 0; cut < 3; cut++) {
			char parent[300];
			size_t n = strlen(parents[p]);
			if (p == 3)
				n = MPK_PATH_MAX - 3 + cut;
			memcpy(parent, parents[p], n);
			parent[n] = '\0';
			mpk_path(got, parent, "anchor");
			if (parent[0] == '\0')
				snprintf(want, sizeof want, "%s", "anchor");
			else
				snprintf(want, sizeof want, "%s.%s", parent,
				         "anchor");
			want[MPK_PATH_MAX - 1] = '\0';
			cr_assert_str_eq(got, want);
			for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++) {
				mpk_path_idx(got, parent, idx[i]);
				snprintf(want, sizeof want, "%s[%u]", parent, idx[i]);
				want[MPK_PATH_MAX - 1] = '\0';
				cr_assert_str_eq(got, want);
			}
		}
	}
	mpk_path(got, NULL, "id");
	cr_assert_str_eq(got, "id");
}
