/*
 * vindex.c — faiss indexes and their snapshots; the model and the file
 * format are described in vindex.h.
 *
 * Design note
 * -----------
 * faiss is reached only through its C API (faiss_c_compat.cpp supplies it
 * on Debian). Every faiss call's status is checked and its per-thread
 * message copied into the anc_error at once, on the failing thread.
 *
 * Start-up trusts nothing on disk but LMDB: a snapshot is used only when its
 * header, its SHA-256, its contract ID and dimension all check out and the
 * label it covers is not beyond LMDB's sequence (a snapshot written after
 * commits that a crash then lost). Anything else is logged and answered by
 * a rebuild, which adds vectors in batches of REBUILD_BATCH so memory stays
 * bounded whatever the collection size.
 *
 * Index kinds (issue 6). flat and hnsw are built as vectors arrive.
 * hnsw_sq8, ivf_flat and ivf_pq need training: until the contract holds
 * ANC_INDEX_TRAIN_MIN vectors they are served by an exact "IDMap2,Flat"
 * placeholder (trained = 0; a snapshot of it is recognised on load by its
 * flat sub-index). Crossing the line, or doubling the count the index was
 * last trained on, or the engine asking for a rebuild of a trained index
 * (vindex_rebuild), starts one background build per index:
 *
 *   1. under the write lock, start recording every vindex_add into a
 *      pending log; then open an LMDB read transaction at sequence S;
 *   2. without any index lock: sample up to a bounded number of stored
 *      vectors (reservoir), train a new faiss index, add every stored
 *      vector (batches, checking the stop flag between them);
 *   3. drain the pending log into the new index in rounds (the log is
 *      swapped out under the write lock, added outside it) until little
 *      is left; then, under the write lock, add the rest, swap the new
 *      index in, bump the generation, stop recording;
 *   4. write a snapshot of it (one snapshot writer at a time: snap_mu),
 *      so that a start after a crash loads it instead of training again.
 * Labels are write sequences and LMDB shows S's snapshot, so pending
 * entries with a label <= S are already in the new index and are
 * skipped; everything later is in the log. Queries keep using the old
 * index until the swap and wait only for the final small catch-up.
 * Entries of vectors deleted meanwhile are stale like any other (the
 * engine filters them through LMDB).
 *
 * OpenMP. faiss parallelises a search over its queries with OpenMP. The
 * server runs many searches at once (one per worker thread), each with
 * nq = 1 or a few; a team per search would put workers x cores threads on
 * the cores and pay a team start-up per call. So a search with fewer than
 * OMP_BATCH_MIN queries runs on its calling thread alone
 * (omp_set_num_threads(1): the setting is the calling thread's own ICV,
 * so other threads are not affected), while a larger batch uses every
 * core. Concurrency then comes from the worker threads, parallelism within
 * one big batch from OpenMP. The background build (training, adding) runs
 * on one thread: it is not urgent, queries keep the other cores, and
 * OpenMP teams that spin-wait on a busy machine were measured making a
 * k-means training 50x slower (sift5k, PQ: 1.4 s alone, 97 s with two
 * threads while other processes held the cores).
 */
#include "vindex.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <omp.h>
#include <openssl/evp.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/MetaIndexes_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "faiss_c_ext.h"

#define SNAP_MAGIC "ANCSNAP1"
#define SNAP_FORMAT 1u
#define SNAP_HDR 128
#define SNAP_HASHED 64 /* header bytes covered by the checksum */
#define REBUILD_BATCH 4096
#define OMP_BATCH_MIN 16       /* queries from which a search uses OpenMP */
#define TRAIN_FLOATS_MAX (1u << 26) /* training sample bound: 256 MiB */
#define CATCHUP_LOCKED_MAX 1024 /* pending vectors added under the lock */

struct vindex {
	pthread_rwlock_t lock;
	int lock_ok;
	FaissIndex *idx;
	int trained;        /* idx is of the contract's kind (not a placeholder) */
	uint64_t trained_on; /* vectors the serving index was trained on */
	uint64_t builds;     /* background builds swapped in */
	store *st;
	int quiet;
	/* Background build (design note). bg_mu guards the thread's
	 * lifecycle flags; the pending log is under the index write lock. */
	pthread_mutex_t bg_mu;
	int bg_mu_ok;
	/* One snapshot writer at a time (they share tmppath): the engine's
	 * callers hold its index mutex, the background build does not. */
	pthread_mutex_t snap_mu;
	int snap_mu_ok;
	pthread_t bg_thr;
	int bg_joinable;     /* a thread was started and not joined */
	int bg_running;      /* it has not finished */
	int bg_stop;         /* destroy asks it to stop */
	uint64_t bg_fail_live; /* live count at the last failed build */
	int recording;
	float *pend_v;
	uint64_t *pend_l;
	size_t pend_n, pend_cap;
	anc_contract c;
	uint8_t id[ANC_CONTRACT_ID_RAW];
	uint32_t cid;
	char path[PATH_MAX];    /* the snapshot */
	char tmppath[PATH_MAX]; /* where it is written first */
	char snapdir[PATH_MAX];
	uint64_t covered;    /* highest label added */
	uint64_t live;
	uint64_t applied;
	uint64_t generation;
	uint64_t unsnapped; /* added since the last snapshot */
	int dirty;          /* differs from the snapshot file */
};

static int
faiss_fail(anc_error *err, const vindex *vx, int rc, const char *what)
{
	const char *m = faiss_get_last_error();
	char id[ANC_CONTRACT_ID_LEN + 1];
	anc_contract_id_format(vx->id, id);
	return anc_error_set(err, ANC_EINDEX, "contract %s: faiss %s (%d): %s",
	                     id, what, rc, m != NULL ? m : "no message");
}

/* ---- creation ----------------------------------------------------------------- */

static int
kind_is_hnsw(anc_index_kind k)
{
	return k == ANC_INDEX_HNSW || k == ANC_INDEX_HNSW_SQ8;
}

static int
kind_is_ivf(anc_index_kind k)
{
	return k == ANC_INDEX_IVF_FLAT || k == ANC_INDEX_IVF_PQ;
}

static int
kind_is_trained(anc_index_kind k)
{
	return k == ANC_INDEX_HNSW_SQ8 || kind_is_ivf(k);
}

/* final 0: the exact placeholder that serves a trained kind before its
 * training. */
static int
faiss_new(const vindex *vx, int final, FaissIndex **out, anc_error *err)
{
	char desc[96];
	const anc_index_spec *x = &vx->c.index;
	FaissMetricType metric = vx->c.metric == ANC_METRIC_L2
	                             ? METRIC_L2
	                             : METRIC_INNER_PRODUCT;
	int rc;

	*out = NULL;
	if (!final && kind_is_trained(x->kind))
		snprintf(desc, sizeof desc, "IDMap2,Flat");
	else if (x->kind == ANC_INDEX_HNSW)
		snprintf(desc, sizeof desc, "IDMap2,HNSW%u", x->m);
	else if (x->kind == ANC_INDEX_HNSW_SQ8)
		snprintf(desc, sizeof desc, "IDMap2,HNSW%u_SQ8", x->m);
	else if (x->kind == ANC_INDEX_IVF_FLAT)
		snprintf(desc, sizeof desc, "IDMap2,IVF%u,Flat", x->nlist);
	else if (x->kind == ANC_INDEX_IVF_PQ)
		/* "np": no polysemous training (it only serves Hamming
		 * filtering, which is not used, and costs minutes). */
		snprintf(desc, sizeof desc, "IDMap2,IVF%u,PQ%ux%unp", x->nlist,
		         x->pq_m, x->pq_nbits);
	else
		snprintf(desc, sizeof desc, "IDMap2,Flat");
	if ((rc = faiss_index_factory(out, (int)vx->c.dim, desc, metric)) != 0)
		return faiss_fail(err, vx, rc, desc);
	return ANC_OK;
}

/* 1 when idx (an IDMap2) wraps an IndexFlat: the placeholder of a
 * trained kind. */
static int
faiss_is_flat(FaissIndex *idx)
{
	FaissIndexIDMap2 *m = faiss_IndexIDMap2_cast(idx);
	FaissIndex *sub = m != NULL ? faiss_IndexIDMap2_sub_index(m) : NULL;
	return sub != NULL && faiss_IndexFlat_cast(sub) != NULL;
}

/* efConstruction, efSearch and nprobe are not all kept by every faiss
 * version's serialisation, so they are set after every creation and load
 * (of the contract's own kind; the flat placeholder has none). */
static int
faiss_tune(const vindex *vx, FaissIndex *idx, int final, anc_error *err)
{
	FaissParameterSpace *ps = NULL;
	const anc_index_spec *x = &vx->c.index;
	int rc, rv = ANC_OK;

	if (!final || !(kind_is_hnsw(x->kind) || kind_is_ivf(x->kind)))
		return ANC_OK;
	if ((rc = faiss_ParameterSpace_new(&ps)) != 0)
		return faiss_fail(err, vx, rc, "ParameterSpace_new");
	if (kind_is_ivf(x->kind)) {
		if ((rc = faiss_ParameterSpace_set_index_parameter(
		         ps, idx, "nprobe", (double)x->nprobe)) != 0)
			rv = faiss_fail(err, vx, rc, "set nprobe");
	} else if ((rc = faiss_ParameterSpace_set_index_parameter(
	                ps, idx, "efConstruction",
	                (double)x->ef_construction)) != 0)
		rv = faiss_fail(err, vx, rc, "set efConstruction");
	else if ((rc = faiss_ParameterSpace_set_index_parameter(
	              ps, idx, "efSearch", (double)x->ef_search)) != 0)
		rv = faiss_fail(err, vx, rc, "set efSearch");
	faiss_ParameterSpace_free(ps);
	return rv;
}

static int
vindex_alloc(const char *snapdir, uint32_t cid, const anc_contract *c,
             const uint8_t id[ANC_CONTRACT_ID_RAW], vindex **out,
             anc_error *err)
{
	char idstr[ANC_CONTRACT_ID_LEN + 1];
	vindex *vx = calloc(1, sizeof *vx);

	*out = NULL;
	if (vx == NULL)
		return anc_error_set(err, ANC_ENOMEM, "index: out of memory");
	if (pthread_rwlock_init(&vx->lock, NULL) != 0) {
		free(vx);
		return anc_error_set(err, ANC_ENOMEM, "index: no rwlock");
	}
	vx->lock_ok = 1;
	if (pthread_mutex_init(&vx->bg_mu, NULL) != 0) {
		vindex_destroy(vx);
		return anc_error_set(err, ANC_ENOMEM, "index: no mutex");
	}
	vx->bg_mu_ok = 1;
	if (pthread_mutex_init(&vx->snap_mu, NULL) != 0) {
		vindex_destroy(vx);
		return anc_error_set(err, ANC_ENOMEM, "index: no mutex");
	}
	vx->snap_mu_ok = 1;
	vx->trained = 1;
	vx->c = *c;
	vx->cid = cid;
	memcpy(vx->id, id, ANC_CONTRACT_ID_RAW);
	anc_contract_id_format(id, idstr);
	if ((size_t)snprintf(vx->path, sizeof vx->path, "%s/%u-%s.faiss",
	                     snapdir, cid, idstr) >= sizeof vx->path ||
	    (size_t)snprintf(vx->tmppath, sizeof vx->tmppath, "%s.tmp",
	                     vx->path) >= sizeof vx->tmppath ||
	    (size_t)snprintf(vx->snapdir, sizeof vx->snapdir, "%s", snapdir) >=
	        sizeof vx->snapdir) {
		vindex_destroy(vx);
		return anc_error_set(err, ANC_EINVAL,
		                     "snapshot dir '%s': path too long", snapdir);
	}
	*out = vx;
	return ANC_OK;
}

void
vindex_destroy(vindex *vx)
{
	if (vx == NULL)
		return;
	if (vx->bg_mu_ok) {
		int join;
		pthread_mutex_lock(&vx->bg_mu);
		vx->bg_stop = 1;
		join = vx->bg_joinable;
		vx->bg_joinable = 0;
		pthread_mutex_unlock(&vx->bg_mu);
		if (join)
			pthread_join(vx->bg_thr, NULL);
		pthread_mutex_destroy(&vx->bg_mu);
	}
	if (vx->snap_mu_ok)
		pthread_mutex_destroy(&vx->snap_mu);
	if (vx->idx != NULL)
		faiss_Index_free(vx->idx);
	if (vx->lock_ok)
		pthread_rwlock_destroy(&vx->lock);
	free(vx->pend_v);
	free(vx->pend_l);
	free(vx);
}

int
vindex_create(store *st, const char *snapdir, uint32_t cid,
              const anc_contract *c, const uint8_t id[ANC_CONTRACT_ID_RAW],
              uint64_t seq, int quiet, vindex **out, anc_error *err)
{
	vindex *vx;
	int rv = vindex_alloc(snapdir, cid, c, id, &vx, err);
	if (rv != ANC_OK)
		return rv;
	vx->st = st;
	vx->quiet = quiet;
	vx->trained = !kind_is_trained(c->index.kind);
	if ((rv = faiss_new(vx, vx->trained, &vx->idx, err)) != ANC_OK ||
	    (rv = faiss_tune(vx, vx->idx, vx->trained, err)) != ANC_OK) {
		vindex_destroy(vx);
		return rv;
	}
	vx->applied = seq;
	vx->generation = 1;
	vx->dirty = 1;
	*out = vx;
	return ANC_OK;
}

/* ---- locking and reads ------------------------------------------------------------ */

/* pthread_rwlock_* fail only on misuse (deadlock, uninitialised lock);
 * aborting then is better than running unlocked. */
static void
lock_check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "anchorage: index %s: %s\n", what, strerror(rc));
		abort();
	}
}

void
vindex_rdlock(vindex *vx)
{
	lock_check(pthread_rwlock_rdlock(&vx->lock), "rdlock");
}

void
vindex_unlock(vindex *vx)
{
	lock_check(pthread_rwlock_unlock(&vx->lock), "unlock");
}

static void
vindex_wrlock(vindex *vx)
{
	lock_check(pthread_rwlock_wrlock(&vx->lock), "wrlock");
}

/* Memory per entry of the serving index. code: the encoded vector;
 * index: code plus what faiss keeps beside it per entry: HNSW links
 * (2M int32 on level 0, about M/(M-1) x M more above, a level and an
 * offset), IVF list ids (8), and the IDMap2 id (8) and reverse map node
 * (about 32). An estimate from the structure, not a measurement. */
static void
mem_estimate(const vindex *vx, uint32_t *code, uint32_t *index)
{
	const anc_index_spec *x = &vx->c.index;
	uint64_t d = vx->c.dim, c, extra = 8 + 32;

	if (!vx->trained || x->kind == ANC_INDEX_FLAT) {
		c = 4 * d;
	} else if (kind_is_hnsw(x->kind)) {
		c = x->kind == ANC_INDEX_HNSW_SQ8 ? d : 4 * d;
		extra += 8ull * x->m + (4ull * x->m + x->m - 2) / (x->m - 1) +
		         4 + 8;
	} else if (x->kind == ANC_INDEX_IVF_FLAT) {
		c = 4 * d;
		extra += 8;
	} else {
		c = ((uint64_t)x->pq_m * x->pq_nbits + 7) / 8;
		extra += 8;
	}
	*code = (uint32_t)c;
	*index = (uint32_t)(c + extra);
}

void
vindex_stats_locked(const vindex *vx, vindex_stats *s)
{
	s->ntotal = (uint64_t)faiss_Index_ntotal(vx->idx);
	s->live = vx->live;
	s->applied = vx->applied;
	s->generation = vx->generation;
	s->unsnapped = vx->unsnapped;
	s->trained = vx->trained;
	s->builds = vx->builds;
	s->building = vx->recording;
	mem_estimate(vx, &s->code_bytes, &s->index_bytes);
}

int
vindex_search_locked(const vindex *vx, uint32_t nq, const float *x,
                     uint32_t k, float *dist, int64_t *labels, anc_error *err)
{
	return vindex_search2_locked(vx, nq, x, k, NULL, dist, labels, NULL,
	                             err);
}

int
vindex_search2_locked(const vindex *vx, uint32_t nq, const float *x,
                      uint32_t k, const vindex_params *p, float *dist,
                      int64_t *labels, vindex_params *used, anc_error *err)
{
	const anc_index_spec *sp = &vx->c.index;
	FaissSearchParameters *fp = NULL;
	vindex_params u = {0, 0};
	int rc = 0;

	/* The placeholder of a trained kind is exact: nothing to tune. */
	if (vx->trained && kind_is_hnsw(sp->kind)) {
		u.ef = p != NULL && p->ef != 0 ? p->ef : sp->ef_search;
		if (u.ef != sp->ef_search)
			rc = faiss_SearchParametersHNSW_new_with(&fp, NULL,
			                                         (int)u.ef);
	} else if (vx->trained && kind_is_ivf(sp->kind)) {
		u.nprobe = p != NULL && p->nprobe != 0 ? p->nprobe : sp->nprobe;
		if (u.nprobe > sp->nlist)
			u.nprobe = sp->nlist; /* all lists: as far as it goes */
		if (u.nprobe != sp->nprobe)
			rc = faiss_SearchParametersIVF_new_with(&fp, NULL,
			                                        u.nprobe, 0);
	}
	if (rc != 0)
		return faiss_fail(err, vx, rc, "search parameters");
	omp_set_num_threads(nq >= OMP_BATCH_MIN ? omp_get_num_procs() : 1);
	rc = faiss_Index_search_with_params(vx->idx, (idx_t)nq, x, (idx_t)k, fp,
	                                    dist, (idx_t *)labels);
	faiss_SearchParameters_free(fp);
	if (rc != 0)
		return faiss_fail(err, vx, rc, "search");
	if (used != NULL)
		*used = u;
	return ANC_OK;
}

/* ---- exact search over the stored vectors ------------------------------------ */

typedef struct {
	const vindex *vx;
	FaissIndex *flat;
	float *vecs;
	uint64_t *labs;
	uint32_t n;        /* vectors in the batch */
	uint32_t nq, k;
	const float *x;
	float *dist;       /* nq x k, best first, the running answer */
	int64_t *labels;
	float *bd;         /* nq x k, one batch's answer */
	idx_t *bl;
	float *md;         /* k, merge scratch */
	int64_t *ml;
} exact_scan;

static int
better(const vindex *vx, float a, float b)
{
	return vx->c.metric == ANC_METRIC_L2 ? a < b : a > b;
}

static int
exact_flush(exact_scan *e, anc_error *err)
{
	int rc;
	if (e->n == 0)
		return ANC_OK;
	if ((rc = faiss_Index_add(e->flat, (idx_t)e->n, e->vecs)) != 0 ||
	    (rc = faiss_Index_search(e->flat, (idx_t)e->nq, e->x, (idx_t)e->k,
	                             e->bd, e->bl)) != 0 ||
	    (rc = faiss_Index_reset(e->flat)) != 0)
		return faiss_fail(err, e->vx, rc, "exact search");
	/* Merge each query's two best-first lists into the running one. */
	for (uint32_t q = 0; q < e->nq; q++) {
		float *d = e->dist + (size_t)q * e->k, *b = e->bd + (size_t)q * e->k;
		int64_t *l = e->labels + (size_t)q * e->k;
		idx_t *bl = e->bl + (size_t)q * e->k;
		uint32_t i = 0, j = 0;
		for (uint32_t o = 0; o < e->k; o++) {
			int take_b = j < e->k && bl[j] >= 0 &&
			             (i >= e->k || l[i] < 0 ||
			              better(e->vx, b[j], d[i]));
			if (take_b) {
				e->md[o] = b[j];
				e->ml[o] = (int64_t)e->labs[bl[j]];
				j++;
			} else {
				e->md[o] = i < e->k ? d[i] : 0;
				e->ml[o] = i < e->k ? l[i] : -1;
				i++;
			}
		}
		memcpy(d, e->md, e->k * sizeof *d);
		memcpy(l, e->ml, e->k * sizeof *l);
	}
	e->n = 0;
	return ANC_OK;
}

static int
exact_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
          anc_error *err)
{
	exact_scan *e = arg;
	(void)anchor;
	memcpy(e->vecs + (size_t)e->n * e->vx->c.dim, vec,
	       (size_t)e->vx->c.dim * sizeof(float));
	e->labs[e->n++] = label;
	return e->n == REBUILD_BATCH ? exact_flush(e, err) : ANC_OK;
}

int
vindex_search_exact(const vindex *vx, MDB_txn *txn, uint32_t nq,
                    const float *x, uint32_t k, float *dist, int64_t *labels,
                    anc_error *err)
{
	exact_scan e;
	FaissIndexFlat *flat = NULL;
	FaissMetricType metric = vx->c.metric == ANC_METRIC_L2
	                             ? METRIC_L2
	                             : METRIC_INNER_PRODUCT;
	int rc, rv;

	memset(&e, 0, sizeof e);
	for (size_t i = 0; i < (size_t)nq * k; i++) {
		dist[i] = 0;
		labels[i] = -1;
	}
	if ((rc = faiss_IndexFlat_new_with(&flat, (idx_t)vx->c.dim, metric)) != 0)
		return faiss_fail(err, vx, rc, "exact search: IndexFlat");
	e.vx = vx;
	e.flat = (FaissIndex *)flat;
	e.nq = nq;
	e.k = k;
	e.x = x;
	e.dist = dist;
	e.labels = labels;
	e.vecs = malloc((size_t)REBUILD_BATCH * vx->c.dim * sizeof(float));
	e.labs = malloc(REBUILD_BATCH * sizeof *e.labs);
	e.bd = malloc((size_t)nq * k * sizeof *e.bd);
	e.bl = malloc((size_t)nq * k * sizeof *e.bl);
	e.md = malloc((size_t)k * sizeof *e.md);
	e.ml = malloc((size_t)k * sizeof *e.ml);
	if (e.vecs == NULL || e.labs == NULL || e.bd == NULL || e.bl == NULL ||
	    e.md == NULL || e.ml == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "exact search: out of memory (%u queries, "
		                   "k %u)", nq, k);
		goto done;
	}
	omp_set_num_threads(nq >= OMP_BATCH_MIN ? omp_get_num_procs() : 1);
	rv = store_vector_scan(vx->st, txn, vx->cid, vx->id, vx->c.dim,
	                       exact_one, &e, err);
	if (rv == ANC_OK)
		rv = exact_flush(&e, err);
done:
	faiss_Index_free(e.flat);
	free(e.vecs);
	free(e.labs);
	free(e.bd);
	free(e.bl);
	free(e.md);
	free(e.ml);
	return rv;
}

/* ---- writes ------------------------------------------------------------------------- */

int vindex_test_fail_adds;

static int
add_raw(const vindex *vx, FaissIndex *idx, uint64_t n, const float *vecs,
        const uint64_t *labels, anc_error *err)
{
	int rc;
	if (n == 0)
		return ANC_OK;
	for (int left = __atomic_load_n(&vindex_test_fail_adds,
	                                __ATOMIC_RELAXED); left > 0;)
		if (__atomic_compare_exchange_n(&vindex_test_fail_adds, &left,
		                                left - 1, 0, __ATOMIC_RELAXED,
		                                __ATOMIC_RELAXED))
			return anc_error_set(err, ANC_EINDEX, "index add: "
			                     "failure injected by a test");
	rc = faiss_Index_add_with_ids(idx, (idx_t)n, vecs,
	                              (const idx_t *)labels);
	return rc == 0 ? ANC_OK : faiss_fail(err, vx, rc, "add");
}

static void
apply_live(vindex *vx, int64_t delta)
{
	if (delta < 0 && (uint64_t)-delta > vx->live)
		vx->live = 0;
	else
		vx->live = (uint64_t)((int64_t)vx->live + delta);
}

/* Keep a copy of an add for the background build (write lock held). A
 * copy that cannot be kept makes the build give up at its swap (the
 * vectors would be missing from the new index), not the write fail. */
static void
pending_push(vindex *vx, uint64_t n, const float *vecs,
             const uint64_t *labels)
{
	size_t d = vx->c.dim;
	if (vx->pend_n + n > vx->pend_cap) {
		size_t cap = vx->pend_cap ? vx->pend_cap : 1024;
		float *v;
		uint64_t *l;
		while (cap < vx->pend_n + n)
			cap *= 2;
		v = realloc(vx->pend_v, cap * d * sizeof *v);
		if (v != NULL)
			vx->pend_v = v;
		l = v != NULL ? realloc(vx->pend_l, cap * sizeof *l) : NULL;
		if (l != NULL)
			vx->pend_l = l;
		if (v == NULL || l == NULL) {
			vx->recording = 2; /* lost: the build must not swap */
			return;
		}
		vx->pend_cap = cap;
	}
	memcpy(vx->pend_v + vx->pend_n * d, vecs, n * d * sizeof(float));
	memcpy(vx->pend_l + vx->pend_n, labels, n * sizeof(uint64_t));
	vx->pend_n += n;
}

static void bg_maybe_start(vindex *vx, int retrain);

int
vindex_add(vindex *vx, uint64_t n, const float *vecs, const uint64_t *labels,
           uint64_t seq, int64_t live_delta, anc_error *err)
{
	int rv;
	/* Same rule as searches (design note). */
	omp_set_num_threads(n >= OMP_BATCH_MIN ? omp_get_num_procs() : 1);
	vindex_wrlock(vx);
	/* Labels arrive in increasing order, so one at or below covered is
	 * in the index already: a background build that read LMDB between
	 * this write's commit and this call took it from there. */
	while (n > 0 && labels[0] <= vx->covered && vx->covered > 0) {
		vecs += vx->c.dim;
		labels++;
		n--;
	}
	rv = add_raw(vx, vx->idx, n, vecs, labels, err);
	if (rv == ANC_OK && n > 0) {
		if (labels[n - 1] > vx->covered)
			vx->covered = labels[n - 1];
		vx->unsnapped += n;
		vx->dirty = 1;
	}
	if (vx->recording == 1 && n > 0)
		pending_push(vx, n, vecs, labels);
	/* Even on a faiss failure LMDB holds the write; the next open
	 * rebuilds. live must follow LMDB so stale counts stay right. */
	apply_live(vx, live_delta);
	if (seq > vx->applied)
		vx->applied = seq;
	vindex_unlock(vx);
	bg_maybe_start(vx, 0);
	return rv;
}

void
vindex_note(vindex *vx, uint64_t seq, int64_t live_delta)
{
	vindex_wrlock(vx);
	apply_live(vx, live_delta);
	if (seq > vx->applied)
		vx->applied = seq;
	vindex_unlock(vx);
}

/* ---- rebuild and replay -------------------------------------------------------------- */

typedef struct {
	const vindex *vx;
	FaissIndex *idx;
	float *vecs;
	uint64_t *labels;
	uint64_t n;      /* in the batch */
	uint64_t total;  /* added */
	uint64_t maxlab;
	store *st;
	MDB_txn *txn;
} batch;

static int
batch_init(batch *b, const vindex *vx, FaissIndex *idx, store *st,
           MDB_txn *txn, anc_error *err)
{
	memset(b, 0, sizeof *b);
	b->vx = vx;
	b->idx = idx;
	b->st = st;
	b->txn = txn;
	b->vecs = malloc((size_t)REBUILD_BATCH * vx->c.dim * sizeof(float));
	b->labels = malloc(REBUILD_BATCH * sizeof(uint64_t));
	if (b->vecs == NULL || b->labels == NULL) {
		free(b->vecs);
		free(b->labels);
		b->vecs = NULL;
		b->labels = NULL;
		return anc_error_set(err, ANC_ENOMEM,
		                     "index rebuild: out of memory (batch of %d x "
		                     "%u floats)",
		                     REBUILD_BATCH, vx->c.dim);
	}
	return ANC_OK;
}

static void
batch_free(batch *b)
{
	free(b->vecs);
	free(b->labels);
}

static int
batch_flush(batch *b, anc_error *err)
{
	int rv = add_raw(b->vx, b->idx, b->n, b->vecs, b->labels, err);
	b->total += b->n;
	b->n = 0;
	return rv;
}

static int
batch_push(batch *b, uint64_t label, const void *vec, anc_error *err)
{
	memcpy(b->vecs + (size_t)b->n * b->vx->c.dim, vec,
	       (size_t)b->vx->c.dim * sizeof(float));
	b->labels[b->n++] = label;
	if (label > b->maxlab)
		b->maxlab = label;
	return b->n == REBUILD_BATCH ? batch_flush(b, err) : ANC_OK;
}

static int
rebuild_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
            anc_error *err)
{
	(void)anchor;
	return batch_push(arg, label, vec, err);
}

/* Replay: each label newer than the snapshot names an anchor whose current
 * vector carries that label (store.h keeps them in step). */
static int
replay_one(void *arg, uint64_t label, const uint8_t *anchor, anc_error *err)
{
	batch *b = arg;
	uint64_t have;
	int found, rv;

	if (b->n == REBUILD_BATCH && (rv = batch_flush(b, err)) != ANC_OK)
		return rv;
	rv = store_vector_get(b->st, b->txn, b->vx->cid, b->vx->id, anchor,
	                      b->vx->c.dim, &have,
	                      b->vecs + (size_t)b->n * b->vx->c.dim, &found, err);
	if (rv != ANC_OK)
		return rv;
	if (!found || have != label)
		return anc_error_set(err, ANC_EMALFORMED,
		                     "lmdb: label %llu has no matching vector",
		                     (unsigned long long)label);
	b->labels[b->n++] = label;
	if (label > b->maxlab)
		b->maxlab = label;
	return ANC_OK;
}

static int
count_one(void *arg, uint64_t label, const uint8_t *anchor, anc_error *err)
{
	(void)label;
	(void)anchor;
	(void)err;
	(*(uint64_t *)arg)++;
	return ANC_OK;
}

/* Build a fresh faiss index from every vector LMDB holds for the contract. */
static int
build_from_store(const vindex *vx, store *st, MDB_txn *txn, FaissIndex **out,
                 uint64_t *count, uint64_t *maxlab, anc_error *err)
{
	FaissIndex *idx = NULL;
	batch b;
	int rv;

	*out = NULL;
	/* Trained kinds are trained in the background: here they get their
	 * exact placeholder. */
	int final = !kind_is_trained(vx->c.index.kind);

	omp_set_num_threads(omp_get_num_procs()); /* start-up, big batches */

	if ((rv = faiss_new(vx, final, &idx, err)) != ANC_OK)
		return rv;
	if ((rv = faiss_tune(vx, idx, final, err)) != ANC_OK ||
	    (rv = batch_init(&b, vx, idx, st, txn, err)) != ANC_OK) {
		faiss_Index_free(idx);
		return rv;
	}
	rv = store_vector_scan(st, txn, vx->cid, vx->id, vx->c.dim, rebuild_one,
	                       &b, err);
	if (rv == ANC_OK)
		rv = batch_flush(&b, err);
	*count = b.total;
	*maxlab = b.maxlab;
	batch_free(&b);
	if (rv != ANC_OK) {
		faiss_Index_free(idx);
		return rv;
	}
	*out = idx;
	return ANC_OK;
}

int
vindex_rebuild(vindex *vx, store *st, MDB_txn *txn, int repair,
               anc_error *err)
{
	FaissIndex *idx, *old;
	uint64_t count, maxlab;
	int rv, trained;

	vindex_rdlock(vx);
	trained = vx->trained;
	vindex_unlock(vx);
	if (kind_is_trained(vx->c.index.kind) && trained && !repair) {
		/* Retraining takes long: in the background, queries served
		 * by the current index meanwhile. */
		bg_maybe_start(vx, 1);
		return ANC_OK;
	}
	/* A repair cannot wait for a background build (none may start, and
	 * queries must find the vectors of an acknowledged write): a
	 * trained kind gets its exact placeholder now, and is trained again
	 * in the background. */
	if ((rv = build_from_store(vx, st, txn, &idx, &count, &maxlab, err)) !=
	    ANC_OK)
		return rv;
	vindex_wrlock(vx);
	old = vx->idx;
	vx->idx = idx;
	vx->live = count;
	if (maxlab > vx->covered)
		vx->covered = maxlab;
	if (kind_is_trained(vx->c.index.kind)) {
		vx->trained = 0;
		vx->trained_on = 0;
	}
	vx->generation++;
	vx->dirty = 1;
	vx->unsnapped = count;
	vindex_unlock(vx);
	faiss_Index_free(old);
	if (kind_is_trained(vx->c.index.kind))
		bg_maybe_start(vx, 0);
	return ANC_OK;
}

/* ---- background training and rebuilds (design note) -------------------------- */

typedef struct {
	vindex *vx;
	float *sample;
	uint64_t cap, n, seen;
	uint64_t rng;
} sampler;

static uint64_t
rng_next(uint64_t *s)
{
	/* splitmix64: a reproducible sample, no shared RNG state */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int
sample_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
           anc_error *err)
{
	sampler *sm = arg;
	uint64_t slot;
	size_t d = sm->vx->c.dim;
	(void)label;
	(void)anchor;
	(void)err;
	sm->seen++;
	if (sm->n < sm->cap)
		slot = sm->n++;
	else if ((slot = rng_next(&sm->rng) % sm->seen) >= sm->cap)
		return ANC_OK;
	memcpy(sm->sample + slot * d, vec, d * sizeof(float));
	return ANC_OK;
}

static uint64_t
train_cap(const vindex *vx)
{
	const anc_index_spec *x = &vx->c.index;
	uint64_t cap, per = (uint64_t)x->nlist;

	if (x->kind == ANC_INDEX_IVF_PQ && (1ull << x->pq_nbits) > per)
		per = 1ull << x->pq_nbits;
	/* faiss's k-means keeps at most 256 points per centroid anyway */
	cap = x->kind == ANC_INDEX_HNSW_SQ8 ? 65536 : 256 * per;
	if (cap * vx->c.dim > TRAIN_FLOATS_MAX)
		cap = TRAIN_FLOATS_MAX / vx->c.dim;
	return cap;
}

static int
bg_stopping(vindex *vx)
{
	int stop;
	pthread_mutex_lock(&vx->bg_mu);
	stop = vx->bg_stop;
	pthread_mutex_unlock(&vx->bg_mu);
	return stop;
}

static int
bg_add_one(void *arg, uint64_t label, const uint8_t *anchor, const void *vec,
           anc_error *err)
{
	batch *b = arg;
	int rv;
	(void)anchor;
	if (b->n == 0 && bg_stopping((vindex *)b->vx))
		return anc_error_set(err, ANC_EUNAVAILABLE, "index build stopped");
	rv = batch_push(b, label, vec, err);
	return rv;
}

/* Add the pending log to idx: in rounds outside the lock while it is
 * long, then the rest and the swap under the write lock. */
static int
bg_swap(vindex *vx, FaissIndex *idx, uint64_t seq0, uint64_t count,
        uint64_t maxlab, anc_error *err)
{
	float *v = NULL;
	uint64_t *l = NULL;
	size_t n, cap, d = vx->c.dim;
	FaissIndex *old;
	int rv = ANC_OK;

	for (;;) {
		vindex_wrlock(vx);
		if (vx->recording != 1) {
			vindex_unlock(vx);
			return anc_error_set(err, ANC_ENOMEM,
			                     "index build: writes made meanwhile "
			                     "could not be kept (out of memory)");
		}
		if (vx->pend_n <= CATCHUP_LOCKED_MAX)
			break; /* keep the lock: final round and swap */
		/* Take the log; the index keeps recording into a new one. */
		v = vx->pend_v;
		l = vx->pend_l;
		n = vx->pend_n;
		cap = vx->pend_cap;
		vx->pend_v = NULL;
		vx->pend_l = NULL;
		vx->pend_n = vx->pend_cap = 0;
		vindex_unlock(vx);
		(void)cap;
		for (size_t i = 0; i < n && rv == ANC_OK; i++)
			if (l[i] > seq0) {
				rv = add_raw(vx, idx, 1, v + i * d, l + i, err);
				count++;
				if (l[i] > maxlab)
					maxlab = l[i];
			}
		free(v);
		free(l);
		if (rv != ANC_OK)
			return rv;
	}
	/* Write lock held. */
	for (size_t i = 0; i < vx->pend_n && rv == ANC_OK; i++)
		if (vx->pend_l[i] > seq0) {
			rv = add_raw(vx, idx, 1, vx->pend_v + i * d,
			             vx->pend_l + i, err);
			count++;
			if (vx->pend_l[i] > maxlab)
				maxlab = vx->pend_l[i];
		}
	if (rv == ANC_OK) {
		if (maxlab > vx->covered)
			vx->covered = maxlab;
		old = vx->idx;
		vx->idx = idx;
		vx->trained = 1;
		vx->trained_on = count;
		vx->builds++;
		vx->generation++;
		vx->dirty = 1;
		vx->unsnapped = (uint64_t)faiss_Index_ntotal(idx);
		vx->recording = 0;
		vx->pend_n = 0;
		vindex_unlock(vx);
		faiss_Index_free(old);
		return ANC_OK;
	}
	vindex_unlock(vx);
	return rv;
}

static int
bg_build(vindex *vx, anc_error *err)
{
	MDB_txn *txn = NULL;
	FaissIndex *idx = NULL;
	sampler sm;
	batch b;
	uint64_t seq0 = 0;
	int rc, rv, binit = 0;

	memset(&sm, 0, sizeof sm);
	vindex_wrlock(vx);
	vx->recording = 1;
	vx->pend_n = 0;
	vindex_unlock(vx);
	if ((rv = store_txn_begin(vx->st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_seq_get(vx->st, txn, &seq0, err)) != ANC_OK)
		goto done;
	omp_set_num_threads(1); /* design note: one core, queries keep the rest */
	sm.vx = vx;
	sm.cap = train_cap(vx);
	sm.rng = 0x616e63686f72ull ^ seq0;
	if ((sm.sample = malloc(sm.cap * vx->c.dim * sizeof(float))) == NULL) {
		rv = anc_error_set(err, ANC_ENOMEM,
		                   "index build: out of memory for a training "
		                   "sample of %llu x %u floats",
		                   (unsigned long long)sm.cap, vx->c.dim);
		goto done;
	}
	if ((rv = store_vector_scan(vx->st, txn, vx->cid, vx->id, vx->c.dim,
	                            sample_one, &sm, err)) != ANC_OK)
		goto done;
	if (sm.n < ANC_INDEX_TRAIN_MIN(&vx->c.index)) {
		rv = anc_error_set(err, ANC_EPRECONDITION,
		                   "index build: %llu vectors, training needs "
		                   "%u",
		                   (unsigned long long)sm.n,
		                   ANC_INDEX_TRAIN_MIN(&vx->c.index));
		goto done;
	}
	if ((rv = faiss_new(vx, 1, &idx, err)) != ANC_OK)
		goto done;
	if ((rc = faiss_Index_train(idx, (idx_t)sm.n, sm.sample)) != 0) {
		rv = faiss_fail(err, vx, rc, "train");
		goto done;
	}
	free(sm.sample);
	sm.sample = NULL;
	if ((rv = faiss_tune(vx, idx, 1, err)) != ANC_OK ||
	    (rv = batch_init(&b, vx, idx, vx->st, txn, err)) != ANC_OK)
		goto done;
	binit = 1;
	rv = store_vector_scan(vx->st, txn, vx->cid, vx->id, vx->c.dim,
	                       bg_add_one, &b, err);
	if (rv == ANC_OK)
		rv = batch_flush(&b, err);
	store_txn_abort(txn);
	txn = NULL;
	if (rv != ANC_OK || (rv = bg_stopping(vx) ? anc_error_set(
	                              err, ANC_EUNAVAILABLE,
	                              "index build stopped")
	                                          : ANC_OK) != ANC_OK)
		goto done;
	if ((rv = bg_swap(vx, idx, seq0, b.total, b.maxlab, err)) == ANC_OK)
		idx = NULL; /* now the index's */
done:
	if (binit)
		batch_free(&b);
	store_txn_abort(txn);
	free(sm.sample);
	if (idx != NULL)
		faiss_Index_free(idx);
	if (rv != ANC_OK) {
		vindex_wrlock(vx);
		vx->recording = 0;
		vx->pend_n = 0;
		vindex_unlock(vx);
	}
	return rv;
}

static void *
bg_main(void *arg)
{
	vindex *vx = arg;
	anc_error err;
	uint64_t live;
	int rv;

	anc_error_clear(&err);
	rv = bg_build(vx, &err);
	/* The index just built cost a training and a full add: on disk now,
	 * so that a server that only serves reads and stops uncleanly does
	 * not build it again at every start (a failure here leaves it to
	 * the next write upkeep or the stop, as before). */
	if (rv == ANC_OK && !bg_stopping(vx)) {
		anc_error serr;
		if (vindex_snapshot(vx, &serr) != ANC_OK && !vx->quiet) {
			char id[ANC_CONTRACT_ID_LEN + 1];
			anc_contract_id_format(vx->id, id);
			fprintf(stderr, "anchorage: contract %s: snapshot after "
			        "the index build: %s\n", id, serr.msg);
		}
	}
	vindex_rdlock(vx);
	live = vx->live;
	vindex_unlock(vx);
	pthread_mutex_lock(&vx->bg_mu);
	if (rv != ANC_OK && rv != ANC_EUNAVAILABLE) {
		vx->bg_fail_live = live > 0 ? live : 1;
		if (!vx->quiet) {
			char id[ANC_CONTRACT_ID_LEN + 1];
			anc_contract_id_format(vx->id, id);
			fprintf(stderr,
			        "anchorage: contract %s: background %s index "
			        "build failed (queries stay on the current "
			        "index): %s\n",
			        id, anc_index_kind_name(vx->c.index.kind),
			        err.msg);
		}
	}
	vx->bg_running = 0;
	pthread_mutex_unlock(&vx->bg_mu);
	return NULL;
}

/* Start a background build when one is due and none runs. retrain 1:
 * the engine asked for a rebuild (stale entries). Called with no index
 * lock held. */
static void
bg_maybe_start(vindex *vx, int retrain)
{
	uint64_t live, trained_on, need = ANC_INDEX_TRAIN_MIN(&vx->c.index);
	int trained, due, rc;

	if (!kind_is_trained(vx->c.index.kind) || vx->st == NULL)
		return;
	vindex_rdlock(vx);
	live = vx->live;
	trained = vx->trained;
	trained_on = vx->trained_on;
	vindex_unlock(vx);
	pthread_mutex_lock(&vx->bg_mu);
	if (vx->bg_running || vx->bg_stop ||
	    (vx->bg_fail_live > 0 && live < 2 * vx->bg_fail_live)) {
		pthread_mutex_unlock(&vx->bg_mu);
		return;
	}
	/* IVF: retrain as the collection doubles, centroids learnt on a
	 * tenth of the data serve the rest poorly. SQ8 learns only value
	 * ranges, which a first sample already has, and rebuilding an HNSW
	 * graph costs much more: it is retrained only on request. */
	due = !trained ? live >= need
	               : retrain || (kind_is_ivf(vx->c.index.kind) &&
	                             trained_on > 0 && live >= 2 * trained_on);
	if (due) {
		if (vx->bg_joinable) {
			pthread_join(vx->bg_thr, NULL); /* finished */
			vx->bg_joinable = 0;
		}
		vx->bg_running = 1;
		vx->bg_fail_live = 0;
		if ((rc = pthread_create(&vx->bg_thr, NULL, bg_main, vx)) != 0) {
			vx->bg_running = 0;
			vx->bg_fail_live = live > 0 ? live : 1;
			if (!vx->quiet)
				fprintf(stderr,
				        "anchorage: index build thread: %s\n",
				        strerror(rc));
		} else {
			vx->bg_joinable = 1;
		}
	}
	pthread_mutex_unlock(&vx->bg_mu);
}

int
vindex_building(vindex *vx)
{
	int r;
	pthread_mutex_lock(&vx->bg_mu);
	r = vx->bg_running;
	pthread_mutex_unlock(&vx->bg_mu);
	return r;
}

void
vindex_build_request(vindex *vx)
{
	bg_maybe_start(vx, 1);
}

/* ---- snapshots ---------------------------------------------------------------------- */

static void
put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void
put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t
get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t
get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* SHA-256 over hdr[0..SNAP_HASHED) and the len payload bytes read from f at
 * its current position. ANC_EIO on a short read. */
static int
snap_hash(FILE *f, const uint8_t *hdr, uint64_t len, uint8_t md[32],
          const char *path, anc_error *err)
{
	uint8_t buf[1 << 16];
	unsigned int mdlen = 0;
	int rv = ANC_OK;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (ctx == NULL)
		return anc_error_set(err, ANC_ENOMEM, "snapshot: no hash context");
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, hdr, SNAP_HASHED) != 1) {
		rv = anc_error_set(err, ANC_EINTERNAL, "snapshot: sha256 init");
		goto done;
	}
	while (len > 0) {
		size_t want = len < sizeof buf ? (size_t)len : sizeof buf;
		size_t got = fread(buf, 1, want, f);
		if (got != want) {
			rv = anc_error_set(err, ANC_EIO,
			                   "snapshot '%s': short read (%s)", path,
			                   ferror(f) ? strerror(errno) : "EOF");
			goto done;
		}
		if (EVP_DigestUpdate(ctx, buf, got) != 1) {
			rv = anc_error_set(err, ANC_EINTERNAL,
			                   "snapshot: sha256 update");
			goto done;
		}
		len -= got;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
		rv = anc_error_set(err, ANC_EINTERNAL, "snapshot: sha256 final");
done:
	EVP_MD_CTX_free(ctx);
	return rv;
}

static int
fsync_dir(const char *dir, anc_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	int rv = ANC_OK;
	if (fd < 0)
		return anc_error_set(err, ANC_EIO, "open dir '%s': %s", dir,
		                     strerror(errno));
	if (fsync(fd) != 0)
		rv = anc_error_set(err, ANC_EIO, "fsync dir '%s': %s", dir,
		                   strerror(errno));
	close(fd);
	return rv;
}

static int
snapshot_locked(vindex *vx, anc_error *err)
{
	uint8_t hdr[SNAP_HDR];
	uint8_t md[32];
	FILE *f = NULL;
	long end;
	int rc, rv = ANC_OK;

	vindex_rdlock(vx);
	if (!vx->dirty)
		goto unlock;
	memset(hdr, 0, sizeof hdr);
	if ((f = fopen(vx->tmppath, "w+b")) == NULL) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': %s", vx->tmppath,
		                   strerror(errno));
		goto unlock;
	}
	if (fwrite(hdr, 1, SNAP_HDR, f) != SNAP_HDR) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': write: %s",
		                   vx->tmppath, strerror(errno));
		goto fail;
	}
	if ((rc = faiss_write_index(vx->idx, f)) != 0) {
		rv = faiss_fail(err, vx, rc, "write_index");
		goto fail;
	}
	if (fflush(f) != 0 || (end = ftell(f)) < SNAP_HDR) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': write: %s",
		                   vx->tmppath, strerror(errno));
		goto fail;
	}
	memcpy(hdr, SNAP_MAGIC, 8);
	put32(hdr + 8, SNAP_FORMAT);
	put32(hdr + 12, SNAP_HDR);
	memcpy(hdr + 16, vx->id, ANC_CONTRACT_ID_RAW);
	put32(hdr + 24, vx->c.dim);
	put32(hdr + 28, (uint32_t)vx->c.index.kind);
	put64(hdr + 32, vx->covered);
	put64(hdr + 40, (uint64_t)faiss_Index_ntotal(vx->idx));
	put64(hdr + 48, vx->generation);
	put64(hdr + 56, (uint64_t)(end - SNAP_HDR));
	if (fseek(f, SNAP_HDR, SEEK_SET) != 0) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': seek: %s",
		                   vx->tmppath, strerror(errno));
		goto fail;
	}
	if ((rv = snap_hash(f, hdr, (uint64_t)(end - SNAP_HDR), md, vx->tmppath,
	                    err)) != ANC_OK)
		goto fail;
	memcpy(hdr + 64, md, 32);
	if (fseek(f, 0, SEEK_SET) != 0 ||
	    fwrite(hdr, 1, SNAP_HDR, f) != SNAP_HDR || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': write: %s",
		                   vx->tmppath, strerror(errno));
		goto fail;
	}
	rc = fclose(f);
	f = NULL;
	if (rc != 0) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': close: %s",
		                   vx->tmppath, strerror(errno));
		goto fail;
	}
	if (rename(vx->tmppath, vx->path) != 0) {
		rv = anc_error_set(err, ANC_EIO, "snapshot rename to '%s': %s",
		                   vx->path, strerror(errno));
		goto fail;
	}
	if ((rv = fsync_dir(vx->snapdir, err)) != ANC_OK)
		goto unlock;
	/* Between this unlock and the write lock below, a write may have
	 * added vectors (the background build's snapshot does not hold the
	 * engine's index mutex: covered moved) or a background build may
	 * have swapped its index in (generation moved): neither is on disk
	 * yet. */
	{
		uint64_t gen = vx->generation, covered = vx->covered;
		vindex_unlock(vx);
		vindex_wrlock(vx);
		if (vx->generation == gen && vx->covered == covered) {
			vx->dirty = 0;
			vx->unsnapped = 0;
		}
	}
	goto unlock;
fail:
	if (f != NULL)
		fclose(f);
	(void)unlink(vx->tmppath); /* best effort: a stale .tmp is ignored */
unlock:
	vindex_unlock(vx);
	return rv;
}


/* Snapshots are written one at a time (snap_mu), then as above. */
int
vindex_snapshot(vindex *vx, anc_error *err)
{
	int rv;

	pthread_mutex_lock(&vx->snap_mu);
	rv = snapshot_locked(vx, err);
	pthread_mutex_unlock(&vx->snap_mu);
	return rv;
}

/* Load and check the snapshot. ANC_OK with *idx set, or a reason (in err)
 * to rebuild. *generation gets the header's generation when the header was
 * readable, so a rebuild can continue the count. */
static int
snap_load(vindex *vx, uint64_t lmdb_seq, FaissIndex **idx,
          uint64_t *generation, anc_error *err)
{
	uint8_t hdr[SNAP_HDR], md[32];
	struct stat sb;
	FaissIndex *fi = NULL;
	FILE *f;
	uint64_t payload, ntotal;
	int rc, rv = ANC_OK;

	*idx = NULL;
	if ((f = fopen(vx->path, "rb")) == NULL)
		return anc_error_set(err, errno == ENOENT ? ANC_ENOTFOUND : ANC_EIO,
		                     "snapshot '%s': %s", vx->path,
		                     strerror(errno));
	if (fstat(fileno(f), &sb) != 0 || fread(hdr, 1, SNAP_HDR, f) != SNAP_HDR) {
		rv = ferror(f) ? anc_error_set(err, ANC_EIO, "snapshot '%s': %s",
		                               vx->path, strerror(errno))
		               : anc_error_set(err, ANC_EMALFORMED,
		                               "snapshot '%s': no header",
		                               vx->path);
		goto done;
	}
	if (memcmp(hdr, SNAP_MAGIC, 8) != 0 || get32(hdr + 8) != SNAP_FORMAT ||
	    get32(hdr + 12) != SNAP_HDR) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': bad magic or format", vx->path);
		goto done;
	}
	/* Taken before the checksum is verified: a rebuild only needs a
	 * number different from the damaged snapshot's, and payload damage
	 * (the usual case) leaves the header's count right. */
	*generation = get64(hdr + 48);
	payload = get64(hdr + 56);
	if ((uint64_t)sb.st_size != SNAP_HDR + payload) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': %lld bytes, header says %llu",
		                   vx->path, (long long)sb.st_size,
		                   (unsigned long long)(SNAP_HDR + payload));
		goto done;
	}
	if ((rv = snap_hash(f, hdr, payload, md, vx->path, err)) != ANC_OK)
		goto done;
	if (memcmp(md, hdr + 64, 32) != 0) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': checksum mismatch", vx->path);
		goto done;
	}
	if (memcmp(hdr + 16, vx->id, ANC_CONTRACT_ID_RAW) != 0 ||
	    get32(hdr + 24) != vx->c.dim ||
	    get32(hdr + 28) != (uint32_t)vx->c.index.kind) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': written for another contract or "
		                   "index kind",
		                   vx->path);
		goto done;
	}
	if (get64(hdr + 32) > lmdb_seq) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': covers sequence %llu, LMDB is at "
		                   "%llu",
		                   vx->path, (unsigned long long)get64(hdr + 32),
		                   (unsigned long long)lmdb_seq);
		goto done;
	}
	if (fseek(f, SNAP_HDR, SEEK_SET) != 0) {
		rv = anc_error_set(err, ANC_EIO, "snapshot '%s': seek: %s",
		                   vx->path, strerror(errno));
		goto done;
	}
	if ((rc = faiss_read_index(f, 0, &fi)) != 0) {
		rv = faiss_fail(err, vx, rc, "read_index");
		goto done;
	}
	ntotal = get64(hdr + 40);
	if (faiss_Index_d(fi) != (int)vx->c.dim ||
	    (uint64_t)faiss_Index_ntotal(fi) != ntotal) {
		rv = anc_error_set(err, ANC_EMALFORMED,
		                   "snapshot '%s': index has dim %d and %lld "
		                   "entries, header says %u and %llu",
		                   vx->path, faiss_Index_d(fi),
		                   (long long)faiss_Index_ntotal(fi), vx->c.dim,
		                   (unsigned long long)ntotal);
		goto done;
	}
	vx->covered = get64(hdr + 32);
	*idx = fi;
	fi = NULL;
done:
	if (fi != NULL)
		faiss_Index_free(fi);
	fclose(f);
	return rv;
}

int
vindex_open(store *st, const char *snapdir, uint32_t cid,
            const anc_contract *c, const uint8_t id[ANC_CONTRACT_ID_RAW],
            int quiet, vindex **out, vindex_open_info *info, anc_error *err)
{
	vindex *vx = NULL;
	MDB_txn *txn = NULL;
	FaissIndex *idx = NULL;
	anc_error why;
	uint64_t seq, gen = 0, count = 0, maxlab = 0;
	batch b;
	int rv;

	memset(info, 0, sizeof *info);
	*out = NULL;
	anc_error_clear(&why);
	if ((rv = vindex_alloc(snapdir, cid, c, id, &vx, err)) != ANC_OK)
		return rv;
	if ((rv = store_txn_begin(st, 1, &txn, err)) != ANC_OK ||
	    (rv = store_seq_get(st, txn, &seq, err)) != ANC_OK)
		goto fail;

	vx->st = st;
	vx->quiet = quiet;
	if (snap_load(vx, seq, &idx, &gen, &why) == ANC_OK) {
		vx->trained = !kind_is_trained(c->index.kind) ||
		              !faiss_is_flat(idx);
		if ((rv = faiss_tune(vx, idx, vx->trained, err)) != ANC_OK)
			goto fail;
		vx->idx = idx;
		idx = NULL;
		if ((rv = batch_init(&b, vx, vx->idx, st, txn, err)) != ANC_OK)
			goto fail;
		rv = store_label_scan(st, txn, cid, id, vx->covered, replay_one,
		                      &b, err);
		if (rv == ANC_OK)
			rv = batch_flush(&b, err);
		info->replayed = b.total;
		if (b.maxlab > vx->covered)
			vx->covered = b.maxlab;
		batch_free(&b);
		if (rv != ANC_OK)
			goto fail;
		if ((rv = store_label_scan(st, txn, cid, id, 0, count_one,
		                           &vx->live, err)) != ANC_OK)
			goto fail;
		vx->generation = gen;
		vx->trained_on = vx->trained ? vx->live : 0;
		vx->unsnapped = info->replayed;
		vx->dirty = info->replayed > 0;
		info->loaded = 1;
	} else {
		vx->covered = 0;
		rv = build_from_store(vx, st, txn, &vx->idx, &count, &maxlab,
		                      err);
		if (rv != ANC_OK)
			goto fail;
		/* A missing snapshot of an empty index is the normal state of
		 * a contract registered and never filled: nothing to say. */
		if (!quiet && why.code == ANC_ENOTFOUND && count > 0)
			/* the usual state after a stop without a snapshot
			 * (a kill, a crash) or with --snapshot-every 0 */
			fprintf(stderr,
			        "anchorage: no snapshot of an index yet; rebuilt "
			        "it from LMDB (%llu vectors)\n",
			        (unsigned long long)count);
		else if (!quiet && why.code != ANC_ENOTFOUND)
			fprintf(stderr,
			        "anchorage: rebuilt index from LMDB (%llu "
			        "vectors): %s\n",
			        (unsigned long long)count, why.msg);
		vx->covered = maxlab;
		vx->live = count;
		vx->trained = !kind_is_trained(c->index.kind);
		vx->trained_on = vx->trained ? count : 0;
		vx->generation = gen + 1;
		vx->unsnapped = count;
		vx->dirty = 1;
		info->rebuilt = 1;
	}
	vx->applied = seq;
	store_txn_abort(txn);
	*out = vx;
	bg_maybe_start(vx, 0); /* a trained kind that crossed the line */
	return ANC_OK;
fail:
	if (idx != NULL)
		faiss_Index_free(idx);
	store_txn_abort(txn);
	vindex_destroy(vx);
	return rv;
}
