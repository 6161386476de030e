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
 *  - the SIMD flat storage (faiss_c_compat.cpp, "Distance kernels"): the
 *    distances of a flat and an HNSW index, L2 and inner product, at
 *    dimensions that use every tail of the kernels, equal a double-precision
 *    reference to float rounding and the flat top-k is the exact top-k; an
 *    HNSW index written and read back answers bit for bit the same; an
 *    hnsw_sq8 index's distances equal those of faiss's own scalar
 *    quantizer scan ("IDMap2,SQ8", which keeps faiss's code) over the same
 *    codes; an ivf_flat index probing every list is exact, and its
 *    distances are the kernels' (not faiss's scalar loop's) when active;
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
#include <faiss/c_api/index_io_c.h>

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

/* Distance of a and b in the metric's terms, in double. */
static double
ref_dist(FaissMetricType metric, const float *a, const float *b, int d)
{
	double acc = 0;
	for (int i = 0; i < d; i++)
		acc += metric == METRIC_L2 ? ((double)a[i] - b[i]) * (a[i] - b[i])
		                           : (double)a[i] * b[i];
	return acc;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Every answer of idx for the nq queries xq: its distance is the reference
 * distance of its label to float rounding, the list is ordered, and when
 * exact is set the labels are the true top K (up to ties within the
 * rounding). Labels are ids - 1000 (the IDMap2 translation). */
static void
simd_check(FaissIndex *idx, FaissMetricType metric, const float *xb, int nb,
           const float *xq, int nq, int d, int exact, float *dist,
           idx_t *lab)
{
	double *all = malloc((size_t)nb * sizeof *all);
	cr_assert_not_null(all);
	cr_assert_eq(faiss_Index_search(idx, nq, xq, K, dist, lab), 0, "%s",
	             faiss_get_last_error());
	for (int q = 0; q < nq; q++) {
		const float *x = xq + (size_t)q * d;
		for (int j = 0; j < nb; j++)
			all[j] = ref_dist(metric, x, xb + (size_t)j * d, d);
		for (int i = 0; i < K; i++) {
			idx_t l = lab[q * K + i];
			cr_assert(l >= 1000 && l < 1000 + nb,
			          "d %d query %d rank %d: label %lld", d, q, i,
			          (long long)l);
			double want = all[l - 1000], got = dist[q * K + i];
			double tol = 1e-5 * (fabs(want) + d);
			cr_assert(fabs(got - want) <= tol,
			          "d %d query %d rank %d: distance %.9g, reference "
			          "%.9g", d, q, i, got, want);
			if (i > 0)
				cr_assert(metric == METRIC_L2
				              ? dist[q * K + i - 1] <= got
				              : dist[q * K + i - 1] >= got,
				          "d %d query %d: rank %d out of order", d, q,
				          i);
		}
		if (!exact)
			continue;
		qsort(all, nb, sizeof *all, cmp_double);
		/* the K-th best reference distance bounds every answer */
		double kth = metric == METRIC_L2 ? all[K - 1] : all[nb - K];
		for (int i = 0; i < K; i++) {
			double got = dist[q * K + i], tol = 1e-5 * (fabs(kth) + d);
			cr_assert(metric == METRIC_L2 ? got <= kth + tol
			                              : got >= kth - tol,
			          "d %d query %d rank %d: %.9g is not in the top "
			          "%d (%.9g)", d, q, i, got, K, kth);
		}
	}
	free(all);
}

static void
simd_case(FaissMetricType metric, int d)
{
	const int nb = 1500, nq = 8; /* under faiss's BLAS threshold (20) */
	float *xb = randn((size_t)nb * d), *xq = randn((size_t)nq * d);
	idx_t *ids = malloc(nb * sizeof *ids), l1[8 * K], l2[8 * K];
	float d1[8 * K], d2[8 * K];
	FaissIndex *flat = NULL, *hnsw = NULL, *back = NULL;
	FILE *f = tmpfile();

	cr_assert_not_null(ids);
	cr_assert_not_null(f);
	for (int i = 0; i < nb; i++)
		ids[i] = 1000 + i;
	omp_set_num_threads(1);
	cr_assert_eq(faiss_index_factory(&flat, d, "IDMap2,Flat", metric), 0);
	cr_assert_eq(faiss_Index_add_with_ids(flat, nb, xb, ids), 0);
	simd_check(flat, metric, xb, nb, xq, nq, d, 1, d1, l1);

	cr_assert_eq(faiss_index_factory(&hnsw, d, "IDMap2,HNSW16", metric), 0);
	cr_assert_eq(faiss_Index_add_with_ids(hnsw, nb, xb, ids), 0);
	simd_check(hnsw, metric, xb, nb, xq, nq, d, 0, d1, l1);
	/* the file is faiss's own format and reads back the same index */
	cr_assert_eq(faiss_write_index(hnsw, f), 0, "%s", faiss_get_last_error());
	rewind(f);
	cr_assert_eq(faiss_read_index(f, 0, &back), 0, "%s",
	             faiss_get_last_error());
	cr_assert_eq(faiss_Index_ntotal(back), nb);
	cr_assert_eq(faiss_Index_search(back, nq, xq, K, d2, l2), 0);
	for (int i = 0; i < nq * K; i++) {
		cr_assert_eq(l1[i], l2[i], "d %d entry %d after a round trip", d,
		             i);
		cr_assert_eq(d1[i], d2[i], "d %d entry %d after a round trip", d,
		             i);
	}
	fclose(f);
	faiss_Index_free(back);
	faiss_Index_free(hnsw);
	faiss_Index_free(flat);
	free(ids);
	free(xb);
	free(xq);
}

/* 7: scalar tail only; 13 = 8 + 5; 37 = 2 x 16 + 5; 784 = 49 x 16:
 * Fashion-MNIST's dimension. */
Test(query_path, simd_storage_l2, .timeout = 120)
{
	const int dims[] = {7, 13, 37, 784};
	rng_state = 0x6a09e667f3bcc909ull;
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
		simd_case(METRIC_L2, dims[i]);
}

Test(query_path, simd_storage_ip, .timeout = 120)
{
	const int dims[] = {7, 13, 37, 784};
	rng_state = 0xbb67ae8584caa73bull;
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
		simd_case(METRIC_INNER_PRODUCT, dims[i]);
}

/* Against faiss's own IndexFlat (faiss_IndexFlat_new_with is not given
 * the kernels): on integer-valued data every sum is exact in float, so
 * labels and distances must be identical, ties (many here) included, for
 * k under, at and over ntotal, a batch on faiss's BLAS path (>= 20
 * queries) and two OpenMP threads. An empty index answers -1 labels (faiss
 * 1.7.3's own IndexFlat leaves the output unwritten there, which an IDMap
 * then translates through an empty id map; the engine never searches an
 * empty index). On gaussian data at d 784
 * the 8-lane sums round differently from faiss's sequential loop: some
 * distance must differ in its last bits when the kernels are active (this
 * CPU has AVX2 and FMA, ANCHORAGE_SIMD is not "off"), and none when not —
 * which shows the kernels are the code under test. */
Test(query_path, simd_flat_equals_faiss_flat, .timeout = 120)
{
	enum { NBI = 300, DI = 20, NQI = 24 };
	float xb[NBI * DI], xq[NQI * DI];
	float da[NQI * (NBI + 5)], db[NQI * (NBI + 5)];
	idx_t la[NQI * (NBI + 5)], lb[NQI * (NBI + 5)];
	const idx_t ks[] = {1, 10, NBI, NBI + 5};
	FaissMetricType metrics[] = {METRIC_L2, METRIC_INNER_PRODUCT};
	const char *env = getenv("ANCHORAGE_SIMD");
	int active = __builtin_cpu_supports("avx2") &&
	             __builtin_cpu_supports("fma") &&
	             (env == NULL || strcmp(env, "off") != 0);

	rng_state = 0x510e527fade682d1ull;
	for (int i = 0; i < NBI * DI; i++)
		xb[i] = (float)((int)(gauss() * 3));
	for (int i = 0; i < NQI * DI; i++)
		xq[i] = (float)((int)(gauss() * 3));
	for (int m = 0; m < 2; m++) {
		FaissIndexFlat *plain = NULL;
		FaissIndex *ours = NULL;
		idx_t *ids = malloc(NBI * sizeof *ids);
		cr_assert_not_null(ids);
		for (int i = 0; i < NBI; i++)
			ids[i] = i;
		cr_assert_eq(faiss_IndexFlat_new_with(&plain, DI, metrics[m]), 0);
		cr_assert_eq(faiss_index_factory(&ours, DI, "IDMap2,Flat",
		                                 metrics[m]), 0);
		if (active) {
			cr_assert_eq(faiss_Index_search(ours, 3, xq, 10, db, lb), 0);
			for (int i = 0; i < 30; i++)
				cr_assert_eq(lb[i], -1, "empty index, entry %d", i);
		}
		cr_assert_eq(faiss_Index_add((FaissIndex *)plain, NBI, xb), 0);
		cr_assert_eq(faiss_Index_add_with_ids(ours, NBI, xb, ids), 0);
		{
			for (int t = 1; t <= 2; t++)
				for (size_t ki = 0; ki < 4; ki++)
					for (int nq = 3; nq <= NQI; nq += NQI - 3) {
						idx_t k = ks[ki];
						omp_set_num_threads(t);
						cr_assert_eq(faiss_Index_search(
						    (FaissIndex *)plain, nq, xq, k, da, la), 0);
						cr_assert_eq(faiss_Index_search(ours, nq, xq,
						    k, db, lb), 0);
						for (idx_t i = 0; i < nq * k; i++)
							cr_assert(la[i] == lb[i] &&
							          memcmp(&da[i], &db[i],
							                 sizeof da[i]) == 0,
							          "metric %d, k %lld, nq %d, "
							          "%d threads, entry %lld: %lld "
							          "%.9g, faiss %lld %.9g",
							          m, (long long)k, nq, t, (long long)i,
							          (long long)lb[i], db[i],
							          (long long)la[i], da[i]);
					}
		}
		omp_set_num_threads(1);
		faiss_Index_free((FaissIndex *)plain);
		faiss_Index_free(ours);
		free(ids);
	}

	/* the kernels are what runs */
	{
		const int d = 784, nb = 200, nq = 4;
		float *gb = randn((size_t)nb * d), *gq = randn((size_t)nq * d);
		float d1[4 * 10], d2[4 * 10];
		idx_t l1[4 * 10], l2[4 * 10];
		FaissIndexFlat *plain = NULL;
		FaissIndex *ours = NULL;
		int differ = 0;
		cr_assert_eq(faiss_IndexFlat_new_with(&plain, d, METRIC_L2), 0);
		idx_t gid[200];
		for (int i = 0; i < nb; i++)
			gid[i] = i;
		cr_assert_eq(faiss_index_factory(&ours, d, "IDMap2,Flat",
		                                 METRIC_L2), 0);
		cr_assert_eq(faiss_Index_add((FaissIndex *)plain, nb, gb), 0);
		cr_assert_eq(faiss_Index_add_with_ids(ours, nb, gb, gid), 0);
		cr_assert_eq(faiss_Index_search((FaissIndex *)plain, nq, gq, 10,
		                                d1, l1), 0);
		cr_assert_eq(faiss_Index_search(ours, nq, gq, 10, d2, l2), 0);
		for (int i = 0; i < nq * 10; i++)
			differ += memcmp(&d1[i], &d2[i], sizeof d1[i]) != 0;
		cr_assert_eq(differ > 0, active,
		             "%d of %d distances differ from faiss's scalar loop, "
		             "kernels %s", differ, nq * 10,
		             active ? "expected" : "not expected");
		faiss_Index_free((FaissIndex *)plain);
		faiss_Index_free(ours);
		free(gb);
		free(gq);
	}
}

static void
ivf_case(FaissMetricType metric, int d)
{
	const int nb = 1500, nq = 8;
	float *xb = randn((size_t)nb * d), *xq = randn((size_t)nq * d);
	float d1[8 * K], d2[8 * K], d3[8 * K];
	idx_t l1[8 * K], l2[8 * K], l3[8 * K];
	idx_t *ids = malloc(nb * sizeof *ids);
	FaissIndex *ivf = NULL, *back = NULL;
	FaissIndexFlat *plain = NULL;
	FILE *f = tmpfile();
	const char *env = getenv("ANCHORAGE_SIMD");
	int active = __builtin_cpu_supports("avx2") &&
	             __builtin_cpu_supports("fma") &&
	             (env == NULL || strcmp(env, "off") != 0);
	int differ = 0;

	cr_assert(ids != NULL && f != NULL);
	for (int i = 0; i < nb; i++)
		ids[i] = 1000 + i;
	omp_set_num_threads(1);
	cr_assert_eq(faiss_index_factory(&ivf, d, "IDMap2,IVF16,Flat", metric),
	             0);
	cr_assert_eq(faiss_Index_train(ivf, nb, xb), 0, "%s",
	             faiss_get_last_error());
	cr_assert_eq(faiss_Index_add_with_ids(ivf, nb, xb, ids), 0);
	set_param(ivf, "nprobe", 16); /* every list: exact */
	simd_check(ivf, metric, xb, nb, xq, nq, d, 1, d1, l1);

	/* faiss's scalar loop gives the same sums as its IndexFlat */
	cr_assert_eq(faiss_IndexFlat_new_with(&plain, d, metric), 0);
	cr_assert_eq(faiss_Index_add((FaissIndex *)plain, nb, xb), 0);
	cr_assert_eq(faiss_Index_search((FaissIndex *)plain, nq, xq, K, d3, l3),
	             0);
	for (int i = 0; i < nq * K; i++)
		if (l3[i] + 1000 == l1[i])
			differ += memcmp(&d1[i], &d3[i], sizeof d1[i]) != 0;
	if (d >= 16)
		cr_assert_eq(differ > 0, active, "d %d: %d distances differ from "
		             "faiss's scalar loop, kernels %s", d, differ,
		             active ? "expected" : "not expected");

	cr_assert_eq(faiss_write_index(ivf, f), 0, "%s", faiss_get_last_error());
	rewind(f);
	cr_assert_eq(faiss_read_index(f, 0, &back), 0, "%s",
	             faiss_get_last_error());
	set_param(back, "nprobe", 16);
	cr_assert_eq(faiss_Index_search(back, nq, xq, K, d2, l2), 0);
	for (int i = 0; i < nq * K; i++)
		cr_assert(l1[i] == l2[i] && d1[i] == d2[i],
		          "d %d entry %d after a round trip", d, i);
	fclose(f);
	faiss_Index_free((FaissIndex *)plain);
	faiss_Index_free(back);
	faiss_Index_free(ivf);
	free(ids);
	free(xb);
	free(xq);
}

Test(query_path, simd_ivf_flat, .timeout = 120)
{
	const int dims[] = {7, 37, 784};
	rng_state = 0xa54ff53a5f1d36f1ull;
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		ivf_case(METRIC_L2, dims[i]);
		ivf_case(METRIC_INNER_PRODUCT, dims[i]);
	}
}

static void
sq8_case(FaissMetricType metric, int d)
{
	const int nb = 1500, nq = 8;
	float *xb = randn((size_t)nb * d), *xq = randn((size_t)nq * d);
	float *fd = malloc((size_t)nq * nb * sizeof *fd), d1[8 * K], d2[8 * K];
	idx_t *fl = malloc((size_t)nq * nb * sizeof *fl), l1[8 * K], l2[8 * K];
	idx_t *ids = malloc(nb * sizeof *ids);
	FaissIndex *ref = NULL, *hnsw = NULL, *back = NULL;
	FILE *f = tmpfile();

	cr_assert(fd != NULL && fl != NULL && ids != NULL && f != NULL);
	for (int i = 0; i < nb; i++)
		ids[i] = 1000 + i;
	omp_set_num_threads(1);
	/* faiss's own scan over the same 8-bit codes (training is
	 * deterministic: per-dimension min and max) */
	cr_assert_eq(faiss_index_factory(&ref, d, "IDMap2,SQ8", metric), 0);
	cr_assert_eq(faiss_Index_train(ref, nb, xb), 0);
	cr_assert_eq(faiss_Index_add_with_ids(ref, nb, xb, ids), 0);
	cr_assert_eq(faiss_Index_search(ref, nq, xq, nb, fd, fl), 0, "%s",
	             faiss_get_last_error());

	cr_assert_eq(faiss_index_factory(&hnsw, d, "IDMap2,HNSW16_SQ8", metric),
	             0);
	cr_assert_eq(faiss_Index_train(hnsw, nb, xb), 0);
	cr_assert_eq(faiss_Index_add_with_ids(hnsw, nb, xb, ids), 0);
	set_param(hnsw, "efSearch", 200);
	cr_assert_eq(faiss_Index_search(hnsw, nq, xq, K, d1, l1), 0, "%s",
	             faiss_get_last_error());
	for (int q = 0; q < nq; q++)
		for (int i = 0; i < K; i++) {
			idx_t l = l1[q * K + i];
			int j = 0;
			while (j < nb && fl[(size_t)q * nb + j] != l)
				j++;
			cr_assert(j < nb, "d %d query %d: label %lld unknown to "
			          "faiss's scan", d, q, (long long)l);
			double want = fd[(size_t)q * nb + j], got = d1[q * K + i];
			cr_assert(fabs(got - want) <= 1e-5 * (fabs(want) + d),
			          "d %d query %d rank %d: distance %.9g, faiss's "
			          "scan %.9g", d, q, i, got, want);
		}
	cr_assert_eq(faiss_write_index(hnsw, f), 0, "%s", faiss_get_last_error());
	rewind(f);
	cr_assert_eq(faiss_read_index(f, 0, &back), 0, "%s",
	             faiss_get_last_error());
	set_param(back, "efSearch", 200);
	cr_assert_eq(faiss_Index_search(back, nq, xq, K, d2, l2), 0);
	for (int i = 0; i < nq * K; i++)
		cr_assert(l1[i] == l2[i] && d1[i] == d2[i],
		          "d %d entry %d after a round trip", d, i);
	fclose(f);
	faiss_Index_free(back);
	faiss_Index_free(hnsw);
	faiss_Index_free(ref);
	free(ids);
	free(fl);
	free(fd);
	free(xb);
	free(xq);
}

Test(query_path, simd_sq8_matches_faiss_scan, .timeout = 120)
{
	const int dims[] = {7, 13, 37, 784};
	rng_state = 0x3c6ef372fe94f82bull;
	for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
		sq8_case(METRIC_L2, dims[i]);
		sq8_case(METRIC_INNER_PRODUCT, dims[i]);
	}
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
