/*
 * drift_test.c — the drift statistics of index/drift.c on synthetic data
 * with known answers: Wasserstein-1, ROC AUC, MMD and its permutation
 * test, the domain classifier, Welford moments, the reservoir, the
 * per-query flag, the report's status rule, and the configuration checks.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anc_proto.h"
#include "drift.h"

/* Deterministic Gaussian samples (Box-Muller over splitmix64). */
static uint64_t g_rng = 42;

static double
unif(void)
{
	uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static double
gauss(void)
{
	return sqrt(-2 * log(unif())) * cos(2 * M_PI * unif());
}

/* n x dim Gaussian vectors with mean mu in dimension 0..shift_dims-1. */
static float *
gaussians(uint32_t n, uint32_t dim, double mu, uint32_t shift_dims)
{
	float *v = malloc((size_t)n * dim * sizeof(float));
	cr_assert_not_null(v);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++)
			v[(size_t)i * dim + j] =
			    (float)(gauss() + (j < shift_dims ? mu : 0));
	return v;
}

static void
normalise(float *v, uint32_t n, uint32_t dim)
{
	for (uint32_t i = 0; i < n; i++) {
		double s = 0;
		for (uint32_t j = 0; j < dim; j++)
			s += (double)v[(size_t)i * dim + j] * v[(size_t)i * dim + j];
		s = sqrt(s);
		for (uint32_t j = 0; j < dim; j++)
			v[(size_t)i * dim + j] = (float)(v[(size_t)i * dim + j] / s);
	}
}

Test(drift, wasserstein_known_answers)
{
	double a[] = {0, 1, 2, 3}, b[] = {0, 1, 2, 3};
	cr_assert_float_eq(anc_drift_wasserstein1(a, 4, b, 4), 0.0, 1e-12);
	double c[] = {3, 1, 2, 0}, e[] = {5.5, 2.5, 4.5, 3.5};
	/* a shift by 2.5 moves every quantile by 2.5 */
	cr_assert_float_eq(anc_drift_wasserstein1(c, 4, e, 4), 2.5, 1e-12);
	double f[] = {0}, g[] = {1, 1, 1};
	cr_assert_float_eq(anc_drift_wasserstein1(f, 1, g, 3), 1.0, 1e-12);
	/* {0,1} vs {0}: half the mass moves by 1 */
	double h[] = {0, 1}, k[] = {0};
	cr_assert_float_eq(anc_drift_wasserstein1(h, 2, k, 1), 0.5, 1e-12);
	cr_assert_float_eq(anc_drift_wasserstein1(h, 0, k, 1), 0.0, 1e-12);
}

Test(drift, auc_known_answers)
{
	float s[] = {0.1f, 0.2f, 0.8f, 0.9f};
	uint8_t y[] = {0, 0, 1, 1}, yr[] = {1, 1, 0, 0}, one[] = {1, 1, 1, 1};
	cr_assert_float_eq(anc_drift_auc(s, y, 4, NULL), 1.0, 1e-12);
	cr_assert_float_eq(anc_drift_auc(s, yr, 4, NULL), 0.0, 1e-12);
	float t[] = {0.5f, 0.5f, 0.5f, 0.5f};
	cr_assert_float_eq(anc_drift_auc(t, y, 4, NULL), 0.5, 1e-12);
	/* one class only: undefined, reported as chance */
	cr_assert_float_eq(anc_drift_auc(s, one, 4, NULL), 0.5, 1e-12);
	/* 0.1(0) 0.5(1) 0.5(0) 0.9(1): pairs (pos>neg) 0.5>0.1, 0.9>both,
	 * 0.5=0.5 half -> (1 + 2 + 0.5) / 4 */
	float u[] = {0.1f, 0.5f, 0.5f, 0.9f};
	uint8_t yu[] = {0, 1, 0, 1};
	cr_assert_float_eq(anc_drift_auc(u, yu, 4, NULL), 0.875, 1e-12);
}

Test(drift, mmd_same_and_shifted)
{
	anc_error err;
	double m2, p;
	uint32_t dim = 16;
	float *x = gaussians(200, dim, 0, 0), *y = gaussians(200, dim, 0, 0);
	float *z = gaussians(200, dim, 1.0, dim);
	cr_assert_eq(anc_drift_mmd(x, 200, y, 200, dim, 100, 7, &m2, &p, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_gt(p, 0.05, "same distribution: p %g", p);
	cr_expect_lt(fabs(m2), 0.01, "mmd2 %g", m2);
	cr_assert_eq(anc_drift_mmd(x, 200, z, 200, dim, 100, 7, &m2, &p, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_eq(p, 0.0, "shifted: p %g", p);
	cr_expect_gt(m2, 0.1, "mmd2 %g", m2);
	/* identical sets: no distance at all, nothing to tell apart */
	cr_assert_eq(anc_drift_mmd(x, 200, x, 200, dim, 20, 7, &m2, &p, &err),
	             ANC_OK);
	cr_expect_gt(p, 0.05);
	/* too small */
	cr_assert_eq(anc_drift_mmd(x, 1, y, 200, dim, 20, 7, &m2, &p, &err),
	             ANC_EINVAL);
	cr_expect(strstr(err.msg, "at least 2") != NULL, "%s", err.msg);
	free(x);
	free(y);
	free(z);
}

Test(drift, mmd_false_alarm_rate_is_near_alpha)
{
	anc_error err;
	uint32_t dim = 8, fired = 0, runs = 40;
	for (uint32_t r = 0; r < runs; r++) {
		double m2, p;
		float *x = gaussians(64, dim, 0, 0), *y = gaussians(64, dim, 0, 0);
		cr_assert_eq(anc_drift_mmd(x, 64, y, 64, dim, 100, r, &m2, &p,
		                           &err), ANC_OK);
		fired += p < 0.05;
		free(x);
		free(y);
	}
	/* 5% expected: 2 of 40; 7 or more would be a 0.2% event */
	cr_expect_leq(fired, 6, "%u of %u null runs fired", fired, runs);
}

Test(drift, classifier_separable_and_not)
{
	anc_error err;
	double auc;
	uint32_t dim = 32;
	float *x = gaussians(300, dim, 0, 0), *y = gaussians(300, dim, 0, 0);
	float *z = gaussians(300, dim, 1.5, 4);
	cr_assert_eq(anc_drift_classifier_auc(x, 300, z, 300, dim, 5, 8, 1,
	                                      &auc, &err), ANC_OK, "%s", err.msg);
	cr_expect_gt(auc, 0.9, "separable: auc %g", auc);
	cr_assert_eq(anc_drift_classifier_auc(x, 300, y, 300, dim, 5, 8, 1,
	                                      &auc, &err), ANC_OK);
	cr_expect_lt(auc, 0.55, "same: auc %g", auc);
	cr_expect_gt(auc, 0.40, "same: auc %g", auc);
	cr_assert_eq(anc_drift_classifier_auc(x, 3, y, 300, dim, 5, 8, 1, &auc,
	                                      &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "one per fold") != NULL, "%s", err.msg);
	free(x);
	free(y);
	free(z);
}

Test(drift, config_checks_name_the_field)
{
	anc_drift_config c;
	anc_error err;
	anc_drift *d = NULL;
	anc_drift_config_default(&c);
	cr_assert_eq(anc_drift_config_check(&c, &err), ANC_OK);
	cr_expect_eq(c.window, 1024);
	cr_expect_eq(c.permutations, 100);
	cr_expect_float_eq(c.auc, 0.55, 1e-12);
	c.window = 3;
	cr_assert_eq(anc_drift_config_check(&c, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "window") && strstr(err.msg, "got 3"), "%s",
	          err.msg);
	anc_drift_config_default(&c);
	c.auc = 0.4;
	cr_assert_eq(anc_drift_config_check(&c, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "auc") != NULL, "%s", err.msg);
	anc_drift_config_default(&c);
	c.p_value = NAN;
	cr_assert_eq(anc_drift_config_check(&c, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "p_value") != NULL, "%s", err.msg);
	anc_drift_config_default(&c);
	c.min_window = 2000;
	cr_assert_eq(anc_drift_config_check(&c, &err), ANC_EINVAL);
	cr_expect(strstr(err.msg, "min_window") != NULL, "%s", err.msg);
	cr_assert_eq(anc_drift_create(0, ANC_METRIC_L2, NULL, 1, &d, &err),
	             ANC_EINVAL);
	cr_expect_null(d);
	cr_assert_eq(anc_drift_create(4, ANC_METRIC_L2, &c, 1, &d, &err),
	             ANC_EINVAL);
	cr_expect_null(d);
	anc_drift_destroy(NULL);
}

Test(drift, welford_and_reservoir)
{
	anc_error err;
	anc_drift *d;
	anc_drift_config c;
	anc_drift_config_default(&c);
	c.reservoir = 100;
	c.min_reference = 50;
	c.min_window = 50;
	cr_assert_eq(anc_drift_create(1, ANC_METRIC_L2, &c, 3, &d, &err), ANC_OK);
	/* values 0..9999: the reservoir must be a uniform sample */
	float *v = malloc(10000 * sizeof(float));
	for (int i = 0; i < 10000; i++)
		v[i] = (float)i;
	anc_drift_ref_add(d, v, 10000, 0);
	cr_expect_eq(anc_drift_ref_count(d), 10000);
	cr_expect(anc_drift_ref_stale(d));
	float sample[100];
	uint32_t n;
	anc_drift_ref_sample(d, sample, 100, &n);
	cr_assert_eq(n, 100);
	double m = 0;
	int late = 0;
	for (uint32_t i = 0; i < n; i++) {
		m += sample[i];
		late += sample[i] >= 5000;
	}
	m /= n;
	/* mean of a uniform sample of 100 from 0..9999: 4999.5 +- 289 */
	cr_expect(fabs(m - 4999.5) < 1200, "reservoir mean %g", m);
	cr_expect(late > 25 && late < 75, "%d of 100 from the second half", late);
	anc_drift_refresh(d, NULL, 0);
	cr_expect(!anc_drift_ref_stale(d));
	/* the window: 60 queries near the mean are not flagged, a far one
	 * is */
	int flag;
	float score;
	float q = 5000;
	anc_drift_observe_query(d, &q, 0, 0, &flag, &score);
	cr_expect_eq(flag, 0);
	cr_expect_lt(score, 0.1);
	q = 50000;
	anc_drift_observe_query(d, &q, 0, 0, &flag, &score);
	cr_expect_eq(flag, 1);
	cr_expect_gt(score, 5);
	anc_drift_destroy(d);
	free(v);
}

/* A tracker over ref, a window from win; the report. */
static void
run_report(anc_metric metric, const float *ref, uint32_t nref,
           const float *win, uint32_t nwin, uint32_t dim,
           anc_drift_report *rep)
{
	anc_error err;
	anc_drift *d;
	cr_assert_eq(anc_drift_create(dim, metric, NULL, 11, &d, &err), ANC_OK);
	anc_drift_ref_add(d, ref, nref, 1);
	/* reference top-1 scores: give it a spread of similarities */
	float sc[256];
	for (int i = 0; i < 256; i++)
		sc[i] = 0.5f + 0.4f * (float)i / 256;
	anc_drift_refresh(d, sc, 256);
	for (uint32_t i = 0; i < nwin; i++)
		anc_drift_observe_query(d, win + (size_t)i * dim,
		                        0.5f + 0.4f * (float)(i % 256) / 256, 1,
		                        NULL, NULL);
	memset(rep, 0, sizeof *rep);
	cr_assert_eq(anc_drift_report_compute(d, rep, &err), ANC_OK, "%s",
	             err.msg);
	anc_drift_destroy(d);
}

Test(drift, report_ok_on_the_same_distribution)
{
	uint32_t dim = 32;
	float *ref = gaussians(3000, dim, 0, 0), *win = gaussians(512, dim, 0, 0);
	normalise(ref, 3000, dim);
	normalise(win, 512, dim);
	anc_drift_report rep;
	run_report(ANC_METRIC_COSINE, ref, 3000, win, 512, dim, &rep);
	cr_expect_eq(rep.status, ANC_DRIFT_OK, "status %d, %u fired",
	             rep.status, rep.nfired);
	cr_expect_eq(rep.reference_count, 3000);
	cr_expect_eq(rep.reference_sample, 1024);
	cr_expect_eq(rep.window, 512);
	cr_expect_eq(rep.writes_seen, 3000);
	cr_expect_geq(rep.write_centroid_distance, 0);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++)
		cr_expect(rep.stats[i].computed, "stat %d computed", i);
	cr_expect_lt(rep.stats[ANC_DRIFT_STAT_CLASSIFIER].value, 0.55);
	cr_expect_gt(rep.stats[ANC_DRIFT_STAT_MMD].value, 0.05);
	cr_expect_lt(rep.stats[ANC_DRIFT_STAT_COMPONENTS].value, 0.2);
	/* the score column was fed from the reference's own spread */
	cr_expect_lt(rep.stats[ANC_DRIFT_STAT_SCORE].value, 0.1);
	free(ref);
	free(win);
}

/* Small windows and repeated queries of the reference's own distribution
 * are not drift: a window of 100 (Evidently's 0.1 per component is below
 * the sampling noise there), and the same 100 sent three times (repeats
 * count once). */
Test(drift, report_ok_on_small_and_repeated_windows)
{
	uint32_t dim = 32;
	float *ref = gaussians(3000, dim, 0, 0), *win = gaussians(100, dim, 0, 0);
	float *rep3 = malloc((size_t)300 * dim * sizeof(float));
	anc_drift_report rep;

	normalise(ref, 3000, dim);
	normalise(win, 100, dim);
	for (uint32_t r = 0; r < 3; r++)
		memcpy(rep3 + (size_t)r * 100 * dim, win,
		       (size_t)100 * dim * sizeof(float));
	run_report(ANC_METRIC_COSINE, ref, 3000, win, 100, dim, &rep);
	cr_expect_eq(rep.status, ANC_DRIFT_OK, "window of 100: status %d, %u "
	             "fired, components %g", rep.status, rep.nfired,
	             rep.stats[ANC_DRIFT_STAT_COMPONENTS].value);
	cr_expect_lt(rep.stats[ANC_DRIFT_STAT_COMPONENTS].value, 0.2);
	/* the threshold in force: 2.5 x sqrt(1/100 + 1/1024) */
	cr_expect_float_eq(rep.stats[ANC_DRIFT_STAT_COMPONENTS].detail,
	                   2.5 * sqrt(1.0 / 100 + 1.0 / 1024), 1e-9);
	run_report(ANC_METRIC_COSINE, ref, 3000, rep3, 300, dim, &rep);
	cr_expect_eq(rep.window, 100, "distinct queries: %u", rep.window);
	cr_expect_eq(rep.status, ANC_DRIFT_OK, "repeated: status %d, %u fired "
	             "(centroid %g/%g, auc %g)", rep.status, rep.nfired,
	             rep.stats[ANC_DRIFT_STAT_CENTROID].value,
	             rep.stats[ANC_DRIFT_STAT_CENTROID].threshold,
	             rep.stats[ANC_DRIFT_STAT_CLASSIFIER].value);
	/* a shifted window repeated is still drift */
	float *sh = gaussians(100, dim, 0.8, 12);
	for (uint32_t r = 0; r < 3; r++)
		memcpy(rep3 + (size_t)r * 100 * dim, sh,
		       (size_t)100 * dim * sizeof(float));
	float *ref2 = gaussians(3000, dim, 0, 0);
	run_report(ANC_METRIC_L2, ref2, 3000, rep3, 300, dim, &rep);
	cr_expect_eq(rep.window, 100);
	cr_expect_eq(rep.status, ANC_DRIFT_DRIFT, "status %d", rep.status);
	free(ref);
	free(ref2);
	free(win);
	free(sh);
	free(rep3);
}

Test(drift, report_drift_on_a_shift)
{
	uint32_t dim = 32;
	float *ref = gaussians(3000, dim, 0, 0), *win = gaussians(512, dim, 0.8, 12);
	anc_drift_report rep;
	run_report(ANC_METRIC_L2, ref, 3000, win, 512, dim, &rep);
	cr_expect_eq(rep.status, ANC_DRIFT_DRIFT, "status %d", rep.status);
	cr_expect(rep.stats[ANC_DRIFT_STAT_CENTROID].fired);
	cr_expect_gt(rep.stats[ANC_DRIFT_STAT_CENTROID].value,
	             rep.stats[ANC_DRIFT_STAT_CENTROID].threshold);
	cr_expect(rep.stats[ANC_DRIFT_STAT_MMD].fired);
	cr_expect(rep.stats[ANC_DRIFT_STAT_CLASSIFIER].fired);
	/* 12 of 32 components moved by 0.8 std: share 0.375 */
	cr_expect_float_eq(rep.stats[ANC_DRIFT_STAT_COMPONENTS].value, 0.375,
	                   0.07);
	cr_expect(rep.stats[ANC_DRIFT_STAT_COMPONENTS].fired);
	cr_expect_geq(rep.nfired, 3);
	free(ref);
	free(win);
}

Test(drift, report_insufficient_data)
{
	uint32_t dim = 8;
	float *ref = gaussians(500, dim, 0, 0), *win = gaussians(10, dim, 0, 0);
	anc_drift_report rep;
	run_report(ANC_METRIC_L2, ref, 500, win, 10, dim, &rep);
	cr_expect_eq(rep.status, ANC_DRIFT_INSUFFICIENT);
	cr_expect_eq(rep.window, 10);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++)
		cr_expect(!rep.stats[i].computed);
	/* no reference at all */
	run_report(ANC_METRIC_L2, ref, 0, ref, 500, dim, &rep);
	cr_expect_eq(rep.status, ANC_DRIFT_INSUFFICIENT);
	free(ref);
	free(win);
}

Test(drift, window_slides_and_resets)
{
	anc_error err;
	anc_drift *d;
	anc_drift_config c;
	anc_drift_report rep;
	anc_drift_config_default(&c);
	c.window = 100;
	c.min_window = 50;
	cr_assert_eq(anc_drift_create(2, ANC_METRIC_L2, &c, 1, &d, &err), ANC_OK);
	for (int i = 0; i < 250; i++) {
		float v[2] = {(float)i, 2}; /* distinct: repeats count once */
		anc_drift_observe_query(d, v, 1, 1, NULL, NULL);
	}
	cr_assert_eq(anc_drift_report_compute(d, &rep, &err), ANC_OK);
	cr_expect_eq(rep.window, 100);
	cr_expect_eq(rep.queries_seen, 250);
	cr_expect_eq(rep.status, ANC_DRIFT_INSUFFICIENT); /* no reference */
	anc_drift_window_reset(d);
	cr_assert_eq(anc_drift_report_compute(d, &rep, &err), ANC_OK);
	cr_expect_eq(rep.window, 0);
	/* a bigger window through configure: rings cleared, data kept */
	c.window = 200;
	cr_assert_eq(anc_drift_configure(d, &c, &err), ANC_OK);
	anc_drift_config got;
	anc_drift_config_get(d, &got);
	cr_expect_eq(got.window, 200);
	c.window = 1;
	cr_assert_eq(anc_drift_configure(d, &c, &err), ANC_EINVAL);
	anc_drift_config_get(d, &got);
	cr_expect_eq(got.window, 200, "a refused config changes nothing");
	anc_drift_destroy(d);
}

Test(drift, per_query_flag_on_top1_score)
{
	anc_error err;
	anc_drift *d;
	uint32_t dim = 16;
	float *ref = gaussians(500, dim, 0, 0);
	normalise(ref, 500, dim);
	cr_assert_eq(anc_drift_create(dim, ANC_METRIC_COSINE, NULL, 5, &d, &err),
	             ANC_OK);
	anc_drift_ref_add(d, ref, 500, 0);
	int flag;
	float score;
	/* before any refresh: no thresholds, no flag, not scored (NaN) */
	anc_drift_observe_query(d, ref, 0.0f, 1, &flag, &score);
	cr_expect_eq(flag, 0);
	cr_expect(isnan(score), "%g", score);
	float sc[100];
	for (int i = 0; i < 100; i++)
		sc[i] = 0.6f + 0.003f * (float)i; /* p1 ~ 0.603 */
	anc_drift_refresh(d, sc, 100);
	anc_drift_observe_query(d, ref, 0.8f, 1, &flag, &score);
	cr_expect_eq(flag, 0, "a reference vector with a good top-1");
	anc_drift_observe_query(d, ref, 0.2f, 1, &flag, &score);
	cr_expect_eq(flag, 1, "a top-1 below the reference's 1st percentile");
	anc_drift_destroy(d);
	free(ref);
}

Test(drift, report_cost_at_1024_by_384)
{
	anc_error err;
	anc_drift *d;
	uint32_t dim = 384;
	float *ref = gaussians(1024, dim, 0, 0), *win = gaussians(1024, dim, 0, 0);
	normalise(ref, 1024, dim);
	normalise(win, 1024, dim);
	cr_assert_eq(anc_drift_create(dim, ANC_METRIC_COSINE, NULL, 5, &d, &err),
	             ANC_OK);
	anc_drift_ref_add(d, ref, 1024, 0);
	anc_drift_refresh(d, NULL, 0);
	for (uint32_t i = 0; i < 1024; i++)
		anc_drift_observe_query(d, win + (size_t)i * dim, 0, 0, NULL, NULL);
	anc_drift_report rep;
	cr_assert_eq(anc_drift_report_compute(d, &rep, &err), ANC_OK);
	cr_log_info("report 1024 x 384: %.1f ms, status %d",
	            rep.compute_seconds * 1e3, rep.status);
	/* generous bound: sanitizer builds and a loaded CI machine */
	cr_expect_lt(rep.compute_seconds, 5.0);
	cr_expect_neq(rep.status, ANC_DRIFT_DRIFT);
	anc_drift_destroy(d);
	free(ref);
	free(win);
}

/* Brute-force MMD^2 (unbiased, RBF, median heuristic on the x-y squared
 * distances) in double, to check the BLAS/ssymm path of anc_drift_mmd. */
static double
mmd2_brute(const float *x, uint32_t nx, const float *y, uint32_t ny,
           uint32_t dim)
{
	uint32_t n = nx + ny;
	double *d2 = malloc((size_t)n * n * sizeof(double));
	double *cross = malloc((size_t)nx * ny * sizeof(double));
	cr_assert(d2 != NULL && cross != NULL);
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < n; j++) {
			const float *a = i < nx ? x + (size_t)i * dim
			                        : y + (size_t)(i - nx) * dim;
			const float *b = j < nx ? x + (size_t)j * dim
			                        : y + (size_t)(j - nx) * dim;
			double s = 0;
			for (uint32_t k = 0; k < dim; k++)
				s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
			d2[(size_t)i * n + j] = s;
		}
	for (uint32_t i = 0; i < nx; i++)
		for (uint32_t j = 0; j < ny; j++)
			cross[(size_t)i * ny + j] = d2[(size_t)i * n + nx + j];
	/* the k-th smallest, k = nx*ny/2, as the implementation picks */
	for (uint32_t i = 1; i < nx * ny; i++) {
		double v = cross[i];
		uint32_t k = i;
		while (k > 0 && cross[k - 1] > v) {
			cross[k] = cross[k - 1];
			k--;
		}
		cross[k] = v;
	}
	double med = cross[nx * ny / 2], sxx = 0, syy = 0, sxy = 0;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < n; j++) {
			if (i == j)
				continue;
			double kv = exp(-d2[(size_t)i * n + j] / med);
			if (i < nx && j < nx)
				sxx += kv;
			else if (i >= nx && j >= nx)
				syy += kv;
			else if (i < nx)
				sxy += kv;
		}
	free(d2);
	free(cross);
	return sxx / ((double)nx * (nx - 1)) + syy / ((double)ny * (ny - 1)) -
	       2 * sxy / ((double)nx * ny);
}

Test(drift, mmd_matches_brute_force)
{
	anc_error err;
	uint32_t dim = 16;
	float *x = gaussians(70, dim, 0, 0), *y = gaussians(50, dim, 0.5, 4);
	double m2, p, want = mmd2_brute(x, 70, y, 50, dim);
	cr_assert_eq(anc_drift_mmd(x, 70, y, 50, dim, 200, 9, &m2, &p, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect(fabs(m2 - want) <= 1e-4 * fabs(want) + 1e-6,
	          "mmd2 %.8f, brute force %.8f", m2, want);
	cr_expect_lt(p, 0.05, "a 0.5 sd shift in 4 of 16 dims: p %g", p);
	/* the same seed, the same permutations */
	double m2b, pb;
	cr_assert_eq(anc_drift_mmd(x, 70, y, 50, dim, 200, 9, &m2b, &pb, &err),
	             ANC_OK);
	cr_expect_eq(m2, m2b);
	cr_expect_eq(p, pb);
	/* too few vectors a side: refused, naming the counts */
	cr_expect_eq(anc_drift_mmd(x, 1, y, 50, dim, 10, 9, &m2, &p, &err),
	             ANC_EINVAL);
	cr_expect_not_null(strstr(err.msg, "got 1 and 50"), "%s", err.msg);
	free(x);
	free(y);
}

/* Share of dimensions whose W1 / reference sd exceeds 0.1, computed with
 * the double-precision anc_drift_wasserstein1 and qsort. */
static double
components_brute(const float *ref, uint32_t nref, const float *win,
                 uint32_t nwin, uint32_t dim)
{
	double *a = malloc(nref * sizeof(double)), *b = malloc(nwin * sizeof(double));
	uint32_t drifted = 0;
	/* 0.1, or 2.5 x the sampling noise of W1 / sd when that is more */
	double thr = fmax(0.1, 2.5 * sqrt(1.0 / nwin + 1.0 / nref));
	for (uint32_t j = 0; j < dim; j++) {
		double mu = 0, var = 0;
		for (uint32_t i = 0; i < nref; i++)
			mu += a[i] = ref[(size_t)i * dim + j];
		mu /= nref;
		for (uint32_t i = 0; i < nref; i++)
			var += (a[i] - mu) * (a[i] - mu);
		double sd = sqrt(var / nref);
		for (uint32_t i = 0; i < nwin; i++)
			b[i] = win[(size_t)i * dim + j];
		double w = anc_drift_wasserstein1(a, nref, b, nwin);
		drifted += w / sd > thr;
	}
	free(a);
	free(b);
	return (double)drifted / dim;
}

Test(drift, components_match_brute_force_and_cache_follows_reference)
{
	anc_error err;
	anc_drift *d;
	anc_drift_report r1, r2, r3;
	uint32_t dim = 40;
	/* negative and positive values, ties (rounded), a shift in 10 dims */
	float *ref = gaussians(600, dim, 0, 0), *win = gaussians(300, dim, 0.3, 10);
	for (uint32_t i = 0; i < 600 * dim; i += 7)
		ref[i] = roundf(ref[i] * 4) / 4;
	cr_assert_eq(anc_drift_create(dim, ANC_METRIC_L2, NULL, 4, &d, &err),
	             ANC_OK);
	anc_drift_ref_add(d, ref, 600, 0);
	anc_drift_refresh(d, NULL, 0);
	for (uint32_t i = 0; i < 300; i++)
		anc_drift_observe_query(d, win + (size_t)i * dim, 0, 0, NULL, NULL);
	cr_assert_eq(anc_drift_report_compute(d, &r1, &err), ANC_OK, "%s",
	             err.msg);
	double want = components_brute(ref, 600, win, 300, dim);
	cr_expect(fabs(r1.stats[ANC_DRIFT_STAT_COMPONENTS].value - want) < 1e-9,
	          "components %g, brute force %g",
	          r1.stats[ANC_DRIFT_STAT_COMPONENTS].value, want);
	cr_expect_gt(want, 0.2);
	/* second report: the cached sorted reference gives the same answer */
	cr_assert_eq(anc_drift_report_compute(d, &r2, &err), ANC_OK);
	cr_expect_eq(r2.stats[ANC_DRIFT_STAT_COMPONENTS].value,
	             r1.stats[ANC_DRIFT_STAT_COMPONENTS].value);
	/* the reference moves to the window's distribution: the cache must
	 * not serve the old columns */
	anc_drift_ref_reset(d);
	float *ref2 = gaussians(600, dim, 0.3, 10);
	anc_drift_ref_add(d, ref2, 600, 0);
	cr_assert_eq(anc_drift_report_compute(d, &r3, &err), ANC_OK);
	want = components_brute(ref2, 600, win, 300, dim);
	cr_expect(fabs(r3.stats[ANC_DRIFT_STAT_COMPONENTS].value - want) < 1e-9,
	          "after the reference moved: %g, brute force %g",
	          r3.stats[ANC_DRIFT_STAT_COMPONENTS].value, want);
	cr_expect_lt(r3.stats[ANC_DRIFT_STAT_COMPONENTS].value,
	             r1.stats[ANC_DRIFT_STAT_COMPONENTS].value);
	anc_drift_destroy(d);
	free(ref);
	free(ref2);
	free(win);
}

Test(drift, rebuild_replaces_the_reference)
{
	anc_error err;
	anc_drift *d;
	anc_drift_config c;
	uint32_t dim = 8;
	anc_drift_config_default(&c);
	c.reservoir = 64;
	c.min_reference = 16;
	cr_assert_eq(anc_drift_create(dim, ANC_METRIC_L2, &c, 2, &d, &err),
	             ANC_OK);
	float *old = gaussians(500, dim, 5, dim), *keep = gaussians(100, dim, 0, 0);
	anc_drift_ref_add(d, old, 500, 0);
	anc_drift_ref_add(d, keep, 100, 0);
	anc_drift_refresh(d, NULL, 0);
	/* nothing left the index: no rebuild, whatever the time */
	cr_expect(!anc_drift_rebuild_due(d, 1e12, 2, 30));
	anc_drift_ref_forget(d, 500);
	cr_expect_eq(anc_drift_ref_forgotten(d), 500);
	cr_expect(anc_drift_rebuild_due(d, 1e12, 2, 30));
	/* losses still coming in (last one just now): wait for quiet */
	cr_expect(!anc_drift_rebuild_due(d, 0, 2, 30));

	/* a rebuild from "LMDB" (the 100 kept), with a write landing while
	 * it runs; a second rebuild at the same time is refused */
	cr_assert_eq(anc_drift_rebuild_begin(d, &err), ANC_OK);
	cr_expect_eq(anc_drift_rebuild_begin(d, &err), ANC_EPRECONDITION);
	cr_expect_not_null(strstr(err.msg, "already running"), "%s", err.msg);
	cr_expect(!anc_drift_rebuild_due(d, 1e12, 2, 30));
	anc_drift_rebuild_add(d, keep, 60);
	float *fresh = gaussians(10, dim, 0, 0);
	anc_drift_ref_add(d, fresh, 10, 0);
	anc_drift_rebuild_add(d, keep + 60 * dim, 40);
	/* the old reference serves until the swap */
	cr_expect_eq(anc_drift_ref_count(d), 610);
	anc_drift_rebuild_end(d, 1);
	cr_expect_eq(anc_drift_ref_count(d), 110);
	cr_expect(anc_drift_ref_stale(d), "thresholds must be recomputed");
	cr_expect_eq(anc_drift_ref_forgotten(d), 0);
	float s[64 * 8]; /* 64 vectors of dim 8 */
	uint32_t n;
	anc_drift_ref_sample(d, s, 64, &n);
	cr_expect_eq(n, 64);
	/* none of the deleted (mean 5 in every dimension) is left */
	int stale = 0;
	for (uint32_t i = 0; i < n; i++)
		stale += s[i * dim] > 3 && s[i * dim + 1] > 3;
	cr_expect_eq(stale, 0, "%d deleted vectors still sampled", stale);

	/* an aborted rebuild keeps the losses counted and the reference */
	anc_drift_ref_forget(d, 7);
	cr_assert_eq(anc_drift_rebuild_begin(d, &err), ANC_OK);
	anc_drift_rebuild_add(d, keep, 5);
	anc_drift_rebuild_end(d, 0);
	cr_expect_eq(anc_drift_ref_forgotten(d), 7);
	cr_expect_eq(anc_drift_ref_count(d), 110);
	/* end without begin: nothing happens */
	anc_drift_rebuild_end(d, 1);
	cr_expect_eq(anc_drift_ref_count(d), 110);

	/* a reservoir resize empties the sample and asks for a refill, and
	 * cancels a running rebuild sized for the old reservoir */
	cr_assert_eq(anc_drift_rebuild_begin(d, &err), ANC_OK);
	c.reservoir = 128;
	cr_assert_eq(anc_drift_configure(d, &c, &err), ANC_OK);
	anc_drift_rebuild_add(d, keep, 100); /* ignored: cancelled */
	anc_drift_rebuild_end(d, 1);         /* nothing to swap */
	cr_expect_eq(anc_drift_ref_count(d), 110);
	cr_expect(anc_drift_rebuild_due(d, 0, 2, 30), "refill after resize");
	cr_assert_eq(anc_drift_rebuild_begin(d, &err), ANC_OK);
	anc_drift_rebuild_add(d, keep, 100);
	anc_drift_rebuild_end(d, 1);
	anc_drift_ref_sample(d, s, 64, &n);
	cr_expect_eq(n, 64);
	cr_expect(!anc_drift_rebuild_due(d, 1e12, 2, 30));
	anc_drift_destroy(d);
	free(old);
	free(keep);
	free(fresh);
}

Test(drift, config_set_string)
{
	anc_error err;
	anc_drift_config c, before;
	anc_drift_config_default(&c);
	cr_assert_eq(anc_drift_config_apply(&c, "window=512,permutations=200,"
	                                        "p_value=0.01,auc=0.6",
	                                    &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_eq(c.window, 512);
	cr_expect_eq(c.permutations, 200);
	cr_expect_eq(c.p_value, 0.01);
	cr_expect_eq(c.auc, 0.6);
	cr_expect_eq(c.reservoir, ANC_DRIFT_DEFAULT_RESERVOIR, "untouched key");
	cr_expect_eq(anc_drift_config_check(&c, &err), ANC_OK, "%s", err.msg);
	/* NULL and "" change nothing */
	before = c;
	cr_expect_eq(anc_drift_config_apply(&c, NULL, &err), ANC_OK);
	cr_expect_eq(anc_drift_config_apply(&c, "", &err), ANC_OK);
	cr_expect_eq(memcmp(&c, &before, sizeof c), 0);
	/* refusals name the key or the item, and change nothing (even when
	 * earlier items were good) */
	static const struct {
		const char *set, *needle;
	} bad[] = {
	    {"window=512,nope=1", "nope"},
	    {"window", "expected key=value"},
	    {"=3", "expected key=value"},
	    {"window=-1", "window"},
	    {"window=12x", "window"},
	    {"window=", "window"},
	    {"window=99999999999", "window"},
	    {"p_value=abc", "p_value"},
	    {"p_value=nan", "p_value"},
	    {"p_value=inf", "p_value"},
	    {"folds=2.5", "folds"},
	    {"window=32,window=64", "window given twice"},
	    {"window=32\n", "got '32\\n'"},
	    {"a\tb=1", "unknown key 'a\\tb'"},
	    {"p_value=0.01,window=64,p_value=0.05", "p_value given twice"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		cr_expect_eq(anc_drift_config_apply(&c, bad[i].set, &err),
		             ANC_EINVAL, "'%s' accepted", bad[i].set);
		cr_expect_not_null(strstr(err.msg, bad[i].needle),
		                   "'%s': %s", bad[i].set, err.msg);
		cr_expect_eq(memcmp(&c, &before, sizeof c), 0,
		             "'%s' changed the configuration", bad[i].set);
	}
	char big[ANC_DRIFT_SET_MAX + 16];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	cr_expect_eq(anc_drift_config_apply(&c, big, &err), ANC_EINVAL);
	cr_expect_not_null(strstr(err.msg, "at most 512"), "%s", err.msg);
	/* syntax is fine, the range is the checker's to refuse */
	cr_expect_eq(anc_drift_config_apply(&c, "folds=1", &err), ANC_OK);
	cr_expect_eq(anc_drift_config_check(&c, &err), ANC_EINVAL);
	cr_expect_not_null(strstr(err.msg, "folds"), "%s", err.msg);
}

Test(drift, wire_request_with_set)
{
	anc_error err;
	anc_buf b;
	anc_req q, *got = NULL;
	anc_limits lim;
	uint64_t id;
	anc_limits_default(&lim);
	anc_buf_init(&b);
	memset(&q, 0, sizeof q);
	q.id = 7;
	q.op = ANC_OP_DRIFT;
	q.u.drift.collection = "docs";
	q.u.drift.contract = "";
	q.u.drift.fresh = 1;
	q.u.drift.set = "window=256,epochs=4";
	cr_assert_eq(anc_req_encode(&q, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_req_decode(b.data, b.len, &lim, &got, &id, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_str_eq(got->u.drift.set, "window=256,epochs=4");
	cr_expect_eq(got->u.drift.fresh, 1);
	anc_req_free(got);
	got = NULL;
	/* without set: decodes as "" (no change) */
	q.u.drift.set = NULL;
	anc_buf_reset(&b);
	cr_assert_eq(anc_req_encode(&q, &b, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_req_decode(b.data, b.len, &lim, &got, &id, &err),
	             ANC_OK, "%s", err.msg);
	cr_expect_str_eq(got->u.drift.set, "");
	anc_req_free(got);
	got = NULL;
	/* a malformed set is refused by the decoder, naming body.set */
	q.u.drift.set = "window=lots";
	anc_buf_reset(&b);
	cr_assert_eq(anc_req_encode(&q, &b, &err), ANC_OK, "%s", err.msg);
	cr_expect_eq(anc_req_decode(b.data, b.len, &lim, &got, &id, &err),
	             ANC_EINVAL);
	cr_expect_null(got);
	cr_expect_not_null(strstr(err.msg, "body.set"), "%s", err.msg);
	cr_expect_not_null(strstr(err.msg, "window"), "%s", err.msg);
	anc_buf_free(&b);
}

/* The reference-score refresh (a batched search of the reservoir against
 * the whole index) waits for writes to be quiet, or for max_age counted
 * from the first change since the last refresh: a bulk load shorter than
 * max_age triggers none while it runs, a longer one one per max_age. */
Test(drift, refresh_waits_for_quiet_or_max_age_since_first_change)
{
	anc_error err;
	anc_drift *d;
	struct timespec ts;
	float v[2] = {1, 2};
	cr_assert_eq(anc_drift_create(2, ANC_METRIC_L2, NULL, 1, &d, &err),
	             ANC_OK);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double t0 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	cr_expect_not(anc_drift_refresh_due(d, t0 + 100, 2, 30),
	              "an empty reference has nothing to refresh");
	anc_drift_ref_add(d, v, 1, 1);
	/* writes keep coming: not quiet, first change < max_age ago */
	cr_expect_not(anc_drift_refresh_due(d, t0 + 1, 2, 30));
	for (int i = 0; i < 3; i++)
		anc_drift_ref_add(d, v, 1, 1);
	cr_expect_not(anc_drift_refresh_due(d, t0 + 1.5, 2, 30));
	/* quiet for 2 s */
	cr_expect(anc_drift_refresh_due(d, t0 + 10, 2, 30));
	anc_drift_refresh(d, NULL, 0);
	cr_expect_not(anc_drift_refresh_due(d, t0 + 100, 2, 30),
	              "refreshed and unchanged since");
	/* A change after the refresh: max_age counts from it. */
	anc_drift_ref_add(d, v, 1, 1);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double t1 = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	cr_expect_not(anc_drift_refresh_due(d, t1 + 1, 2, 30));
	cr_expect(anc_drift_refresh_due(d, t1 + 31, 40, 30),
	          "not quiet (quiet 40 s) but the change is > 30 s old");
	anc_drift_destroy(d);
}
