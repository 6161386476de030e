/*
 * store_test.c — the engine's LMDB layer (index/store.h): every table
 * round-trips, ranges scan in order, and failures (full map, foreign
 * format, damaged values, unusable directory) come back as their codes with
 * LMDB's cause kept.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"
#include "testutil.h"

TestSuite(store, .fini = tu_cleanup);

static store *
open_store(const char *dir, uint64_t map)
{
	store *st = NULL;
	anc_error err;
	cr_assert_eq(store_open(dir, map, 1, &st, &err), ANC_OK, "%s", err.msg);
	return st;
}

static const uint8_t A1[ANC_ANCHOR_RAW] = {1, 2, 3, 4, 5, 6, 7, 8,
                                           9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t A2[ANC_ANCHOR_RAW] = {2};
static const uint8_t CID[ANC_CONTRACT_ID_RAW] = {0xde, 0xad, 0xbe, 0xef,
                                                 0, 1, 2, 3};

static int
count_coll(void *arg, const store_coll *c, anc_error *err)
{
	(void)err;
	cr_assert_str_eq(c->name, "docs");
	cr_assert_eq(c->cid, 7);
	cr_assert_eq(c->has_default, 1);
	cr_assert_eq(memcmp(c->default_id, CID, 8), 0);
	cr_assert_eq(c->created_seq, 42);
	(*(int *)arg)++;
	return ANC_OK;
}

static int
check_contract(void *arg, const store_contract *c, anc_error *err)
{
	(void)err;
	cr_assert_eq(c->cid, 7);
	cr_assert_eq(memcmp(c->id, CID, 8), 0);
	cr_assert_str_eq(c->c.name, "minilm");
	cr_assert_str_eq(c->c.model, "all-MiniLM-L6-v2");
	cr_assert_str_eq(c->c.revision, "r1");
	cr_assert_str_eq(c->c.preprocess, "lower");
	cr_assert_eq(c->c.dim, 3);
	cr_assert_eq(c->c.metric, ANC_METRIC_IP);
	cr_assert_eq(c->c.normalize, 0);
	cr_assert_eq(c->c.index.kind, ANC_INDEX_HNSW);
	cr_assert_eq(c->c.index.m, 16);
	cr_assert_eq(c->c.index.ef_search, 99);
	cr_assert_eq(c->state, ANC_CSTATE_RETIRED);
	(*(int *)arg)++;
	return ANC_OK;
}

typedef struct {
	uint64_t labels[8];
	int n;
} lab_list;

static int
collect_label(void *arg, uint64_t label, const uint8_t *anchor,
              anc_error *err)
{
	lab_list *l = arg;
	(void)anchor;
	(void)err;
	cr_assert_lt(l->n, 8);
	l->labels[l->n++] = label;
	return ANC_OK;
}

static int
stop_at_first(void *arg, uint64_t label, const uint8_t *anchor,
              anc_error *err)
{
	(void)arg;
	(void)label;
	(void)anchor;
	return anc_error_set(err, ANC_EINTERNAL, "stop");
}

Test(store, round_trip_every_table)
{
	const char *dir = tu_tmpdir();
	store *st = open_store(dir, 1 << 24);
	MDB_txn *txn;
	anc_error err;
	uint64_t seq, label;
	uint32_t cid1, cid2;
	int found, same, n = 0;

	cr_assert_eq(store_txn_begin(st, 0, &txn, &err), ANC_OK);
	cr_assert_eq(store_seq_get(st, txn, &seq, &err), ANC_OK);
	cr_assert_eq(seq, 0);
	cr_assert_eq(store_seq_put(st, txn, 41, &err), ANC_OK);
	cr_assert_eq(store_cid_next(st, txn, &cid1, &err), ANC_OK);
	cr_assert_eq(store_cid_next(st, txn, &cid2, &err), ANC_OK);
	cr_assert_eq(cid1, 1);
	cr_assert_eq(cid2, 2);

	store_coll c = {.cid = 7, .has_default = 1, .created_seq = 42};
	snprintf(c.name, sizeof c.name, "docs");
	memcpy(c.default_id, CID, 8);
	cr_assert_eq(store_coll_put(st, txn, &c, &err), ANC_OK);

	store_contract sc;
	memset(&sc, 0, sizeof sc);
	sc.cid = 7;
	memcpy(sc.id, CID, 8);
	snprintf(sc.c.name, sizeof sc.c.name, "minilm");
	snprintf(sc.c.model, sizeof sc.c.model, "all-MiniLM-L6-v2");
	snprintf(sc.c.revision, sizeof sc.c.revision, "r1");
	snprintf(sc.c.preprocess, sizeof sc.c.preprocess, "lower");
	sc.c.dim = 3;
	sc.c.metric = ANC_METRIC_IP;
	sc.c.index.kind = ANC_INDEX_HNSW;
	sc.c.index.m = 16;
	sc.c.index.ef_construction = 40;
	sc.c.index.ef_search = 99;
	sc.state = ANC_CSTATE_RETIRED;
	cr_assert_eq(store_contract_put(st, txn, &sc, &err), ANC_OK);

	static const uint8_t meta[] = {0x80};
	store_passage p = {0};
	p.revision = 3;
	p.seq = 41;
	p.hash[0] = 0xab;
	p.source = "src";
	p.source_len = 3;
	p.chunk = "";
	p.text = "hello";
	p.text_len = 5;
	p.meta = meta;
	p.meta_len = 1;
	cr_assert_eq(store_passage_put(st, txn, 7, A1, &p, &err), ANC_OK);

	const float v[3] = {1, 2, 3}, w[3] = {1, 2, 4};
	cr_assert_eq(store_vector_put(st, txn, 7, CID, A1, 5, v, 3, &err), ANC_OK);
	cr_assert_eq(store_label_put(st, txn, 7, CID, 5, A1, &err), ANC_OK);
	cr_assert_eq(store_label_put(st, txn, 7, CID, 9, A2, &err), ANC_OK);
	cr_assert_eq(store_label_put(st, txn, 7, CID, 2, A2, &err), ANC_OK);
	/* Another contract's label must not show in this one's scan. */
	cr_assert_eq(store_label_put(st, txn, 8, CID, 6, A2, &err), ANC_OK);
	cr_assert_eq(store_txn_commit(st, txn, &err), ANC_OK, "%s", err.msg);

	/* Reopen: it was really written. */
	store_close(st);
	st = open_store(dir, 1 << 24);
	cr_assert_eq(store_txn_begin(st, 1, &txn, &err), ANC_OK);
	cr_assert_eq(store_seq_get(st, txn, &seq, &err), ANC_OK);
	cr_assert_eq(seq, 41);
	cr_assert_eq(store_coll_scan(st, txn, count_coll, &n, &err), ANC_OK);
	cr_assert_eq(n, 1);
	n = 0;
	cr_assert_eq(store_contract_scan(st, txn, check_contract, &n, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(n, 1);

	store_passage q;
	cr_assert_eq(store_passage_get(st, txn, 7, A1, &q, &found, &err), ANC_OK);
	cr_assert_eq(found, 1);
	cr_assert_eq(q.revision, 3);
	cr_assert_eq(q.seq, 41);
	cr_assert_eq(q.deleted, 0);
	cr_assert_eq(q.hash[0], 0xab);
	cr_assert_eq(q.source_len, 3);
	cr_assert_eq(memcmp(q.source, "src", 3), 0);
	cr_assert_eq(q.chunk_len, 0);
	cr_assert_eq(q.text_len, 5);
	cr_assert_eq(memcmp(q.text, "hello", 5), 0);
	cr_assert_eq(q.meta_len, 1);
	cr_assert_eq(q.meta[0], 0x80);
	cr_assert_eq(store_passage_get(st, txn, 7, A2, &q, &found, &err), ANC_OK);
	cr_assert_eq(found, 0);
	cr_assert_eq(store_passage_get(st, txn, 8, A1, &q, &found, &err), ANC_OK);
	cr_assert_eq(found, 0, "collections are separate");

	float out[3];
	cr_assert_eq(store_vector_get(st, txn, 7, CID, A1, 3, &label, out, &found,
	                              &err),
	             ANC_OK);
	cr_assert_eq(found, 1);
	cr_assert_eq(label, 5);
	cr_assert_eq(memcmp(out, v, sizeof v), 0);
	cr_assert_eq(store_vector_get(st, txn, 7, CID, A1, 4, &label, NULL,
	                              &found, &err),
	             ANC_EMALFORMED, "dimension of the stored vector is checked");
	cr_assert_eq(store_vector_same(st, txn, 7, CID, A1, v, 3, &same, &err),
	             ANC_OK);
	cr_assert_eq(same, 1);
	cr_assert_eq(store_vector_same(st, txn, 7, CID, A1, w, 3, &same, &err),
	             ANC_OK);
	cr_assert_eq(same, 0);

	lab_list l = {0};
	cr_assert_eq(store_label_scan(st, txn, 7, CID, 0, collect_label, &l, &err),
	             ANC_OK);
	cr_assert_eq(l.n, 3);
	cr_assert_eq(l.labels[0], 2);
	cr_assert_eq(l.labels[1], 5);
	cr_assert_eq(l.labels[2], 9);
	memset(&l, 0, sizeof l);
	cr_assert_eq(store_label_scan(st, txn, 7, CID, 5, collect_label, &l, &err),
	             ANC_OK);
	cr_assert_eq(l.n, 1);
	cr_assert_eq(l.labels[0], 9);
	cr_assert_eq(store_label_scan(st, txn, 7, CID, 0, stop_at_first, NULL,
	                              &err),
	             ANC_EINTERNAL, "a callback's status stops the scan");
	uint8_t a[ANC_ANCHOR_RAW];
	cr_assert_eq(store_label_get(st, txn, 7, CID, 5, a, &found, &err), ANC_OK);
	cr_assert_eq(found, 1);
	cr_assert_eq(memcmp(a, A1, 16), 0);
	store_txn_abort(txn);

	/* Deletes. */
	cr_assert_eq(store_txn_begin(st, 0, &txn, &err), ANC_OK);
	cr_assert_eq(store_vector_del(st, txn, 7, CID, A1, &err), ANC_OK);
	cr_assert_eq(store_vector_del(st, txn, 7, CID, A1, &err), ANC_OK,
	             "deleting what is gone is fine");
	cr_assert_eq(store_label_del(st, txn, 7, CID, 5, &err), ANC_OK);
	cr_assert_eq(store_vector_get(st, txn, 7, CID, A1, 3, &label, NULL,
	                              &found, &err),
	             ANC_OK);
	cr_assert_eq(found, 0);
	cr_assert_eq(store_label_get(st, txn, 7, CID, 5, a, &found, &err), ANC_OK);
	cr_assert_eq(found, 0);
	cr_assert_eq(store_txn_commit(st, txn, &err), ANC_OK);
	store_close(st);
	store_close(NULL);
	store_txn_abort(NULL);
}

Test(store, map_full_is_storage_error)
{
	const char *dir = tu_tmpdir();
	store *st = open_store(dir, 1 << 20); /* 1 MiB */
	MDB_txn *txn;
	anc_error err;
	char *text = malloc(64 << 10);
	int rv = ANC_OK;
	uint32_t i;

	memset(text, 'x', 64 << 10);
	cr_assert_eq(store_txn_begin(st, 0, &txn, &err), ANC_OK);
	for (i = 0; i < 64 && rv == ANC_OK; i++) {
		uint8_t a[ANC_ANCHOR_RAW] = {(uint8_t)i};
		store_passage p = {.source = "s", .source_len = 1, .chunk = "",
		                   .text = text, .text_len = 64 << 10};
		rv = store_passage_put(st, txn, 1, a, &p, &err);
	}
	cr_assert_eq(rv, ANC_ESTORAGE);
	cr_assert(strstr(err.msg, "database full") && strstr(err.msg, "map_size"),
	          "%s", err.msg);
	store_txn_abort(txn);
	/* The database is still usable for a small write. */
	cr_assert_eq(store_txn_begin(st, 0, &txn, &err), ANC_OK);
	cr_assert_eq(store_seq_put(st, txn, 3, &err), ANC_OK);
	cr_assert_eq(store_txn_commit(st, txn, &err), ANC_OK, "%s", err.msg);
	store_close(st);
	free(text);
}

/* Write raw bytes under a key of a named database, bypassing store.c. */
static void
raw_put(const char *dir, const char *dbname, const void *key, size_t klen,
        const void *val, size_t vlen)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	char path[TU_PATH_MAX];
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

	snprintf(path, sizeof path, "%s/lmdb", dir);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 8), 0);
	cr_assert_eq(mdb_env_open(env, path, 0, 0644), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(store, foreign_format_is_refused)
{
	const char *dir = tu_tmpdir();
	store *st = open_store(dir, 1 << 24);
	anc_error err;
	uint32_t fmt = 99;

	store_close(st);
	raw_put(dir, "meta", "format", 6, &fmt, sizeof fmt);
	st = NULL;
	cr_assert_eq(store_open(dir, 1 << 24, 1, &st, &err), ANC_EUNSUPPORTED);
	cr_assert_null(st);
	cr_assert(strstr(err.msg, "format 99"), "%s", err.msg);
}

Test(store, damaged_values_are_malformed)
{
	const char *dir = tu_tmpdir();
	store *st = open_store(dir, 1 << 24);
	MDB_txn *txn;
	anc_error err;
	store_passage p;
	int found, n = 0;
	uint8_t key[4 + ANC_ANCHOR_RAW] = {0, 0, 0, 1};
	static const uint8_t junk[] = {1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f};

	store_close(st);
	memcpy(key + 4, A1, 16);
	raw_put(dir, "passages", key, sizeof key, junk, sizeof junk);
	raw_put(dir, "collections", "c", 1, junk, 3);
	st = open_store(dir, 1 << 24);
	cr_assert_eq(store_txn_begin(st, 1, &txn, &err), ANC_OK);
	cr_assert_eq(store_passage_get(st, txn, 1, A1, &p, &found, &err),
	             ANC_EMALFORMED);
	cr_assert(strstr(err.msg, "passages"), "%s", err.msg);
	cr_assert_eq(store_coll_scan(st, txn, count_coll, &n, &err),
	             ANC_EMALFORMED);
	cr_assert_eq(n, 0);
	store_txn_abort(txn);
	store_close(st);
}

Test(store, unusable_directory)
{
	const char *dir = tu_tmpdir();
	store *st = NULL;
	anc_error err;
	const char *file = tu_path(dir, "plainfile");

	tu_file_write(file, "x", 1);
	cr_assert_eq(store_open(file, 1 << 24, 1, &st, &err), ANC_EIO);
	cr_assert_null(st);
	cr_assert(strstr(err.msg, "plainfile"), "%s", err.msg);
}

/* On a full file system a new store is an error naming the cause. LMDB
 * sizes its lock file with ftruncate and maps it: without blocks behind
 * it, the server died of SIGBUS. Needs a small tmpfs (root); skipped
 * where mounting is not allowed. */
Test(store, full_disk_fresh_directory)
{
	const char *dir = tu_tmpdir();
	char mnt[TU_PATH_MAX], fill[TU_PATH_MAX + 8], cmd[3 * TU_PATH_MAX];
	store *st = NULL;
	anc_error err;

	snprintf(mnt, sizeof mnt, "%s", tu_path(dir, "mnt"));
	cr_assert_eq(mkdir(mnt, 0755), 0);
	snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=2m tmpfs '%s' "
	         "2>/dev/null", mnt);
	if (system(cmd) != 0)
		cr_skip_test("cannot mount a tmpfs here (not root?)");
	/* a lock file as LMDB made them before: sparse (ftruncate) */
	char old[TU_PATH_MAX + 16], lock[TU_PATH_MAX + 32];
	snprintf(old, sizeof old, "%s/old", mnt);
	cr_assert_eq(mkdir(old, 0755), 0);
	snprintf(lock, sizeof lock, "%s/old/lmdb", mnt);
	cr_assert_eq(mkdir(lock, 0755), 0);
	snprintf(lock, sizeof lock, "%s/old/lmdb/lock.mdb", mnt);
	FILE *lf = fopen(lock, "wb");
	cr_assert_not_null(lf);
	cr_assert_eq(ftruncate(fileno(lf), 1 << 20), 0);
	fclose(lf);
	snprintf(fill, sizeof fill, "%s/fill", mnt);
	FILE *f = fopen(fill, "wb");
	cr_assert_not_null(f);
	{
		static char block[4096];
		while (fwrite(block, 1, sizeof block, f) == sizeof block &&
		       fflush(f) == 0)
			;
	}
	fclose(f);
	int rv = store_open(tu_path(mnt, "new"), 1 << 24, 0, &st, &err);
	anc_error err2;
	store *st2 = NULL;
	int rv2 = store_open(old, 1 << 24, 0, &st2, &err2);
	snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
	cr_expect_eq(system(cmd), 0);
	cr_assert_eq(rv, ANC_ESTORAGE, "%s", err.msg);
	cr_assert_null(st);
	cr_assert(strstr(err.msg, "No space left on device"), "%s", err.msg);
	cr_assert_eq(rv2, ANC_ESTORAGE, "%s", err2.msg);
	cr_assert_null(st2);
	cr_assert(strstr(err2.msg, "No space left on device"), "%s", err2.msg);
}
