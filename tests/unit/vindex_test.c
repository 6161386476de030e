/*
 * vindex_test.c — faiss indexes and snapshots (index/vindex.h) over a real
 * LMDB store, and the faiss C API compatibility unit's error convention.
 *
 * The store is filled directly (store.h) with sift5k vectors so the index is
 * tested on its own: rebuild, snapshot, load, replay, and the checks that
 * send a snapshot back to a rebuild.
 *
 * Issue 6 adds: every index kind's recall on sift5k (trained kinds are
 * trained in the background from the store), the exact placeholder of an
 * untrained kind, per-request ef / nprobe, exact search from LMDB, a
 * background build under continuous writes and searches, and the
 * compatibility unit's search parameters.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "cli_vecfile.h"
#include "faiss_c_ext.h"
#include "store.h"
#include "testutil.h"
#include "tu_corpus.h"
#include "vindex.h"

TestSuite(vindex, .fini = tu_cleanup);

#define N 1000
#define D 128

static float *base;

static void
anchor_of(uint32_t i, uint8_t a[ANC_ANCHOR_RAW])
{
	memset(a, 0, ANC_ANCHOR_RAW);
	memcpy(a, &i, sizeof i);
}

/* Vectors [from, to) of sift5k under labels from+1.., seq = to+1. */
static void
fill(store *st, const uint8_t *id, uint32_t from, uint32_t to)
{
	MDB_txn *txn;
	anc_error err;
	if (base == NULL) {
		uint32_t n, d;
		base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, N, &n, &d);
		cr_assert_eq(d, D);
	}
	cr_assert_eq(store_txn_begin(st, 0, &txn, &err), ANC_OK);
	for (uint32_t i = from; i < to; i++) {
		uint8_t a[ANC_ANCHOR_RAW];
		anchor_of(i, a);
		cr_assert_eq(store_vector_put(st, txn, 1, id, a, i + 1,
		                              base + (size_t)i * D, D, &err),
		             ANC_OK);
		cr_assert_eq(store_label_put(st, txn, 1, id, i + 1, a, &err), ANC_OK);
	}
	cr_assert_eq(store_seq_put(st, txn, to + 1, &err), ANC_OK);
	cr_assert_eq(store_txn_commit(st, txn, &err), ANC_OK);
}

static void
contract(anc_contract *c, anc_index_kind kind, uint8_t id[8])
{
	anc_error err;
	tu_contract_l2(c, "sift", "sift", D);
	c->index.kind = kind;
	cr_assert_eq(anc_contract_validate(c, &err), ANC_OK, "%s", err.msg);
	anc_contract_id(c, id);
}

/* vindex_open of contract c (ID 1) quietly; failing fails the test. */
static void
open_vindex(store *st, const char *snapdir, const anc_contract *c,
            const uint8_t id[8], vindex **vx, vindex_open_info *info)
{
	anc_error err;
	cr_assert_eq(vindex_open(st, snapdir, 1, c, id, 1, vx, info, &err),
	             ANC_OK, "%s", err.msg);
}

/* The index's statistics, under its read lock. */
static void
stats_of(vindex *vx, vindex_stats *s)
{
	vindex_rdlock(vx);
	vindex_stats_locked(vx, s);
	vindex_unlock(vx);
}

/* Each of rows [0, n) finds itself (label row+1) first at distance 0. */
static void
self_search(vindex *vx, uint32_t n)
{
	float *dist = malloc((size_t)n * 2 * sizeof *dist);
	int64_t *lab = malloc((size_t)n * 2 * sizeof *lab);
	anc_error err;
	vindex_rdlock(vx);
	cr_assert_eq(vindex_search_locked(vx, n, base, 2, dist, lab, &err), ANC_OK,
	             "%s", err.msg);
	vindex_unlock(vx);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(lab[2 * i], (int64_t)i + 1, "row %u", i);
		cr_assert_float_eq(dist[2 * i], 0.0f, 1e-3);
	}
	free(dist);
	free(lab);
}

static const char *
snap_file(const char *snapdir, const uint8_t id[8])
{
	static char p[TU_PATH_MAX];
	anc_contract_id_str s;
	anc_contract_id_format(id, s);
	cr_assert_lt(snprintf(p, sizeof p, "%s/1-%s.faiss", snapdir, s),
	             (int)sizeof p, "path too long");
	return p;
}

Test(vindex, rebuild_snapshot_load_replay)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_open_info info;
	vindex_stats s;
	anc_error err;

	snprintf(dir, sizeof dir, "%s", tu_tmpdir());
	snprintf(snapdir, sizeof snapdir, "%s/snap", dir);
	cr_assert_eq(mkdir(snapdir, 0755), 0);
	cr_assert_eq(store_open(dir, 1 << 28, 1, &st, &err), ANC_OK);
	contract(&c, ANC_INDEX_FLAT, id);
	fill(st, id, 0, 600);

	/* No snapshot: rebuild. */
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(info.rebuilt, 1);
	cr_assert_eq(info.loaded, 0);
	stats_of(vx, &s);
	cr_assert_eq(s.ntotal, 600);
	cr_assert_eq(s.live, 600);
	cr_assert_eq(s.applied, 601);
	self_search(vx, 600);
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK, "%s", err.msg);
	vindex_destroy(vx);

	/* Snapshot + 400 newer labels: load and replay. */
	fill(st, id, 600, N);
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(info.loaded, 1);
	cr_assert_eq(info.replayed, 400);
	stats_of(vx, &s);
	cr_assert_eq(s.ntotal, N);
	cr_assert_eq(s.live, N);
	cr_assert_eq(s.unsnapped, 400);
	self_search(vx, N);
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK);
	vindex_destroy(vx);

	/* Header checksum covers the header too: change the covered label. */
	{
		size_t len;
		char *buf = tu_file_read(snap_file(snapdir, id), &len);
		cr_assert_not_null(buf);
		buf[32] ^= 1;
		tu_file_write(snap_file(snapdir, id), buf, len);
		free(buf);
	}
	cr_assert_eq(vindex_open(st, snapdir, 1, &c, id, 1, &vx, &info, &err),
	             ANC_OK);
	cr_assert_eq(info.rebuilt, 1);
	self_search(vx, N);
	stats_of(vx, &s);
	cr_assert_eq(s.generation, 2, "a rebuild continues the generation count");
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK);
	vindex_destroy(vx);

	/* A snapshot of another contract under this name: rebuild. */
	{
		anc_contract c2 = c;
		uint8_t id2[8];
		snprintf(c2.revision, sizeof c2.revision, "2");
		anc_contract_id(&c2, id2);
		char from[TU_PATH_MAX];
		snprintf(from, sizeof from, "%s", snap_file(snapdir, id));
		cr_assert_eq(rename(from, snap_file(snapdir, id2)), 0);
		fill(st, id2, 0, 10);
		cr_assert_eq(vindex_open(st, snapdir, 1, &c2, id2, 1, &vx, &info,
		                         &err),
		             ANC_OK);
		cr_assert_eq(info.rebuilt, 1);
		stats_of(vx, &s);
		cr_assert_eq(s.ntotal, 10);
		vindex_destroy(vx);
	}
	store_close(st);
	vindex_destroy(NULL);
	free(base);
	base = NULL;
}

Test(vindex, hnsw_add_search_snapshot)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_open_info info;
	anc_error err;
	uint64_t labels[N];

	snprintf(dir, sizeof dir, "%s", tu_tmpdir());
	snprintf(snapdir, sizeof snapdir, "%s/snap", dir);
	cr_assert_eq(mkdir(snapdir, 0755), 0);
	cr_assert_eq(store_open(dir, 1 << 28, 1, &st, &err), ANC_OK);
	contract(&c, ANC_INDEX_HNSW, id);
	cr_assert_eq(c.index.m, ANC_DEFAULT_HNSW_M);
	fill(st, id, 0, N); /* for the reopen below */
	cr_assert_eq(vindex_create(st, snapdir, 1, &c, id, 0, 1, &vx, &err), ANC_OK,
	             "%s", err.msg);
	for (uint32_t i = 0; i < N; i++)
		labels[i] = i + 1;
	cr_assert_eq(vindex_add(vx, N, base, labels, N + 1, N, &err), ANC_OK,
	             "%s", err.msg);
	self_search(vx, 200);
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK, "%s", err.msg);
	/* Nothing new: a second snapshot writes nothing (file unchanged). */
	struct stat a, b;
	cr_assert_eq(stat(snap_file(snapdir, id), &a), 0);
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK);
	cr_assert_eq(stat(snap_file(snapdir, id), &b), 0);
	cr_assert_eq(a.st_ino, b.st_ino);
	vindex_destroy(vx);

	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(info.loaded, 1);
	cr_assert_eq(info.replayed, 0);
	self_search(vx, 200);
	/* Removal bookkeeping: live follows, entries stay. */
	vindex_note(vx, N + 2, -10);
	vindex_stats s;
	stats_of(vx, &s);
	cr_assert_eq(s.live, N - 10);
	cr_assert_eq(s.ntotal, N);
	cr_assert_eq(s.applied, N + 2);
	vindex_destroy(vx);
	store_close(st);
	free(base);
	base = NULL;
}

/* The compat unit returns upstream's codes and keeps the message per
 * thread. */
Test(vindex, faiss_c_api_errors)
{
	FaissIndex *idx = NULL;
	int rc = faiss_index_factory(&idx, 8, "NoSuchIndexType", METRIC_L2);
	cr_assert_lt(rc, 0);
	cr_assert_null(idx);
	const char *m = faiss_get_last_error();
	cr_assert_not_null(m);
	cr_assert_gt(strlen(m), 0);

	cr_assert_eq(faiss_index_factory(&idx, 4, "IDMap2,Flat", METRIC_L2), 0);
	cr_assert_eq(faiss_Index_d(idx), 4);
	float x[4] = {1, 2, 3, 4};
	idx_t id = 77;
	cr_assert_eq(faiss_Index_add_with_ids(idx, 1, x, &id), 0);
	cr_assert_eq(faiss_Index_ntotal(idx), 1);
	float dist;
	idx_t lab;
	cr_assert_eq(faiss_Index_search(idx, 1, x, 1, &dist, &lab), 0);
	cr_assert_eq(lab, 77);
	faiss_Index_free(idx);

	/* Reading a file that is not there: an exception, not a crash. */
	idx = NULL;
	cr_assert_eq(faiss_read_index_fname("/nonexistent/x.faiss", 0, &idx), -2);
	cr_assert_null(idx);
	cr_assert(strstr(faiss_get_last_error(), "x.faiss") != NULL, "%s",
	          faiss_get_last_error());
}

/* ---- issue 6: index kinds, search parameters, background builds ---------- */

#define NB 5000 /* all of sift5k */
#define NQ 100

static float *qv;
static int32_t *gt;
static uint32_t gdim;

static void
queries_load(void)
{
	uint32_t n, d;
	qv = tu_fvecs("sift5k/siftsmall100_query.fvecs", 0, NQ, &n, &d);
	cr_assert_eq(n, NQ);
	gt = tu_ivecs("sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100"
	              ".ivecs", 0, NQ, &n, &gdim);
}

/* The whole of sift5k: base holds NB rows, the store labels row+1. */
static void
fill_all(store *st, const uint8_t *id)
{
	uint32_t n, d;
	free(base);
	base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, NB, &n, &d);
	cr_assert_eq(n, NB);
	fill(st, id, 0, NB);
}

static void
open_store(char *dir, size_t dlen, char *snapdir, size_t slen, store **st)
{
	anc_error err;
	snprintf(dir, dlen, "%s", tu_tmpdir());
	snprintf(snapdir, slen, "%s/snap", dir);
	cr_assert_eq(mkdir(snapdir, 0755), 0);
	cr_assert_eq(store_open(dir, 1 << 30, 1, st, &err), ANC_OK, "%s",
	             err.msg);
}

/* recall@10 of labels (NQ x k, label = row + 1) against the ground truth. */
static double
recall10(const int64_t *labels, uint32_t k)
{
	uint32_t found = 0;
	for (uint32_t q = 0; q < NQ; q++)
		for (uint32_t i = 0; i < 10; i++)
			for (uint32_t g = 0; g < 10; g++)
				if (labels[(size_t)q * k + i] ==
				    (int64_t)gt[(size_t)q * gdim + g] + 1) {
					found++;
					break;
				}
	return found / (NQ * 10.0);
}

static double
search_recall(vindex *vx, const vindex_params *p, vindex_params *used)
{
	float dist[NQ * 10];
	int64_t lab[NQ * 10];
	anc_error err;
	vindex_rdlock(vx);
	cr_assert_eq(vindex_search2_locked(vx, NQ, qv, 10, p, dist, lab, used,
	                                   &err),
	             ANC_OK, "%s", err.msg);
	vindex_unlock(vx);
	return recall10(lab, 10);
}

static void
wait_trained(vindex *vx, uint64_t builds)
{
	vindex_stats s;
	for (int i = 0; i < 6000; i++) { /* 60 s */
		stats_of(vx, &s);
		if (s.trained && s.builds >= builds && !vindex_building(vx))
			return;
		usleep(10000);
	}
	cr_assert_fail("background build did not finish in 60 s");
}

static void
kind_contract(anc_contract *c, anc_index_kind kind, uint8_t id[8])
{
	anc_error err;
	char name[32];
	snprintf(name, sizeof name, "sift-%s", anc_index_kind_name(kind));
	tu_contract_sift(c, name, kind);
	cr_assert_eq(anc_contract_validate(c, &err), ANC_OK, "%s", err.msg);
	anc_contract_id(c, id);
}

/* Every kind on sift5k: served exactly until trained, then trained in the
 * background; recall@10 thresholds per kind; a snapshot of the trained
 * index (written by the build itself for trained kinds) loads as
 * trained. */
static void
kind_check(anc_index_kind kind, double min_recall, double *recall_out)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_open_info info;
	vindex_stats s;
	vindex_params used;
	anc_error err;
	double r;

	open_store(dir, sizeof dir, snapdir, sizeof snapdir, &st);
	queries_load();
	kind_contract(&c, kind, id);
	fill_all(st, id);
	/* quiet 0: a failed background build says why on stderr */
	cr_assert_eq(vindex_open(st, snapdir, 1, &c, id, 0, &vx, &info, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(info.rebuilt, 1);
	wait_trained(vx, kind == ANC_INDEX_FLAT || kind == ANC_INDEX_HNSW ? 0 : 1);
	stats_of(vx, &s);
	cr_assert_eq(s.ntotal, NB);
	cr_assert_eq(s.live, NB);
	r = search_recall(vx, NULL, &used);
	cr_assert_geq(r, min_recall, "%s recall@10 %.3f < %.3f",
	              anc_index_kind_name(kind), r, min_recall);
	*recall_out = r;
	/* A trained kind's background build wrote its snapshot after the
	 * swap (a start after a crash loads it instead of training again);
	 * the others are snapshotted here. */
	if (kind == ANC_INDEX_FLAT || kind == ANC_INDEX_HNSW)
		cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK, "%s", err.msg);
	vindex_destroy(vx);
	/* The trained snapshot loads trained, same answers. */
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(info.loaded, 1);
	stats_of(vx, &s);
	cr_assert_eq(s.trained, 1);
	cr_assert_eq(s.building, 0);
	cr_assert_float_eq(search_recall(vx, NULL, NULL), r, 1e-9);
	vindex_destroy(vx);
	store_close(st);
	free(base);
	free(qv);
	free(gt);
	base = NULL;
}

Test(vindex, kind_hnsw_sq8_recall, .timeout = 120)
{
	double r;
	kind_check(ANC_INDEX_HNSW_SQ8, 0.93, &r);
	cr_log_info("sift5k hnsw_sq8 recall@10 %.3f", r);
}

Test(vindex, kind_ivf_flat_recall, .timeout = 120)
{
	double r;
	kind_check(ANC_INDEX_IVF_FLAT, 0.75, &r);
	cr_log_info("sift5k ivf_flat recall@10 %.3f", r);
}

Test(vindex, kind_ivf_pq_recall, .timeout = 120)
{
	double r;
	kind_check(ANC_INDEX_IVF_PQ, 0.55, &r);
	cr_log_info("sift5k ivf_pq recall@10 %.3f", r);
}

/* Below the training line a trained kind is served exactly by its flat
 * placeholder, and says so. */
Test(vindex, untrained_is_exact_placeholder)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_open_info info;
	vindex_stats s;
	vindex_params p = {0, 4}, used = {7, 7};
	anc_error err;

	open_store(dir, sizeof dir, snapdir, sizeof snapdir, &st);
	kind_contract(&c, ANC_INDEX_IVF_FLAT, id);
	fill(st, id, 0, 1000); /* < 1248 */
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(vindex_building(vx), 0);
	stats_of(vx, &s);
	cr_assert_eq(s.trained, 0);
	cr_assert_eq(s.code_bytes, 4 * D, "placeholder memory is flat's");
	self_search(vx, 1000);
	{
		float dist[2];
		int64_t lab[2];
		vindex_rdlock(vx);
		cr_assert_eq(vindex_search2_locked(vx, 1, base, 2, &p, dist, lab,
		                                   &used, &err),
		             ANC_OK);
		vindex_unlock(vx);
		cr_assert_eq(used.nprobe, 0, "a flat search applies no nprobe");
		cr_assert_eq(used.ef, 0);
	}
	/* The snapshot of the placeholder loads as a placeholder. */
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK, "%s", err.msg);
	vindex_destroy(vx);
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(info.loaded, 1);
	stats_of(vx, &s);
	cr_assert_eq(s.trained, 0);
	vindex_destroy(vx);
	store_close(st);
	free(base);
	base = NULL;
}

/* Per-request ef and nprobe are applied and reported; more search effort
 * never costs recall here, and nprobe = nlist is exhaustive. */
Test(vindex, per_request_params, .timeout = 120)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract ch, ci;
	uint8_t idh[8], idi[8];
	vindex *vh, *vi;
	vindex_open_info info;
	vindex_params used, p;
	double r16, r256, r1, rall;

	open_store(dir, sizeof dir, snapdir, sizeof snapdir, &st);
	queries_load();
	kind_contract(&ch, ANC_INDEX_HNSW, idh);
	kind_contract(&ci, ANC_INDEX_IVF_FLAT, idi);
	free(base);
	base = NULL;
	fill_all(st, idh);
	fill(st, idi, 0, NB);
	open_vindex(st, snapdir, &ch, idh, &vh, &info);
	open_vindex(st, snapdir, &ci, idi, &vi, &info);
	wait_trained(vi, 1);

	search_recall(vh, NULL, &used);
	cr_assert_eq(used.ef, 128, "the contract's efSearch by default");
	p = (vindex_params){4, 0};
	search_recall(vh, &p, &used);
	cr_assert_eq(used.ef, 4);
	p.ef = 16;
	r16 = search_recall(vh, &p, &used);
	p.ef = 256;
	r256 = search_recall(vh, &p, &used);
	cr_assert_eq(used.ef, 256);
	cr_assert_geq(r256, r16, "ef 256 recall %.3f < ef 16 %.3f", r256, r16);
	cr_assert_geq(r256, 0.95, "ef 256 recall %.3f (ef 16 %.3f)", r256, r16);
	/* nprobe does not apply to HNSW: reported 0. */
	cr_assert_eq(used.nprobe, 0);

	search_recall(vi, NULL, &used);
	cr_assert_eq(used.nprobe, 8);
	cr_assert_eq(used.ef, 0);
	p = (vindex_params){0, 1};
	r1 = search_recall(vi, &p, &used);
	cr_assert_eq(used.nprobe, 1);
	p.nprobe = 32;
	rall = search_recall(vi, &p, &used);
	cr_assert_eq(used.nprobe, 32);
	cr_assert_float_eq(rall, 1.0, 1e-9, "nprobe = nlist is exhaustive: %.3f",
	                   rall);
	cr_assert_lt(r1, rall);
	p.nprobe = 1000; /* above nlist: all lists */
	search_recall(vi, &p, &used);
	cr_assert_eq(used.nprobe, 32);
	cr_log_info("sift5k hnsw ef16 %.3f ef256 %.3f; ivf_flat nprobe1 %.3f "
	            "nprobe32 %.3f", r16, r256, r1, rall);
	vindex_destroy(vh);
	vindex_destroy(vi);
	store_close(st);
	free(base);
	free(qv);
	free(gt);
	base = NULL;
}

/* Exact search over LMDB's vectors matches the brute-force ground truth,
 * batched over all queries, and pads with -1 past the stored count. */
Test(vindex, exact_search_from_store, .timeout = 60)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_open_info info;
	MDB_txn *txn;
	anc_error err;
	float dist[NQ * 10];
	int64_t lab[NQ * 10];

	open_store(dir, sizeof dir, snapdir, sizeof snapdir, &st);
	queries_load();
	kind_contract(&c, ANC_INDEX_HNSW_SQ8, id);
	fill_all(st, id);
	open_vindex(st, snapdir, &c, id, &vx, &info);
	cr_assert_eq(store_txn_begin(st, 1, &txn, &err), ANC_OK);
	cr_assert_eq(vindex_search_exact(vx, txn, NQ, qv, 10, dist, lab, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_float_eq(recall10(lab, 10), 1.0, 1e-9);
	for (uint32_t q = 0; q < NQ; q++)
		for (uint32_t i = 1; i < 10; i++)
			cr_assert_leq(dist[q * 10 + i - 1], dist[q * 10 + i]);
	store_txn_abort(txn);
	vindex_destroy(vx);

	/* 3 stored vectors, k 10: 3 answers then -1. */
	{
		anc_contract c3;
		uint8_t id3[8];
		kind_contract(&c3, ANC_INDEX_HNSW, id3);
		snprintf(c3.revision, sizeof c3.revision, "3");
		anc_contract_id(&c3, id3);
		fill(st, id3, 0, 3);
		open_vindex(st, snapdir, &c3, id3, &vx, &info);
		cr_assert_eq(store_txn_begin(st, 1, &txn, &err), ANC_OK);
		cr_assert_eq(vindex_search_exact(vx, txn, 1, base, 10, dist, lab,
		                                 &err),
		             ANC_OK, "%s", err.msg);
		cr_assert_eq(lab[0], 1);
		cr_assert_neq(lab[2], -1);
		for (int i = 3; i < 10; i++)
			cr_assert_eq(lab[i], -1);
		store_txn_abort(txn);
		vindex_destroy(vx);
	}
	store_close(st);
	free(base);
	free(qv);
	free(gt);
	base = NULL;
}

/* A background build while writes keep coming and a reader searches
 * without pause: no search fails, every vector added is findable before,
 * during and after the swap (the pending log leaves no gap), and the
 * generation moves on exactly at the swap. */
typedef struct {
	vindex *vx;
	volatile int stop;
	uint64_t searches, failures, misses, gens;
	char why[ANC_ERRMSG_MAX];
} reader_arg;

static void *
reader_main(void *arg)
{
	reader_arg *a = arg;
	uint64_t lastgen = 0;
	uint32_t row = 0;
	while (!a->stop) {
		float dist[1];
		int64_t lab[1];
		anc_error err;
		vindex_stats s;
		vindex_rdlock(a->vx);
		vindex_stats_locked(a->vx, &s);
		/* a row already added (labels are row + 1) */
		uint32_t have = s.ntotal < NB ? (uint32_t)s.ntotal : NB;
		if (have == 0) {
			vindex_unlock(a->vx);
			continue;
		}
		row = (row + 7919) % have;
		int rv = vindex_search_locked(a->vx, 1, base + (size_t)row * D, 1,
		                              dist, lab, &err);
		vindex_unlock(a->vx);
		a->searches++;
		if (rv != ANC_OK) {
			a->failures++;
			snprintf(a->why, sizeof a->why, "%s", err.msg);
		} else if (lab[0] != (int64_t)row + 1 && dist[0] > 1e-3f) {
			a->misses++;
			snprintf(a->why, sizeof a->why,
			         "row %u: label %lld at %g (ntotal %llu, gen %llu, "
			         "trained %d)", row, (long long)lab[0],
			         (double)dist[0], (unsigned long long)s.ntotal,
			         (unsigned long long)s.generation, s.trained);
		}
		if (s.generation != lastgen) {
			a->gens++;
			lastgen = s.generation;
		}
	}
	return NULL;
}

Test(vindex, background_build_serves_queries, .timeout = 120)
{
	char dir[TU_PATH_MAX - 16], snapdir[TU_PATH_MAX];
	store *st;
	anc_contract c;
	uint8_t id[8];
	vindex *vx;
	vindex_stats s;
	anc_error err;
	uint64_t labels[NB];
	reader_arg ra;
	pthread_t thr;
	int saw_building = 0;

	open_store(dir, sizeof dir, snapdir, sizeof snapdir, &st);
	kind_contract(&c, ANC_INDEX_IVF_FLAT, id);
	fill_all(st, id);
	for (uint32_t i = 0; i < NB; i++)
		labels[i] = i + 1;
	cr_assert_eq(vindex_create(st, snapdir, 1, &c, id, 0, 1, &vx, &err),
	             ANC_OK, "%s", err.msg);
	memset(&ra, 0, sizeof ra);
	ra.vx = vx;
	cr_assert_eq(pthread_create(&thr, NULL, reader_main, &ra), 0);
	/* As the engine does after each commit: batches of 100, the store
	 * already holding them (fill_all committed all). */
	for (uint32_t i = 0; i < NB; i += 100) {
		cr_assert_eq(vindex_add(vx, 100, base + (size_t)i * D, labels + i,
		                        i + 101, 100, &err),
		             ANC_OK, "%s", err.msg);
		saw_building |= vindex_building(vx);
		usleep(2000);
	}
	wait_trained(vx, 1);
	ra.stop = 1;
	pthread_join(thr, NULL);
	cr_assert_eq(ra.failures, 0, "%llu searches failed: %s",
	             (unsigned long long)ra.failures, ra.why);
	cr_assert_eq(ra.misses, 0, "%llu searches missed a vector already "
	             "added: %s", (unsigned long long)ra.misses, ra.why);
	cr_assert_gt(ra.searches, 100);
	cr_assert(saw_building, "the build ran while vectors were added");
	stats_of(vx, &s);
	cr_assert_eq(s.trained, 1);
	cr_assert_geq(s.builds, 1);
	cr_assert_eq(s.ntotal, NB, "pending vectors caught up exactly once: %llu",
	             (unsigned long long)s.ntotal);
	cr_assert_eq(s.generation, 1 + s.builds);
	self_search(vx, NB);
	cr_log_info("background build: %llu searches during the build, %llu "
	            "generations seen, %llu builds",
	            (unsigned long long)ra.searches,
	            (unsigned long long)ra.gens, (unsigned long long)s.builds);
	vindex_destroy(vx);
	store_close(st);
	free(base);
	base = NULL;
}

/* The compatibility unit's search parameters: upstream semantics through
 * an IDMap2 (labels translated), a wrong parameter type is a faiss error
 * with its message, not a crash. */
Test(vindex, faiss_search_params_compat)
{
	FaissIndex *idx = NULL;
	FaissSearchParametersHNSW *ph = NULL;
	FaissSearchParametersIVF *pi = NULL;
	float x[4 * 8], dist[2];
	idx_t ids[4] = {100, 200, 300, 400}, lab[2];

	for (int i = 0; i < 32; i++)
		x[i] = (float)(i * 7 % 13);
	cr_assert_eq(faiss_index_factory(&idx, 8, "IDMap2,HNSW8", METRIC_L2), 0);
	cr_assert_eq(faiss_Index_add_with_ids(idx, 4, x, ids), 0);
	cr_assert_eq(faiss_SearchParametersHNSW_new_with(&ph, NULL, 32), 0);
	cr_assert_eq(faiss_Index_search_with_params(idx, 1, x + 16, 2, ph, dist,
	                                            lab),
	             0, "%s", faiss_get_last_error());
	cr_assert_eq(lab[0], 300, "label translated through the IDMap2");
	cr_assert_float_eq(dist[0], 0.0f, 1e-6);
	cr_assert_eq(faiss_SearchParametersIVF_new_with(&pi, NULL, 4, 0), 0);
	cr_assert_eq(faiss_Index_search_with_params(idx, 1, x, 2, pi, dist, lab),
	             -2);
	cr_assert_not_null(strstr(faiss_get_last_error(), "params"), "%s",
	                   faiss_get_last_error());
	/* NULL parameters: the plain search. */
	cr_assert_eq(faiss_Index_search_with_params(idx, 1, x, 2, NULL, dist,
	                                            lab),
	             0);
	cr_assert_eq(lab[0], 100);
	faiss_SearchParameters_free(ph);
	faiss_SearchParameters_free(pi);
	faiss_SearchParameters_free(NULL);
	faiss_Index_free(idx);
}
