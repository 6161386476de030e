/*
 * drift_bench.c — the cost of drift detection, as JSON lines on stdout:
 *   {"bench":"drift_report","window":1024,"dim":384,"permutations":100,...}
 *       time of one full report (median of 5) at window 1024 x dim 384 and
 *       1024 x 784 (reservoir 1024), per statistic group;
 *   {"bench":"drift_query_overhead",...}
 *       latency of single-vector queries against a flat index of 20000 x 384
 *       with drift tracking on and off (same data, same order), and the
 *       ratio: the serving-path cost of tracking.
 * Usage: drift_bench [--quick]   (--quick: fewer repetitions)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "anc_index.h"
#include "drift.h"

static uint64_t rng = 7;

static double
gauss(void)
{
	double u[2];
	for (int i = 0; i < 2; i++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		u[i] = ((rng >> 11) + 0.5) / 9007199254740992.0;
	}
	return sqrt(-2 * log(u[0])) * cos(2 * M_PI * u[1]);
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static float *
unit_vectors(uint32_t n, uint32_t dim)
{
	float *v = malloc((size_t)n * dim * sizeof(float));
	if (v == NULL)
		exit(1);
	for (uint32_t i = 0; i < n; i++) {
		double s = 0;
		for (uint32_t j = 0; j < dim; j++) {
			double x = gauss() + (j < 8 ? 1.0 : 0);
			v[(size_t)i * dim + j] = (float)x;
			s += x * x;
		}
		for (uint32_t j = 0; j < dim; j++)
			v[(size_t)i * dim + j] /= (float)sqrt(s);
	}
	return v;
}

static int
cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void
bench_report(uint32_t dim, int reps)
{
	anc_error err;
	anc_drift *d;
	anc_drift_report r;
	double t[16];
	float *ref = unit_vectors(4096, dim), *win = unit_vectors(1024, dim);
	if (anc_drift_create(dim, ANC_METRIC_COSINE, NULL, 1, &d, &err) !=
	    ANC_OK) {
		fprintf(stderr, "drift_bench: %s\n", err.msg);
		exit(1);
	}
	anc_drift_ref_add(d, ref, 4096, 0);
	float sc[256];
	for (int i = 0; i < 256; i++)
		sc[i] = 0.5f + (float)i / 1000;
	anc_drift_refresh(d, sc, 256);
	for (uint32_t i = 0; i < 1024; i++)
		anc_drift_observe_query(d, win + (size_t)i * dim, 0.6f, 1, NULL,
		                        NULL);
	for (int i = 0; i < reps; i++) {
		if (anc_drift_report_compute(d, &r, &err) != ANC_OK) {
			fprintf(stderr, "drift_bench: %s\n", err.msg);
			exit(1);
		}
		t[i] = r.compute_seconds;
	}
	qsort(t, (size_t)reps, sizeof *t, cmpd);
	/* the parts, timed once each */
	double t0 = now(), m2, p, auc;
	anc_drift_mmd(ref, 1024, win, 1024, dim, 100, 3, &m2, &p, &err);
	double t_mmd = now() - t0;
	t0 = now();
	anc_drift_classifier_auc(ref, 1024, win, 1024, dim, 5, 8, 3, &auc, &err);
	double t_clf = now() - t0;
	printf("{\"bench\":\"drift_report\",\"window\":1024,\"reservoir\":1024,"
	       "\"dim\":%u,\"permutations\":100,\"reps\":%d,"
	       "\"median_ms\":%.1f,\"min_ms\":%.1f,\"mmd_ms\":%.1f,"
	       "\"classifier_ms\":%.1f,\"status\":\"%s\",\"cpus\":%ld}\n",
	       dim, reps, t[reps / 2] * 1e3, t[0] * 1e3, t_mmd * 1e3,
	       t_clf * 1e3, anc_drift_status_name(r.status),
	       sysconf(_SC_NPROCESSORS_ONLN));
	anc_drift_destroy(d);
	free(ref);
	free(win);
}

/* Median single-query latency (seconds) over nq queries. */
static double
query_latency(int drift_off, const float *base, uint32_t n, const float *q,
              uint32_t nq, uint32_t dim, double *flag_share)
{
	char dir[] = "/tmp/anc-drift-bench-XXXXXX";
	anc_db_options opt;
	anc_db *db;
	anc_error err;
	anc_contract c;
	anc_contract_id_str id;
	double *lat = malloc(nq * sizeof(double)), med;
	uint32_t flagged = 0;
	if (mkdtemp(dir) == NULL || lat == NULL)
		exit(1);
	anc_db_options_default(&opt);
	opt.nosync = 1;
	opt.quiet = 1;
	opt.drift_off = drift_off;
	opt.drift_interval = 3600; /* no background report during the run */
	if (anc_db_open(dir, &opt, &db, &err) != ANC_OK ||
	    anc_db_collection_create(db, "b", NULL, &err) != ANC_OK)
		goto fail;
	anc_contract_init(&c);
	snprintf(c.name, sizeof c.name, "bench");
	snprintf(c.model, sizeof c.model, "synthetic");
	snprintf(c.revision, sizeof c.revision, "1");
	c.dim = dim;
	if (anc_db_contract_register(db, "b", &c, id, NULL, &err) != ANC_OK)
		goto fail;
	anc_record *recs = calloc(1000, sizeof *recs);
	anc_upsert_result *res = calloc(1000, sizeof *res);
	char (*ck)[16] = calloc(1000, 16);
	for (uint32_t i = 0; i < n; i += 1000) {
		for (uint32_t j = 0; j < 1000; j++) {
			snprintf(ck[j], 16, "%u", i + j);
			recs[j].source = "s";
			recs[j].chunk = ck[j];
			recs[j].vec = base + (size_t)(i + j) * dim;
			recs[j].dim = dim;
		}
		if (anc_db_upsert(db, "b", id, recs, 1000, res, NULL, &err) !=
		    ANC_OK)
			goto fail;
	}
	free(recs);
	free(res);
	free(ck);
	if (!drift_off) {
		anc_drift_report r;
		/* thresholds for the per-query flag, as in production */
		if (anc_db_drift_report(db, "b", id, 1, &r, &err) != ANC_OK)
			goto fail;
	}
	for (uint32_t i = 0; i < nq; i++) {
		anc_query_result *qr;
		double t0 = now();
		if (anc_db_query(db, "b", id, q + (size_t)i * dim, 1, dim, 10, 0,
		                 &qr, &err) != ANC_OK)
			goto fail;
		lat[i] = now() - t0;
		flagged += qr->lists[0].drift_flag != 0;
		anc_query_result_free(qr);
	}
	qsort(lat, nq, sizeof *lat, cmpd);
	med = lat[nq / 2];
	*flag_share = (double)flagged / nq;
	free(lat);
	anc_db_close(db, NULL);
	{
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "drift_bench: could not remove %s\n", dir);
	}
	return med;
fail:
	fprintf(stderr, "drift_bench: %s\n", err.msg);
	exit(1);
}

int
main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int reps = quick ? 3 : 5;
	bench_report(384, reps);
	bench_report(784, reps);

	uint32_t n = 20000, dim = 384, nq = quick ? 1000 : 4000;
	float *base = unit_vectors(n, dim), *q = unit_vectors(nq, dim);
	double f_on, f_off;
	/* alternate to spread machine noise over both sides */
	double off1 = query_latency(1, base, n, q, nq, dim, &f_off);
	double on1 = query_latency(0, base, n, q, nq, dim, &f_on);
	double off2 = query_latency(1, base, n, q, nq, dim, &f_off);
	double on2 = query_latency(0, base, n, q, nq, dim, &f_on);
	double off = (off1 + off2) / 2, on = (on1 + on2) / 2;
	printf("{\"bench\":\"drift_query_overhead\",\"index\":\"flat\","
	       "\"vectors\":%u,\"dim\":%u,\"queries\":%u,\"k\":10,"
	       "\"median_us_off\":%.1f,\"median_us_on\":%.1f,\"ratio\":%.4f,"
	       "\"overhead_pct\":%.2f,\"flagged_share\":%.3f}\n",
	       n, dim, nq, off * 1e6, on * 1e6, on / off, (on / off - 1) * 100,
	       f_on);
	free(base);
	free(q);
	return 0;
}
