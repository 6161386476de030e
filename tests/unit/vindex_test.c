/*
 * vindex_test.c — faiss indexes and snapshots (index/vindex.h) over a real
 * LMDB store, and the faiss C API compatibility unit's error convention.
 *
 * The store is filled directly (store.h) with sift5k vectors so the index is
 * tested on its own: rebuild, snapshot, load, replay, and the checks that
 * send a snapshot back to a rebuild.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "cli_vecfile.h"
#include "store.h"
#include "testutil.h"
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
		cr_assert_eq(anc_fvecs_read(tu_data_path("sift5k/sift5k_base.fvecs"),
		                            0, N, &base, &n, &d, &err),
		             ANC_OK, "%s", err.msg);
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
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "sift");
	snprintf(c->model, sizeof c->model, "sift");
	snprintf(c->revision, sizeof c->revision, "1");
	c->dim = D;
	c->metric = ANC_METRIC_L2;
	c->normalize = 0;
	c->index.kind = kind;
	cr_assert_eq(anc_contract_validate(c, &err), ANC_OK, "%s", err.msg);
	anc_contract_id(c, id);
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
	cr_assert_eq(vindex_open(st, snapdir, 1, &c, id, 1, &vx, &info, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(info.rebuilt, 1);
	cr_assert_eq(info.loaded, 0);
	vindex_rdlock(vx);
	vindex_stats_locked(vx, &s);
	vindex_unlock(vx);
	cr_assert_eq(s.ntotal, 600);
	cr_assert_eq(s.live, 600);
	cr_assert_eq(s.applied, 601);
	self_search(vx, 600);
	cr_assert_eq(vindex_snapshot(vx, &err), ANC_OK, "%s", err.msg);
	vindex_destroy(vx);

	/* Snapshot + 400 newer labels: load and replay. */
	fill(st, id, 600, N);
	cr_assert_eq(vindex_open(st, snapdir, 1, &c, id, 1, &vx, &info, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(info.loaded, 1);
	cr_assert_eq(info.replayed, 400);
	vindex_rdlock(vx);
	vindex_stats_locked(vx, &s);
	vindex_unlock(vx);
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
	vindex_rdlock(vx);
	vindex_stats_locked(vx, &s);
	vindex_unlock(vx);
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
		vindex_rdlock(vx);
		vindex_stats_locked(vx, &s);
		vindex_unlock(vx);
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
	cr_assert_eq(vindex_create(snapdir, 1, &c, id, 0, &vx, &err), ANC_OK,
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

	cr_assert_eq(vindex_open(st, snapdir, 1, &c, id, 1, &vx, &info, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(info.loaded, 1);
	cr_assert_eq(info.replayed, 0);
	self_search(vx, 200);
	/* Removal bookkeeping: live follows, entries stay. */
	vindex_note(vx, N + 2, -10);
	vindex_stats s;
	vindex_rdlock(vx);
	vindex_stats_locked(vx, &s);
	vindex_unlock(vx);
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
