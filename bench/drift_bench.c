/*
 * drift_bench.c — the cost of drift detection, as JSON lines on stdout:
 *   {"bench":"drift_report","window":1024,"dim":384,"permutations":100,...}
 *       one full report at window 1024 x reservoir 1024, dim 384 and 784:
 *       the first (cold: the sorted reference columns are built) and the
 *       median and minimum of the following reps, wall and CPU time, and
 *       the MMD and the classifier timed alone;
 *   {"bench":"drift_query_overhead",...}
 *       single-vector queries against a flat index of 20000 x 384 with
 *       drift tracking on and off: two databases open side by side, batches
 *       of the same queries in ABBA order, the median of the per-round
 *       on/off ratios (and its quartiles);
 *   {"bench":"drift_query_count",...} (--count on|off N)
 *       N queries on one database, to count instructions under callgrind.
 * Usage: drift_bench [--quick | --report | --overhead | --count on|off N]
 * A loaded machine moves wall times by 2x and more: compare CPU times and
 * instruction counts, or run on an idle machine.
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

static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
bench_report(uint32_t dim, int reps)
{
	anc_error err;
	anc_drift *d;
	anc_drift_report r;
	double t[16], c[16], first = 0, first_cpu = 0;
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
	for (int i = -1; i < reps; i++) {
		double c0 = cpu_now();
		if (anc_drift_report_compute(d, &r, &err) != ANC_OK) {
			fprintf(stderr, "drift_bench: %s\n", err.msg);
			exit(1);
		}
		if (i < 0) {
			first = r.compute_seconds;
			first_cpu = cpu_now() - c0;
			continue;
		}
		t[i] = r.compute_seconds;
		c[i] = cpu_now() - c0;
	}
	qsort(t, (size_t)reps, sizeof *t, cmpd);
	qsort(c, (size_t)reps, sizeof *c, cmpd);
	/* the parts, timed once each */
	double t0 = now(), m2, p, auc;
	anc_drift_mmd(ref, 1024, win, 1024, dim, 100, 3, &m2, &p, &err);
	double t_mmd = now() - t0;
	t0 = now();
	anc_drift_classifier_auc(ref, 1024, win, 1024, dim, 5, 8, 3, &auc, &err);
	double t_clf = now() - t0;
	printf("{\"bench\":\"drift_report\",\"window\":1024,\"reservoir\":1024,"
	       "\"dim\":%u,\"permutations\":100,\"reps\":%d,"
	       "\"first_ms\":%.1f,\"first_cpu_ms\":%.1f,"
	       "\"median_ms\":%.1f,\"min_ms\":%.1f,\"median_cpu_ms\":%.1f,"
	       "\"mmd_ms\":%.1f,\"classifier_ms\":%.1f,\"status\":\"%s\","
	       "\"cpus\":%ld}\n",
	       dim, reps, first * 1e3, first_cpu * 1e3, t[reps / 2] * 1e3,
	       t[0] * 1e3, c[reps / 2] * 1e3, t_mmd * 1e3, t_clf * 1e3,
	       anc_drift_status_name(r.status), sysconf(_SC_NPROCESSORS_ONLN));
	anc_drift_destroy(d);
	free(ref);
	free(win);
}

/* A database of n vectors in collection "b" under contract "bench@1",
 * drift tracking on or off, in a fresh temporary directory. */
typedef struct bdb {
	char dir[64];
	anc_db *db;
	anc_contract_id_str id;
} bdb;

static void
bdb_open(bdb *b, int drift_off, const float *base, uint32_t n, uint32_t dim)
{
	anc_db_options opt;
	anc_error err;
	anc_contract c;
	anc_record *recs = calloc(1000, sizeof *recs);
	anc_upsert_result *res = calloc(1000, sizeof *res);
	char(*ck)[16] = calloc(1000, 16);
	snprintf(b->dir, sizeof b->dir, "/tmp/anc-drift-bench-XXXXXX");
	if (mkdtemp(b->dir) == NULL || recs == NULL || res == NULL ||
	    ck == NULL) {
		fprintf(stderr, "drift_bench: no temporary directory\n");
		exit(1);
	}
	anc_db_options_default(&opt);
	opt.nosync = 1;
	opt.quiet = 1;
	opt.drift_off = drift_off;
	opt.drift_interval = 3600; /* no background report during the run */
	opt.map_size = 1ull << 30; /* 64 GiB of address space upsets valgrind */
	if (anc_db_open(b->dir, &opt, &b->db, &err) != ANC_OK ||
	    anc_db_collection_create(b->db, "b", NULL, &err) != ANC_OK)
		goto fail;
	anc_contract_init(&c);
	snprintf(c.name, sizeof c.name, "bench");
	snprintf(c.model, sizeof c.model, "synthetic");
	snprintf(c.revision, sizeof c.revision, "1");
	c.dim = dim;
	if (anc_db_contract_register(b->db, "b", &c, b->id, NULL, &err) !=
	    ANC_OK)
		goto fail;
	for (uint32_t i = 0; i < n; i += 1000) {
		uint32_t m = n - i < 1000 ? n - i : 1000;
		for (uint32_t j = 0; j < m; j++) {
			snprintf(ck[j], 16, "%u", i + j);
			recs[j].source = "s";
			recs[j].chunk = ck[j];
			recs[j].vec = base + (size_t)(i + j) * dim;
			recs[j].dim = dim;
		}
		if (anc_db_upsert(b->db, "b", b->id, recs, m, res, NULL, &err) !=
		    ANC_OK)
			goto fail;
	}
	free(recs);
	free(res);
	free(ck);
	if (!drift_off) {
		anc_drift_report r;
		/* thresholds for the per-query flag, as in production */
		if (anc_db_drift_report(b->db, "b", b->id, 1, &r, &err) != ANC_OK)
			goto fail;
	}
	return;
fail:
	fprintf(stderr, "drift_bench: %s\n", err.msg);
	exit(1);
}

static void
bdb_close(bdb *b)
{
	char cmd[128];
	anc_db_close(b->db, NULL);
	snprintf(cmd, sizeof cmd, "rm -rf %s", b->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "drift_bench: could not remove %s\n", b->dir);
}

/* m single-vector queries q[from..from+m) (wrapping at nq); seconds. */
static double
run_queries(bdb *b, const float *q, uint32_t nq, uint32_t from, uint32_t m,
            uint32_t dim, uint32_t *flagged)
{
	anc_error err;
	double t0 = now();
	for (uint32_t i = 0; i < m; i++) {
		anc_query_result *qr;
		uint32_t k = (from + i) % nq;
		if (anc_db_query(b->db, "b", b->id, q + (size_t)k * dim, 1, dim,
		                 10, 0, &qr, &err) != ANC_OK) {
			fprintf(stderr, "drift_bench: %s\n", err.msg);
			exit(1);
		}
		if (flagged != NULL)
			*flagged += qr->lists[0].drift_flag != 0;
		anc_query_result_free(qr);
	}
	return now() - t0;
}

/* Serving-path overhead of tracking: both databases open side by side,
 * batches of the same queries run on/off in ABBA order (so drifts of the
 * machine's speed fall on both sides alike), and the median of the
 * per-round ratios is the answer: one slow round moves it not at all. */
static void
bench_overhead(uint32_t n, uint32_t dim, uint32_t nq, uint32_t rounds,
               uint32_t batch)
{
	float *base = unit_vectors(n, dim), *q = unit_vectors(nq, dim);
	double *ratio = malloc(rounds * sizeof(double));
	double *t_on = malloc(rounds * sizeof(double));
	double *t_off = malloc(rounds * sizeof(double));
	uint32_t flagged = 0;
	bdb on, off;
	if (ratio == NULL || t_on == NULL || t_off == NULL)
		exit(1);
	bdb_open(&off, 1, base, n, dim);
	bdb_open(&on, 0, base, n, dim);
	/* warm both (page cache, faiss buffers, the drift window) */
	run_queries(&off, q, nq, 0, batch, dim, NULL);
	run_queries(&on, q, nq, 0, batch, dim, NULL);
	for (uint32_t r = 0; r < rounds; r++) {
		uint32_t from = r * batch;
		if (r % 2 == 0) {
			t_off[r] = run_queries(&off, q, nq, from, batch, dim, NULL);
			t_on[r] = run_queries(&on, q, nq, from, batch, dim, &flagged);
		} else {
			t_on[r] = run_queries(&on, q, nq, from, batch, dim, &flagged);
			t_off[r] = run_queries(&off, q, nq, from, batch, dim, NULL);
		}
		ratio[r] = t_on[r] / t_off[r];
	}
	qsort(ratio, rounds, sizeof *ratio, cmpd);
	qsort(t_on, rounds, sizeof *t_on, cmpd);
	qsort(t_off, rounds, sizeof *t_off, cmpd);
	double med = ratio[rounds / 2];
	printf("{\"bench\":\"drift_query_overhead\",\"index\":\"flat\","
	       "\"vectors\":%u,\"dim\":%u,\"k\":10,\"rounds\":%u,"
	       "\"batch\":%u,\"order\":\"ABBA\",\"median_us_off\":%.1f,"
	       "\"median_us_on\":%.1f,\"median_ratio\":%.4f,"
	       "\"ratio_p25\":%.4f,\"ratio_p75\":%.4f,\"overhead_pct\":%.2f,"
	       "\"flagged_share\":%.3f}\n",
	       n, dim, rounds, batch, t_off[rounds / 2] / batch * 1e6,
	       t_on[rounds / 2] / batch * 1e6, med, ratio[rounds / 4],
	       ratio[rounds * 3 / 4], (med - 1) * 100,
	       (double)flagged / ((double)rounds * batch));
	bdb_close(&on);
	bdb_close(&off);
	free(base);
	free(q);
	free(ratio);
	free(t_on);
	free(t_off);
}

/* --count on|off N: exactly N queries on one database, for an
 * instruction count that machine load cannot blur:
 *   valgrind --tool=callgrind --toggle-collect=anc_db_query \
 *       drift_bench --count on 2000   (and off) */
static void
bench_count(int drift_on, uint32_t nq)
{
	uint32_t n = 20000, dim = 384;
	float *base = unit_vectors(n, dim), *q = unit_vectors(nq, dim);
	bdb b;
	uint32_t flagged = 0;
	bdb_open(&b, !drift_on, base, n, dim);
	double t = run_queries(&b, q, nq, 0, nq, dim, &flagged);
	printf("{\"bench\":\"drift_query_count\",\"drift\":%s,\"queries\":%u,"
	       "\"seconds\":%.3f,\"flagged\":%u}\n",
	       drift_on ? "true" : "false", nq, t, flagged);
	bdb_close(&b);
	free(base);
	free(q);
}

int
main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	int reps = quick ? 3 : 7;
	if (argc == 4 && strcmp(argv[1], "--count") == 0) {
		bench_count(strcmp(argv[2], "on") == 0,
		            (uint32_t)strtoul(argv[3], NULL, 10));
		return 0;
	}
	int only_report = argc > 1 && strcmp(argv[1], "--report") == 0;
	int only_overhead = argc > 1 && strcmp(argv[1], "--overhead") == 0;
	if (argc > 2 || (argc == 2 && !quick && !only_report && !only_overhead)) {
		fprintf(stderr, "usage: drift_bench [--quick | --report | "
		                "--overhead | --count on|off N]\n");
		return 2;
	}
	if (!only_overhead) {
		bench_report(384, reps);
		bench_report(784, reps);
	}
	if (!only_report)
		bench_overhead(20000, 384, 4000, quick ? 20 : 60, quick ? 50 : 100);
	return 0;
}
