/*
 * engine_write_test.c — the engine's write path (anc_db_upsert) under
 * concurrency: group commit (several upserts sharing one LMDB transaction)
 * must give every caller exactly what it would have had alone.
 *
 * Design note: grouping depends on timing, so these tests assert only what
 * must hold whatever groups formed: every acknowledged record is stored,
 * indexed and found again after a reopen; sequence numbers are distinct
 * and increasing per caller; a request that fails (a full map) fails alone
 * and leaves the others and the database intact; and the sequence and
 * duplicate-anchor rules of a single upsert are unchanged. Synthetic l2
 * vectors (deterministic per thread and row) keep the data exact.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anc_index.h"
#include "ground.h" /* engine_ground_targets: an index's generation */
#include "vindex.h" /* vindex_test_fail_adds */
#include "testutil.h"
#include "tu_corpus.h"
#include "tu_db.h"

TestSuite(engine_write, .fini = tu_cleanup);

#define COLL "w"

static void
setup(anc_db *db, uint32_t dim, anc_contract_id_str id)
{
	anc_contract c;
	anc_error err;
	tu_contract_l2(&c, "syn", "synthetic", dim);
	cr_assert_eq(anc_db_collection_create(db, COLL, NULL, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, NULL, &err),
	             ANC_OK, "%s", err.msg);
}

/* Row r of thread t: values in [0, 1) from a small LCG. */
static void
vec_fill(float *v, uint32_t dim, uint32_t t, uint32_t r)
{
	uint32_t x = 2654435761u * (t + 1) ^ (r * 40503u + 7);
	for (uint32_t j = 0; j < dim; j++) {
		x = x * 1664525u + 1013904223u;
		v[j] = (float)(x >> 8) / (float)(1u << 24);
	}
}

static uint64_t
info_seq(anc_db *db, uint64_t *live, uint64_t *vectors, uint64_t *ntotal)
{
	anc_info *info = NULL;
	anc_error err;
	uint64_t seq;
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info->ncollections, 1);
	cr_assert_eq(info->collections[0].ncontracts, 1);
	*live = info->collections[0].live;
	*vectors = info->collections[0].contracts[0].vectors;
	*ntotal = info->collections[0].contracts[0].index_ntotal;
	seq = info->seq;
	anc_info_free(info);
	return seq;
}

/* Row r of thread t is found first, at distance 0, with its anchor. */
static void
self_found(anc_db *db, uint32_t dim, uint32_t t, uint32_t r,
           const char *anchor)
{
	float *v = malloc(dim * sizeof *v);
	anc_query_result *qr = NULL;
	anc_error err;
	cr_assert_not_null(v);
	vec_fill(v, dim, t, r);
	cr_assert_eq(anc_db_query(db, COLL, NULL, v, 1, dim, 1, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(qr->lists[0].nhits, 1, "thread %u row %u not found", t, r);
	cr_assert_float_eq(qr->lists[0].hits[0].score, 0.0f, 1e-6);
	if (anchor != NULL)
		cr_assert_str_eq(qr->lists[0].hits[0].anchor, anchor);
	anc_query_result_free(qr);
	free(v);
}

/* ---- concurrent writers ------------------------------------------------- */

#define NTHREADS 8
#define NBATCHES 20
#define BATCH 50
#define DIM 64

typedef struct {
	anc_db *db;
	uint32_t t;
	uint32_t dim, nbatches, batch;
	int fail;          /* stop at the first failure and say why */
	char why[ANC_ERRMSG_MAX + 64];
	uint64_t seqs[NBATCHES];
	anc_anchor_str first_anchor;
	/* the small/large mix of the map-full test */
	uint32_t repeat;   /* send each batch this many more times: UNCHANGED */
	int big;
	int big_rv;
	char big_msg[ANC_ERRMSG_MAX];
} writer;

static void *
writer_main(void *arg)
{
	writer *w = arg;
	anc_record *r = calloc(w->batch, sizeof *r);
	anc_upsert_result *res = calloc(w->batch, sizeof *res);
	float *v = malloc((size_t)w->batch * w->dim * sizeof *v);
	char (*chunk)[32] = calloc(w->batch, 32);
	char source[32];

	if (!r || !res || !v || !chunk) {
		w->fail = 1;
		snprintf(w->why, sizeof w->why, "out of memory");
		goto out;
	}
	snprintf(source, sizeof source, "thread-%u", w->t);
	for (uint32_t b = 0; b < w->nbatches && !w->fail; b++) {
		anc_error err;
		uint64_t seq = 0;
		for (uint32_t i = 0; i < w->batch; i++) {
			uint32_t row = b * w->batch + i;
			snprintf(chunk[i], 32, "%u", row);
			vec_fill(v + (size_t)i * w->dim, w->dim, w->t, row);
			r[i].source = source;
			r[i].chunk = chunk[i];
			r[i].text = "t";
			r[i].vec = v + (size_t)i * w->dim;
			r[i].dim = w->dim;
		}
		int rv = anc_db_upsert(w->db, COLL, NULL, r, w->batch, res, &seq,
		                       &err);
		if (w->big) {
			w->big_rv = rv;
			snprintf(w->big_msg, sizeof w->big_msg, "%s",
			         rv != ANC_OK ? err.msg : "");
			continue;
		}
		if (rv != ANC_OK) {
			w->fail = 1;
			snprintf(w->why, sizeof w->why, "batch %u: %s", b, err.msg);
			break;
		}
		for (uint32_t i = 0; i < w->batch; i++)
			if (res[i].status != ANC_UPSERT_CREATED ||
			    res[i].revision != 1) {
				w->fail = 1;
				snprintf(w->why, sizeof w->why,
				         "batch %u record %u: status %d rev %llu", b,
				         i, res[i].status,
				         (unsigned long long)res[i].revision);
			}
		if (b == 0)
			memcpy(w->first_anchor, res[0].anchor, sizeof w->first_anchor);
		w->seqs[b] = seq;
		for (uint32_t k = 0; k < w->repeat && !w->fail; k++) {
			uint64_t s2 = 0;
			rv = anc_db_upsert(w->db, COLL, NULL, r, w->batch, res,
			                   &s2, &err);
			if (rv != ANC_OK || res[0].status != ANC_UPSERT_UNCHANGED ||
			    s2 < seq) {
				w->fail = 1;
				snprintf(w->why, sizeof w->why,
				         "batch %u again: rv %d status %d: %s", b, rv,
				         res[0].status, rv ? err.msg : "");
			}
		}
	}
out:
	free(r);
	free(res);
	free(v);
	free(chunk);
	return NULL;
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

Test(engine_write, concurrent_upserts_each_committed_once)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	pthread_t th[NTHREADS];
	static writer w[NTHREADS];
	uint64_t all[NTHREADS * NBATCHES], seq0 = 0, seq, live, vectors, ntotal;
	anc_error err;

	setup(db, DIM, id);
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, NULL, 0, NULL, &seq0, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t t = 0; t < NTHREADS; t++) {
		memset(&w[t], 0, sizeof w[t]);
		w[t].db = db;
		w[t].t = t;
		w[t].dim = DIM;
		w[t].nbatches = NBATCHES;
		w[t].batch = BATCH;
		cr_assert_eq(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
	}
	for (uint32_t t = 0; t < NTHREADS; t++)
		cr_assert_eq(pthread_join(th[t], NULL), 0);
	for (uint32_t t = 0; t < NTHREADS; t++) {
		cr_assert_not(w[t].fail, "thread %u: %s", t, w[t].why);
		for (uint32_t b = 0; b < NBATCHES; b++) {
			/* each caller's own writes come back in order */
			if (b > 0)
				cr_assert_gt(w[t].seqs[b], w[t].seqs[b - 1]);
			all[t * NBATCHES + b] = w[t].seqs[b];
		}
	}
	/* one sequence number per acknowledged write, all distinct, each
	 * above the labels of its BATCH vectors */
	qsort(all, NTHREADS * NBATCHES, sizeof all[0], u64_cmp);
	cr_assert_geq(all[0], seq0 + BATCH + 1);
	for (uint32_t i = 1; i < NTHREADS * NBATCHES; i++)
		cr_assert_geq(all[i], all[i - 1] + BATCH + 1,
		              "seq %llu then %llu", (unsigned long long)all[i - 1],
		              (unsigned long long)all[i]);
	seq = info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(seq, all[NTHREADS * NBATCHES - 1]);
	cr_assert_eq(live, NTHREADS * NBATCHES * BATCH);
	cr_assert_eq(vectors, NTHREADS * NBATCHES * BATCH);
	cr_assert_eq(ntotal, NTHREADS * NBATCHES * BATCH);
	for (uint32_t t = 0; t < NTHREADS; t++) {
		self_found(db, DIM, t, 0, w[t].first_anchor);
		self_found(db, DIM, t, NBATCHES * BATCH - 1, NULL);
	}
	tu_db_close(db);

	/* From the snapshot; then from LMDB alone. */
	db = tu_db_open(dir, 0, 1ull << 30);
	cr_assert_eq(info_seq(db, &live, &vectors, &ntotal), seq);
	cr_assert_eq(live, NTHREADS * NBATCHES * BATCH);
	cr_assert_eq(ntotal, NTHREADS * NBATCHES * BATCH);
	tu_db_close(db);
	cr_assert_eq(tu_rmrf(tu_path(dir, "snapshots")), 0);
	db = tu_db_open(dir, 0, 1ull << 30);
	cr_assert_eq(info_seq(db, &live, &vectors, &ntotal), seq);
	cr_assert_eq(ntotal, NTHREADS * NBATCHES * BATCH);
	for (uint32_t t = 0; t < NTHREADS; t++)
		for (uint32_t r = 0; r < NBATCHES * BATCH; r += 97)
			self_found(db, DIM, t, r, r == 0 ? w[t].first_anchor : NULL);
	tu_db_close(db);
}

/* A request too big for the map fails with the map-full error; requests
 * that ran beside it (perhaps in the same group) are committed as if it
 * had never been sent. */
Test(engine_write, failing_request_fails_alone)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 8ull << 20);
	pthread_t th[5];
	static writer w[5];
	uint64_t live, vectors, ntotal;

	setup(db, 784, id);
	for (uint32_t t = 0; t < 5; t++) {
		memset(&w[t], 0, sizeof w[t]);
		w[t].db = db;
		w[t].t = t;
		w[t].dim = 784;
		w[t].big = t == 0;
		w[t].nbatches = t == 0 ? 6 : 10;
		w[t].batch = t == 0 ? 3000 : 5; /* 3000 x 4 KiB > 8 MiB */
		w[t].repeat = t == 0 ? 0 : 400; /* keep the writer busy */
		cr_assert_eq(pthread_create(&th[t], NULL, writer_main, &w[t]), 0);
	}
	for (uint32_t t = 0; t < 5; t++)
		cr_assert_eq(pthread_join(th[t], NULL), 0);
	cr_assert_eq(w[0].big_rv, ANC_ESTORAGE, "big request: %d %s",
	             w[0].big_rv, w[0].big_msg);
	cr_assert(strstr(w[0].big_msg, "full") != NULL, "%s", w[0].big_msg);
	for (uint32_t t = 1; t < 5; t++)
		cr_assert_not(w[t].fail, "thread %u: %s", t, w[t].why);
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(live, 4 * 10 * 5);
	cr_assert_eq(vectors, 4 * 10 * 5);
	cr_assert_eq(ntotal, 4 * 10 * 5);
	for (uint32_t t = 1; t < 5; t++) {
		self_found(db, 784, t, 0, w[t].first_anchor);
		self_found(db, 784, t, 49, NULL);
	}
	tu_db_close(db);
	db = tu_db_open(dir, 0, 8ull << 20);
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(live, 4 * 10 * 5);
	cr_assert_eq(ntotal, 4 * 10 * 5);
	tu_db_close(db);
}

/* ---- replacing writers: rebuilds while the next group commits ---------- */

#define RTHREADS 6
#define RROWS 300
#define RROUNDS 20
#define RBATCH 100
#define RNEW 10 /* the first RNEW records of each batch create a passage */
#define RLIVE ((RROWS / RBATCH) * ((RBATCH - RNEW) + RROUNDS * RNEW))

/* Record i of batch b of round k: a new row, or one replaced each round. */
static uint32_t
rrow(uint32_t k, uint32_t b, uint32_t i)
{
	return i < RNEW ? 5000000u + (k * (RROWS / RBATCH) + b) * RNEW + i
	                : b * RBATCH + i;
}

typedef struct {
	anc_db *db;
	uint32_t t;
	int fail;
	char why[ANC_ERRMSG_MAX + 64];
} replacer;

/* Round k of row r of thread t: a vector of its own. */
static void
rvec(float *v, uint32_t t, uint32_t r, uint32_t k)
{
	vec_fill(v, DIM, t, r + k * 100000u);
}

static void *
replacer_main(void *arg)
{
	replacer *w = arg;
	anc_record r[RBATCH];
	anc_upsert_result res[RBATCH];
	static __thread float v[RBATCH][DIM];
	char chunk[RBATCH][16], source[32];

	snprintf(source, sizeof source, "replacer-%u", w->t);
	for (uint32_t k = 0; k < RROUNDS && !w->fail; k++)
		for (uint32_t b = 0; b < RROWS / RBATCH && !w->fail; b++) {
			anc_error err;
			for (uint32_t i = 0; i < RBATCH; i++) {
				uint32_t row = rrow(k, b, i);
				snprintf(chunk[i], sizeof chunk[i], "%u", row);
				rvec(v[i], w->t, row, i < RNEW ? 0 : k);
				r[i] = (anc_record){.source = source,
				                    .chunk = chunk[i], .text = "t",
				                    .vec = v[i], .dim = DIM};
			}
			if (anc_db_upsert(w->db, COLL, NULL, r, RBATCH, res, NULL,
			                  &err) != ANC_OK) {
				w->fail = 1;
				snprintf(w->why, sizeof w->why, "round %u: %s", k,
				         err.msg);
			} else if (res[0].status != ANC_UPSERT_CREATED ||
			           res[RBATCH - 1].status !=
			               (k == 0 ? ANC_UPSERT_CREATED
			                       : ANC_UPSERT_UPDATED)) {
				w->fail = 1;
				snprintf(w->why, sizeof w->why, "round %u: status "
				         "%d, %d", k, res[0].status,
				         res[RBATCH - 1].status);
			}
		}
	return NULL;
}

/* Most records of every write replace a vector, so the index fills with
 * stale entries and is rebuilt again and again while other groups commit;
 * the rest create passages, so the live count moves meanwhile. A rebuild
 * must wait until LMDB holds nothing the index has not seen (or be put
 * off): one that read a later group's commit would count that group's new
 * passages twice. No write may be lost or indexed twice. */
Test(engine_write, rebuilds_under_concurrent_replacing_writers)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	pthread_t th[RTHREADS];
	static replacer w[RTHREADS];
	uint64_t live, vectors, ntotal;
	float v[DIM];

	setup(db, DIM, id);
	for (uint32_t t = 0; t < RTHREADS; t++) {
		w[t] = (replacer){.db = db, .t = t};
		cr_assert_eq(pthread_create(&th[t], NULL, replacer_main, &w[t]),
		             0);
	}
	for (uint32_t t = 0; t < RTHREADS; t++)
		cr_assert_eq(pthread_join(th[t], NULL), 0);
	for (uint32_t t = 0; t < RTHREADS; t++)
		cr_assert_not(w[t].fail, "thread %u: %s", t, w[t].why);

	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(live, RTHREADS * RLIVE);
	cr_assert_eq(vectors, RTHREADS * RLIVE, "the index counts %llu live, "
	             "LMDB %u", (unsigned long long)vectors, RTHREADS * RLIVE);
	/* 36000 vectors were added; rebuilds keep the stale ones to at most
	 * half the index, or REBUILD_STALE_MIN (1024). */
	cr_assert_leq(ntotal, vectors + 1024 > 2 * vectors ? vectors + 1024
	                                                   : 2 * vectors,
	              "%llu entries for %llu live", (unsigned long long)ntotal,
	              (unsigned long long)vectors);
	for (uint32_t t = 0; t < RTHREADS; t++)
		for (uint32_t row = RNEW; row < RROWS; row += 37) {
			anc_query_result *qr = NULL;
			anc_error err;
			if (row % RBATCH < RNEW)
				continue;
			/* a row created once, in the last round */
			self_found(db, DIM, t, rrow(RROUNDS - 1, row / RBATCH,
			                            row % RNEW), NULL);
			/* the last round's vector: found once, at distance 0 */
			rvec(v, t, row, RROUNDS - 1);
			cr_assert_eq(anc_db_query(db, COLL, NULL, v, 1, DIM, 2, 0,
			                          &qr, &err), ANC_OK, "%s", err.msg);
			cr_assert_eq(qr->lists[0].nhits, 2);
			cr_assert_float_eq(qr->lists[0].hits[0].score, 0.0f, 1e-6);
			cr_assert_gt(qr->lists[0].hits[1].score, 0.0f,
			             "thread %u row %u indexed twice", t, row);
			cr_assert_str_neq(qr->lists[0].hits[0].anchor,
			                  qr->lists[0].hits[1].anchor);
			anc_query_result_free(qr);
			/* a replaced vector never comes back */
			rvec(v, t, row, 0);
			cr_assert_eq(anc_db_query(db, COLL, NULL, v, 1, DIM, 1, 0,
			                          &qr, &err), ANC_OK, "%s", err.msg);
			cr_assert_gt(qr->lists[0].hits[0].score, 0.0f);
			anc_query_result_free(qr);
		}
	tu_db_close(db);
	db = tu_db_open(dir, 0, 1ull << 30);
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(live, RTHREADS * RLIVE);
	cr_assert_eq(vectors, RTHREADS * RLIVE);
	tu_db_close(db);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- a contract retired while its writers queue ------------------------ */

#define XTHREADS 6

typedef struct {
	anc_db *db;
	const char *ref; /* the contract written */
	uint32_t t;
	volatile int *stop;
	volatile int finished;
	int retired;     /* got ANC_ERETIRED */
	int other;       /* any other error: its code */
} xwriter;

static void *
xwriter_main(void *arg)
{
	xwriter *w = arg;
	anc_record r[4];
	anc_upsert_result res[4];
	float v[4][DIM];
	char chunk[4][24], source[32];

	snprintf(source, sizeof source, "x-%u", w->t);
	for (uint32_t k = 0; !*w->stop; k++) {
		anc_error err;
		int rv;
		for (uint32_t i = 0; i < 4; i++) {
			snprintf(chunk[i], sizeof chunk[i], "%u", k * 4 + i);
			vec_fill(v[i], DIM, w->t, k * 4 + i);
			r[i] = (anc_record){.source = source, .chunk = chunk[i],
			                    .text = "t", .vec = v[i], .dim = DIM};
		}
		rv = anc_db_upsert(w->db, COLL, w->ref, r, 4, res, NULL, &err);
		if (rv == ANC_ERETIRED) {
			w->retired = 1;
			break;
		}
		if (rv != ANC_OK) {
			w->other = rv;
			break;
		}
	}
	w->finished = 1;
	return NULL;
}

/* A group can hold a request whose contract was retired after it queued,
 * then a live one: both must be answered (the retired one with RETIRED).
 * Found by review: the group's bookkeeping lost the retired request,
 * whose caller then waited for ever. */
Test(engine_write, retired_request_in_a_group_is_answered, .timeout = 120)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id, bid;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	anc_error err;
	int retired = 0;

	setup(db, DIM, id);
	for (int round = 0; round < 25; round++) {
		anc_contract c;
		char name[16];
		volatile int stop = 0;
		static xwriter w[XTHREADS];
		pthread_t th[XTHREADS];

		snprintf(name, sizeof name, "b%d", round);
		tu_contract_l2(&c, name, "synthetic", DIM);
		cr_assert_eq(anc_db_contract_register(db, COLL, &c, bid, NULL,
		                                      &err), ANC_OK, "%s", err.msg);
		for (uint32_t t = 0; t < XTHREADS; t++) {
			w[t] = (xwriter){.db = db, .ref = t % 2 ? bid : id, .t = t,
			                 .stop = &stop};
			cr_assert_eq(pthread_create(&th[t], NULL, xwriter_main,
			                            &w[t]), 0);
		}
		sleep_ms(20);
		cr_assert_eq(anc_db_contract_retire(db, COLL, bid, NULL, &err),
		             ANC_OK, "%s", err.msg);
		sleep_ms(20);
		stop = 1;
		for (int waited = 0; waited < 500; waited++) {
			int all = 1;
			for (uint32_t t = 0; t < XTHREADS; t++)
				all &= w[t].finished;
			if (all)
				break;
			sleep_ms(10);
		}
		for (uint32_t t = 0; t < XTHREADS; t++)
			cr_assert(w[t].finished, "round %d: a writer to the %s "
			          "contract never returned", round,
			          t % 2 ? "retired" : "default");
		for (uint32_t t = 0; t < XTHREADS; t++) {
			cr_assert_eq(pthread_join(th[t], NULL), 0);
			cr_assert_eq(w[t].other, 0, "round %d thread %u: %s", round,
			             t, anc_errname(w[t].other));
			cr_assert(t % 2 == 1 || !w[t].retired);
			retired += w[t].retired;
		}
	}
	cr_assert_gt(retired, 0, "no writer ever saw its contract retired");
	tu_db_close(db);
}

/* ---- a rebuild put off while another group committed -------------------- */

#define SROWS 8000

typedef struct {
	anc_db *db;
	const char *ref;
	uint32_t n, round, t;
	int rv;
} swriter;

static void *
swriter_main(void *arg)
{
	swriter *w = arg;
	anc_record *r = calloc(w->n, sizeof *r);
	anc_upsert_result *res = calloc(w->n, sizeof *res);
	float *v = malloc((size_t)w->n * DIM * sizeof *v);
	char (*chunk)[16] = calloc(w->n, 16);
	anc_error err;

	w->rv = ANC_ENOMEM;
	if (r != NULL && res != NULL && v != NULL && chunk != NULL) {
		for (uint32_t i = 0; i < w->n; i++) {
			snprintf(chunk[i], 16, "%u", i);
			vec_fill(v + (size_t)i * DIM, DIM, w->t,
			         i + w->round * 100000u);
			r[i] = (anc_record){.source = w->t ? "other" : "s",
			                    .chunk = chunk[i], .text = "t",
			                    .vec = v + (size_t)i * DIM, .dim = DIM};
		}
		w->rv = anc_db_upsert(w->db, COLL, w->ref, r, w->n, res, NULL,
		                      &err);
	}
	free(r);
	free(res);
	free(v);
	free(chunk);
	return NULL;
}

/* Read without any engine lock (a lock would run the put-off upkeep). */
static uint64_t
generation_of(anc_db *db, const char *name)
{
	ground_target *t = NULL;
	uint32_t n = 0;
	anc_error err;
	uint64_t g = 0;

	cr_assert_eq(engine_ground_targets(db, &t, &n, &err), ANC_OK, "%s",
	             err.msg);
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(t[i].c.name, name) == 0)
			g = t[i].generation;
	free(t);
	return g;
}

/* A write that makes an index mostly stale, then a small write to another
 * contract that commits while the first one updates its index: the
 * rebuild is put off (the second group holds the writer mutex), and must
 * still happen once the writes are done, without waiting for some later
 * unrelated writer. Found by review. */
Test(engine_write, put_off_rebuild_runs_when_writes_stop, .timeout = 120)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id, bid;
	anc_contract c;
	anc_error err;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	swriter first = {.n = SROWS};

	setup(db, DIM, id);
	tu_contract_l2(&c, "other", "synthetic", DIM);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, bid, NULL, &err),
	             ANC_OK, "%s", err.msg);
	first.db = db;
	first.ref = id;
	swriter_main(&first);
	cr_assert_eq(first.rv, ANC_OK);
	for (uint32_t round = 1; round <= 12; round++) {
		pthread_t ta, tb;
		/* replaces all SROWS vectors: a rebuild is due */
		swriter wa = {db, id, SROWS, round, 0, 0};
		swriter wb = {db, bid, 1, round, 1, 0};
		uint64_t g0 = generation_of(db, "syn"), g1;

		cr_assert_eq(pthread_create(&ta, NULL, swriter_main, &wa), 0);
		sleep_ms((long)(round % 6) * 4);
		cr_assert_eq(pthread_create(&tb, NULL, swriter_main, &wb), 0);
		cr_assert_eq(pthread_join(ta, NULL), 0);
		cr_assert_eq(pthread_join(tb, NULL), 0);
		cr_assert_eq(wa.rv, ANC_OK);
		cr_assert_eq(wb.rv, ANC_OK);
		sleep_ms(100);
		g1 = generation_of(db, "syn");
		cr_assert_gt(g1, g0, "round %u: every write returned, the index "
		             "is not rebuilt (generation %llu)", round,
		             (unsigned long long)g1);
	}
	tu_db_close(db);
}

/* ---- a failed index add ------------------------------------------------ */

static int
upsert_rows(anc_db *db, uint32_t t, uint32_t from, uint32_t n, anc_error *err)
{
	anc_record r[64];
	anc_upsert_result res[64];
	float v[64][DIM];
	char chunk[64][16];

	cr_assert_leq(n, 64);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(chunk[i], sizeof chunk[i], "%u", from + i);
		vec_fill(v[i], DIM, t, from + i);
		r[i] = (anc_record){.source = "f", .chunk = chunk[i], .text = "t",
		                    .vec = v[i], .dim = DIM};
	}
	return anc_db_upsert(db, COLL, NULL, r, n, res, NULL, err);
}

/* Distance to row r's nearest hit: 0 when r's vector is indexed. A query
 * takes no writer lock, so it runs no put-off upkeep. */
static float
nearest(anc_db *db, uint32_t r)
{
	float v[DIM];
	anc_query_result *qr = NULL;
	anc_error err;
	float d;

	vec_fill(v, DIM, 0, r);
	cr_assert_eq(anc_db_query(db, COLL, NULL, v, 1, DIM, 1, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(qr->lists[0].nhits, 1);
	d = qr->lists[0].hits[0].score;
	anc_query_result_free(qr);
	return d;
}

static int
info_trained(anc_db *db)
{
	anc_info *info = NULL;
	anc_error err;
	int t;
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK, "%s", err.msg);
	t = info->collections[0].contracts[0].trained;
	anc_info_free(info);
	return t;
}

/* faiss failing to add a committed write's vectors (out of memory): the
 * index is rebuilt from LMDB at once (a trained kind onto its exact
 * placeholder: a background build may not start) and the writer told
 * nothing went wrong, and finds its vectors; if the rebuild fails too,
 * the writer is told its write is stored and the index behind, which is
 * true until the next holder of the writer lock rebuilds it (not before
 * UPKEEP_RETRY_S, 1 s: a failing rebuild is not retried on every write).
 * No vector is lost either way, also after a reopen. Found by review: on
 * a trained kind the failed add was answered OK and the vectors could be
 * lost for good. */
static void
failed_add_case(int kind)
{
	const char *dir = tu_tmpdir();
	anc_contract c;
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	uint64_t live, vectors, ntotal;
	anc_error err;

	tu_contract_l2(&c, "syn", "synthetic", DIM);
	if (kind == ANC_INDEX_IVF_FLAT) {
		c.index.kind = ANC_INDEX_IVF_FLAT;
		c.index.nlist = 4;  /* trained once enough vectors exist */
		c.index.nprobe = 4; /* every list: exact */
	}
	cr_assert_eq(anc_db_collection_create(db, COLL, NULL, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, NULL, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t r = 0; r < 320; r += 64)
		cr_assert_eq(upsert_rows(db, 0, r, 64, &err), ANC_OK, "%s",
		             err.msg);
	for (int i = 0; i < 500 && !info_trained(db); i++)
		sleep_ms(20);
	cr_assert(info_trained(db), "never trained");
	sleep_ms(200); /* the build thread finishes after its swap */

	vindex_test_fail_adds = 1; /* the write's add */
	cr_assert_eq(upsert_rows(db, 0, 320, 40, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(vindex_test_fail_adds, 0);
	cr_expect_eq(nearest(db, 359), 0.0f, "acknowledged, not found");
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(vectors, 360);
	cr_assert_eq(ntotal, 360);
	/* a trained kind is trained again in the background (its adds
	 * would take the failures meant for the write below) */
	for (int i = 0; i < 500 && !info_trained(db); i++)
		sleep_ms(20);
	cr_assert(info_trained(db), "never trained again");
	sleep_ms(200);

	vindex_test_fail_adds = 2; /* the write's add, then the rebuild's */
	cr_assert_eq(upsert_rows(db, 0, 360, 40, &err), ANC_EINDEX);
	cr_assert(strstr(err.msg, "write committed at seq") != NULL &&
	          strstr(err.msg, "index is behind until its rebuild") != NULL,
	          "%s", err.msg);
	cr_expect_gt(nearest(db, 399), 0.0f, "said behind, but found");
	sleep_ms(1100);
	/* info takes the writer lock, which runs the rebuild put off */
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(live, 400);
	cr_assert_eq(vectors, 400);
	cr_assert_eq(ntotal, 400);
	cr_expect_eq(nearest(db, 399), 0.0f);
	cr_expect_eq(nearest(db, 0), 0.0f);
	cr_assert_eq(upsert_rows(db, 0, 400, 10, &err), ANC_OK, "%s", err.msg);
	tu_db_close(db);
	db = tu_db_open(dir, 0, 1ull << 30);
	(void)info_seq(db, &live, &vectors, &ntotal);
	cr_assert_eq(vectors, 410);
	cr_assert_eq(ntotal, 410);
	cr_expect_eq(nearest(db, 359), 0.0f);
	cr_expect_eq(nearest(db, 399), 0.0f);
	tu_db_close(db);
}

Test(engine_write, failed_index_add_is_rebuilt, .timeout = 120)
{
	failed_add_case(ANC_INDEX_FLAT);
}

Test(engine_write, failed_index_add_is_rebuilt_trained_kind, .timeout = 120)
{
	failed_add_case(ANC_INDEX_IVF_FLAT);
}

/* ---- one writer: the rules of a single upsert --------------------------- */

static int
upsert1(anc_db *db, anc_record *r, uint32_t n, anc_upsert_result *res,
        uint64_t *seq)
{
	anc_error err;
	int rv = anc_db_upsert(db, COLL, NULL, r, n, res, seq, &err);
	cr_assert_eq(rv, ANC_OK, "upsert: %s", err.msg);
	return rv;
}

Test(engine_write, sequence_is_old_plus_changed_plus_one)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	float v[10][DIM];
	char chunk[10][8];
	anc_record r[10];
	anc_upsert_result res[10];
	uint64_t seq0 = 0, seq = 0, seq2 = 0, live, vectors, ntotal;
	anc_error err;

	setup(db, DIM, id);
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, NULL, 0, NULL, &seq0, &err),
	             ANC_OK, "%s", err.msg);
	memset(r, 0, sizeof r);
	for (uint32_t i = 0; i < 10; i++) {
		vec_fill(v[i], DIM, 99, i);
		snprintf(chunk[i], sizeof chunk[i], "%u", i);
		r[i].source = "s";
		r[i].chunk = chunk[i];
		r[i].vec = v[i];
		r[i].dim = DIM;
	}
	upsert1(db, r, 10, res, &seq);
	cr_assert_eq(seq, seq0 + 11);
	/* identical again: nothing written, the sequence stays */
	upsert1(db, r, 10, res, &seq2);
	cr_assert_eq(seq2, seq);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert_eq(res[i].status, ANC_UPSERT_UNCHANGED);
	/* three vectors change: three labels, one commit */
	for (uint32_t i = 0; i < 3; i++)
		vec_fill(v[i], DIM, 98, i);
	upsert1(db, r, 10, res, &seq2);
	cr_assert_eq(seq2, seq + 4);
	for (uint32_t i = 0; i < 10; i++)
		cr_assert_eq(res[i].status,
		             i < 3 ? ANC_UPSERT_UPDATED : ANC_UPSERT_UNCHANGED);
	cr_assert_eq(info_seq(db, &live, &vectors, &ntotal), seq2);
	cr_assert_eq(live, 10);
	cr_assert_eq(vectors, 10);
	self_found(db, DIM, 98, 2, res[2].anchor);
	self_found(db, DIM, 99, 3, res[3].anchor);
	tu_db_close(db);
}

/* The same anchor twice in one batch: the second record sees the first,
 * whatever was stored before (a vector changed and changed back). */
Test(engine_write, repeated_anchor_in_one_batch)
{
	const char *dir = tu_tmpdir();
	anc_contract_id_str id;
	anc_db *db = tu_db_open(dir, 0, 1ull << 30);
	float v0[DIM], v1[DIM], v2[DIM];
	anc_record r[3];
	anc_upsert_result res[3];
	uint64_t seq, live, vectors, ntotal;
	anc_query_result *qr = NULL;
	anc_error err;

	setup(db, DIM, id);
	vec_fill(v0, DIM, 7, 0);
	vec_fill(v1, DIM, 7, 1);
	vec_fill(v2, DIM, 7, 2);
	memset(r, 0, sizeof r);
	r[0] = (anc_record){.source = "s", .chunk = "a", .vec = v0, .dim = DIM};
	upsert1(db, r, 1, res, &seq);
	cr_assert_eq(res[0].status, ANC_UPSERT_CREATED);

	/* a -> v1 -> v0 in one batch */
	r[0].vec = v1;
	r[1] = (anc_record){.source = "s", .chunk = "a", .vec = v0, .dim = DIM};
	upsert1(db, r, 2, res, &seq);
	cr_assert_eq(res[0].status, ANC_UPSERT_UPDATED);
	cr_assert_eq(res[1].status, ANC_UPSERT_UPDATED);
	cr_assert_eq(res[1].revision, 3);
	cr_assert_str_eq(res[0].anchor, res[1].anchor);

	/* b new, then b identical, in one batch */
	r[0] = (anc_record){.source = "s", .chunk = "b", .vec = v2, .dim = DIM};
	r[1] = r[0];
	upsert1(db, r, 2, res, &seq);
	cr_assert_eq(res[0].status, ANC_UPSERT_CREATED);
	cr_assert_eq(res[1].status, ANC_UPSERT_UNCHANGED);
	cr_assert_eq(res[1].revision, 1);

	cr_assert_eq(info_seq(db, &live, &vectors, &ntotal), seq);
	cr_assert_eq(live, 2);
	cr_assert_eq(vectors, 2);
	/* a's stored vector is v0 again; v1 is nobody's */
	self_found(db, DIM, 7, 0, NULL);
	self_found(db, DIM, 7, 2, res[0].anchor);
	cr_assert_eq(anc_db_query(db, COLL, NULL, v1, 1, DIM, 2, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(qr->lists[0].nhits, 2);
	cr_assert_gt(qr->lists[0].hits[0].score, 1e-3);
	anc_query_result_free(qr);
	tu_db_close(db);
}
