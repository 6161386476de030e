/*
 * ground.c — grounding checks and retrieval receipts (issue 8): confidence
 * calibration per contract, the verify operation, and HMAC-authenticated
 * receipts with replay. anc_types.h states the rules; ground.h says how
 * this file and engine.c share the work.
 *
 * Design note
 * -----------
 * Calibration. A contract's calibration is a handful of numbers computed
 * from a sample of its stored vectors (reservoir sampling over one LMDB
 * scan, at most ANC_CALIB_SAMPLE vectors, seeded by the contract ID so a
 * recomputation over the same vectors gives the same numbers). The
 * nearest-neighbour pass is O(sample^2 x dim), each pair once: about
 * 0.8 G multiply-adds at 2000 x 384, about 1 s at -O2, which is why it
 * never runs on a request unless a verify finds no calibration at all. Calibrations live in
 * memory (a small array under g->mu) and in the "calibration" LMDB
 * database, so a restart serves the last one at once.
 *
 * Background thread. One per database. It sleeps on g->cond; a committed
 * write sets g->dirty and signals. Woken, it waits until writes have been
 * quiet for QUIET_SECONDS (at most QUIET_MAX_SECONDS after the first: during
 * a bulk load a recalibration per batch cost a third of the load's time),
 * then walks every contract and recalibrates those
 * whose live count moved by more than ANC_CALIB_DRIFT. Every
 * PRUNE_SECONDS it also prunes receipts beyond receipt_keep and retained
 * revision texts not referenced for receipt_days. It never holds g->mu
 * while calling into the engine or LMDB.
 *
 * Receipts. The record is a msgpack map written by this file only; the
 * stored value is record || HMAC-SHA256(key, "anchorage.receipt.v1" ||
 * id || record), so neither the bytes nor their binding to the ID can
 * change unnoticed. The MAC is checked (CRYPTO_memcmp) before a single
 * byte of the record is decoded. The query vectors are kept in the record
 * (4 x dim bytes each: 1.5 KiB for one MiniLM query) so that a replay
 * re-runs exactly the same search, and the digest of the canonical request
 * (PROTOCOL.md, "Receipts") lets a client prove which request it sent.
 * Receipt writes are durable LMDB transactions of their own (LMDB
 * serialises them with the engine's writes; no engine lock is held).
 *
 * Retained revisions. When a receipt is stored, the text of every
 * returned (anchor, revision) is copied into the "revisions" database
 * with the time of this reference, so the text a receipt vouches for
 * stays readable after the passage is edited or deleted. Each copy carries
 * HMAC-SHA256(key, "anchorage.revision.v1" || key of the entry || text),
 * checked before receipt_get returns the text: a text altered in the
 * database is TAMPERED like an altered record. Bounded
 * retention: an entry is pruned receipt_days after its last reference
 * (default 30), and receipts beyond the newest receipt_keep (default
 * 100000) are pruned oldest first.
 */
#include "ground.h"
#include "mpk.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define KEY_LEN 32
#define MAC_LEN 32
#define RECEIPT_RAW 16
#define PRUNE_SECONDS 60
#define PRUNE_BATCH 10000
#define REC_VERSION 1
/* Retained revision values: a 16-byte head {u8 fmt, 3 x 0, u32 text
 * length, u64 last reference (s)}, then for REV_FMT 2 the HMAC-SHA256 of
 * the text under the receipt key (rev_mac), then the text. Format 1 (no
 * MAC) is still read: texts retained before the MAC existed. */
#define REV_FMT 2
#define REV_HEAD 16
#define CALIB_FMT 1

typedef struct calib_ent {
	uint32_t cid;
	uint8_t id[ANC_CONTRACT_ID_RAW];
	anc_calibration c;
} calib_ent;

struct ground {
	anc_db *db;
	store *st;
	uint8_t key[KEY_LEN];
	uint32_t keep, days;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int mu_ok, cond_ok, thread_ok;
	pthread_t thread;
	int stop, dirty;     /* under mu */
	int writing;         /* write groups in progress, under mu */
	calib_ent *cal;      /* under mu */
	uint32_t ncal, capcal;
	anc_ground_stats stats; /* counters under mu (not the LMDB counts) */
};

/* ---- small helpers ---------------------------------------------------------------- */

static void
lock(ground *g)
{
	if (pthread_mutex_lock(&g->mu) != 0)
		abort(); /* only on misuse; running unlocked would corrupt */
}

static void
unlock(ground *g)
{
	if (pthread_mutex_unlock(&g->mu) != 0)
		abort();
}

static uint64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void
be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], v;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return s[2 * n] == '\0' ? 0 : -1;
}

static int
receipt_id_parse(const char *id, uint8_t raw[RECEIPT_RAW], anc_error *err)
{
	if (id == NULL || strnlen(id, ANC_RECEIPT_ID_LEN + 1) !=
	                      ANC_RECEIPT_ID_LEN ||
	    unhex(id, raw, RECEIPT_RAW) != 0)
		return anc_error_set(err, ANC_EINVAL,
		                     "receipt '%.40s': expected %d lower-case hex "
		                     "digits",
		                     id != NULL ? id : "(null)",
		                     ANC_RECEIPT_ID_LEN);
	return ANC_OK;
}

/* Score of stored vector v against prepared q in the metric's units. */
static float
score(anc_metric m, const float *q, const float *v, uint32_t dim)
{
	double acc = 0;
	if (m == ANC_METRIC_L2) {
		for (uint32_t i = 0; i < dim; i++) {
			double t = (double)q[i] - v[i];
			acc += t * t;
		}
	} else {
		for (uint32_t i = 0; i < dim; i++)
			acc += (double)q[i] * v[i];
	}
	return (float)acc;
}

/* score() for the calibration's O(n^2) pass: eight float lanes the
 * compiler can keep in registers (the result differs from score() only in
 * float rounding, far below the thresholds' precision). */
static float
score_fast(anc_metric m, const float *q, const float *v, uint32_t dim)
{
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, t = 0;
	uint32_t i = 0;
	if (m == ANC_METRIC_L2) {
		for (; i + 8 <= dim; i += 8)
			for (int k = 0; k < 8; k++) {
				float d = q[i + k] - v[i + k];
				acc[k] += d * d;
			}
		for (; i < dim; i++)
			t += (q[i] - v[i]) * (q[i] - v[i]);
	} else {
		for (; i + 8 <= dim; i += 8)
			for (int k = 0; k < 8; k++)
				acc[k] += q[i + k] * v[i + k];
		for (; i < dim; i++)
			t += q[i] * v[i];
	}
	return t + ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
	       ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Closeness: higher is closer, whatever the metric. */
static double
close_of(anc_metric m, float s)
{
	return m == ANC_METRIC_L2 ? -(double)s : (double)s;
}

static float
score_of(anc_metric m, double c)
{
	return (float)(m == ANC_METRIC_L2 ? -c : c);
}

/* ---- calibration: the numbers ----------------------------------------------------- */

static uint64_t
rng_next(uint64_t *s)
{
	/* xorshift64*: statistically fine for sampling, and deterministic */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static int
dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of sorted v[0..n), linear interpolation. */
static double
pct(const double *v, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t i = (size_t)pos;
	if (i + 1 >= n)
		return v[n - 1];
	return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

/* Are vectors i and j copies of one another: equal up to a relative
 * distance of 1e-3 (re-embedding one text reproduces its vector to about
 * 1e-6; two different passages are nowhere near)? n2: squared norms. */
static int
near_copy(const float *v, const double *n2, uint32_t i, uint32_t j,
          uint32_t dim)
{
	const float *a = v + (size_t)i * dim, *b = v + (size_t)j * dim;
	double d2 = 0, lim = 1e-6 * (n2[i] > n2[j] ? n2[i] : n2[j]);
	for (uint32_t k = 0; k < dim && d2 <= lim; k++) {
		double t = (double)a[k] - b[k];
		d2 += t * t;
	}
	return d2 <= lim;
}

/* The random-pair and nearest-neighbour samples, copies left out when
 * skip (see the caller). *np and *nnn: how many of each. */
static void
calib_sample(const float *v, const double *n2, uint32_t n, uint32_t dim,
             anc_metric metric, uint64_t seed, int skip, double *pairs,
             uint64_t *np, double *nn, uint32_t *nnn)
{
	uint64_t total = (uint64_t)n * (n - 1) / 2, want = *np, k = 0;
	uint64_t s = seed | 1;
	if (want == total) {
		/* small sample: every pair, no sampling noise */
		for (uint32_t i = 0; i < n; i++)
			for (uint32_t j = i + 1; j < n; j++)
				if (!skip || !near_copy(v, n2, i, j, dim))
					pairs[k++] = close_of(metric,
					    score_fast(metric, v + (size_t)i * dim,
					               v + (size_t)j * dim, dim));
	} else {
		for (uint64_t t = 0; t < 4 * want && k < want; t++) {
			uint32_t i = (uint32_t)(rng_next(&s) % n);
			uint32_t j = (uint32_t)(rng_next(&s) % (n - 1));
			if (j >= i)
				j++; /* distinct passages */
			if (!skip || !near_copy(v, n2, i, j, dim))
				pairs[k++] = close_of(metric,
				    score_fast(metric, v + (size_t)i * dim,
				               v + (size_t)j * dim, dim));
		}
	}
	*np = k;
	/* nearest neighbour other than itself (and its copies): each pair
	 * once, both ends */
	for (uint32_t i = 0; i < n; i++)
		nn[i] = -INFINITY;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++) {
			if (skip && near_copy(v, n2, i, j, dim))
				continue;
			double c = close_of(metric, score_fast(metric,
			    v + (size_t)i * dim, v + (size_t)j * dim, dim));
			if (c > nn[i])
				nn[i] = c;
			if (c > nn[j])
				nn[j] = c;
		}
	/* a vector whose every other is a copy has no neighbour */
	*nnn = 0;
	for (uint32_t i = 0; i < n; i++)
		if (nn[i] != -INFINITY)
			nn[(*nnn)++] = nn[i];
}

int
ground_calibrate_vectors(const float *v, uint32_t n, uint32_t dim,
                         anc_metric metric, uint64_t seed,
                         anc_calibration *out, anc_error *err)
{
	double *pairs = NULL, *nn = NULL, *n2 = NULL;
	uint64_t total, np;
	uint32_t nnn = 0; /* vectors with a neighbour other than copies */
	int rv = ANC_OK;

	memset(out, 0, sizeof *out);
	if (v == NULL || n < 2 || dim == 0)
		return anc_error_set(err, ANC_EINVAL,
		                     "calibration: %u vectors, need at least 2",
		                     n);
	total = (uint64_t)n * (n - 1) / 2;
	np = total < ANC_CALIB_PAIRS ? total : ANC_CALIB_PAIRS;
	if ((pairs = malloc(np * sizeof *pairs)) == NULL ||
	    (nn = malloc((size_t)n * sizeof *nn)) == NULL ||
	    (n2 = malloc((size_t)n * sizeof *n2)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "calibration: out of memory for %u vectors", n);
		goto leave;
	}
	for (uint32_t i = 0; i < n; i++) {
		double t = 0;
		for (uint32_t k = 0; k < dim; k++)
			t += (double)v[(size_t)i * dim + k] * v[(size_t)i * dim + k];
		n2[i] = t;
	}
	/* Pairs of one passage stored twice (a corpus loaded under two
	 * chunk keys, boilerplate) are neither random pairs nor neighbours:
	 * counted, they put the random p99 at a perfect score when a few
	 * percent of the sample are copies, and no hit is ever confident.
	 * When nothing but copies is left (a placeholder embedder's
	 * constant vector), they are what there is. */
	{
		uint64_t want = np;
		calib_sample(v, n2, n, dim, metric, seed, 1, pairs, &np, nn,
		             &nnn);
		if (np == 0 || nnn == 0) {
			np = want;
			calib_sample(v, n2, n, dim, metric, seed, 0, pairs, &np,
			             nn, &nnn);
		}
	}
	qsort(pairs, np, sizeof *pairs, dbl_cmp);
	qsort(nn, nnn, sizeof *nn, dbl_cmp);
	{
		double r50 = pct(pairs, np, 0.50), r99 = pct(pairs, np, 0.99);
		double n05 = pct(nn, nnn, 0.05), n50 = pct(nn, nnn, 0.50);
		double n95 = pct(nn, nnn, 0.95);
		double weak = r99;
		double clear = r99 + 0.5 * (r99 - r50);
		/* never beyond what real neighbours reach (a spread-out
		 * random distribution would put "clear" out of reach) */
		double strong = clear < n95 ? clear : n95;
		double margin;
		if (strong < n05)
			strong = n05;
		if (strong < weak)
			strong = weak;
		margin = strong > weak ? 0.5 * (strong - weak)
		                       : 0.1 * (r99 - r50);
		if (margin < 1e-6)
			margin = 1e-6;
		out->metric = metric;
		out->sample = n;
		out->pairs = (uint32_t)np;
		out->random_p50 = score_of(metric, r50);
		out->random_p99 = score_of(metric, r99);
		out->nn_p05 = score_of(metric, n05);
		out->nn_p50 = score_of(metric, n50);
		out->weak = score_of(metric, weak);
		out->strong = score_of(metric, strong);
		out->margin = (float)margin;
	}
leave:
	free(pairs);
	free(nn);
	free(n2);
	return rv;
}

int
ground_confidence(const anc_calibration *c, float s)
{
	double x;
	if (c == NULL || c->computed_at == 0)
		return ANC_CONF_UNKNOWN;
	x = close_of((anc_metric)c->metric, s);
	if (x >= close_of((anc_metric)c->metric, c->strong))
		return ANC_CONF_STRONG;
	if (x >= close_of((anc_metric)c->metric, c->weak))
		return ANC_CONF_WEAK;
	return ANC_CONF_NONE;
}

/* ---- calibration: storage and cache ------------------------------------------------- */

static calib_ent *
cal_find_locked(ground *g, uint32_t cid, const uint8_t *id)
{
	for (uint32_t i = 0; i < g->ncal; i++)
		if (g->cal[i].cid == cid &&
		    memcmp(g->cal[i].id, id, ANC_CONTRACT_ID_RAW) == 0)
			return &g->cal[i];
	return NULL;
}

static int
cal_set(ground *g, uint32_t cid, const uint8_t *id, const anc_calibration *c,
        anc_error *err)
{
	calib_ent *e;
	int rv = ANC_OK;
	lock(g);
	if ((e = cal_find_locked(g, cid, id)) == NULL) {
		if (g->ncal == g->capcal) {
			uint32_t nc = g->capcal ? 2 * g->capcal : 8;
			calib_ent *p = realloc(g->cal, nc * sizeof *p);
			if (p == NULL) {
				rv = anc_error_set(err, ANC_ENOMEM,
				                   "calibration: out of memory");
				goto leave;
			}
			g->cal = p;
			g->capcal = nc;
		}
		e = &g->cal[g->ncal++];
		e->cid = cid;
		memcpy(e->id, id, ANC_CONTRACT_ID_RAW);
	}
	e->c = *c;
leave:
	unlock(g);
	return rv;
}

void
ground_calib_get(ground *g, uint32_t cid, const uint8_t id[ANC_CONTRACT_ID_RAW],
                 anc_calibration *out)
{
	calib_ent *e;
	memset(out, 0, sizeof *out);
	if (g == NULL)
		return;
	lock(g);
	if ((e = cal_find_locked(g, cid, id)) != NULL)
		*out = e->c;
	unlock(g);
}

/* Stored layout: u8 fmt, u8 metric, u16 0, u32 sample, u32 pairs,
 * u64 computed_at, u64 vectors, 7 x f32 (host order, like the store). */
#define CALIB_VAL (4 + 4 + 4 + 8 + 8 + 7 * 4)

static void
cal_key(uint8_t k[12], uint32_t cid, const uint8_t *id)
{
	be32(k, cid);
	memcpy(k + 4, id, ANC_CONTRACT_ID_RAW);
}

static void
cal_pack(const anc_calibration *c, uint8_t v[CALIB_VAL])
{
	float f[7] = {c->random_p50, c->random_p99, c->nn_p05, c->nn_p50,
	              c->weak, c->strong, c->margin};
	memset(v, 0, CALIB_VAL);
	v[0] = CALIB_FMT;
	v[1] = (uint8_t)c->metric;
	memcpy(v + 4, &c->sample, 4);
	memcpy(v + 8, &c->pairs, 4);
	memcpy(v + 12, &c->computed_at, 8);
	memcpy(v + 20, &c->vectors, 8);
	memcpy(v + 28, f, sizeof f);
}

static int
cal_unpack(const MDB_val *mv, anc_calibration *c)
{
	const uint8_t *v = mv->mv_data;
	float f[7];
	if (mv->mv_size != CALIB_VAL || v[0] != CALIB_FMT || v[1] > 2)
		return -1;
	memset(c, 0, sizeof *c);
	c->metric = v[1];
	memcpy(&c->sample, v + 4, 4);
	memcpy(&c->pairs, v + 8, 4);
	memcpy(&c->computed_at, v + 12, 8);
	memcpy(&c->vectors, v + 20, 8);
	memcpy(f, v + 28, sizeof f);
	c->random_p50 = f[0];
	c->random_p99 = f[1];
	c->nn_p05 = f[2];
	c->nn_p50 = f[3];
	c->weak = f[4];
	c->strong = f[5];
	c->margin = f[6];
	return 0;
}

static int
cal_load_one(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	ground *g = arg;
	anc_calibration c;
	const uint8_t *kp = k->mv_data;
	uint32_t cid;
	if (k->mv_size != 12 || cal_unpack(v, &c) != 0)
		return ANC_OK; /* unreadable: recomputed by the next pass */
	cid = (uint32_t)kp[0] << 24 | (uint32_t)kp[1] << 16 |
	      (uint32_t)kp[2] << 8 | kp[3];
	return cal_set(g, cid, kp + 4, &c, err);
}

typedef struct sample_arg {
	float *buf;     /* cap * dim */
	uint32_t cap, dim, n;
	uint64_t seen, rng;
} sample_arg;

static int
sample_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
           anc_error *err)
{
	sample_arg *a = arg;
	uint64_t slot;
	(void)label;
	(void)anchor;
	(void)err;
	a->seen++;
	if (a->n < a->cap) {
		slot = a->n++;
	} else {
		slot = rng_next(&a->rng) % a->seen; /* reservoir (Algorithm R) */
		if (slot >= a->cap)
			return ANC_OK;
	}
	memcpy(a->buf + slot * a->dim, vec, (size_t)a->dim * sizeof(float));
	return ANC_OK;
}

/* Compute, store and cache the calibration of t. */
static int
cal_compute(ground *g, const ground_target *t, anc_calibration *out,
            anc_error *err)
{
	sample_arg a;
	MDB_txn *txn = NULL;
	anc_calibration c;
	uint8_t k[12], v[CALIB_VAL];
	int rv;

	memset(&a, 0, sizeof a);
	a.cap = ANC_CALIB_SAMPLE;
	a.dim = t->c.dim;
	memcpy(&a.rng, t->id, sizeof a.rng);
	a.rng |= 1;
	if ((a.buf = malloc((size_t)a.cap * a.dim * sizeof(float))) == NULL)
		return anc_error_set(err, ANC_ENOMEM,
		                     "calibration: out of memory");
	if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_vector_scan(g->st, txn, t->cid, t->id, t->c.dim,
	                            sample_one, &a, err)) != ANC_OK)
		goto leave;
	store_txn_abort(txn);
	txn = NULL;
	if (a.n < ANC_CALIB_MIN) {
		rv = anc_error_set(err, ANC_EPRECONDITION,
		                   "collection '%s': contract %s holds %u vectors; "
		                   "calibration needs at least %d",
		                   t->collection, t->idstr, a.n, ANC_CALIB_MIN);
		goto leave;
	}
	if ((rv = ground_calibrate_vectors(a.buf, a.n, a.dim, t->c.metric,
	                                   a.rng, &c, err)) != ANC_OK)
		goto leave;
	c.computed_at = now_us() / 1000000u;
	c.vectors = a.seen;
	cal_key(k, t->cid, t->id);
	cal_pack(&c, v);
	if ((rv = store_txn_begin(g->st, 0, &txn, err)) != ANC_OK ||
	    (rv = store_kv_put(g->st, txn, STORE_DB_CALIB, k, sizeof k, v,
	                       sizeof v, err)) != ANC_OK)
		goto leave;
	rv = store_txn_commit(g->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK || (rv = cal_set(g, t->cid, t->id, &c, err)) != ANC_OK)
		goto leave;
	lock(g);
	g->stats.calibrations++;
	unlock(g);
	if (out != NULL)
		*out = c;
leave:
	store_txn_abort(txn);
	free(a.buf);
	if (rv != ANC_OK)
		anc_error_wrap(err, "calibration");
	return rv;
}

/* The calibration of t, computing it now when there is none. */
static int
cal_ensure(ground *g, const ground_target *t, anc_calibration *out,
           anc_error *err)
{
	ground_calib_get(g, t->cid, t->id, out);
	if (out->computed_at != 0)
		return ANC_OK;
	return cal_compute(g, t, out, err);
}

void
ground_label(ground *g, uint32_t cid, const uint8_t id[ANC_CONTRACT_ID_RAW],
             anc_query_result *res)
{
	anc_calibration c;
	ground_calib_get(g, cid, id, &c);
	for (uint32_t q = 0; res != NULL && q < res->nq; q++) {
		anc_hitlist *l = &res->lists[q];
		if (c.computed_at == 0)
			l->confidence = ANC_CONF_UNKNOWN;
		else if (l->nhits == 0)
			l->confidence = ANC_CONF_NONE;
		else
			l->confidence = ground_confidence(&c, l->hits[0].score);
	}
}

int
anc_db_calibration(anc_db *db, const char *collection,
                   const char *contract_ref, int recompute,
                   anc_calibration *out, anc_error *err)
{
	ground_target t;
	int rv;
	if (db == NULL || out == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "calibration: db or out is NULL");
	if ((rv = engine_ground_lookup(db, collection, contract_ref, &t,
	                               err)) != ANC_OK)
		return rv;
	if (recompute)
		return cal_compute(engine_ground(db), &t, out, err);
	return cal_ensure(engine_ground(db), &t, out, err);
}

/* ---- receipts: the record ----------------------------------------------------------- */

/* What a receipt records, before encoding / after decoding. */
typedef struct rec {
	int kind;
	uint64_t time_us;
	uint32_t cid;
	char collection[ANC_COLLECTION_MAX + 1];
	anc_provenance prov;
	anc_query_opts opt; /* as requested */
	uint32_t k;
	int with_text;
	uint8_t digest[32];
	uint32_t nq, dim;
	const float *vecs;   /* nq * dim */
	anc_receipt_list *lists;
	uint32_t *ncited;    /* verify: per list, cited entries first */
	uint64_t **cited_rev; /* verify: per list, ncited (0: any) */
} rec;

static void
pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pk_key(msgpack_packer *pk, const char *k)
{
	pk_str(pk, k);
}

static void
pk_bin(msgpack_packer *pk, const void *p, size_t n)
{
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

/* Vectors as little-endian float32 (the wire's convention). */
static int
pk_vecs(msgpack_packer *pk, const float *v, size_t n)
{
	uint8_t *b = malloc(n * 4 + 1);
	if (b == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t u;
		memcpy(&u, &v[i], 4);
		b[4 * i] = (uint8_t)u;
		b[4 * i + 1] = (uint8_t)(u >> 8);
		b[4 * i + 2] = (uint8_t)(u >> 16);
		b[4 * i + 3] = (uint8_t)(u >> 24);
	}
	pk_bin(pk, b, n * 4);
	free(b);
	return 0;
}

/* Into out (anc_buf) through the protocol's writer, whose first failed
 * append sticks (w.oom): a record never comes out with a hole in it. */
static int
rec_encode(const rec *r, anc_buf *out, anc_error *err)
{
	mpk_w w;
	int bad = 0;

	anc_buf_init(out);
	mpk_w_init(&w, out);
	msgpack_packer *pk = &w.pk;
	msgpack_pack_map(pk, 14);
	pk_key(pk, "v");
	msgpack_pack_uint32(pk, REC_VERSION);
	pk_key(pk, "kind");
	msgpack_pack_int(pk, r->kind);
	pk_key(pk, "time_us");
	msgpack_pack_uint64(pk, r->time_us);
	pk_key(pk, "cid");
	msgpack_pack_uint32(pk, r->cid);
	pk_key(pk, "collection");
	pk_str(pk, r->collection);
	pk_key(pk, "prov");
	msgpack_pack_array(pk, 9);
	pk_str(pk, r->prov.contract);
	msgpack_pack_int(pk, (int)r->prov.index);
	msgpack_pack_int(pk, r->prov.exact);
	msgpack_pack_uint32(pk, r->prov.ef_search);
	msgpack_pack_uint64(pk, r->prov.seq);
	msgpack_pack_uint64(pk, r->prov.generation);
	msgpack_pack_uint32(pk, r->prov.nprobe);
	msgpack_pack_uint32(pk, r->prov.rerank);
	pk_str(pk, r->prov.receipt);
	pk_key(pk, "opt");
	msgpack_pack_array(pk, 4);
	msgpack_pack_uint32(pk, r->opt.ef);
	msgpack_pack_uint32(pk, r->opt.nprobe);
	msgpack_pack_int(pk, r->opt.exact);
	msgpack_pack_uint32(pk, r->opt.rerank);
	pk_key(pk, "k");
	msgpack_pack_uint32(pk, r->k);
	pk_key(pk, "text");
	msgpack_pack_int(pk, r->with_text);
	pk_key(pk, "digest");
	pk_bin(pk, r->digest, 32);
	pk_key(pk, "nq");
	msgpack_pack_uint32(pk, r->nq);
	pk_key(pk, "dim");
	msgpack_pack_uint32(pk, r->dim);
	pk_key(pk, "vecs");
	bad |= pk_vecs(pk, r->vecs, (size_t)r->nq * r->dim);
	pk_key(pk, "lists");
	msgpack_pack_array(pk, r->nq);
	for (uint32_t i = 0; i < r->nq; i++) {
		const anc_receipt_list *l = &r->lists[i];
		uint32_t nc = r->ncited != NULL ? r->ncited[i] : 0;
		msgpack_pack_array(pk, 4);
		msgpack_pack_int(pk, l->verdict);
		msgpack_pack_uint32(pk, nc);
		msgpack_pack_array(pk, nc);
		for (uint32_t j = 0; j < nc; j++)
			msgpack_pack_uint64(pk, r->cited_rev != NULL &&
			                             r->cited_rev[i] != NULL
			                         ? r->cited_rev[i][j] : 0);
		msgpack_pack_array(pk, l->nhits);
		for (uint32_t j = 0; j < l->nhits; j++) {
			uint8_t raw[ANC_ANCHOR_RAW];
			if (anc_anchor_parse(l->hits[j].anchor, raw, NULL) != 0)
				memset(raw, 0, sizeof raw);
			msgpack_pack_array(pk, 3);
			pk_bin(pk, raw, sizeof raw);
			msgpack_pack_uint64(pk, l->hits[j].revision);
			msgpack_pack_float(pk, l->hits[j].score);
		}
	}
	if (bad || w.oom || out->data == NULL) {
		anc_buf_free(out);
		return anc_error_set(err, ANC_ENOMEM,
		                     "receipt: out of memory encoding");
	}
	return ANC_OK;
}

/* ---- receipts: decoding an authenticated record ------------------------------------ */

static const msgpack_object *
mget(const msgpack_object *map, const char *key)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
		    kv->key.via.str.size == strlen(key) &&
		    memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
			return &kv->val;
	}
	return NULL;
}

static int
as_u64(const msgpack_object *o, uint64_t *v)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	*v = o->via.u64;
	return 0;
}

static int
as_int(const msgpack_object *o, int *v)
{
	if (o == NULL)
		return -1;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= 1u << 30)
		*v = (int)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
	         o->via.i64 >= -(1 << 30))
		*v = (int)o->via.i64;
	else
		return -1;
	return 0;
}

static int
as_u32(const msgpack_object *o, uint32_t *v)
{
	uint64_t u;
	if (as_u64(o, &u) != 0 || u > UINT32_MAX)
		return -1;
	*v = (uint32_t)u;
	return 0;
}

static int
as_str(const msgpack_object *o, char *out, size_t cap)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR ||
	    o->via.str.size >= cap)
		return -1;
	memcpy(out, o->via.str.ptr, o->via.str.size);
	out[o->via.str.size] = '\0';
	return 0;
}

/* Free what rec_decode allocated. */
static void
rec_clear(rec *r)
{
	for (uint32_t i = 0; r->lists != NULL && i < r->nq; i++) {
		for (uint32_t j = 0; j < r->lists[i].nhits; j++)
			free(r->lists[i].hits[j].text);
		free(r->lists[i].hits);
	}
	for (uint32_t i = 0; r->cited_rev != NULL && i < r->nq; i++)
		free(r->cited_rev[i]);
	free(r->lists);
	free(r->ncited);
	free(r->cited_rev);
	free((void *)r->vecs);
	memset(r, 0, sizeof *r);
}

/* Decode record bytes whose MAC has been checked. Everything is still
 * bounds-checked: a MAC proves who wrote it, not that this version of the
 * code can read it. */
static int
rec_decode(const void *data, size_t len, rec *r, anc_error *err)
{
	msgpack_unpacked up;
	const msgpack_object *o, *root, *pv, *op, *ls;
	uint64_t u;
	int rv = ANC_OK;

	memset(r, 0, sizeof *r);
	msgpack_unpacked_init(&up);
	if (msgpack_unpack_next(&up, data, len, NULL) !=
	    MSGPACK_UNPACK_SUCCESS) {
		rv = -1;
		goto leave;
	}
	root = &up.data;
	pv = mget(root, "prov");
	op = mget(root, "opt");
	if (as_u64(mget(root, "v"), &u) != 0 || u != REC_VERSION ||
	    as_int(mget(root, "kind"), &r->kind) != 0 ||
	    as_u64(mget(root, "time_us"), &r->time_us) != 0 ||
	    as_u32(mget(root, "cid"), &r->cid) != 0 ||
	    as_str(mget(root, "collection"), r->collection,
	           sizeof r->collection) != 0 ||
	    pv == NULL || pv->type != MSGPACK_OBJECT_ARRAY ||
	    pv->via.array.size != 9 || op == NULL ||
	    op->type != MSGPACK_OBJECT_ARRAY || op->via.array.size != 4 ||
	    as_u32(mget(root, "k"), &r->k) != 0 ||
	    as_int(mget(root, "text"), &r->with_text) != 0 ||
	    as_u32(mget(root, "nq"), &r->nq) != 0 ||
	    as_u32(mget(root, "dim"), &r->dim) != 0) {
		rv = -1;
		goto leave;
	}
	{
		const msgpack_object *a = pv->via.array.ptr;
		int idx;
		if (as_str(&a[0], r->prov.contract, sizeof r->prov.contract) ||
		    as_int(&a[1], &idx) || idx < 0 || idx > ANC_INDEX_KIND_LAST ||
		    as_int(&a[2], &r->prov.exact) ||
		    as_u32(&a[3], &r->prov.ef_search) ||
		    as_u64(&a[4], &r->prov.seq) ||
		    as_u64(&a[5], &r->prov.generation) ||
		    as_u32(&a[6], &r->prov.nprobe) ||
		    as_u32(&a[7], &r->prov.rerank) ||
		    as_str(&a[8], r->prov.receipt, sizeof r->prov.receipt)) {
			rv = -1;
			goto leave;
		}
		r->prov.index = (anc_index_kind)idx;
		a = op->via.array.ptr;
		if (as_u32(&a[0], &r->opt.ef) || as_u32(&a[1], &r->opt.nprobe) ||
		    as_int(&a[2], &r->opt.exact) ||
		    as_u32(&a[3], &r->opt.rerank)) {
			rv = -1;
			goto leave;
		}
	}
	o = mget(root, "digest");
	if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 32) {
		rv = -1;
		goto leave;
	}
	memcpy(r->digest, o->via.bin.ptr, 32);
	o = mget(root, "vecs");
	if (o == NULL || o->type != MSGPACK_OBJECT_BIN || r->dim == 0 ||
	    r->dim > ANC_DIM_MAX || r->nq == 0 ||
	    (uint64_t)r->nq * r->dim * 4 != o->via.bin.size) {
		rv = -1;
		goto leave;
	}
	{
		float *v = malloc((size_t)o->via.bin.size);
		const uint8_t *b = (const uint8_t *)o->via.bin.ptr;
		if (v == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "receipt: out of memory");
			goto leave;
		}
		for (size_t i = 0; i < (size_t)r->nq * r->dim; i++) {
			uint32_t x = (uint32_t)b[4 * i] |
			             (uint32_t)b[4 * i + 1] << 8 |
			             (uint32_t)b[4 * i + 2] << 16 |
			             (uint32_t)b[4 * i + 3] << 24;
			memcpy(&v[i], &x, 4);
		}
		r->vecs = v;
	}
	ls = mget(root, "lists");
	if (ls == NULL || ls->type != MSGPACK_OBJECT_ARRAY ||
	    ls->via.array.size != r->nq) {
		rv = -1;
		goto leave;
	}
	if ((r->lists = calloc(r->nq, sizeof *r->lists)) == NULL ||
	    (r->ncited = calloc(r->nq, sizeof *r->ncited)) == NULL ||
	    (r->cited_rev = calloc(r->nq, sizeof *r->cited_rev)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
		goto leave;
	}
	for (uint32_t i = 0; i < r->nq; i++) {
		const msgpack_object *e = &ls->via.array.ptr[i], *cr, *hs;
		anc_receipt_list *l = &r->lists[i];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 4 ||
		    as_int(&e->via.array.ptr[0], &l->verdict) ||
		    as_u32(&e->via.array.ptr[1], &r->ncited[i])) {
			rv = -1;
			goto leave;
		}
		cr = &e->via.array.ptr[2];
		hs = &e->via.array.ptr[3];
		if (cr->type != MSGPACK_OBJECT_ARRAY ||
		    cr->via.array.size != r->ncited[i] ||
		    hs->type != MSGPACK_OBJECT_ARRAY ||
		    hs->via.array.size < r->ncited[i]) {
			rv = -1;
			goto leave;
		}
		if (r->ncited[i] > 0 &&
		    (r->cited_rev[i] = calloc(r->ncited[i], 8)) == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "receipt: out of memory");
			goto leave;
		}
		for (uint32_t j = 0; j < r->ncited[i]; j++)
			if (as_u64(&cr->via.array.ptr[j], &r->cited_rev[i][j])) {
				rv = -1;
				goto leave;
			}
		l->nhits = hs->via.array.size;
		if (l->nhits > 0 &&
		    (l->hits = calloc(l->nhits, sizeof *l->hits)) == NULL) {
			l->nhits = 0;
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "receipt: out of memory");
			goto leave;
		}
		for (uint32_t j = 0; j < l->nhits; j++) {
			const msgpack_object *h = &hs->via.array.ptr[j], *a;
			if (h->type != MSGPACK_OBJECT_ARRAY ||
			    h->via.array.size != 3) {
				rv = -1;
				goto leave;
			}
			a = h->via.array.ptr;
			if (a[0].type != MSGPACK_OBJECT_BIN ||
			    a[0].via.bin.size != ANC_ANCHOR_RAW ||
			    as_u64(&a[1], &l->hits[j].revision) ||
			    (a[2].type != MSGPACK_OBJECT_FLOAT32 &&
			     a[2].type != MSGPACK_OBJECT_FLOAT64)) {
				rv = -1;
				goto leave;
			}
			anc_anchor_format((const uint8_t *)a[0].via.bin.ptr,
			                  l->hits[j].anchor);
			l->hits[j].score = (float)a[2].via.f64;
		}
	}
leave:
	msgpack_unpacked_destroy(&up);
	if (rv == -1)
		rv = anc_error_set(err, ANC_EINTERNAL,
		                   "receipt: authentic record of %zu bytes does "
		                   "not decode (written by another version?)",
		                   len);
	if (rv != ANC_OK)
		rec_clear(r);
	return rv;
}

/* ---- receipts: MAC, store, load ---------------------------------------------------- */

/* HMAC-SHA256 under the server's key of ctx || head || body: receipts
 * (head: the ID) and the texts kept for them (head: the entry's key) use
 * separate contexts, so neither can pass for the other. */
static int
key_mac(const ground *g, const char *ctx, const void *head, size_t hlen,
        const void *body, size_t blen, uint8_t mac[MAC_LEN], anc_error *err)
{
	size_t clen = strlen(ctx);
	uint8_t *buf = malloc(clen + hlen + blen + 1);
	unsigned int mlen = 0;
	int rv = ANC_OK;
	if (buf == NULL)
		return anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
	memcpy(buf, ctx, clen);
	memcpy(buf + clen, head, hlen);
	if (blen > 0)
		memcpy(buf + clen + hlen, body, blen);
	if (HMAC(EVP_sha256(), g->key, KEY_LEN, buf, clen + hlen + blen, mac,
	         &mlen) == NULL || mlen != MAC_LEN)
		rv = anc_error_set(err, ANC_EINTERNAL,
		                   "receipt: HMAC-SHA256 failed (OpenSSL)");
	free(buf);
	return rv;
}

static int
rec_mac(const ground *g, const uint8_t id[RECEIPT_RAW], const void *data,
        size_t len, uint8_t mac[MAC_LEN], anc_error *err)
{
	return key_mac(g, "anchorage.receipt.v1", id, RECEIPT_RAW, data, len,
	               mac, err);
}

/* MAC of a retained text: bound to its (collection, anchor, revision)
 * key, so a text cannot be moved to another entry either. */
static int
rev_mac(const ground *g, const uint8_t k[28], const void *text,
        size_t len, uint8_t mac[MAC_LEN], anc_error *err)
{
	return key_mac(g, "anchorage.revision.v1", k, 28, text, len, mac, err);
}

/* Retain the text of (anchor, revision) hits: one entry per revision,
 * refreshed with the time of this reference. Only revisions still
 * current are copied (a concurrent edit may have moved on). */
static int
retain_texts(ground *g, MDB_txn *txn, uint32_t cid,
             const anc_receipt_list *lists, uint32_t nl, uint64_t now_s,
             anc_error *err)
{
	for (uint32_t i = 0; i < nl; i++) {
		for (uint32_t j = 0; j < lists[i].nhits; j++) {
			const anc_receipt_hit *h = &lists[i].hits[j];
			uint8_t raw[ANC_ANCHOR_RAW], k[28], *v;
			store_passage p;
			int found, rv;
			if (anc_anchor_parse(h->anchor, raw, NULL) != ANC_OK)
				continue;
			if ((rv = store_passage_get(g->st, txn, cid, raw, &p,
			                            &found, err)) != ANC_OK)
				return rv;
			if (!found || p.deleted || p.revision != h->revision)
				continue;
			be32(k, cid);
			memcpy(k + 4, raw, ANC_ANCHOR_RAW);
			be64(k + 20, h->revision);
			if ((v = malloc(REV_HEAD + MAC_LEN +
			                (size_t)p.text_len + 1)) == NULL)
				return anc_error_set(err, ANC_ENOMEM,
				                     "receipt: out of memory");
			memset(v, 0, REV_HEAD);
			v[0] = REV_FMT;
			memcpy(v + 4, &p.text_len, 4);
			memcpy(v + 8, &now_s, 8);
			if (p.text_len > 0)
				memcpy(v + REV_HEAD + MAC_LEN, p.text,
				       p.text_len);
			if ((rv = rev_mac(g, k, p.text, p.text_len,
			                  v + REV_HEAD, err)) == ANC_OK)
				rv = store_kv_put(g->st, txn, STORE_DB_REVISIONS,
				                  k, sizeof k, v,
				                  REV_HEAD + MAC_LEN +
				                      (size_t)p.text_len,
				                  err);
			free(v);
			if (rv != ANC_OK)
				return rv;
		}
	}
	return ANC_OK;
}

/* Store r under a new ID, written into id_out. */
static int
rec_store(ground *g, rec *r, anc_receipt_id_str id_out, anc_error *err)
{
	anc_buf sb;
	uint8_t id[RECEIPT_RAW], mac[MAC_LEN], *val = NULL;
	MDB_txn *txn = NULL;
	int rv, have_sb = 0;

	r->time_us = now_us();
	be64(id, r->time_us);
	if (RAND_bytes(id + 8, 8) != 1)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "receipt: RAND_bytes failed (OpenSSL)");
	hex(id, RECEIPT_RAW, r->prov.receipt);
	if ((rv = rec_encode(r, &sb, err)) != ANC_OK)
		return rv;
	have_sb = 1;
	if ((rv = rec_mac(g, id, sb.data, sb.len, mac, err)) != ANC_OK)
		goto leave;
	if ((val = malloc(sb.len + MAC_LEN)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
		goto leave;
	}
	memcpy(val, sb.data, sb.len);
	memcpy(val + sb.len, mac, MAC_LEN);
	if ((rv = store_txn_begin(g->st, 0, &txn, err)) != ANC_OK ||
	    (rv = store_kv_put(g->st, txn, STORE_DB_RECEIPTS, id, sizeof id,
	                       val, sb.len + MAC_LEN, err)) != ANC_OK ||
	    (rv = retain_texts(g, txn, r->cid, r->lists, r->nq,
	                       r->time_us / 1000000u, err)) != ANC_OK)
		goto leave;
	rv = store_txn_commit(g->st, txn, err);
	txn = NULL;
	if (rv != ANC_OK)
		goto leave;
	memcpy(id_out, r->prov.receipt, sizeof(anc_receipt_id_str));
	lock(g);
	g->stats.receipts_made++;
	unlock(g);
leave:
	store_txn_abort(txn);
	if (have_sb)
		anc_buf_free(&sb);
	free(val);
	if (rv != ANC_OK)
		anc_error_wrap(err, "receipt");
	return rv;
}

/* Read and authenticate receipt id; decode it into r. */
static int
rec_load(ground *g, const char *idstr, rec *r, uint32_t *bytes,
         anc_error *err)
{
	uint8_t id[RECEIPT_RAW], mac[MAC_LEN];
	MDB_txn *txn = NULL;
	MDB_val v;
	uint8_t *copy = NULL;
	size_t len = 0;
	int found, rv;

	memset(r, 0, sizeof *r);
	if ((rv = receipt_id_parse(idstr, id, err)) != ANC_OK)
		return rv;
	if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_kv_get(g->st, txn, STORE_DB_RECEIPTS, id, sizeof id, &v,
	                       &found, err)) != ANC_OK)
		goto leave;
	if (!found) {
		rv = anc_error_set(err, ANC_ENOTFOUND,
		                   "receipt %s: not found (never made here, or "
		                   "pruned)", idstr);
		goto leave;
	}
	len = v.mv_size;
	if (len <= MAC_LEN) {
		rv = ANC_ETAMPERED;
		goto tampered;
	}
	/* copied out: the map page must not be read after the txn */
	if ((copy = malloc(len)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
		goto leave;
	}
	memcpy(copy, v.mv_data, len);
	store_txn_abort(txn);
	txn = NULL;
	if ((rv = rec_mac(g, id, copy, len - MAC_LEN, mac, err)) != ANC_OK)
		goto leave;
	if (CRYPTO_memcmp(mac, copy + len - MAC_LEN, MAC_LEN) != 0) {
		rv = ANC_ETAMPERED;
		goto tampered;
	}
	if ((rv = rec_decode(copy, len - MAC_LEN, r, err)) != ANC_OK)
		goto leave;
	if (bytes != NULL)
		*bytes = (uint32_t)len;
	goto leave;
tampered:
	lock(g);
	g->stats.receipts_tampered++;
	unlock(g);
	anc_error_set(err, ANC_ETAMPERED,
	              "receipt %s: the stored record (%zu bytes) does "
	              "not match its HMAC-SHA256 under this server's secret; it "
	              "was altered after it was written (or the secret changed)",
	              idstr, len);
leave:
	store_txn_abort(txn);
	free(copy);
	return rv;
}

/* ---- receipts: API ------------------------------------------------------------------ */

static int
sha_update_str(EVP_MD_CTX *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int
sha_update_str(EVP_MD_CTX *c, const char *fmt, ...)
{
	char buf[ANC_COLLECTION_MAX + 128];
	va_list ap;
	int n;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf)
		return 0;
	return EVP_DigestUpdate(c, buf, (size_t)n);
}

/* SHA-256 of the canonical request (PROTOCOL.md "Receipts"). For verify,
 * claims is given and k / opt are unused. */
static int
request_digest(const char *op, const char *collection, const char *contract,
               uint32_t k, int with_text, const anc_query_opts *opt,
               const anc_claim *claims, const float *vecs, uint32_t nq,
               uint32_t dim, uint8_t md[32], anc_error *err)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int mlen = 0;
	int ok;
	if (c == NULL)
		return anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
	ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
	     sha_update_str(c, "anchorage.request.v1\nop=%s\ncollection=%s\n"
	                    "contract=%s\nnq=%u\ndim=%u\n", op, collection,
	                    contract, nq, dim);
	if (ok && claims == NULL)
		ok = sha_update_str(c, "k=%u\ntext=%d\nef=%u\nnprobe=%u\n"
		                    "exact=%d\nrerank=%u\n", k, with_text != 0,
		                    opt->ef, opt->nprobe, opt->exact != 0,
		                    opt->rerank);
	for (uint32_t i = 0; ok && claims != NULL && i < nq; i++)
		for (uint32_t j = 0; ok && j < claims[i].ncited; j++)
			ok = sha_update_str(c, "claim=%u cited=%s revision=%llu\n",
			    i, claims[i].cited[j],
			    (unsigned long long)(claims[i].cited_rev != NULL
			                             ? claims[i].cited_rev[j] : 0));
	for (size_t i = 0; ok && i < (size_t)nq * dim; i++) {
		const float *v = claims != NULL ? claims[i / dim].vec + i % dim
		                                : vecs + i;
		uint32_t u;
		uint8_t b[4];
		memcpy(&u, v, 4);
		b[0] = (uint8_t)u;
		b[1] = (uint8_t)(u >> 8);
		b[2] = (uint8_t)(u >> 16);
		b[3] = (uint8_t)(u >> 24);
		ok = EVP_DigestUpdate(c, b, 4);
	}
	ok = ok && EVP_DigestFinal_ex(c, md, &mlen) && mlen == 32;
	EVP_MD_CTX_free(c);
	if (!ok)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "receipt: SHA-256 failed (OpenSSL)");
	return ANC_OK;
}

int
anc_db_receipt_query(anc_db *db, const char *collection, const float *vecs,
                     uint32_t nq, uint32_t dim, uint32_t k, int with_text,
                     const anc_query_opts *opt, anc_query_result *res,
                     anc_error *err)
{
	static const anc_query_opts none;
	ground_target t;
	rec r;
	int rv;

	if (db == NULL || res == NULL || vecs == NULL || nq == 0 ||
	    res->nq != nq)
		return anc_error_set(err, ANC_EINVAL,
		                     "receipt: needs the query's vectors and its "
		                     "answer (%u vectors, %u lists)", nq,
		                     res != NULL ? res->nq : 0);
	if (opt == NULL)
		opt = &none;
	if ((rv = engine_ground_lookup(db, collection, res->prov.contract, &t,
	                               err)) != ANC_OK)
		return rv;
	memset(&r, 0, sizeof r);
	r.kind = ANC_RECEIPT_QUERY;
	r.cid = t.cid;
	snprintf(r.collection, sizeof r.collection, "%s", collection);
	r.prov = res->prov;
	r.opt = *opt;
	r.k = k;
	r.with_text = with_text != 0;
	r.nq = nq;
	r.dim = dim;
	r.vecs = vecs;
	if ((rv = request_digest("query", collection, res->prov.contract, k,
	                         with_text, opt, NULL, vecs, nq, dim, r.digest,
	                         err)) != ANC_OK)
		return rv;
	if ((r.lists = calloc(nq, sizeof *r.lists)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
	for (uint32_t i = 0; i < nq && rv == ANC_OK; i++) {
		const anc_hitlist *hl = &res->lists[i];
		r.lists[i].verdict = -1;
		r.lists[i].nhits = hl->nhits;
		if (hl->nhits > 0 &&
		    (r.lists[i].hits = calloc(hl->nhits,
		                              sizeof *r.lists[i].hits)) == NULL) {
			r.lists[i].nhits = 0;
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "receipt: out of memory");
			break;
		}
		for (uint32_t j = 0; j < hl->nhits; j++) {
			memcpy(r.lists[i].hits[j].anchor, hl->hits[j].anchor,
			       sizeof(anc_anchor_str));
			r.lists[i].hits[j].revision = hl->hits[j].revision;
			r.lists[i].hits[j].score = hl->hits[j].score;
		}
	}
	if (rv == ANC_OK)
		rv = rec_store(engine_ground(db), &r, res->prov.receipt, err);
	for (uint32_t i = 0; i < nq; i++)
		free(r.lists[i].hits);
	free(r.lists);
	return rv;
}

void
anc_receipt_free(anc_receipt *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; r->lists != NULL && i < r->nq; i++) {
		for (uint32_t j = 0; j < r->lists[i].nhits; j++)
			free(r->lists[i].hits[j].text);
		free(r->lists[i].hits);
	}
	free(r->lists);
	free(r);
}

static int
retained_text(ground *g, MDB_txn *txn, uint32_t cid, anc_receipt_hit *h,
              anc_error *err)
{
	uint8_t k[28], mac[MAC_LEN];
	const uint8_t *val, *text;
	MDB_val v;
	uint32_t tl;
	size_t off;
	int found, rv;
	be32(k, cid);
	if (anc_anchor_parse(h->anchor, k + 4, NULL) != ANC_OK)
		return ANC_OK;
	be64(k + 20, h->revision);
	if ((rv = store_kv_get(g->st, txn, STORE_DB_REVISIONS, k, sizeof k, &v,
	                       &found, err)) != ANC_OK || !found)
		return rv;
	val = v.mv_data;
	if (v.mv_size < REV_HEAD)
		goto tampered;
	off = val[0] == REV_FMT ? REV_HEAD + MAC_LEN : REV_HEAD;
	memcpy(&tl, val + 4, 4);
	if ((val[0] != REV_FMT && val[0] != 1) || v.mv_size < off ||
	    (size_t)tl != v.mv_size - off)
		goto tampered;
	text = val + off;
	if (val[0] == REV_FMT) {
		if ((rv = rev_mac(g, k, text, tl, mac, err)) != ANC_OK)
			return rv;
		if (CRYPTO_memcmp(mac, val + REV_HEAD, MAC_LEN) != 0)
			goto tampered;
	}
	if ((h->text = malloc((size_t)tl + 1)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
	memcpy(h->text, text, tl);
	h->text[tl] = '\0';
	return ANC_OK;
tampered:
	lock(g);
	g->stats.receipts_tampered++;
	unlock(g);
	return anc_error_set(err, ANC_ETAMPERED,
	                     "the text kept for %s revision %llu does not "
	                     "match its HMAC-SHA256 under this server's "
	                     "secret; it was altered after it was stored",
	                     h->anchor, (unsigned long long)h->revision);
}

int
anc_db_receipt_get(anc_db *db, const char *id, int with_text,
                   anc_receipt **out, anc_error *err)
{
	ground *g;
	anc_receipt *rc = NULL;
	MDB_txn *txn = NULL;
	rec r;
	uint32_t bytes = 0;
	int rv;

	if (out == NULL || db == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "receipt: db or out is NULL");
	*out = NULL;
	g = engine_ground(db);
	if ((rv = rec_load(g, id, &r, &bytes, err)) != ANC_OK)
		return rv;
	if ((rc = calloc(1, sizeof *rc)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
		goto leave;
	}
	memcpy(rc->id, r.prov.receipt, sizeof rc->id);
	rc->kind = r.kind;
	rc->time_us = r.time_us;
	memcpy(rc->collection, r.collection, sizeof rc->collection);
	rc->prov = r.prov;
	rc->k = r.k;
	rc->with_text = r.with_text;
	hex(r.digest, 32, rc->digest);
	rc->nq = r.nq;
	rc->dim = r.dim;
	rc->record_bytes = bytes;
	rc->authentic = 1;
	rc->lists = r.lists; /* ownership moves */
	r.lists = NULL;
	if (with_text) {
		if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK)
			goto leave;
		for (uint32_t i = 0; i < rc->nq && rv == ANC_OK; i++)
			for (uint32_t j = 0; j < rc->lists[i].nhits && rv == ANC_OK;
			     j++)
				rv = retained_text(g, txn, r.cid,
				                   &rc->lists[i].hits[j], err);
		if (rv == ANC_ETAMPERED)
			anc_error_wrap(err, "receipt %s", id);
		if (rv != ANC_OK)
			goto leave;
	}
	lock(g);
	g->stats.receipts_read++;
	unlock(g);
	*out = rc;
	rc = NULL;
leave:
	store_txn_abort(txn);
	anc_receipt_free(rc);
	rec_clear(&r);
	return rv;
}

/* ---- verify -------------------------------------------------------------------------- */

void
anc_verify_result_free(anc_verify_result *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; r->claims != NULL && i < r->n; i++)
		free(r->claims[i].cited);
	free(r->claims);
	free(r);
}

typedef struct best_arg {
	anc_metric m;
	uint32_t dim, n;
	const float *q;  /* n prepared claim vectors */
	float *buf;      /* dim, aligned copy of the stored vector */
	double *best;    /* closeness per claim */
	uint8_t (*anchor)[ANC_ANCHOR_RAW];
	float *score;
	int *has;
} best_arg;

static int
best_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
         anc_error *err)
{
	best_arg *a = arg;
	(void)label;
	(void)err;
	memcpy(a->buf, vec, (size_t)a->dim * sizeof(float));
	for (uint32_t i = 0; i < a->n; i++) {
		float s = score(a->m, a->q + (size_t)i * a->dim, a->buf, a->dim);
		double c = close_of(a->m, s);
		/* Ties go to the lowest anchor: the answer must not depend
		 * on the order in which the store is scanned. */
		if (!a->has[i] || c > a->best[i] ||
		    (c == a->best[i] &&
		     memcmp(anchor, a->anchor[i], ANC_ANCHOR_RAW) < 0)) {
			a->has[i] = 1;
			a->best[i] = c;
			a->score[i] = s;
			memcpy(a->anchor[i], anchor, ANC_ANCHOR_RAW);
		}
	}
	return ANC_OK;
}

/* The verdict of one claim (anc_types.h, "verify"). */
static void
claim_verdict(const anc_calibration *cal, anc_metric m, anc_claim_result *c)
{
	double best = close_of(m, c->best_score);
	double cited = close_of(m, c->cited_score);
	int best_ok = c->has_best && best >= close_of(m, cal->weak);

	memset(c->suggested, 0, sizeof c->suggested);
	if (best_ok && !c->best_cited &&
	    (!c->has_cited_score || best - cited >= (double)cal->margin)) {
		c->verdict = ANC_VERDICT_MISCITED;
		memcpy(c->suggested, c->best, sizeof c->suggested);
	} else if (c->has_cited_score && cited >= close_of(m, cal->strong)) {
		c->verdict = ANC_VERDICT_SUPPORTED;
	} else if (c->has_cited_score && cited >= close_of(m, cal->weak)) {
		c->verdict = ANC_VERDICT_WEAK;
	} else {
		c->verdict = ANC_VERDICT_UNSUPPORTED;
	}
}

static int verify_receipt(ground *g, const ground_target *t,
                          const anc_claim *claims, uint32_t n,
                          const float *qv, anc_verify_result *res,
                          anc_error *err);

int
anc_db_verify(anc_db *db, const char *collection, const char *contract_ref,
              const anc_claim *claims, uint32_t n, int receipt,
              anc_verify_result **out, anc_error *err)
{
	ground *g;
	ground_target t;
	anc_verify_result *res = NULL;
	anc_calibration cal;
	MDB_txn *txn = NULL;
	float *qv = NULL, *vbuf = NULL;
	uint8_t (*raw)[ANC_ANCHOR_RAW] = NULL;
	best_arg ba;
	char what[64];
	uint32_t ncited = 0, at = 0;
	int rv;

	memset(&ba, 0, sizeof ba);
	if (out == NULL || db == NULL)
		return anc_error_set(err, ANC_EINVAL, "verify: db or out is NULL");
	*out = NULL;
	g = engine_ground(db);
	if ((rv = engine_ground_lookup(db, collection, contract_ref, &t, err)))
		return rv;
	if (n == 0 || claims == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "verify: claims: empty, expected 1..%d claims",
		                     ANC_VERIFY_CLAIMS_MAX);
	if (n > ANC_VERIFY_CLAIMS_MAX)
		return anc_error_set(err, ANC_ETOOBIG,
		                     "verify: claims: %u, over the limit %d", n,
		                     ANC_VERIFY_CLAIMS_MAX);
	if ((qv = malloc((size_t)n * t.c.dim * sizeof *qv)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
		goto leave;
	}
	for (uint32_t i = 0; i < n; i++) {
		snprintf(what, sizeof what, "claims[%u].vector", i);
		if (claims[i].ncited > ANC_VERIFY_CITED_MAX) {
			rv = anc_error_set(err, ANC_ETOOBIG,
			                   "verify: claims[%u].cited: %u anchors, "
			                   "over the limit %d", i,
			                   claims[i].ncited, ANC_VERIFY_CITED_MAX);
			goto leave;
		}
		if (claims[i].ncited > 0 && claims[i].cited == NULL) {
			rv = anc_error_set(err, ANC_EINVAL,
			                   "verify: claims[%u].cited: NULL with %u "
			                   "anchors", i, claims[i].ncited);
			goto leave;
		}
		if ((rv = engine_ground_vector(db, &t, claims[i].vec,
		                               claims[i].dim, what,
		                               qv + (size_t)i * t.c.dim, err)))
			goto leave;
		ncited += claims[i].ncited;
	}
	if ((raw = calloc(ncited ? ncited : 1, sizeof *raw)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
		goto leave;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < claims[i].ncited; j++, at++)
			if ((rv = anc_anchor_parse(claims[i].cited[j], raw[at],
			                           err)) != ANC_OK) {
				anc_error_wrap(err, "verify: claims[%u].cited[%u]",
				               i, j);
				goto leave;
			}
	if ((rv = cal_ensure(g, &t, &cal, err)) != ANC_OK)
		goto leave;
	if ((res = calloc(1, sizeof *res)) == NULL ||
	    (res->claims = calloc(n, sizeof *res->claims)) == NULL ||
	    (vbuf = malloc((size_t)t.c.dim * sizeof *vbuf)) == NULL ||
	    (ba.best = calloc(n, sizeof *ba.best)) == NULL ||
	    (ba.anchor = calloc(n, sizeof *ba.anchor)) == NULL ||
	    (ba.score = calloc(n, sizeof *ba.score)) == NULL ||
	    (ba.has = calloc(n, sizeof *ba.has)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "verify: out of memory");
		goto leave;
	}
	res->n = n;
	res->calib = cal;
	memcpy(res->prov.contract, t.idstr, sizeof res->prov.contract);
	res->prov.index = t.c.index.kind;
	res->prov.exact = 1;
	res->prov.seq = t.seq;
	res->prov.generation = t.generation;
	/* One read transaction: the cited anchors and the whole-collection
	 * scan see the same state. */
	if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK)
		goto leave;
	ba.m = t.c.metric;
	ba.dim = t.c.dim;
	ba.n = n;
	ba.q = qv;
	ba.buf = vbuf;
	if ((rv = store_vector_scan(g->st, txn, t.cid, t.id, t.c.dim, best_one,
	                            &ba, err)) != ANC_OK)
		goto leave;
	at = 0;
	for (uint32_t i = 0; i < n; i++) {
		anc_claim_result *c = &res->claims[i];
		const float *q = qv + (size_t)i * t.c.dim;
		c->ncited = claims[i].ncited;
		if (c->ncited > 0 &&
		    (c->cited = calloc(c->ncited, sizeof *c->cited)) == NULL) {
			c->ncited = 0;
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "verify: out of memory");
			goto leave;
		}
		c->has_best = ba.has[i];
		if (c->has_best) {
			store_passage p;
			int found;
			anc_anchor_format(ba.anchor[i], c->best);
			c->best_score = ba.score[i];
			if ((rv = store_passage_get(g->st, txn, t.cid,
			                            ba.anchor[i], &p, &found,
			                            err)) != ANC_OK)
				goto leave;
			c->best_revision = found ? p.revision : 0;
		}
		for (uint32_t j = 0; j < c->ncited; j++, at++) {
			anc_cited *x = &c->cited[j];
			store_passage p;
			uint64_t label;
			int found, vfound;
			memcpy(x->anchor, claims[i].cited[j], sizeof x->anchor);
			x->cited_revision = claims[i].cited_rev != NULL
			                        ? claims[i].cited_rev[j] : 0;
			if ((rv = store_passage_get(g->st, txn, t.cid, raw[at], &p,
			                            &found, err)) != ANC_OK)
				goto leave;
			x->status = !found ? ANC_ANCHOR_UNKNOWN
			            : p.deleted ? ANC_ANCHOR_DELETED
			                        : ANC_ANCHOR_LIVE;
			x->revision = found ? p.revision : 0;
			x->at_revision = x->status == ANC_ANCHOR_LIVE &&
			                 (x->cited_revision == 0 ||
			                  x->cited_revision == x->revision);
			if (x->status != ANC_ANCHOR_LIVE)
				continue;
			if ((rv = store_vector_get(g->st, txn, t.cid, t.id, raw[at],
			                           t.c.dim, &label, vbuf, &vfound,
			                           err)) != ANC_OK)
				goto leave;
			if (!vfound)
				continue; /* live, but no vector under this
				             contract (a migration under way) */
			x->scored = 1;
			x->score = score(t.c.metric, q, vbuf, t.c.dim);
			if (c->has_best && memcmp(raw[at], ba.anchor[i],
			                          ANC_ANCHOR_RAW) == 0)
				c->best_cited = 1;
			if (!c->has_cited_score ||
			    close_of(t.c.metric, x->score) >
			        close_of(t.c.metric, c->cited_score)) {
				c->has_cited_score = 1;
				c->cited_score = x->score;
			}
		}
		claim_verdict(&cal, t.c.metric, c);
	}
	store_txn_abort(txn);
	txn = NULL;
	lock(g);
	g->stats.verify_claims += n;
	for (uint32_t i = 0; i < n; i++)
		g->stats.verdicts[res->claims[i].verdict]++;
	unlock(g);
	if (receipt && (rv = verify_receipt(g, &t, claims, n, qv, res, err)))
		goto leave;
	*out = res;
	res = NULL;
leave:
	store_txn_abort(txn);
	anc_verify_result_free(res);
	free(qv);
	free(vbuf);
	free(raw);
	free(ba.best);
	free(ba.anchor);
	free(ba.score);
	free(ba.has);
	return rv;
}

/* A verify receipt: per claim the cited anchors (as found), then the best
 * passage when it was not cited; the claim vectors as given. */
static int
verify_receipt(ground *g, const ground_target *t, const anc_claim *claims,
               uint32_t n, const float *qv, anc_verify_result *res,
               anc_error *err)
{
	rec r;
	float *raw = NULL;
	int rv;

	(void)qv;
	memset(&r, 0, sizeof r);
	r.kind = ANC_RECEIPT_VERIFY;
	r.cid = t->cid;
	snprintf(r.collection, sizeof r.collection, "%s", t->collection);
	r.prov = res->prov;
	r.nq = n;
	r.dim = t->c.dim;
	if ((rv = request_digest("verify", t->collection, t->idstr, 0, 0, NULL,
	                         claims, NULL, n, t->c.dim, r.digest, err)))
		return rv;
	if ((raw = malloc((size_t)n * t->c.dim * sizeof *raw)) == NULL ||
	    (r.lists = calloc(n, sizeof *r.lists)) == NULL ||
	    (r.ncited = calloc(n, sizeof *r.ncited)) == NULL ||
	    (r.cited_rev = calloc(n, sizeof *r.cited_rev)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "receipt: out of memory");
		goto leave;
	}
	for (uint32_t i = 0; i < n; i++) {
		const anc_claim_result *c = &res->claims[i];
		anc_receipt_list *l = &r.lists[i];
		memcpy(raw + (size_t)i * t->c.dim, claims[i].vec,
		       (size_t)t->c.dim * sizeof *raw);
		l->verdict = c->verdict;
		r.ncited[i] = c->ncited;
		l->nhits = c->ncited + (c->has_best && !c->best_cited);
		if (l->nhits == 0)
			continue;
		if ((l->hits = calloc(l->nhits, sizeof *l->hits)) == NULL ||
		    (c->ncited > 0 &&
		     (r.cited_rev[i] = calloc(c->ncited, 8)) == NULL)) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "receipt: out of memory");
			goto leave;
		}
		for (uint32_t j = 0; j < c->ncited; j++) {
			memcpy(l->hits[j].anchor, c->cited[j].anchor,
			       sizeof(anc_anchor_str));
			l->hits[j].revision = c->cited[j].revision;
			l->hits[j].score = c->cited[j].scored ? c->cited[j].score
			                                      : NAN;
			r.cited_rev[i][j] = c->cited[j].cited_revision;
		}
		if (c->has_best && !c->best_cited) {
			anc_receipt_hit *h = &l->hits[c->ncited];
			memcpy(h->anchor, c->best, sizeof(anc_anchor_str));
			h->revision = c->best_revision;
			h->score = c->best_score;
		}
	}
	r.vecs = raw;
	rv = rec_store(g, &r, res->prov.receipt, err);
	r.vecs = NULL;
leave:
	for (uint32_t i = 0; r.lists != NULL && i < n; i++)
		free(r.lists[i].hits);
	for (uint32_t i = 0; r.cited_rev != NULL && i < n; i++)
		free(r.cited_rev[i]);
	free(r.lists);
	free(r.ncited);
	free(r.cited_rev);
	free(raw);
	return rv;
}

/* ---- replay ------------------------------------------------------------------------- */

void
anc_replay_result_free(anc_replay_result *r)
{
	if (r == NULL)
		return;
	free(r->changes);
	free(r);
}

static int
change_add(anc_replay_result *out, uint32_t *cap, uint32_t list, int kind,
           const char *anchor, uint64_t orev, uint64_t nrev, float oscore,
           float nscore, anc_error *err)
{
	anc_replay_change *c;
	if (out->nchanges == *cap) {
		uint32_t nc = *cap ? 2 * *cap : 16;
		anc_replay_change *p = realloc(out->changes, nc * sizeof *p);
		if (p == NULL)
			return anc_error_set(err, ANC_ENOMEM,
			                     "replay: out of memory");
		out->changes = p;
		*cap = nc;
	}
	c = &out->changes[out->nchanges++];
	memset(c, 0, sizeof *c);
	c->list = list;
	c->kind = kind;
	if (anchor != NULL)
		memcpy(c->anchor, anchor, sizeof c->anchor);
	c->old_revision = orev;
	c->new_revision = nrev;
	c->old_score = oscore;
	c->new_score = nscore;
	return ANC_OK;
}

/* Status and revision of an anchor now. */
static int
anchor_now(ground *g, MDB_txn *txn, uint32_t cid, const char *anchor,
           int *status, uint64_t *rev, anc_error *err)
{
	uint8_t raw[ANC_ANCHOR_RAW];
	store_passage p;
	int found, rv;
	*status = ANC_ANCHOR_UNKNOWN;
	*rev = 0;
	if (anc_anchor_parse(anchor, raw, NULL) != ANC_OK)
		return ANC_OK;
	if ((rv = store_passage_get(g->st, txn, cid, raw, &p, &found, err)))
		return rv;
	if (found) {
		*status = p.deleted ? ANC_ANCHOR_DELETED : ANC_ANCHOR_LIVE;
		*rev = p.revision;
	}
	return ANC_OK;
}

/* Compare an old list (hits) with a new one (anchors, revisions, scores
 * of n entries), recording changes. */
static int
list_diff(ground *g, MDB_txn *txn, uint32_t cid, anc_metric m, uint32_t li,
          const anc_receipt_list *old, const anc_hit *nh, uint32_t nn,
          anc_replay_result *out, uint32_t *cap, anc_error *err)
{
	double worst = INFINITY;
	int rv;
	for (uint32_t j = 0; j < old->nhits; j++) {
		const anc_receipt_hit *o = &old->hits[j];
		int st, found = 0;
		uint64_t rev;
		if (!isnan(o->score) && close_of(m, o->score) < worst)
			worst = close_of(m, o->score);
		for (uint32_t x = 0; x < nn && !found; x++) {
			if (strcmp(nh[x].anchor, o->anchor) != 0)
				continue;
			found = 1;
			if (nh[x].revision != o->revision &&
			    (rv = change_add(out, cap, li, ANC_CHANGE_REVISED,
			                     o->anchor, o->revision,
			                     nh[x].revision, o->score, nh[x].score,
			                     err)))
				return rv;
		}
		if (found)
			continue;
		if ((rv = anchor_now(g, txn, cid, o->anchor, &st, &rev, err)))
			return rv;
		if (st != ANC_ANCHOR_LIVE)
			rv = change_add(out, cap, li, ANC_CHANGE_DELETED, o->anchor,
			                o->revision, rev, o->score, NAN, err);
		else if (rev != o->revision)
			rv = change_add(out, cap, li, ANC_CHANGE_REVISED, o->anchor,
			                o->revision, rev, o->score, NAN, err);
		else
			rv = change_add(out, cap, li, ANC_CHANGE_GONE, o->anchor,
			                o->revision, rev, o->score, NAN, err);
		if (rv != ANC_OK)
			return rv;
	}
	for (uint32_t x = 0; x < nn; x++) {
		int was = 0;
		for (uint32_t j = 0; j < old->nhits && !was; j++)
			was = strcmp(nh[x].anchor, old->hits[j].anchor) == 0;
		/* new, and better than the worst old hit (or filling a list
		 * that was short) */
		if (!was && (old->nhits == 0 || close_of(m, nh[x].score) > worst ||
		             isinf(worst)) &&
		    (rv = change_add(out, cap, li, ANC_CHANGE_NEW, nh[x].anchor, 0,
		                     nh[x].revision, NAN, nh[x].score, err)))
			return rv;
	}
	return ANC_OK;
}

int
anc_db_receipt_replay(anc_db *db, const char *id, anc_replay_result **out,
                      anc_error *err)
{
	ground *g;
	ground_target t;
	anc_replay_result *res = NULL;
	anc_query_result *qr = NULL;
	anc_verify_result *vr = NULL;
	anc_claim *claims = NULL;
	anc_anchor_str **cited = NULL;
	anc_hit *tmp = NULL;
	MDB_txn *txn = NULL;
	rec r;
	uint32_t cap = 0;
	int rv;

	if (out == NULL || db == NULL)
		return anc_error_set(err, ANC_EINVAL, "replay: db or out is NULL");
	*out = NULL;
	g = engine_ground(db);
	if ((rv = rec_load(g, id, &r, NULL, err)) != ANC_OK)
		return rv;
	if ((rv = engine_ground_lookup(db, r.collection, r.prov.contract, &t,
	                               err)) != ANC_OK) {
		anc_error_wrap(err, "replay of receipt %s", id);
		goto leave;
	}
	if ((res = calloc(1, sizeof *res)) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "replay: out of memory");
		goto leave;
	}
	memcpy(res->id, r.prov.receipt, sizeof res->id);
	res->kind = r.kind;
	res->then = r.prov;
	res->nlists = r.nq;
	if (r.kind == ANC_RECEIPT_QUERY) {
		if ((rv = anc_db_query2(db, r.collection, r.prov.contract, r.vecs,
		                        r.nq, r.dim, r.k, 0, &r.opt, &qr, err)))
			goto leave;
		res->now = qr->prov;
		if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK)
			goto leave;
		for (uint32_t i = 0; i < r.nq; i++)
			if ((rv = list_diff(g, txn, r.cid, t.c.metric, i,
			                    &r.lists[i], qr->lists[i].hits,
			                    qr->lists[i].nhits, res, &cap, err)))
				goto leave;
	} else {
		if ((claims = calloc(r.nq, sizeof *claims)) == NULL ||
		    (cited = calloc(r.nq, sizeof *cited)) == NULL) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "replay: out of memory");
			goto leave;
		}
		for (uint32_t i = 0; i < r.nq; i++) {
			claims[i].vec = r.vecs + (size_t)i * r.dim;
			claims[i].dim = r.dim;
			claims[i].ncited = r.ncited[i];
			claims[i].cited_rev = r.cited_rev[i];
			if (r.ncited[i] == 0)
				continue;
			if ((cited[i] = calloc(r.ncited[i],
			                       sizeof(anc_anchor_str))) == NULL) {
				rv = anc_error_set(err, ANC_ENOMEM,
				                   "replay: out of memory");
				goto leave;
			}
			for (uint32_t j = 0; j < r.ncited[i]; j++)
				memcpy(cited[i][j], r.lists[i].hits[j].anchor,
				       sizeof(anc_anchor_str));
			claims[i].cited = (const anc_anchor_str *)cited[i];
		}
		if ((rv = anc_db_verify(db, r.collection, r.prov.contract, claims,
		                        r.nq, 0, &vr, err)) != ANC_OK)
			goto leave;
		res->now = vr->prov;
		if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK)
			goto leave;
		for (uint32_t i = 0; i < r.nq; i++) {
			const anc_claim_result *c = &vr->claims[i];
			uint32_t nn = 0;
			free(tmp);
			if ((tmp = calloc(c->ncited + 1, sizeof *tmp)) == NULL) {
				rv = anc_error_set(err, ANC_ENOMEM,
				                   "replay: out of memory");
				goto leave;
			}
			for (uint32_t j = 0; j < c->ncited; j++) {
				/* Not live now: reported as deleted, unless it
				 * was not live when the receipt was made either
				 * (no score then) at the same revision (0 for
				 * an anchor never stored): nothing changed. The
				 * old list holds the cited anchors first, in
				 * the same order. */
				const anc_receipt_hit *o =
				    j < r.lists[i].nhits ? &r.lists[i].hits[j]
				                         : NULL;
				if (c->cited[j].status != ANC_ANCHOR_LIVE &&
				    !(o != NULL && isnan(o->score) &&
				      o->revision == c->cited[j].revision))
					continue;
				memcpy(tmp[nn].anchor, c->cited[j].anchor,
				       sizeof(anc_anchor_str));
				tmp[nn].revision = c->cited[j].revision;
				tmp[nn++].score = c->cited[j].score;
			}
			if (c->has_best && !c->best_cited) {
				memcpy(tmp[nn].anchor, c->best,
				       sizeof(anc_anchor_str));
				tmp[nn].revision = c->best_revision;
				tmp[nn++].score = c->best_score;
			}
			if (c->verdict != r.lists[i].verdict &&
			    (rv = change_add(res, &cap, i, ANC_CHANGE_VERDICT, NULL,
			                     (uint64_t)r.lists[i].verdict,
			                     (uint64_t)c->verdict, NAN, NAN, err)))
				goto leave;
			if ((rv = list_diff(g, txn, r.cid, t.c.metric, i,
			                    &r.lists[i], tmp, nn, res, &cap, err)))
				goto leave;
		}
	}
	res->unchanged = res->nchanges == 0;
	lock(g);
	g->stats.replays++;
	unlock(g);
	*out = res;
	res = NULL;
leave:
	store_txn_abort(txn);
	for (uint32_t i = 0; cited != NULL && i < r.nq; i++)
		free(cited[i]);
	free(cited);
	free(claims);
	free(tmp);
	anc_query_result_free(qr);
	anc_verify_result_free(vr);
	anc_replay_result_free(res);
	rec_clear(&r);
	return rv;
}

#define QUIET_SECONDS 2      /* no writes for this long: recalibrate */
#define QUIET_MAX_SECONDS 30 /* ... or this long after the first write */

/* ---- background: recalibration and pruning ----------------------------------------- */

static void
recalibrate(ground *g)
{
	ground_target *t = NULL;
	uint32_t n = 0;
	anc_error e;
	if (engine_ground_targets(g->db, &t, &n, &e) != ANC_OK)
		return; /* out of memory: the next pass retries */
	for (uint32_t i = 0; i < n; i++) {
		anc_calibration c;
		double moved;
		if (t[i].vectors < ANC_CALIB_MIN)
			continue;
		ground_calib_get(g, t[i].cid, t[i].id, &c);
		moved = c.vectors > 0 ? fabs((double)t[i].vectors -
		                             (double)c.vectors) / (double)c.vectors
		                      : 1.0;
		if (c.computed_at != 0 && moved <= ANC_CALIB_DRIFT)
			continue;
		if (cal_compute(g, &t[i], NULL, &e) != ANC_OK)
			fprintf(stderr, "anchorage: collection '%s': contract %s: "
			        "%s\n", t[i].collection, t[i].idstr, e.msg);
		lock(g);
		if (g->stop) {
			unlock(g);
			break;
		}
		unlock(g);
	}
	free(t);
}

typedef struct prune_arg {
	uint8_t (*keys)[28];
	uint32_t n, cap, klen;
	uint64_t skip;   /* receipts: entries to leave out at the front */
	uint64_t before; /* revisions: last reference older than this */
} prune_arg;

static int
prune_pick(void *arg, const MDB_val *k, const MDB_val *v, anc_error *err)
{
	prune_arg *a = arg;
	(void)err;
	if (a->n >= a->cap || k->mv_size != a->klen)
		return a->n >= a->cap ? ANC_EEXIST /* enough for one pass */
		                      : ANC_OK;
	if (a->klen == RECEIPT_RAW) {
		if (a->skip == 0)
			return ANC_EEXIST;
		a->skip--;
	} else {
		uint64_t last;
		if (v->mv_size < 16)
			goto pick;
		memcpy(&last, (const uint8_t *)v->mv_data + 8, 8);
		if (last >= a->before)
			return ANC_OK;
	}
pick:
	memcpy(a->keys[a->n++], k->mv_data, a->klen);
	return ANC_OK;
}

/* Delete receipts beyond keep (oldest first: IDs start with the time)
 * and retained texts not referenced for days. */
static void
prune(ground *g)
{
	prune_arg a;
	MDB_txn *txn = NULL;
	uint64_t count = 0;
	anc_error e;
	int rv;

	memset(&a, 0, sizeof a);
	a.cap = PRUNE_BATCH;
	if ((a.keys = malloc((size_t)a.cap * sizeof *a.keys)) == NULL) {
		rv = anc_error_set(&e, ANC_ENOMEM, "out of memory");
		goto leave;
	}
	if ((rv = store_txn_begin(g->st, 1, &txn, &e)) != ANC_OK ||
	    (rv = store_kv_count(g->st, txn, STORE_DB_RECEIPTS, &count,
	                         &e)) != ANC_OK)
		goto leave;
	if (count > g->keep) {
		a.klen = RECEIPT_RAW;
		a.skip = count - g->keep;
		rv = store_kv_scan(g->st, txn, STORE_DB_RECEIPTS, NULL, 0,
		                   prune_pick, &a, &e);
		if (rv != ANC_OK && rv != ANC_EEXIST)
			goto leave;
	}
	{
		uint32_t nrec = a.n;
		a.klen = 28;
		a.before = now_us() / 1000000u - (uint64_t)g->days * 86400u;
		rv = store_kv_scan(g->st, txn, STORE_DB_REVISIONS, NULL, 0,
		                   prune_pick, &a, &e);
		if (rv != ANC_OK && rv != ANC_EEXIST)
			goto leave;
		store_txn_abort(txn);
		txn = NULL;
		rv = ANC_OK;
		if (a.n == 0)
			goto leave;
		if ((rv = store_txn_begin(g->st, 0, &txn, &e)) != ANC_OK)
			goto leave;
		for (uint32_t i = 0; i < a.n; i++)
			if ((rv = store_kv_del(g->st, txn,
			                       i < nrec ? STORE_DB_RECEIPTS
			                                : STORE_DB_REVISIONS,
			                       a.keys[i],
			                       i < nrec ? RECEIPT_RAW : 28,
			                       &e)) != ANC_OK)
				goto leave;
		rv = store_txn_commit(g->st, txn, &e);
		txn = NULL;
	}
leave:
	store_txn_abort(txn);
	free(a.keys);
	/* Nothing is lost by a failed pruning (it runs again at the next
	 * round), but the operator sees why the store keeps growing. */
	if (rv != ANC_OK && rv != ANC_EEXIST)
		fprintf(stderr, "anchorage: receipt pruning: %s\n", e.msg);
}

static void *
ground_main(void *arg)
{
	ground *g = arg;
	time_t last_prune = 0;
	lock(g);
	g->dirty = 1; /* a first look at start-up */
	while (!g->stop) {
		struct timespec ts;
		int dirty;
		if (!g->dirty) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PRUNE_SECONDS;
			(void)pthread_cond_timedwait(&g->cond, &g->mu, &ts);
			if (g->stop)
				break;
		}
		if (g->dirty) {
			/* Wait for QUIET_SECONDS without writes (at most
			 * QUIET_MAX_SECONDS), so a bulk load is not slowed by
			 * an O(sample^2) recalibration after every batch. */
			time_t first = time(NULL);
			for (;;) {
				int rc = 0;
				g->dirty = 0;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += QUIET_SECONDS;
				while (!g->stop && !g->dirty && rc == 0)
					rc = pthread_cond_timedwait(&g->cond,
					                            &g->mu, &ts);
				/* A write group still running (an HNSW batch
				 * may take longer than QUIET_SECONDS) is not
				 * quiet. */
				if (g->stop || (!g->dirty && g->writing == 0) ||
				    time(NULL) - first >= QUIET_MAX_SECONDS)
					break;
			}
			g->dirty = 1;
			if (g->stop)
				break;
		}
		dirty = g->dirty;
		g->dirty = 0;
		unlock(g);
		if (dirty)
			recalibrate(g);
		if (time(NULL) - last_prune >= PRUNE_SECONDS) {
			prune(g);
			last_prune = time(NULL);
		}
		lock(g);
	}
	unlock(g);
	return NULL;
}

void
ground_write_begin(ground *g)
{
	if (g == NULL || !g->thread_ok)
		return;
	lock(g);
	g->writing++;
	unlock(g);
}

void
ground_write_end(ground *g)
{
	if (g == NULL || !g->thread_ok)
		return;
	lock(g);
	if (g->writing > 0)
		g->writing--;
	unlock(g);
	ground_note_writes(g);
}

void
ground_note_writes(ground *g)
{
	if (g == NULL || !g->thread_ok)
		return;
	lock(g);
	g->dirty = 1;
	(void)pthread_cond_signal(&g->cond);
	unlock(g);
}

/* ---- open / close ------------------------------------------------------------------- */

/* Make DIR/receipt.key: write and fsync a temporary file, link it to the
 * key's name (failing if another start made one meanwhile), fsync the
 * directory. A crash leaves no key or the whole key, never a short one. */
static int
key_create(ground *g, const char *dir, const char *path, anc_error *err)
{
	char tmp[4096 + 16];
	int fd, dfd, rv = ANC_OK;

	if (RAND_bytes(g->key, KEY_LEN) != 1)
		return anc_error_set(err, ANC_EINTERNAL,
		                     "receipt key: RAND_bytes failed");
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return anc_error_set(err, ANC_EIO,
		                     "receipt key '%s': cannot create: %s", tmp,
		                     strerror(errno));
	if (write(fd, g->key, KEY_LEN) != KEY_LEN || fsync(fd) != 0)
		rv = anc_error_set(err, ANC_EIO,
		                   "receipt key '%s': cannot write: %s", tmp,
		                   strerror(errno));
	close(fd);
	if (rv == ANC_OK && link(tmp, path) != 0)
		rv = anc_error_set(err, ANC_EIO,
		                   "receipt key '%s': cannot create: %s", path,
		                   strerror(errno));
	(void)unlink(tmp);
	if (rv != ANC_OK)
		return rv;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(dfd) != 0)
		rv = anc_error_set(err, ANC_EIO,
		                   "receipt key: cannot sync directory '%s': %s",
		                   dir, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	return rv;
}

/* DIR/receipt.key: 32 random bytes, mode 0600, made on first open. */
static int
key_load(ground *g, const char *dir, anc_error *err)
{
	char path[4096];
	struct stat sb;
	ssize_t got;
	int fd, rv = ANC_OK;

	if ((size_t)snprintf(path, sizeof path, "%s/receipt.key", dir) >=
	    sizeof path)
		return anc_error_set(err, ANC_EINVAL,
		                     "receipt key: path '%s' too long", dir);
	/* An empty key is what a crash during the first start left before
	 * key_create existed: made again, but only while no receipt is
	 * stored (one would have been signed with a key now lost; that is
	 * refused below like any key of the wrong size). */
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0) {
		MDB_txn *txn = NULL;
		uint64_t n = 0;
		if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK ||
		    (rv = store_kv_count(g->st, txn, STORE_DB_RECEIPTS, &n,
		                         err)) != ANC_OK) {
			store_txn_abort(txn);
			return rv;
		}
		store_txn_abort(txn);
		if (n == 0 && unlink(path) != 0)
			return anc_error_set(err, ANC_EIO,
			                     "receipt key '%s': empty, and cannot "
			                     "remove it: %s", path, strerror(errno));
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return key_create(g, dir, path, err);
	if (fd < 0)
		return anc_error_set(err, ANC_EIO,
		                     "receipt key '%s': cannot open: %s", path,
		                     strerror(errno));
	if (fstat(fd, &sb) != 0) {
		rv = anc_error_set(err, ANC_EIO, "receipt key '%s': %s", path,
		                   strerror(errno));
	} else if (sb.st_size != KEY_LEN) {
		rv = anc_error_set(err, ANC_EINVAL,
		                   "receipt key '%s': %lld bytes, expected %d "
		                   "(receipts signed with the lost key cannot be "
		                   "checked; move the file away to start with a "
		                   "new key)",
		                   path, (long long)sb.st_size, KEY_LEN);
	} else if ((sb.st_mode & 077) != 0) {
		rv = anc_error_set(err, ANC_EPRECONDITION,
		                   "receipt key '%s': mode %04o lets other users "
		                   "read the secret; expected 0600 (chmod 600)",
		                   path, (unsigned)(sb.st_mode & 07777));
	} else if ((got = read(fd, g->key, KEY_LEN)) < 0) {
		rv = anc_error_set(err, ANC_EIO, "receipt key '%s': %s", path,
		                   strerror(errno));
	} else if (got != KEY_LEN) {
		rv = anc_error_set(err, ANC_EIO,
		                   "receipt key '%s': short read (%zd bytes)",
		                   path, got);
	}
	close(fd);
	return rv;
}

void
ground_close(ground *g)
{
	if (g == NULL)
		return;
	if (g->thread_ok) {
		lock(g);
		g->stop = 1;
		(void)pthread_cond_signal(&g->cond);
		unlock(g);
		(void)pthread_join(g->thread, NULL);
	}
	if (g->cond_ok)
		pthread_cond_destroy(&g->cond);
	if (g->mu_ok)
		pthread_mutex_destroy(&g->mu);
	OPENSSL_cleanse(g->key, sizeof g->key);
	free(g->cal);
	free(g);
}

int
ground_open(anc_db *db, const char *dir, const anc_db_options *opt,
            ground **out, anc_error *err)
{
	ground *g;
	MDB_txn *txn = NULL;
	int rv;

	*out = NULL;
	if ((g = calloc(1, sizeof *g)) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "grounding: out of memory");
	g->db = db;
	g->st = engine_store(db);
	g->keep = opt->receipt_keep ? opt->receipt_keep : 100000;
	g->days = opt->receipt_days ? opt->receipt_days : 30;
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "grounding: no mutex");
		goto fail;
	}
	g->mu_ok = 1;
	if (pthread_cond_init(&g->cond, NULL) != 0) {
		rv = anc_error_set(err, ANC_ENOMEM, "grounding: no condition");
		goto fail;
	}
	g->cond_ok = 1;
	if (opt->receipt_key_set)
		memcpy(g->key, opt->receipt_key, KEY_LEN);
	else if ((rv = key_load(g, dir, err)) != ANC_OK)
		goto fail;
	if ((rv = store_txn_begin(g->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_kv_scan(g->st, txn, STORE_DB_CALIB, NULL, 0,
	                        cal_load_one, g, err)) != ANC_OK)
		goto fail;
	store_txn_abort(txn);
	txn = NULL;
	if (!opt->calib_off) {
		if ((rv = pthread_create(&g->thread, NULL, ground_main, g)) != 0) {
			rv = anc_error_set(err, ANC_ENOMEM,
			                   "grounding: cannot start thread: %s",
			                   strerror(rv));
			goto fail;
		}
		g->thread_ok = 1;
	}
	*out = g;
	return ANC_OK;
fail:
	store_txn_abort(txn);
	ground_close(g);
	return rv;
}

int
anc_db_ground_stats(anc_db *db, anc_ground_stats *out, anc_error *err)
{
	ground *g;
	MDB_txn *txn = NULL;
	int rv;
	if (db == NULL || out == NULL)
		return anc_error_set(err, ANC_EINVAL,
		                     "grounding stats: db or out is NULL");
	g = engine_ground(db);
	lock(g);
	*out = g->stats;
	unlock(g);
	if ((rv = store_txn_begin(g->st, 1, &txn, err)) == ANC_OK &&
	    (rv = store_kv_count(g->st, txn, STORE_DB_RECEIPTS,
	                         &out->receipts_stored, err)) == ANC_OK)
		rv = store_kv_count(g->st, txn, STORE_DB_REVISIONS,
		                    &out->revisions_retained, err);
	store_txn_abort(txn);
	return rv;
}
