/*
 * drift.c — per-contract drift statistics: reference moments and
 * reservoir, the query window, the per-query flag and the five-statistic
 * report (drift.h and anc_types.h document what each one means).
 *
 * Design note
 * -----------
 * The serving path must stay within a few microseconds, so a query only
 * takes ring_mu, measures its distance to a cached copy of the reference
 * centroid and copies itself into the ring. Everything heavy happens in
 * anc_drift_report_compute on private snapshots: the lock is held only for
 * the copies, then the statistics run with no lock at all, so queries and
 * writes continue while a report is computed.
 *
 * Cost at window 1024 x reservoir 1024 x dim d, P permutations:
 *   centroid   B bootstrap windows as a (B x 1024 counts) x (1024 x d)
 *              product (sgemm), in chunks of 32 draws;
 *   components per dimension, sorted columns and a merge walk. Columns
 *              are made contiguous by a tiled transpose and sorted by a
 *              4-pass radix sort; the reservoir's sorted columns are
 *              cached (d->cols, keyed by the reservoir's generation), so
 *              while the reservoir does not change only the window's are
 *              sorted;
 *   mmd        one N x N Gram matrix (ssyrk, N = 2048), N^2 / 2 exp on the
 *              upper triangle (row sums in the same pass), and one
 *              N x N x (P + 1) product (ssymm, reading the upper triangle
 *              only) that evaluates all the permutations at once: for an
 *              assignment a (1 = reference), sum_xx = a'Ka, sum_xy = a'K1 -
 *              a'Ka, sum_yy = 1'K1 - 2a'K1 + a'Ka, so every permutation
 *              costs one column of K A;
 *   classifier F folds x E epochs of mini-batch gradient descent, row by
 *              row with level-1 BLAS (see anc_drift_classifier_auc).
 * Measured (bench/drift_bench.c, 2 cores): CPU time per report 130-145 ms
 * at d 384 and 210-235 ms at d 784, against 217 and 370-385 ms before
 * these changes. The report runs on the calling thread: OpenBLAS spreads
 * the level-3 products over the cores, and extra threads of ours only
 * oversubscribed a busy machine. drift.c is compiled -O2 even in Debug
 * builds (CMakeLists.txt) because the tests run it thousands of times.
 *
 * Random choices (reservoir replacement, bootstrap draws, permutations,
 * folds) come from a splitmix64 generator seeded at creation, so a test
 * that feeds the same data twice gets the same report.
 */
#include "drift.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

struct anc_drift {
	uint32_t dim;
	anc_metric metric;
	anc_drift_config cfg;
	pthread_mutex_t ring_mu, ref_mu, rep_mu;
	int mu_ok; /* how many of the three mutexes exist */

	/* reference, under ref_mu */
	uint64_t ref_n;
	double *mean, *m2; /* Welford */
	float *res;        /* reservoir: cfg.reservoir x dim */
	uint32_t res_n;
	uint64_t res_gen;  /* bumped whenever the reservoir's content changes */
	/* Vectors that left the index (deleted, replaced) since the
	 * reference was last filled, and when the last one left. */
	uint64_t forgot;
	double last_forget, rebuilt_at;
	int refill; /* the reservoir was emptied by a resize: refill it */
	/* A rebuild in progress (anc_drift_rebuild_begin): a second
	 * reference filled from LMDB and by concurrent ref_adds, swapped in
	 * by anc_drift_rebuild_end. */
	int rb_on, rb_refill;
	uint64_t rb_n, rb_forgot;
	double *rb_mean, *rb_m2;
	float *rb_res;
	uint32_t rb_res_n;
	uint64_t rng_res;
	float *ref_scores; /* ANC_DRIFT_REF_SCORES */
	uint32_t nscores;
	int stale;
	uint64_t rng_rep; /* report randomness, under rep_mu */

	/* current side, under ring_mu */
	float *win;        /* cfg.window x dim */
	float *win_top1;
	uint8_t *win_has, *win_flag;
	uint32_t win_pos, win_n, win_cap;
	float *wr;         /* cfg.write_window x dim */
	uint32_t wr_pos, wr_n, wr_cap;
	uint64_t q_seen, q_flagged, w_seen;
	/* per-query thresholds, under ring_mu */
	float *centroid;
	double centroid_norm;
	/* monotonic; under ref_mu. stale_since: when the reference first
	 * changed after its last refresh, so that a long bulk load gets one
	 * refresh per max_age, counted from its start, and a short one none
	 * until it has been quiet (each refresh is a batched search of the
	 * reservoir against the whole index: ~35% of a flat bulk load's CPU
	 * when it ran at the first tick of every load). */
	double last_add, stale_since;
	anc_drift_report last;         /* under rep_mu */
	int have_last;
	/* Report cache, under rep_mu: the reservoir's columns sorted (for
	 * the per-component Wasserstein) as of reservoir generation
	 * cols_gen; valid when cols_n > 0. */
	float *cols;
	size_t cols_cap; /* floats allocated */
	uint32_t cols_n;
	uint64_t cols_gen;
	int have_thr;
	double dist_p99;
	float score_p01;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t
rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n). The modulo bias is below 2^-32 for every n used. */
static uint64_t
rng_below(uint64_t *s, uint64_t n)
{
	return n == 0 ? 0 : rng_next(s) % n;
}

/* Seconds on a clock: CLOCK_REALTIME for report times, CLOCK_MONOTONIC
 * for the quiet and age intervals. */
static double
clock_seconds(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
lock(pthread_mutex_t *m)
{
	/* Fails only on misuse; running unlocked would corrupt the rings. */
	if (pthread_mutex_lock(m) != 0)
		abort();
}

static void
unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
		abort();
}

/* A counter read under the mutex that guards it. */
static uint64_t
locked_u64(pthread_mutex_t *m, const uint64_t *v)
{
	lock(m);
	uint64_t x = *v;
	unlock(m);
	return x;
}

/* v joins a ring of cap vectors of dim floats: written at *pos, the
 * oldest overwritten once *n reaches cap. Its lock held. */
static void
ring_push(float *ring, uint32_t *pos, uint32_t *n, uint32_t cap,
          uint32_t dim, const float *v)
{
	memcpy(ring + (size_t)*pos * dim, v, dim * sizeof(float));
	*pos = (*pos + 1) % cap;
	if (*n < cap)
		(*n)++;
}

/* In-place ascending sort of floats: quicksort with median-of-three and
 * insertion sort below 16, iterative on the larger side. qsort's indirect
 * compare made the component statistic 3x slower. */
static void
sort_floats(float *a, uint32_t n)
{
	while (n > 16) {
		uint32_t mid = n / 2, i = 0, j = n - 1;
		float x = a[0], y = a[mid], z = a[n - 1], p, t;
		p = x < y ? (y < z ? y : (x < z ? z : x))
		          : (x < z ? x : (y < z ? z : y));
		for (;;) {
			while (a[i] < p)
				i++;
			while (a[j] > p)
				j--;
			if (i >= j)
				break;
			t = a[i];
			a[i] = a[j];
			a[j] = t;
			i++;
			j--;
		}
		/* [0, j] <= p <= [j + 1, n) */
		uint32_t left = j + 1, right = n - j - 1;
		if (left < right) {
			sort_floats(a, left);
			a += left;
			n = right;
		} else {
			sort_floats(a + left, right);
			n = left;
		}
	}
	for (uint32_t i = 1; i < n; i++) {
		float v = a[i];
		uint32_t k = i;
		while (k > 0 && a[k - 1] > v) {
			a[k] = a[k - 1];
			k--;
		}
		a[k] = v;
	}
}

/* Ascending LSD radix sort of n finite floats (4 passes of 8 bits over
 * order-preserving integer keys); tmp: n scratch words. For the 1024-value
 * columns of the report it is 3-4x faster than sort_floats. -0.0 sorts
 * before +0.0, which no statistic here can tell apart. */
static void
radix_floats(float *a, uint32_t n, uint32_t *tmp)
{
	uint32_t cnt[4][256];
	uint32_t *k = (uint32_t *)(void *)a, *src = k, *dst = tmp;
	memset(cnt, 0, sizeof cnt);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &a[i], 4);
		u ^= (u >> 31) ? 0xffffffffu : 0x80000000u;
		k[i] = u;
		for (int b = 0; b < 4; b++)
			cnt[b][(u >> (8 * b)) & 0xff]++;
	}
	for (int b = 0; b < 4; b++) {
		uint32_t sum = 0, *t;
		for (int v = 0; v < 256; v++) {
			uint32_t c = cnt[b][v];
			cnt[b][v] = sum;
			sum += c;
		}
		for (uint32_t i = 0; i < n; i++) {
			uint32_t u = src[i];
			dst[cnt[b][(u >> (8 * b)) & 0xff]++] = u;
		}
		t = src;
		src = dst;
		dst = t;
	}
	/* four passes: the keys are back in a */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t u = k[i];
		u ^= (u >> 31) ? 0x80000000u : 0xffffffffu;
		memcpy(&a[i], &u, 4);
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Quantile q of sorted v (n > 0), linear interpolation (numpy's
 * default). */
static double
quantile_sorted(const double *v, uint32_t n, double q)
{
	double pos = q * (double)(n - 1);
	uint32_t lo = (uint32_t)pos;
	double frac = pos - lo;
	if (lo + 1 >= n)
		return v[n - 1];
	return v[lo] + frac * (v[lo + 1] - v[lo]);
}

/* Distance between two centroids (double) as the metric reads it. */
static double
centroid_dist(anc_metric m, const double *a, const double *b, uint32_t dim)
{
	double s = 0, na = 0, nb = 0;
	if (m == ANC_METRIC_L2) {
		for (uint32_t i = 0; i < dim; i++)
			s += (a[i] - b[i]) * (a[i] - b[i]);
		return sqrt(s);
	}
	for (uint32_t i = 0; i < dim; i++) {
		s += a[i] * b[i];
		na += a[i] * a[i];
		nb += b[i] * b[i];
	}
	if (na <= 0 || nb <= 0)
		return 1.0;
	/* rounding can take 1 - cos a hair below 0 for identical means */
	return fmax(0.0, 1.0 - s / sqrt(na * nb));
}

/* Distance of a vector to a centroid c of norm cn (float, serving path). */
static double
point_dist(anc_metric m, uint32_t dim, const float *c, double cn,
           const float *v)
{
	double s = 0, nv = 0;
	if (m == ANC_METRIC_L2) {
		for (uint32_t i = 0; i < dim; i++) {
			float t = v[i] - c[i];
			s += (double)(t * t);
		}
		return sqrt(s);
	}
	for (uint32_t i = 0; i < dim; i++) {
		s += (double)(v[i] * c[i]);
		nv += (double)(v[i] * v[i]);
	}
	if (nv <= 0 || cn <= 0)
		return 1.0;
	return 1.0 - s / (sqrt(nv) * cn);
}

/* Is score s worse than reference score r under the metric? */
static int
score_worse(anc_metric m, double s, double r)
{
	return m == ANC_METRIC_L2 ? s > r : s < r;
}

/* Forget a rebuild's second reference. ref_mu held. */
static void
rebuild_drop(anc_drift *d)
{
	free(d->rb_mean);
	free(d->rb_m2);
	free(d->rb_res);
	d->rb_mean = d->rb_m2 = NULL;
	d->rb_res = NULL;
	d->rb_on = 0;
}

/* ---- configuration ---------------------------------------------------------- */

void
anc_drift_config_default(anc_drift_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->window = ANC_DRIFT_DEFAULT_WINDOW;
	cfg->reservoir = ANC_DRIFT_DEFAULT_RESERVOIR;
	cfg->write_window = ANC_DRIFT_DEFAULT_WRITE_WINDOW;
	cfg->bootstrap = ANC_DRIFT_DEFAULT_BOOTSTRAP;
	cfg->quantile = ANC_DRIFT_DEFAULT_QUANTILE;
	cfg->component_threshold = ANC_DRIFT_DEFAULT_COMPONENT_THRESHOLD;
	cfg->component_share = ANC_DRIFT_DEFAULT_COMPONENT_SHARE;
	cfg->permutations = ANC_DRIFT_DEFAULT_PERMUTATIONS;
	cfg->p_value = ANC_DRIFT_DEFAULT_P_VALUE;
	cfg->auc = ANC_DRIFT_DEFAULT_AUC;
	cfg->folds = ANC_DRIFT_DEFAULT_FOLDS;
	cfg->epochs = ANC_DRIFT_DEFAULT_EPOCHS;
	cfg->score_quantile = ANC_DRIFT_DEFAULT_SCORE_QUANTILE;
	cfg->score_share = ANC_DRIFT_DEFAULT_SCORE_SHARE;
	cfg->min_window = ANC_DRIFT_DEFAULT_MIN_WINDOW;
	cfg->min_reference = ANC_DRIFT_DEFAULT_MIN_REFERENCE;
}

static int
range_u32(anc_error *err, const char *name, uint32_t v, uint32_t lo,
          uint32_t hi)
{
	if (v < lo || v > hi)
		return anc_error_set(err, ANC_EINVAL,
		                     "drift config: %s: expected %u..%u, got %u",
		                     name, lo, hi, v);
	return ANC_OK;
}

static int
range_open(anc_error *err, const char *name, double v, double lo, double hi)
{
	if (!(v > lo && v < hi))
		return anc_error_set(err, ANC_EINVAL,
		                     "drift config: %s: expected a value in (%g, "
		                     "%g), got %g",
		                     name, lo, hi, v);
	return ANC_OK;
}

int
anc_drift_config_check(const anc_drift_config *c, anc_error *err)
{
	int rv;
	if (c == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift config: NULL");
	if ((rv = range_u32(err, "window", c->window, 16, 65536)) ||
	    (rv = range_u32(err, "reservoir", c->reservoir, 16, 65536)) ||
	    (rv = range_u32(err, "write_window", c->write_window, 0, 65536)) ||
	    (rv = range_u32(err, "bootstrap", c->bootstrap, 10, 10000)) ||
	    (rv = range_u32(err, "permutations", c->permutations, 0, 10000)) ||
	    (rv = range_u32(err, "folds", c->folds, 2, 20)) ||
	    (rv = range_u32(err, "epochs", c->epochs, 1, 1000)) ||
	    (rv = range_u32(err, "min_window", c->min_window, 8, 65536)) ||
	    (rv = range_u32(err, "min_reference", c->min_reference, 8,
	                    65536)) ||
	    (rv = range_open(err, "quantile", c->quantile, 0, 1)) ||
	    (rv = range_open(err, "component_threshold",
	                     c->component_threshold, 0, 1e9)) ||
	    (rv = range_open(err, "component_share", c->component_share, 0,
	                     1)) ||
	    (rv = range_open(err, "p_value", c->p_value, 0, 1)) ||
	    (rv = range_open(err, "auc", c->auc, 0.5, 1)) ||
	    (rv = range_open(err, "score_quantile", c->score_quantile, 0,
	                     0.5)) ||
	    (rv = range_open(err, "score_share", c->score_share, 0, 1)))
		return rv;
	if (c->min_window > c->window)
		return anc_error_set(err, ANC_EINVAL,
		                     "drift config: min_window %u is larger than "
		                     "window %u",
		                     c->min_window, c->window);
	if (c->min_reference > c->reservoir)
		return anc_error_set(err, ANC_EINVAL,
		                     "drift config: min_reference %u is larger "
		                     "than reservoir %u",
		                     c->min_reference, c->reservoir);
	return ANC_OK;
}

/* ---- lifecycle ---------------------------------------------------------------- */

void
anc_drift_destroy(anc_drift *d)
{
	if (d == NULL)
		return;
	free(d->mean);
	free(d->m2);
	free(d->res);
	free(d->ref_scores);
	free(d->win);
	free(d->win_top1);
	free(d->win_has);
	free(d->win_flag);
	free(d->wr);
	free(d->centroid);
	free(d->cols);
	free(d->rb_mean);
	free(d->rb_m2);
	free(d->rb_res);
	if (d->mu_ok > 2)
		pthread_mutex_destroy(&d->rep_mu);
	if (d->mu_ok > 1)
		pthread_mutex_destroy(&d->ref_mu);
	if (d->mu_ok > 0)
		pthread_mutex_destroy(&d->ring_mu);
	free(d);
}

/* The rings of a configuration; on failure nothing is changed. */
typedef struct rings {
	float *win, *top1, *wr;
	uint8_t *has, *flag;
	float *res;
} rings;

static int
rings_alloc(uint32_t dim, const anc_drift_config *c, rings *r)
{
	memset(r, 0, sizeof *r);
	r->win = malloc((size_t)c->window * dim * sizeof(float));
	r->top1 = malloc((size_t)c->window * sizeof(float));
	r->has = calloc(c->window, 1);
	r->flag = calloc(c->window, 1);
	r->res = malloc((size_t)c->reservoir * dim * sizeof(float));
	if (c->write_window > 0)
		r->wr = malloc((size_t)c->write_window * dim * sizeof(float));
	if (r->win == NULL || r->top1 == NULL || r->has == NULL ||
	    r->flag == NULL || r->res == NULL ||
	    (c->write_window > 0 && r->wr == NULL)) {
		free(r->win);
		free(r->top1);
		free(r->has);
		free(r->flag);
		free(r->res);
		free(r->wr);
		memset(r, 0, sizeof *r);
		return ANC_ENOMEM;
	}
	return ANC_OK;
}

int
anc_drift_create(uint32_t dim, anc_metric metric, const anc_drift_config *cfg,
                 uint64_t seed, anc_drift **out, anc_error *err)
{
	anc_drift *d;
	rings r;
	int rv;

	if (out == NULL)
		return anc_error_set(err, ANC_EINVAL, "drift: out is NULL");
	*out = NULL;
	if (dim == 0 || dim > ANC_DIM_MAX)
		return anc_error_set(err, ANC_EINVAL,
		                     "drift: dim: expected 1..%d, got %u",
		                     ANC_DIM_MAX, dim);
	if ((d = calloc(1, sizeof *d)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "drift: out of memory");
	d->dim = dim;
	d->metric = metric;
	if (cfg != NULL)
		d->cfg = *cfg;
	else
		anc_drift_config_default(&d->cfg);
	if ((rv = anc_drift_config_check(&d->cfg, err)) != ANC_OK)
		goto fail;
	if (pthread_mutex_init(&d->ring_mu, NULL) != 0)
		goto nomem;
	d->mu_ok = 1;
	if (pthread_mutex_init(&d->ref_mu, NULL) != 0)
		goto nomem;
	d->mu_ok = 2;
	if (pthread_mutex_init(&d->rep_mu, NULL) != 0)
		goto nomem;
	d->mu_ok = 3;
	d->mean = calloc(dim, sizeof(double));
	d->m2 = calloc(dim, sizeof(double));
	d->centroid = calloc(dim, sizeof(float));
	d->ref_scores = malloc(ANC_DRIFT_REF_SCORES * sizeof(float));
	if (d->mean == NULL || d->m2 == NULL || d->centroid == NULL ||
	    d->ref_scores == NULL || rings_alloc(dim, &d->cfg, &r) != ANC_OK)
		goto nomem;
	d->win = r.win;
	d->win_top1 = r.top1;
	d->win_has = r.has;
	d->win_flag = r.flag;
	d->wr = r.wr;
	d->res = r.res;
	d->win_cap = d->cfg.window;
	d->wr_cap = d->cfg.write_window;
	d->rebuilt_at = clock_seconds(CLOCK_MONOTONIC);
	d->rng_res = seed ^ 0x5eed5eed5eed5eedull;
	d->rng_rep = seed * 0x2545f4914f6cdd1dull + 1;
	*out = d;
	return ANC_OK;
nomem:
	rv = anc_error_set(err, ANC_ENOMEM,
	                   "drift: out of memory for a tracker of dim %u "
	                   "(window %u, reservoir %u)",
	                   dim, d->cfg.window, d->cfg.reservoir);
fail:
	anc_drift_destroy(d);
	return rv;
}

uint32_t
anc_drift_dim(const anc_drift *d)
{
	return d->dim;
}

void
anc_drift_config_get(anc_drift *d, anc_drift_config *cfg)
{
	lock(&d->ring_mu);
	*cfg = d->cfg;
	unlock(&d->ring_mu);
}

int
anc_drift_configure(anc_drift *d, const anc_drift_config *cfg, anc_error *err)
{
	rings r;
	int rv;

	if ((rv = anc_drift_config_check(cfg, err)) != ANC_OK)
		return rv;
	memset(&r, 0, sizeof r);
	int resize = cfg->window != d->cfg.window ||
	             cfg->reservoir != d->cfg.reservoir ||
	             cfg->write_window != d->cfg.write_window;
	if (resize && rings_alloc(d->dim, cfg, &r) != ANC_OK)
		return anc_error_set(err, ANC_ENOMEM,
		                     "drift config: out of memory for window %u, "
		                     "reservoir %u at dim %u",
		                     cfg->window, cfg->reservoir, d->dim);
	lock(&d->rep_mu);
	lock(&d->ref_mu);
	lock(&d->ring_mu);
	if (resize) {
		/* A new reservoir size changes every inclusion probability:
		 * start the sample over (the moments are kept) and let the
		 * engine refill it at its next rebuild or restart. */
		free(d->win);
		free(d->win_top1);
		free(d->win_has);
		free(d->win_flag);
		free(d->wr);
		if (cfg->reservoir != d->cfg.reservoir) {
			free(d->res);
			d->res = r.res;
			d->res_n = 0;
			d->res_gen++;
			/* A rebuild sized for the old reservoir cannot go on;
			 * the engine refills the new one from LMDB. */
			if (d->rb_on) {
				d->forgot += d->rb_forgot;
				rebuild_drop(d);
			}
			d->refill = 1;
		} else {
			free(r.res);
		}
		d->win = r.win;
		d->win_top1 = r.top1;
		d->win_has = r.has;
		d->win_flag = r.flag;
		d->wr = r.wr;
		d->win_pos = d->win_n = 0;
		d->wr_pos = d->wr_n = 0;
		d->win_cap = cfg->window;
		d->wr_cap = cfg->write_window;
	}
	d->cfg = *cfg;
	unlock(&d->ring_mu);
	unlock(&d->ref_mu);
	unlock(&d->rep_mu);
	return ANC_OK;
}

/* ---- reference ------------------------------------------------------------------ */

/* The reference changed. ref_mu held. */
static void
mark_stale(anc_drift *d, double now)
{
	if (!d->stale)
		d->stale_since = now;
	d->stale = 1;
}

void
anc_drift_ref_reset(anc_drift *d)
{
	lock(&d->ref_mu);
	d->ref_n = 0;
	d->res_n = 0;
	d->res_gen++;
	memset(d->mean, 0, d->dim * sizeof(double));
	memset(d->m2, 0, d->dim * sizeof(double));
	d->nscores = 0;
	mark_stale(d, clock_seconds(CLOCK_MONOTONIC));
	/* a full refill follows: nothing to rebuild for */
	d->forgot = 0;
	d->refill = 0;
	unlock(&d->ref_mu);
}

/* One vector joins a reference (count n, moments, reservoir res of
 * *res_n). Returns 1 when the reservoir changed. ref_mu held. */
static int
ref_absorb(anc_drift *d, uint64_t *n, double *mean, double *m2, float *res,
           uint32_t *res_n, const float *v)
{
	uint32_t dim = d->dim;
	/* One division per vector, not per component: on a bulk load this
	 * loop runs for every vector written. */
	double inv = 1.0 / (double)(++*n);
	for (uint32_t j = 0; j < dim; j++) {
		double x = (double)v[j];
		double delta = x - mean[j];
		mean[j] += delta * inv;
		m2[j] += delta * (x - mean[j]);
	}
	/* Algorithm R: the first R fill the sample; the t-th replaces a
	 * random slot with probability R / t. */
	if (*res_n < d->cfg.reservoir) {
		memcpy(res + (size_t)*res_n * dim, v, dim * sizeof(float));
		(*res_n)++;
		return 1;
	}
	uint64_t j = rng_below(&d->rng_res, *n);
	if (j >= d->cfg.reservoir)
		return 0;
	memcpy(res + (size_t)j * dim, v, dim * sizeof(float));
	return 1;
}

void
anc_drift_ref_add(anc_drift *d, const float *vecs, uint64_t n, int as_write)
{
	uint32_t dim = d->dim;
	if (n == 0 || vecs == NULL)
		return;
	lock(&d->ref_mu);
	for (uint64_t i = 0; i < n; i++) {
		const float *v = vecs + (size_t)i * dim;
		if (ref_absorb(d, &d->ref_n, d->mean, d->m2, d->res, &d->res_n,
		               v))
			d->res_gen++;
		/* A rebuild's LMDB snapshot predates this write: the new
		 * reference must see it too. */
		if (d->rb_on)
			(void)ref_absorb(d, &d->rb_n, d->rb_mean, d->rb_m2,
			                 d->rb_res, &d->rb_res_n, v);
	}
	d->last_add = clock_seconds(CLOCK_MONOTONIC);
	mark_stale(d, d->last_add);
	unlock(&d->ref_mu);
	if (!as_write || d->wr_cap == 0)
		return;
	lock(&d->ring_mu);
	for (uint64_t i = 0; i < n; i++)
		ring_push(d->wr, &d->wr_pos, &d->wr_n, d->wr_cap, dim,
		          vecs + (size_t)i * dim);
	d->w_seen += n;
	unlock(&d->ring_mu);
}

void
anc_drift_ref_forget(anc_drift *d, uint64_t n)
{
	if (n == 0)
		return;
	lock(&d->ref_mu);
	d->forgot += n;
	d->last_forget = clock_seconds(CLOCK_MONOTONIC);
	unlock(&d->ref_mu);
}

uint64_t
anc_drift_ref_forgotten(anc_drift *d)
{
	return locked_u64(&d->ref_mu, &d->forgot);
}

int
anc_drift_rebuild_due(anc_drift *d, double now, double quiet, double max_age)
{
	lock(&d->ref_mu);
	/* 1% of the reference gone, or any loss in a small reference (a
	 * rebuild of a few hundred vectors costs less than a report). */
	int due = !d->rb_on &&
	          (d->refill ||
	           (d->forgot > 0 &&
	            (d->forgot * 100 >= d->ref_n || d->ref_n <= 4096) &&
	            (now - d->last_forget >= quiet ||
	             now - d->rebuilt_at >= max_age)));
	unlock(&d->ref_mu);
	return due;
}

int
anc_drift_rebuild_begin(anc_drift *d, anc_error *err)
{
	uint32_t dim = d->dim;
	double *mean = calloc(dim, sizeof(double));
	double *m2 = calloc(dim, sizeof(double));
	float *res;
	lock(&d->ref_mu);
	res = malloc((size_t)d->cfg.reservoir * dim * sizeof(float));
	if (d->rb_on || mean == NULL || m2 == NULL || res == NULL) {
		int busy = d->rb_on;
		unlock(&d->ref_mu);
		free(mean);
		free(m2);
		free(res);
		if (busy)
			return anc_error_set(err, ANC_EPRECONDITION,
			                     "drift: a reference rebuild is "
			                     "already running");
		return anc_error_set(err, ANC_ENOMEM,
		                     "drift: out of memory for a reference "
		                     "rebuild (reservoir %u x dim %u)",
		                     d->cfg.reservoir, dim);
	}
	d->rb_on = 1;
	d->rb_n = 0;
	d->rb_mean = mean;
	d->rb_m2 = m2;
	d->rb_res = res;
	d->rb_res_n = 0;
	/* Losses from here on may postdate the snapshot being read: they
	 * count toward the next rebuild. */
	d->rb_forgot = d->forgot;
	d->rb_refill = d->refill;
	d->forgot = 0;
	d->refill = 0;
	unlock(&d->ref_mu);
	return ANC_OK;
}

void
anc_drift_rebuild_add(anc_drift *d, const float *vecs, uint64_t n)
{
	lock(&d->ref_mu);
	for (uint64_t i = 0; d->rb_on && i < n; i++)
		(void)ref_absorb(d, &d->rb_n, d->rb_mean, d->rb_m2, d->rb_res,
		                 &d->rb_res_n, vecs + (size_t)i * d->dim);
	unlock(&d->ref_mu);
}

void
anc_drift_rebuild_end(anc_drift *d, int commit)
{
	lock(&d->ref_mu);
	if (!d->rb_on) {
		unlock(&d->ref_mu);
		return;
	}
	if (commit) {
		double *t;
		float *r;
		t = d->mean, d->mean = d->rb_mean, d->rb_mean = t;
		t = d->m2, d->m2 = d->rb_m2, d->rb_m2 = t;
		r = d->res, d->res = d->rb_res, d->rb_res = r;
		d->ref_n = d->rb_n;
		d->res_n = d->rb_res_n;
		d->res_gen++;
		d->nscores = 0; /* scores of the old sample: recomputed */
		d->last_add = d->rebuilt_at = clock_seconds(CLOCK_MONOTONIC);
		mark_stale(d, d->last_add);
	} else {
		/* what was forgotten is still in the reference */
		d->forgot += d->rb_forgot;
		d->refill |= d->rb_refill;
	}
	rebuild_drop(d);
	unlock(&d->ref_mu);
}

uint64_t
anc_drift_ref_count(anc_drift *d)
{
	return locked_u64(&d->ref_mu, &d->ref_n);
}

int
anc_drift_ref_stale(anc_drift *d)
{
	lock(&d->ref_mu);
	int s = d->stale;
	unlock(&d->ref_mu);
	return s;
}

void
anc_drift_ref_sample(anc_drift *d, float *out, uint32_t max, uint32_t *n)
{
	lock(&d->ref_mu);
	uint32_t k = d->res_n < max ? d->res_n : max;
	if (k > 0)
		memcpy(out, d->res, (size_t)k * d->dim * sizeof(float));
	*n = k;
	unlock(&d->ref_mu);
}

void
anc_drift_refresh(anc_drift *d, const float *scores, uint32_t n)
{
	uint32_t dim = d->dim;
	double *dist = NULL, *sc = NULL, p99 = 0, cn = 0, s01 = 0;
	float *cen = malloc(dim * sizeof(float));
	int ok = 0;

	if (n > ANC_DRIFT_REF_SCORES)
		n = ANC_DRIFT_REF_SCORES;
	lock(&d->ref_mu);
	if (scores != NULL && n > 0)
		memcpy(d->ref_scores, scores, n * sizeof(float));
	d->nscores = scores != NULL ? n : 0;
	d->stale = 0;
	if (cen != NULL && d->res_n > 0 &&
	    (dist = malloc(d->res_n * sizeof(double))) != NULL &&
	    (sc = malloc((d->nscores + 1) * sizeof(double))) != NULL) {
		for (uint32_t j = 0; j < dim; j++) {
			cen[j] = (float)d->mean[j];
			cn += d->mean[j] * d->mean[j];
		}
		for (uint32_t i = 0; i < d->res_n; i++)
			dist[i] = point_dist(d->metric, dim, cen, sqrt(cn),
			                     d->res + (size_t)i * dim);
		qsort(dist, d->res_n, sizeof(double), cmp_double);
		p99 = quantile_sorted(dist, d->res_n, 0.99);
		for (uint32_t i = 0; i < d->nscores; i++)
			sc[i] = d->ref_scores[i];
		if (d->nscores > 0) {
			qsort(sc, d->nscores, sizeof(double), cmp_double);
			s01 = quantile_sorted(sc, d->nscores,
			                      d->metric == ANC_METRIC_L2 ? 0.99
			                                                 : 0.01);
		}
		ok = 1;
	}
	/* ref_mu -> ring_mu: the one nesting (see drift.h). */
	lock(&d->ring_mu);
	if (ok) {
		memcpy(d->centroid, cen, dim * sizeof(float));
		d->centroid_norm = sqrt(cn);
		d->dist_p99 = p99;
		d->score_p01 = d->nscores > 0 ? (float)s01
		               : d->metric == ANC_METRIC_L2 ? INFINITY
		                                            : -INFINITY;
		d->have_thr = p99 > 0;
	} else {
		d->have_thr = 0;
	}
	unlock(&d->ring_mu);
	unlock(&d->ref_mu);
	free(cen);
	free(dist);
	free(sc);
}

/* ---- window ----------------------------------------------------------------------- */

void
anc_drift_observe_query(anc_drift *d, const float *v, float top1,
                        int has_top1, int *flag, float *score)
{
	int f = 0;
	float s = NAN; /* no thresholds yet: not scored, not "ordinary" */
	lock(&d->ring_mu);
	if (d->have_thr) {
		double dist = point_dist(d->metric, d->dim, d->centroid,
		                         d->centroid_norm, v);
		s = (float)(dist / d->dist_p99);
		f = dist > d->dist_p99 ||
		    (has_top1 && score_worse(d->metric, top1, d->score_p01));
	}
	d->win_top1[d->win_pos] = top1;
	d->win_has[d->win_pos] = (uint8_t)(has_top1 != 0);
	d->win_flag[d->win_pos] = (uint8_t)f;
	ring_push(d->win, &d->win_pos, &d->win_n, d->win_cap, d->dim, v);
	d->q_seen++;
	d->q_flagged += (uint64_t)f;
	unlock(&d->ring_mu);
	if (flag != NULL)
		*flag = f;
	if (score != NULL)
		*score = s;
}

int
anc_drift_refresh_due(anc_drift *d, double now, double quiet, double max_age)
{
	lock(&d->ref_mu);
	int due = d->stale && d->ref_n > 0 &&
	          (now - d->last_add >= quiet ||
	           now - d->stale_since >= max_age);
	unlock(&d->ref_mu);
	return due;
}

int
anc_drift_last(anc_drift *d, anc_drift_report *out)
{
	lock(&d->rep_mu);
	int have = d->have_last;
	if (have)
		*out = d->last;
	unlock(&d->rep_mu);
	return have;
}

void
anc_drift_last_set(anc_drift *d, const anc_drift_report *r)
{
	lock(&d->rep_mu);
	d->last = *r;
	d->have_last = 1;
	unlock(&d->rep_mu);
}

uint64_t
anc_drift_queries_seen(anc_drift *d)
{
	return locked_u64(&d->ring_mu, &d->q_seen);
}

void
anc_drift_window_reset(anc_drift *d)
{
	lock(&d->ring_mu);
	d->win_pos = d->win_n = 0;
	unlock(&d->ring_mu);
}

/* ---- statistics ----------------------------------------------------------------- */

double
anc_drift_wasserstein1(double *a, uint32_t na, double *b, uint32_t nb)
{
	/* Integral of |F_a - F_b| over the merged sorted values. */
	double w = 0, prev;
	uint32_t i = 0, j = 0;
	if (na == 0 || nb == 0)
		return 0;
	qsort(a, na, sizeof(double), cmp_double);
	qsort(b, nb, sizeof(double), cmp_double);
	prev = a[0] < b[0] ? a[0] : b[0];
	while (i < na || j < nb) {
		double x;
		if (j >= nb || (i < na && a[i] <= b[j]))
			x = a[i];
		else
			x = b[j];
		w += fabs((double)i / na - (double)j / nb) * (x - prev);
		prev = x;
		while (i < na && a[i] == x)
			i++;
		while (j < nb && b[j] == x)
			j++;
	}
	return w;
}

/* The same on sorted float columns (the report's hot loop). */
static double
w1_sorted(const float *a, uint32_t na, const float *b, uint32_t nb)
{
	double w = 0, prev = a[0] < b[0] ? a[0] : b[0];
	double ia = 1.0 / na, ib = 1.0 / nb;
	uint32_t i = 0, j = 0;
	while (i < na || j < nb) {
		float x = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
		w += fabs((double)i * ia - (double)j * ib) * ((double)x - prev);
		prev = x;
		while (i < na && a[i] == x)
			i++;
		while (j < nb && b[j] == x)
			j++;
	}
	return w;
}

typedef struct {
	float s;
	uint8_t y;
} scored;

static int
cmp_scored(const void *a, const void *b)
{
	float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
	return x < y ? -1 : x > y;
}

double
anc_drift_auc(const float *s, const uint8_t *y, uint32_t n, uint32_t *tmp)
{
	/* Mann-Whitney: AUC = (rank sum of positives - n1(n1+1)/2)/(n0 n1),
	 * with average ranks for ties. tmp is unused scratch kept in the
	 * signature for callers that own a buffer. */
	scored *v = malloc((size_t)(n ? n : 1) * sizeof *v);
	double n1 = 0, n0 = 0, rs = 0;
	(void)tmp;
	if (v == NULL)
		return NAN; /* not 0.5: "no difference" would hide it */
	for (uint32_t i = 0; i < n; i++) {
		v[i].s = s[i];
		v[i].y = y[i];
		n1 += y[i] != 0;
	}
	n0 = n - n1;
	if (n1 == 0 || n0 == 0) {
		free(v);
		return 0.5;
	}
	qsort(v, n, sizeof *v, cmp_scored);
	for (uint32_t i = 0; i < n;) {
		uint32_t j = i;
		while (j < n && v[j].s == v[i].s)
			j++;
		double rank = (double)(i + 1 + j) / 2.0; /* 1-based average */
		for (uint32_t k = i; k < j; k++)
			if (v[k].y)
				rs += rank;
		i = j;
	}
	free(v);
	return (rs - n1 * (n1 + 1) / 2.0) / (n0 * n1);
}

static void
shuffle_u32(uint32_t *p, uint32_t n, uint64_t *rng)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = (uint32_t)rng_below(rng, i);
		uint32_t t = p[i - 1];
		p[i - 1] = p[j];
		p[j] = t;
	}
}

/* k-th smallest of v (n), partially reordering v. */
static float
select_kth(float *v, uint32_t n, uint32_t k)
{
	uint32_t lo = 0, hi = n - 1;
	while (lo < hi) {
		float p = v[lo + (hi - lo) / 2];
		uint32_t i = lo, j = hi;
		while (i <= j) {
			while (v[i] < p)
				i++;
			while (v[j] > p)
				j--;
			if (i <= j) {
				float t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return v[k];
	}
	return v[k];
}

int
anc_drift_mmd(const float *x, uint32_t nx, const float *y, uint32_t ny,
              uint32_t dim, uint32_t perms, uint64_t seed, double *mmd2,
              double *pvalue, anc_error *err)
{
	uint32_t n = nx + ny, np = perms + 1;
	float *z = NULL, *k = NULL, *sq = NULL, *cross = NULL, *a = NULL,
	      *s = NULL;
	double *rowsum = NULL, total = 0, *pxx = NULL, *px1 = NULL;
	uint32_t *perm = NULL;
	uint64_t rng = seed;
	int rv = ANC_OK;

	*mmd2 = 0;
	*pvalue = 1;
	if (nx < 2 || ny < 2)
		return anc_error_set(err, ANC_EINVAL,
		                     "mmd: need at least 2 vectors a side, got %u "
		                     "and %u",
		                     nx, ny);
	z = malloc((size_t)n * dim * sizeof(float));
	k = malloc((size_t)n * n * sizeof(float));
	sq = malloc((size_t)n * sizeof(float));
	cross = malloc((size_t)nx * ny * sizeof(float));
	a = calloc((size_t)n * np, sizeof(float));
	s = malloc((size_t)n * np * sizeof(float));
	rowsum = calloc(n, sizeof(double));
	perm = malloc((size_t)n * sizeof(uint32_t));
	pxx = calloc(np, sizeof(double));
	px1 = calloc(np, sizeof(double));
	if (z == NULL || k == NULL || sq == NULL || cross == NULL || a == NULL ||
	    s == NULL || rowsum == NULL || perm == NULL || pxx == NULL ||
	    px1 == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "mmd: out of memory for %u x %u vectors", n,
		                   dim);
		goto done;
	}
	memcpy(z, x, (size_t)nx * dim * sizeof(float));
	memcpy(z + (size_t)nx * dim, y, (size_t)ny * dim * sizeof(float));
	/* Gram matrix, upper triangle, then squared distances. */
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)dim,
	            1.0f, z, (int)dim, 0.0f, k, (int)n);
	for (uint32_t i = 0; i < n; i++)
		sq[i] = k[(size_t)i * n + i];
	for (uint32_t i = 0; i < n; i++) {
		k[(size_t)i * n + i] = 0;
		for (uint32_t j = i + 1; j < n; j++) {
			float dd = sq[i] + sq[j] - 2 * k[(size_t)i * n + j];
			k[(size_t)i * n + j] = dd > 0 ? dd : 0;
		}
	}
	/* Median heuristic on the x-y distances, as Alibi Detect does:
	 * exp(-d / (2 sigma^2)) with 2 sigma^2 = median. */
	for (uint32_t i = 0; i < nx; i++)
		for (uint32_t j = 0; j < ny; j++)
			cross[(size_t)i * ny + j] = k[(size_t)i * n + nx + j];
	float med = select_kth(cross, nx * ny, nx * ny / 2);
	if (!(med > 0))
		med = 1; /* identical sets: every distance 0, MMD 0 */
	float inv = 1.0f / med;
	/* The kernel on the upper triangle only: ssymm reads nothing else,
	 * and mirroring a 2048 x 2048 matrix column by column cost more than
	 * the exponentials. Row sums come out of the same pass. */
	for (uint32_t i = 0; i < n; i++) {
		float *row = k + (size_t)i * n;
		double ri = 1;
		row[i] = 1;
		for (uint32_t j = i + 1; j < n; j++) {
			float v = expf(-row[j] * inv);
			row[j] = v;
			ri += v;
			rowsum[j] += v;
		}
		rowsum[i] += ri;
	}
	for (uint32_t i = 0; i < n; i++)
		total += rowsum[i];
	/* Column 0: the real split; columns 1..perms: random ones. */
	for (uint32_t i = 0; i < n; i++)
		perm[i] = i;
	for (uint32_t i = 0; i < nx; i++)
		a[(size_t)i * np] = 1;
	for (uint32_t p = 1; p < np; p++) {
		shuffle_u32(perm, n, &rng);
		for (uint32_t i = 0; i < nx; i++)
			a[(size_t)perm[i] * np + p] = 1;
	}
	cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, (int)n, (int)np,
	            1.0f, k, (int)n, a, (int)np, 0.0f, s, (int)np);
	/* Row by row, so that A and KA are read in memory order. */
	for (uint32_t i = 0; i < n; i++) {
		const float *ai = a + (size_t)i * np, *si = s + (size_t)i * np;
		for (uint32_t p = 0; p < np; p++)
			if (ai[p] != 0) {
				pxx[p] += si[p];
				px1[p] += rowsum[i];
			}
	}
	double obs = 0;
	uint32_t ge = 0;
	for (uint32_t p = 0; p < np; p++) {
		double sxx = pxx[p], sx1 = px1[p];
		double sxy = sx1 - sxx, syy = total - 2 * sx1 + sxx;
		double m = (sxx - nx) / ((double)nx * (nx - 1)) +
		           (syy - ny) / ((double)ny * (ny - 1)) -
		           2 * sxy / ((double)nx * ny);
		if (p == 0)
			obs = m;
		else if (m >= obs)
			ge++;
	}
	*mmd2 = obs;
	/* Alibi Detect: p = mean(mmd2 <= mmd2_permuted). */
	*pvalue = perms > 0 ? (double)ge / perms : 1.0;
done:
	free(z);
	free(k);
	free(sq);
	free(cross);
	free(a);
	free(s);
	free(rowsum);
	free(perm);
	free(pxx);
	free(px1);
	return rv;
}

int
anc_drift_classifier_auc(const float *x, uint32_t nx, const float *y,
                         uint32_t ny, uint32_t dim, uint32_t folds,
                         uint32_t epochs, uint64_t seed, double *auc,
                         anc_error *err)
{
	uint32_t n = nx + ny;
	float *z = NULL, *w = NULL, *grad = NULL, *pred = NULL;
	double *mu = NULL, *sd = NULL;
	uint8_t *lab = NULL, *tlab = NULL;
	uint32_t *order = NULL, *train = NULL;
	uint64_t rng = seed;
	double sum_auc = 0;
	uint32_t nauc = 0;
	int rv = ANC_OK;
	const uint32_t batch = 32;
	const float lr = 0.05f, l2 = 1e-3f;

	*auc = 0.5;
	if (nx < folds || ny < folds)
		return anc_error_set(err, ANC_EINVAL,
		                     "classifier: need at least %u vectors a side "
		                     "(one per fold), got %u and %u",
		                     folds, nx, ny);
	z = malloc((size_t)n * dim * sizeof(float));
	w = malloc((dim + 1) * sizeof(float));
	grad = malloc((dim + 1) * sizeof(float));
	pred = malloc((size_t)n * sizeof(float));
	mu = calloc(dim, sizeof(double));
	sd = calloc(dim, sizeof(double));
	lab = malloc(n);
	tlab = malloc(n);
	order = malloc((size_t)n * sizeof(uint32_t));
	train = malloc((size_t)n * sizeof(uint32_t));
	if (z == NULL || w == NULL || grad == NULL || pred == NULL ||
	    mu == NULL || sd == NULL || lab == NULL || tlab == NULL ||
	    order == NULL || train == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "classifier: out of memory for %u x %u", n, dim);
		goto done;
	}
	memcpy(z, x, (size_t)nx * dim * sizeof(float));
	memcpy(z + (size_t)nx * dim, y, (size_t)ny * dim * sizeof(float));
	for (uint32_t i = 0; i < n; i++) {
		lab[i] = i >= nx;
		order[i] = i;
	}
	/* Standardise on the pooled data so that the step size means the
	 * same thing for pixels and for unit-norm embeddings. */
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++)
			mu[j] += z[(size_t)i * dim + j];
	for (uint32_t j = 0; j < dim; j++)
		mu[j] /= n;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++) {
			double t = z[(size_t)i * dim + j] - mu[j];
			sd[j] += t * t;
		}
	for (uint32_t j = 0; j < dim; j++) {
		sd[j] = sqrt(sd[j] / n);
		if (sd[j] < 1e-12)
			sd[j] = 1;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++)
			z[(size_t)i * dim + j] =
			    (float)((z[(size_t)i * dim + j] - mu[j]) / sd[j]);
	shuffle_u32(order, n, &rng);
	/* Class weights: the two sides count equally whatever their sizes. */
	float wpos = (float)n / (2.0f * ny), wneg = (float)n / (2.0f * nx);
	for (uint32_t f = 0; f < folds; f++) {
		uint32_t lo = (uint32_t)((uint64_t)n * f / folds);
		uint32_t hi = (uint32_t)((uint64_t)n * (f + 1) / folds);
		uint32_t ntr = 0;
		for (uint32_t t = 0; t < n; t++)
			if (t < lo || t >= hi)
				train[ntr++] = order[t];
		memset(w, 0, (dim + 1) * sizeof(float));
		/* Row by row with level-1 BLAS: batched sgemv is faster
		 * alone, but OpenBLAS threads every sgemv of a 32 x dim
		 * batch, and 4000 thread wake-ups per report took 0.4-6 s
		 * on a busy machine. */
		for (uint32_t e = 0; e < epochs; e++) {
			uint32_t inb = 0;
			shuffle_u32(train, ntr, &rng);
			memset(grad, 0, (dim + 1) * sizeof(float));
			for (uint32_t t = 0; t < ntr; t++) {
				uint32_t i = train[t];
				const float *row = z + (size_t)i * dim;
				float m = cblas_sdot((int)dim, w, 1, row, 1) +
				          w[dim];
				float p = 1.0f / (1.0f + expf(-m));
				float r = (p - (float)lab[i]) *
				          (lab[i] ? wpos : wneg);
				cblas_saxpy((int)dim, r, row, 1, grad, 1);
				grad[dim] += r;
				if (++inb == batch || t + 1 == ntr) {
					for (uint32_t j = 0; j < dim; j++)
						w[j] -= lr * (grad[j] / inb +
						              l2 * w[j]);
					w[dim] -= lr * grad[dim] / inb;
					memset(grad, 0,
					       (dim + 1) * sizeof(float));
					inb = 0;
				}
			}
		}
		uint32_t nt = 0;
		for (uint32_t t = lo; t < hi; t++) {
			uint32_t i = order[t];
			pred[nt] = cblas_sdot((int)dim, w, 1,
			                      z + (size_t)i * dim, 1) +
			           w[dim];
			tlab[nt++] = lab[i];
		}
		double a = anc_drift_auc(pred, tlab, nt, NULL);
		if (isnan(a)) {
			rv = anc_error_set(err, ANC_ENOMEM, "classifier: out of "
			                   "memory for the AUC of %u scores", nt);
			goto done;
		}
		sum_auc += a;
		nauc++;
	}
	*auc = nauc > 0 ? sum_auc / nauc : 0.5;
done:
	free(z);
	free(w);
	free(grad);
	free(pred);
	free(mu);
	free(sd);
	free(lab);
	free(tlab);
	free(order);
	free(train);
	return rv;
}

/* ---- the report ----------------------------------------------------------------- */

/* Private copies the statistics work on. */
typedef struct snap {
	float *ref, *win, *wtop1, *wr;
	uint8_t *whas, *wflag;
	double *mean, *sd;
	float *scores;
	uint32_t nref, nwin, nscores, nwr, wflagged;
	uint64_t ref_n, q_seen, q_flagged, w_seen;
	uint64_t res_gen;
} snap;

static void
snap_free(snap *s)
{
	free(s->ref);
	free(s->win);
	free(s->wtop1);
	free(s->wr);
	free(s->whas);
	free(s->wflag);
	free(s->mean);
	free(s->sd);
	free(s->scores);
}

static int
snap_take(anc_drift *d, snap *s)
{
	uint32_t dim = d->dim;
	memset(s, 0, sizeof *s);
	/* Sizes can change only under rep_mu, which the caller holds. */
	s->ref = malloc((size_t)d->cfg.reservoir * dim * sizeof(float));
	s->win = malloc((size_t)d->win_cap * dim * sizeof(float));
	s->wtop1 = malloc((size_t)d->win_cap * sizeof(float));
	s->whas = malloc(d->win_cap);
	s->wflag = malloc(d->win_cap);
	s->mean = malloc(dim * sizeof(double));
	s->sd = malloc(dim * sizeof(double));
	s->scores = malloc(ANC_DRIFT_REF_SCORES * sizeof(float));
	if (d->wr_cap > 0)
		s->wr = malloc((size_t)d->wr_cap * dim * sizeof(float));
	if (s->ref == NULL || s->win == NULL || s->wtop1 == NULL ||
	    s->whas == NULL || s->wflag == NULL || s->mean == NULL ||
	    s->sd == NULL || s->scores == NULL || (d->wr_cap > 0 && s->wr == NULL))
		return ANC_ENOMEM;
	lock(&d->ref_mu);
	s->nref = d->res_n;
	s->res_gen = d->res_gen;
	memcpy(s->ref, d->res, (size_t)s->nref * dim * sizeof(float));
	s->ref_n = d->ref_n;
	for (uint32_t j = 0; j < dim; j++) {
		s->mean[j] = d->mean[j];
		s->sd[j] = d->ref_n > 1 ? sqrt(d->m2[j] / (double)d->ref_n) : 0;
	}
	s->nscores = d->nscores;
	memcpy(s->scores, d->ref_scores, s->nscores * sizeof(float));
	unlock(&d->ref_mu);
	lock(&d->ring_mu);
	/* Oldest first, so a window that is not full reads in order. */
	s->nwin = d->win_n;
	for (uint32_t i = 0; i < s->nwin; i++) {
		uint32_t src = (d->win_pos + d->win_cap - s->nwin + i) % d->win_cap;
		memcpy(s->win + (size_t)i * dim, d->win + (size_t)src * dim,
		       dim * sizeof(float));
		s->wtop1[i] = d->win_top1[src];
		s->whas[i] = d->win_has[src];
		s->wflag[i] = d->win_flag[src];
		s->wflagged += d->win_flag[src];
	}
	s->nwr = d->wr_n;
	if (s->nwr > 0)
		memcpy(s->wr, d->wr, (size_t)s->nwr * dim * sizeof(float));
	s->q_seen = d->q_seen;
	s->q_flagged = d->q_flagged;
	s->w_seen = d->w_seen;
	unlock(&d->ring_mu);
	return ANC_OK;
}

/* Keep one copy of each distinct query vector of the window, the oldest,
 * in order. Repeats (a retried request, a popular question) are not new
 * samples: counted again, they made a tight cluster that the tests read
 * as a distribution unlike the reference (a window of 94 in-distribution
 * queries sent three times each was "drift" on four statistics), and they
 * shrank the centroid's bootstrap threshold to a window three times the
 * real sample. Out of memory: the window stays as it is. */
typedef struct hkey {
	uint64_t h;
	uint32_t i;
} hkey;

/* By hash, then by position: within a run of equal hashes the oldest
 * comes first. */
static int
hkey_cmp(const void *a, const void *b)
{
	const hkey *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static void
snap_dedupe(snap *s, uint32_t dim)
{
	uint32_t n = s->nwin, k = 0;
	hkey *ix = malloc((size_t)(n ? n : 1) * sizeof *ix);
	uint8_t *dup = calloc(n ? n : 1, 1);

	if (n < 2 || ix == NULL || dup == NULL)
		goto leave;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *p =
		    (const unsigned char *)(s->win + (size_t)i * dim);
		uint64_t x = 1469598103934665603ull; /* FNV-1a */
		for (size_t b = 0; b < (size_t)dim * sizeof(float); b++)
			x = (x ^ p[b]) * 1099511628211ull;
		ix[i] = (hkey){x, i};
	}
	qsort(ix, n, sizeof *ix, hkey_cmp);
	for (uint32_t a = 0; a < n;) {
		uint32_t b = a + 1;
		while (b < n && ix[b].h == ix[a].h)
			b++;
		/* equal hashes: the same bytes are copies of the oldest */
		for (uint32_t i = a + 1; i < b; i++)
			for (uint32_t j = a; j < i && !dup[ix[i].i]; j++)
				if (!dup[ix[j].i] &&
				    memcmp(s->win + (size_t)ix[i].i * dim,
				           s->win + (size_t)ix[j].i * dim,
				           dim * sizeof(float)) == 0)
					dup[ix[i].i] = 1;
		a = b;
	}
	s->wflagged = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (dup[i])
			continue;
		if (k != i) {
			memmove(s->win + (size_t)k * dim,
			        s->win + (size_t)i * dim, dim * sizeof(float));
			s->wtop1[k] = s->wtop1[i];
			s->whas[k] = s->whas[i];
			s->wflag[k] = s->wflag[i];
		}
		s->wflagged += s->wflag[k];
		k++;
	}
	s->nwin = k;
leave:
	free(ix);
	free(dup);
}

static void
mean_of(const float *v, uint32_t n, uint32_t dim, double *out)
{
	memset(out, 0, dim * sizeof(double));
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < dim; j++)
			out[j] += v[(size_t)i * dim + j];
	for (uint32_t j = 0; j < dim; j++)
		out[j] /= n > 0 ? n : 1;
}

/* Bootstrap draws per sgemm call: bounds the count matrix (BOOT_CHUNK x
 * reservoir floats) whatever cfg.bootstrap is. */
#define BOOT_CHUNK 32

static int
stat_centroid(anc_drift *d, const snap *s, uint64_t seed, anc_drift_stat *st)
{
	uint32_t dim = d->dim, B = d->cfg.bootstrap, nref = s->nref;
	uint64_t rng = seed;
	double *wm = malloc(dim * sizeof(double));
	double *bd = malloc(B * sizeof(double));
	float *cnt = malloc((size_t)BOOT_CHUNK * nref * sizeof(float));
	float *acc = malloc((size_t)BOOT_CHUNK * dim * sizeof(float));
	if (wm == NULL || bd == NULL || cnt == NULL || acc == NULL) {
		free(wm);
		free(bd);
		free(cnt);
		free(acc);
		return ANC_ENOMEM;
	}
	mean_of(s->win, s->nwin, dim, wm);
	st->value = centroid_dist(d->metric, s->mean, wm, dim);
	/* Bootstrap: windows of the same size drawn (with replacement) from
	 * the reference sample tell how far a centroid strays by chance. A
	 * draw is a row of counts over the sample, so a chunk of draws is
	 * one product (counts x sample) instead of nwin row gathers each. */
	for (uint32_t b0 = 0; b0 < B; b0 += BOOT_CHUNK) {
		uint32_t nb = B - b0 < BOOT_CHUNK ? B - b0 : BOOT_CHUNK;
		memset(cnt, 0, (size_t)nb * nref * sizeof(float));
		for (uint32_t b = 0; b < nb; b++)
			for (uint32_t i = 0; i < s->nwin; i++)
				cnt[(size_t)b * nref + rng_below(&rng, nref)] += 1;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb,
		            (int)dim, (int)nref, 1.0f / (float)s->nwin, cnt,
		            (int)nref, s->ref, (int)dim, 0.0f, acc, (int)dim);
		for (uint32_t b = 0; b < nb; b++) {
			for (uint32_t j = 0; j < dim; j++)
				wm[j] = acc[(size_t)b * dim + j];
			bd[b0 + b] = centroid_dist(d->metric, s->mean, wm, dim);
		}
	}
	qsort(bd, B, sizeof(double), cmp_double);
	st->threshold = quantile_sorted(bd, B, d->cfg.quantile);
	st->fired = st->value > st->threshold;
	st->computed = 1;
	free(wm);
	free(bd);
	free(cnt);
	free(acc);
	return ANC_OK;
}

/* dst (dim x n) = transpose of src (n x dim), in cache-sized tiles: a
 * column walk over 1024 rows of 3 KiB touched a new cache line (and
 * often a new page) per value. */
static void
transpose(const float *src, uint32_t n, uint32_t dim, float *dst)
{
	const uint32_t T = 32;
	for (uint32_t i0 = 0; i0 < n; i0 += T)
		for (uint32_t j0 = 0; j0 < dim; j0 += T) {
			uint32_t i1 = i0 + T < n ? i0 + T : n;
			uint32_t j1 = j0 + T < dim ? j0 + T : dim;
			for (uint32_t i = i0; i < i1; i++)
				for (uint32_t j = j0; j < j1; j++)
					dst[(size_t)j * n + i] =
					    src[(size_t)i * dim + j];
		}
}

/* Columns of v (n x dim), each sorted, into cols (dim x n). tmp: n
 * scratch words, or NULL to use the comparison sort. */
static void
sorted_columns(const float *v, uint32_t n, uint32_t dim, float *cols,
               uint32_t *tmp)
{
	transpose(v, n, dim, cols);
	for (uint32_t j = 0; j < dim; j++) {
		if (tmp != NULL)
			radix_floats(cols + (size_t)j * n, n, tmp);
		else
			sort_floats(cols + (size_t)j * n, n);
	}
}

/* Under rep_mu (the caller's): d->cols becomes the sorted columns of the
 * snapshot's reservoir, reused as long as the reservoir has not changed
 * (an index that is not being written to pays one transpose and sort,
 * then none). */
static int
ref_columns(anc_drift *d, const snap *s)
{
	size_t need = (size_t)s->nref * d->dim;
	if (d->cols != NULL && d->cols_n == s->nref &&
	    d->cols_gen == s->res_gen)
		return ANC_OK;
	if (d->cols_cap < need) {
		float *c = realloc(d->cols, need * sizeof(float));
		if (c == NULL)
			return ANC_ENOMEM;
		d->cols = c;
		d->cols_cap = need;
	}
	d->cols_n = 0; /* invalid until filled */
	uint32_t *tmp = malloc((size_t)s->nref * sizeof(uint32_t));
	sorted_columns(s->ref, s->nref, d->dim, d->cols, tmp);
	free(tmp);
	d->cols_n = s->nref;
	d->cols_gen = s->res_gen;
	return ANC_OK;
}

static int
stat_components(anc_drift *d, const snap *s, anc_drift_stat *st)
{
	uint32_t dim = d->dim, drifted = 0;
	float *cw = malloc((size_t)s->nwin * dim * sizeof(float));
	if (cw == NULL || ref_columns(d, s) != ANC_OK) {
		free(cw);
		return ANC_ENOMEM;
	}
	uint32_t *tmp = malloc((size_t)s->nwin * sizeof(uint32_t));
	sorted_columns(s->win, s->nwin, dim, cw, tmp);
	free(tmp);
	/* Two samples of one distribution are apart by W1 / sd of about
	 * sqrt(1/n + 1/m) times 1.0-1.2 (median) and 2.0-2.3 (95th
	 * percentile), whatever the distribution (simulated for normal,
	 * uniform, exponential and zero-inflated columns): 0.12 at the
	 * median for a window of 100. Evidently's 0.1 assumes large
	 * datasets; here a window of a few hundred queries would see most
	 * components "drift" on noise alone. So a component drifts when it
	 * is past both 0.1 and 2.5 times that noise scale. */
	double thr = ANC_DRIFT_COMPONENT_NOISE *
	             sqrt(1.0 / s->nwin + 1.0 / s->nref);
	if (thr < d->cfg.component_threshold)
		thr = d->cfg.component_threshold;
	for (uint32_t j = 0; j < dim; j++) {
		double w = w1_sorted(d->cols + (size_t)j * s->nref, s->nref,
		                     cw + (size_t)j * s->nwin, s->nwin);
		/* Evidently normalises by the reference std; a constant
		 * reference component drifts as soon as the window moves
		 * it at all. */
		double norm = s->sd[j] > 0 ? w / s->sd[j] : (w > 0 ? INFINITY : 0);
		drifted += norm > thr;
	}
	st->value = (double)drifted / dim;
	st->threshold = d->cfg.component_share;
	st->detail = thr;
	st->fired = st->value > st->threshold;
	st->computed = 1;
	free(cw);
	return ANC_OK;
}

static void
stat_score(anc_drift *d, const snap *s, anc_drift_stat *st)
{
	uint32_t nw = 0, worse = 0;
	double *sc;
	if (s->nscores < 16 || (sc = malloc(s->nscores * sizeof(double))) == NULL)
		return;
	for (uint32_t i = 0; i < s->nscores; i++)
		sc[i] = s->scores[i];
	qsort(sc, s->nscores, sizeof(double), cmp_double);
	double q = quantile_sorted(sc, s->nscores,
	                           d->metric == ANC_METRIC_L2
	                               ? 1.0 - d->cfg.score_quantile
	                               : d->cfg.score_quantile);
	free(sc);
	for (uint32_t i = 0; i < s->nwin; i++) {
		if (!s->whas[i])
			continue;
		nw++;
		worse += score_worse(d->metric, s->wtop1[i], q);
	}
	if (nw < d->cfg.min_window)
		return;
	st->value = (double)worse / nw;
	st->threshold = d->cfg.score_share;
	st->detail = q;
	st->fired = st->value > st->threshold;
	st->computed = 1;
}

int
anc_drift_report_compute(anc_drift *d, anc_drift_report *out, anc_error *err)
{
	snap s;
	int rv = ANC_OK;
	double t0 = clock_seconds(CLOCK_MONOTONIC);
	uint32_t dim = d->dim;
	uint64_t rng;

	memset(out->stats, 0, sizeof out->stats);
	lock(&d->rep_mu);
	rng = rng_next(&d->rng_rep);
	if (snap_take(d, &s) != ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "drift report: out of memory for snapshots "
		                   "(dim %u)",
		                   dim);
		goto done;
	}
	snap_dedupe(&s, dim);
	out->time = clock_seconds(CLOCK_REALTIME);
	out->reference_count = s.ref_n;
	out->reference_sample = s.nref;
	out->reference_scores = s.nscores;
	out->window = s.nwin;
	out->window_flagged = s.wflagged;
	out->window_size = d->cfg.window; /* written under rep_mu too */
	out->queries_seen = s.q_seen;
	out->queries_flagged = s.q_flagged;
	out->writes_seen = s.w_seen;
	out->write_centroid_distance = -1;
	out->nfired = 0;
	if (s.nwr > 0 && s.ref_n > 0) {
		double *wm = malloc(dim * sizeof(double));
		if (wm != NULL) {
			mean_of(s.wr, s.nwr, dim, wm);
			out->write_centroid_distance =
			    centroid_dist(d->metric, s.mean, wm, dim);
			free(wm);
		}
	}
	if (s.nwin < d->cfg.min_window || s.nref < d->cfg.min_reference) {
		out->status = ANC_DRIFT_INSUFFICIENT;
		goto done;
	}
	/* In turn on this thread, not on a second one: OpenBLAS already
	 * spreads the level-3 products (most of the cost) over the cores,
	 * and a thread of ours beside its spinning workers oversubscribed
	 * the 2 cores (reports of 0.8-2 s instead of 0.3 s on a busy
	 * machine). */
	anc_drift_stat *st = out->stats;
	uint64_t seed_boot = rng_next(&rng), seed_mmd = rng_next(&rng);
	uint64_t seed_clf = rng_next(&rng);
	if (stat_centroid(d, &s, seed_boot, &st[ANC_DRIFT_STAT_CENTROID]) !=
	    ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "drift report: out of memory for the centroid "
		                   "bootstrap (dim %u)",
		                   dim);
		goto done;
	}
	if (stat_components(d, &s, &st[ANC_DRIFT_STAT_COMPONENTS]) != ANC_OK) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "drift report: out of memory for the "
		                   "components (dim %u)",
		                   dim);
		goto done;
	}
	{
		double m2, p;
		if ((rv = anc_drift_mmd(s.ref, s.nref, s.win, s.nwin, dim,
		                        d->cfg.permutations, seed_mmd, &m2, &p,
		                        err)) != ANC_OK)
			goto done;
		anc_drift_stat *m = &st[ANC_DRIFT_STAT_MMD];
		m->value = p;
		m->threshold = d->cfg.p_value;
		m->detail = m2;
		m->fired = d->cfg.permutations > 0 && p < d->cfg.p_value;
		m->computed = d->cfg.permutations > 0;
	}
	{
		double auc;
		if ((rv = anc_drift_classifier_auc(s.ref, s.nref, s.win, s.nwin,
		                                   dim, d->cfg.folds,
		                                   d->cfg.epochs, seed_clf, &auc,
		                                   err)) != ANC_OK)
			goto done;
		anc_drift_stat *c = &st[ANC_DRIFT_STAT_CLASSIFIER];
		c->value = auc;
		c->threshold = d->cfg.auc;
		c->fired = auc > d->cfg.auc;
		c->computed = 1;
	}
	stat_score(d, &s, &st[ANC_DRIFT_STAT_SCORE]);
	for (int i = 0; i < ANC_DRIFT_NSTATS; i++)
		out->nfired += (uint32_t)(st[i].computed && st[i].fired);
	out->status = out->nfired >= 3   ? ANC_DRIFT_DRIFT
	              : out->nfired == 2 ? ANC_DRIFT_WARN
	                                 : ANC_DRIFT_OK;
done:
	out->compute_seconds = clock_seconds(CLOCK_MONOTONIC) - t0;
	unlock(&d->rep_mu);
	snap_free(&s);
	return rv;
}
