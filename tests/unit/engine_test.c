/*
 * engine_test.c — the engine (anc_index.h) on real data: the 90 SOTU
 * MiniLM passages and the sift5k ANN set from ../shared/data.
 *
 * Design note: every test opens a database in its own temporary directory
 * with nosync (speed; durability under a real crash is LMDB's business and
 * is exercised by the fork test, which does not need fsync since the OS
 * keeps the pages). The self-query check (passage i's vector finds passage
 * i first) is run after every way of bringing an index back: fresh, from a
 * snapshot, from a snapshot plus replay, rebuilt after the snapshot was
 * removed, and rebuilt after it was damaged.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "anc_index.h"
#include "cli_vecfile.h"
#include "testutil.h"
#include "tu_corpus.h"
#include "tu_db.h"

TestSuite(engine, .fini = tu_cleanup);
TestSuite(recall, .fini = tu_cleanup);

#define COLL "sotu"
#define LLAMA_FVECS "sotu-2models/sotu_llamacpp_4096.fvecs"

/* Drift and calibration on: these tests read both. */
static anc_db *
db_open(const char *dir)
{
	return tu_db_open(dir, TU_DB_DRIFT | TU_DB_CALIB, 1ull << 30);
}

static void
contract_minilm(anc_contract *c, anc_index_kind kind)
{
	tu_contract_minilm(c);
	c->index.kind = kind;
	if (kind == ANC_INDEX_HNSW) {
		c->index.m = 32;
		c->index.ef_construction = 200;
		c->index.ef_search = 64;
	}
}

/* Collection + contract + the 90 passages; returns the contract id. */
static void
sotu_setup(anc_db *db, anc_index_kind kind, anc_contract_id_str id)
{
	anc_contract c;
	anc_error err;
	int created = -1;

	cr_assert_eq(anc_db_collection_create(db, COLL, &created, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(created, 1);
	contract_minilm(&c, kind);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 1);
}

static void
sotu_load(anc_db *db, const tu_sotu *s, uint32_t from, uint32_t to)
{
	uint32_t n = to - from;
	anc_record *r = calloc(n, sizeof *r);
	anc_upsert_result *res = calloc(n, sizeof *res);
	anc_error err;
	uint64_t seq = 0;
	cr_assert(r && res);
	for (uint32_t i = 0; i < n; i++)
		r[i] = tu_sotu_record(s, from + i);
	int rv = anc_db_upsert(db, COLL, NULL, r, n, res, &seq, &err);
	cr_assert_eq(rv, ANC_OK, "upsert: %s", err.msg);
	cr_assert_gt(seq, 0);
	for (uint32_t i = 0; i < n; i++) {
		cr_assert_eq(res[i].status, ANC_UPSERT_CREATED);
		cr_assert_eq(res[i].revision, 1);
		cr_assert_str_eq(res[i].anchor, s->anchors[from + i]);
	}
	free(r);
	free(res);
}

/* Passage i's own vector finds passage i first, for every live i; skip[i]
 * marks deleted ones, which must never come back. */
static void
self_query_all(anc_db *db, const tu_sotu *s, const char *ref,
               const int *skip)
{
	anc_query_result *qr = NULL;
	anc_error err;
	int rv = anc_db_query(db, COLL, ref, s->vecs, s->n, s->dim, 10, 1, &qr,
	                      &err);
	cr_assert_eq(rv, ANC_OK, "query: %s", err.msg);
	cr_assert_eq(qr->nq, s->n);
	for (uint32_t i = 0; i < s->n; i++) {
		const anc_hitlist *hl = &qr->lists[i];
		for (uint32_t j = 0; j < hl->nhits; j++) {
			int row = tu_sotu_row(s, hl->hits[j].anchor);
			cr_assert_geq(row, 0);
			cr_assert(skip == NULL || !skip[row],
			          "deleted passage %d returned for query %u", row, i);
			if (j > 0)
				cr_assert_geq(hl->hits[j - 1].score, hl->hits[j].score);
		}
		if (skip != NULL && skip[i])
			continue;
		cr_assert_eq(hl->nhits, 10, "query %u: %u hits", i, hl->nhits);
		cr_assert_str_eq(hl->hits[0].anchor, s->anchors[i],
		                 "query %u: first hit is row %d", i,
		                 tu_sotu_row(s, hl->hits[0].anchor));
		cr_assert_float_eq(hl->hits[0].score, 1.0f, 1e-3);
		cr_assert_str_eq(hl->hits[0].text, s->text[i]);
		cr_assert_str_eq(hl->hits[0].source, s->source[i]);
		cr_assert_str_eq(hl->hits[0].chunk, s->chunk[i]);
		cr_assert_eq(hl->hits[0].revision, 1);
	}
	anc_query_result_free(qr);
}

static char *
snapshot_path(const char *dir, const anc_contract_id_str id)
{
	static char p[TU_PATH_MAX];
	cr_assert_lt(snprintf(p, sizeof p, "%s/snapshots/1-%s.faiss", dir, id),
	             (int)sizeof p, "path too long");
	return p;
}

Test(engine, open_close_reopen)
{
	const char *dir = tu_tmpdir();
	anc_db *db = db_open(dir);
	anc_contract c;
	anc_contract_id_str id, id2;
	anc_error err;
	anc_info *info = NULL;
	int created;

	cr_assert_eq(anc_db_collection_create(db, COLL, &created, &err), ANC_OK);
	cr_assert_eq(created, 1);
	cr_assert_eq(anc_db_collection_create(db, COLL, &created, &err), ANC_OK);
	cr_assert_eq(created, 0);
	contract_minilm(&c, ANC_INDEX_FLAT);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 1);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id2, &created, &err),
	             ANC_OK);
	cr_assert_eq(created, 0);
	cr_assert_str_eq(id, id2);
	tu_db_close(db);

	db = db_open(dir);
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info->ncollections, 1);
	cr_assert_str_eq(info->collections[0].name, COLL);
	cr_assert_str_eq(info->collections[0].default_contract, id);
	cr_assert_eq(info->collections[0].ncontracts, 1);
	cr_assert_eq(info->collections[0].contracts[0].state,
	             ANC_CSTATE_DEFAULT);
	cr_assert_str_eq(info->collections[0].contracts[0].contract.model,
	                 c.model);
	cr_assert_gt(info->seq, 0);
	anc_info_free(info);
	tu_db_close(db);
	cr_assert_eq(anc_db_close(NULL, NULL), ANC_OK);
}

/* Reopen dir after its snapshot was removed or damaged: the index must
 * come from LMDB (rebuilt, no snapshot loaded) and answer as before. */
static void
reopen_rebuilt(const char *dir, const tu_sotu *s)
{
	anc_db_open_stats st;
	anc_db *db = db_open(dir);

	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.snapshots_loaded, 0);
	cr_assert_eq(st.rebuilt, 1);
	self_query_all(db, s, NULL, NULL);
	tu_db_close(db);
}

/* Damage the snapshot of contract id in dir: keep == 0 flips one byte in
 * the middle of its faiss payload, keep > 0 truncates it to keep bytes. */
static void
snapshot_damage(const char *dir, const char *id, size_t keep)
{
	size_t len;
	char *buf = tu_file_read(snapshot_path(dir, id), &len);

	cr_assert_not_null(buf);
	if (keep == 0) {
		cr_assert_gt(len, 1000);
		buf[len / 2] ^= 0x40;
		keep = len;
	}
	tu_file_write(snapshot_path(dir, id), buf, keep);
	free(buf);
}

Test(engine, sotu_snapshot_rebuild_corrupt)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_open_stats st;
	anc_db *db;

	tu_sotu_read(&s, COLL);
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);
	self_query_all(db, &s, NULL, NULL);
	self_query_all(db, &s, id, NULL);
	tu_db_close(db);

	/* From the snapshot written by close. */
	db = db_open(dir);
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.indexes, 1);
	cr_assert_eq(st.snapshots_loaded, 1);
	cr_assert_eq(st.rebuilt, 0);
	cr_assert_eq(st.replayed, 0);
	self_query_all(db, &s, "minilm@1", NULL);
	tu_db_close(db);

	/* Snapshot removed: rebuild from LMDB. */
	cr_assert_eq(unlink(snapshot_path(dir, id)), 0);
	reopen_rebuilt(dir, &s);

	/* Snapshot damaged (one byte in the faiss payload): rebuild. */
	snapshot_damage(dir, id, 0);
	reopen_rebuilt(dir, &s);

	/* Truncated snapshot: rebuild too. */
	snapshot_damage(dir, id, 100);
	reopen_rebuilt(dir, &s);
	tu_sotu_free(&s);
}

/* In a forked child (criterion asserts there would only kill the child):
 * open dir, or exit with status 2. */
static anc_db *
child_open(const char *dir)
{
	anc_db_options o;
	anc_db *db;
	anc_error err;
	anc_db_options_default(&o);
	o.quiet = 1;
	o.map_size = 1ull << 30;
	if (anc_db_open(dir, &o, &db, &err) != ANC_OK)
		_exit(2);
	return db;
}

/* dir: the SOTU corpus under a contract of kind, closed, and its index
 * snapshot removed (as after an unclean stop before any snapshot). */
static void
loaded_then_snapshot_lost(const char *dir, anc_index_kind kind,
                          const tu_sotu *s, anc_contract_id_str id)
{
	anc_db *db = db_open(dir);
	sotu_setup(db, kind, id);
	sotu_load(db, s, 0, s->n);
	tu_db_close(db);
	cr_assert_eq(unlink(snapshot_path(dir, id)), 0);
}

/* An HNSW index rebuilt at open (its snapshot lost to an unclean stop) is
 * snapshotted at once: the next start loads it, even when nothing was
 * written in between (a read-only server that crashes again). A flat
 * index is not: it reads back from LMDB as fast. */
Test(engine, costly_rebuild_is_snapshotted_at_open)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_open_stats st;
	anc_db *db;

	tu_sotu_read(&s, COLL);
	loaded_then_snapshot_lost(dir, ANC_INDEX_HNSW, &s, id);

	db = db_open(dir);
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.rebuilt, 1);
	cr_assert_eq(st.snapshots_written, 1);
	cr_assert_eq(access(snapshot_path(dir, id), F_OK), 0,
	             "no snapshot while the database is open");
	self_query_all(db, &s, NULL, NULL);
	/* no close: as after a crash, only what open wrote is there */
	{
		pid_t pid = fork();
		cr_assert_neq(pid, -1);
		if (pid == 0) {
			/* a second open of the same directory, in a child
			 * that dies without closing */
			anc_db *db2 = child_open(dir);
			anc_db_get_open_stats(db2, &st);
			_exit(st.snapshots_loaded == 1 && st.rebuilt == 0 &&
			      st.snapshots_written == 0 ? 0 : 3);
		}
		int status;
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		          "the next open did not load the snapshot: status %d",
		          status);
	}
	tu_db_close(db);

	/* An ivf contract rebuilt comes back as an exact placeholder to be
	 * trained: not snapshotted at open. */
	{
		char dir2[TU_PATH_MAX];
		anc_contract_id_str id2;
		snprintf(dir2, sizeof dir2, "%s", tu_tmpdir());
		loaded_then_snapshot_lost(dir2, ANC_INDEX_IVF_FLAT, &s, id2);
		db = db_open(dir2);
		anc_db_get_open_stats(db, &st);
		cr_assert_eq(st.rebuilt, 1);
		cr_assert_eq(st.snapshots_written, 0);
		cr_assert_neq(access(snapshot_path(dir2, id2), F_OK), 0);
		tu_db_close(db);
	}
	tu_sotu_free(&s);
}

Test(engine, crash_after_ack_then_replay)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_open_stats st;
	anc_db *db;
	int status;

	tu_sotu_read(&s, COLL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		/* Child: half, snapshot, other half, then die without close.
		 * Criterion asserts in here would only kill the child, which
		 * the parent sees as a bad exit status. */
		anc_error err;
		db = child_open(dir);
		sotu_setup(db, ANC_INDEX_FLAT, id);
		sotu_load(db, &s, 0, 45);
		if (anc_db_snapshot(db, &err) != ANC_OK)
			_exit(3);
		sotu_load(db, &s, 45, s.n);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	          "child status %d", status);

	db = db_open(dir);
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.snapshots_loaded, 1);
	cr_assert_eq(st.replayed, 45);
	self_query_all(db, &s, NULL, NULL);
	{
		anc_info *info;
		anc_error err;
		cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
		cr_assert_eq(info->collections[0].live, 90);
		cr_assert_eq(info->collections[0].contracts[0].vectors, 90);
		cr_assert_eq(info->collections[0].contracts[0].index_ntotal, 90);
		anc_info_free(info);
	}
	tu_db_close(db);
	/* And the snapshot written by that close is now complete. */
	db = db_open(dir);
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.snapshots_loaded, 1);
	cr_assert_eq(st.replayed, 0);
	self_query_all(db, &s, NULL, NULL);
	tu_db_close(db);
	tu_sotu_free(&s);
}

/* A snapshot that claims more than LMDB has (written after commits that
 * were then lost) must not be trusted. */
Test(engine, snapshot_ahead_of_lmdb_is_rebuilt)
{
	char dir[TU_PATH_MAX], dir2[TU_PATH_MAX];
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_open_stats st;
	anc_db *db;
	char cmd[3 * TU_PATH_MAX];

	/* tu_tmpdir returns a static buffer: copy. */
	snprintf(dir, sizeof dir, "%s", tu_tmpdir());
	snprintf(dir2, sizeof dir2, "%s", tu_tmpdir());
	tu_sotu_read(&s, COLL);
	/* dir: 45 passages. dir2: 90 passages, same collection/contract. */
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, 45);
	tu_db_close(db);
	db = db_open(dir2);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, 90);
	tu_db_close(db);
	{
		char from[TU_PATH_MAX];
		snprintf(from, sizeof from, "%s", snapshot_path(dir2, id));
		snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from,
		         snapshot_path(dir, id));
	}
	cr_assert_eq(system(cmd), 0);
	db = db_open(dir);
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.rebuilt, 1);
	cr_assert_eq(st.snapshots_loaded, 0);
	{
		anc_query_result *qr;
		anc_error err;
		cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs + 50 * s.dim, 1,
		                          s.dim, 45, 0, &qr, &err),
		             ANC_OK);
		cr_assert_eq(qr->lists[0].nhits, 45);
		for (uint32_t j = 0; j < qr->lists[0].nhits; j++)
			cr_assert_lt(tu_sotu_row(&s, qr->lists[0].hits[j].anchor),
			             45);
		anc_query_result_free(qr);
	}
	tu_db_close(db);
	tu_sotu_free(&s);
}

Test(engine, revisions_and_unchanged)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_error err;
	anc_upsert_result res;
	anc_resolved *rs = NULL;
	anc_record r;
	uint64_t seq0, seq;
	anc_db *db;
	/* {"k": 1} and {"k": 2} */
	static const uint8_t meta1[] = {0x81, 0xa1, 'k', 0x01};
	static const uint8_t meta2[] = {0x81, 0xa1, 'k', 0x02};

	tu_sotu_read(&s, COLL);
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);

	r = tu_sotu_record(&s, 7);
	{
		anc_info *info;
		anc_db_info(db, &info, &err);
		seq0 = info->seq;
		anc_info_free(info);
	}
	/* Identical: nothing written, seq stays. */
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(res.status, ANC_UPSERT_UNCHANGED);
	cr_assert_eq(res.revision, 1);
	cr_assert_eq(seq, seq0);
	/* text NULL keeps the text: still unchanged. */
	r.text = NULL;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UNCHANGED);
	/* New text: revision 2. */
	r.text = "edited passage seven";
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UPDATED);
	cr_assert_eq(res.revision, 2);
	cr_assert_gt(seq, seq0);
	cr_assert_str_eq(res.anchor, s.anchors[7]);
	/* Meta added: revision 3; text NULL keeps the edited text. */
	r.text = NULL;
	r.meta = meta1;
	r.meta_len = sizeof meta1;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UPDATED);
	cr_assert_eq(res.revision, 3);
	/* Same meta again, meta NULL (keeps): unchanged. */
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UNCHANGED);
	r.meta = NULL;
	r.meta_len = 0;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UNCHANGED);
	r.meta = meta2;
	r.meta_len = sizeof meta2;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.revision, 4);

	cr_assert_eq(anc_db_resolve(db, COLL, &s.anchors[7], 1, &rs, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(rs[0].status, ANC_ANCHOR_LIVE);
	cr_assert_eq(rs[0].revision, 4);
	cr_assert_str_eq(rs[0].text, "edited passage seven");
	cr_assert_eq(rs[0].meta_len, sizeof meta2);
	cr_assert_eq(memcmp(rs[0].meta, meta2, sizeof meta2), 0);
	{
		char h[33];
		anc_hash_hex16("edited passage seven", 20, h);
		cr_assert_str_eq(rs[0].hash, h);
	}
	anc_resolved_free(rs, 1);

	/* New vector (passage 8's): the index follows, and only one entry of
	 * the anchor is ever returned. */
	r.vec = s.vecs + 8 * s.dim;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UPDATED);
	cr_assert_eq(res.revision, 5);
	{
		anc_query_result *qr;
		cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs + 7 * s.dim, 1,
		                          s.dim, 90, 0, &qr, &err),
		             ANC_OK);
		cr_assert_eq(qr->lists[0].nhits, 90);
		int seen7 = 0;
		for (uint32_t j = 0; j < 90; j++)
			seen7 += strcmp(qr->lists[0].hits[j].anchor, s.anchors[7]) == 0;
		cr_assert_eq(seen7, 1);
		anc_query_result_free(qr);
		cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs + 8 * s.dim, 1,
		                          s.dim, 2, 0, &qr, &err),
		             ANC_OK);
		/* rows 7 and 8 now have the same vector */
		cr_assert_float_eq(qr->lists[0].hits[0].score, 1.0f, 1e-3);
		cr_assert_float_eq(qr->lists[0].hits[1].score, 1.0f, 1e-3);
		anc_query_result_free(qr);
	}
	/* Survives reopen. */
	tu_db_close(db);
	db = db_open(dir);
	cr_assert_eq(anc_db_resolve(db, COLL, &s.anchors[7], 1, &rs, &err),
	             ANC_OK);
	cr_assert_eq(rs[0].revision, 5);
	anc_resolved_free(rs, 1);
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &res, &seq, &err),
	             ANC_OK);
	cr_assert_eq(res.status, ANC_UPSERT_UNCHANGED);
	tu_db_close(db);
	tu_sotu_free(&s);
}

static void
delete_checks(anc_index_kind kind)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_error err;
	anc_delete_result dr[4];
	anc_anchor_str del[4];
	anc_resolved *rs;
	anc_info *info;
	uint64_t seq;
	int skip[TU_SOTU_ROWS] = {0};
	anc_db *db;
	static const int rows[3] = {0, 33, 89};

	tu_sotu_read(&s, COLL);
	db = db_open(dir);
	sotu_setup(db, kind, id);
	sotu_load(db, &s, 0, s.n);
	for (int i = 0; i < 3; i++) {
		memcpy(del[i], s.anchors[rows[i]], sizeof del[i]);
		skip[rows[i]] = 1;
	}
	tu_anchor(COLL, "nowhere", "0", del[3]);
	cr_assert_eq(anc_db_delete(db, COLL, del, 4, dr, &seq, &err), ANC_OK,
	             "%s", err.msg);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(dr[i].status, ANC_DELETE_DELETED);
		cr_assert_eq(dr[i].revision, 2);
		cr_assert_str_eq(dr[i].anchor, del[i]);
	}
	cr_assert_eq(dr[3].status, ANC_DELETE_UNKNOWN);
	cr_assert_eq(anc_db_delete(db, COLL, del, 2, dr, &seq, &err), ANC_OK);
	cr_assert_eq(dr[0].status, ANC_DELETE_ALREADY);
	cr_assert_eq(dr[1].status, ANC_DELETE_ALREADY);

	cr_assert_eq(anc_db_resolve(db, COLL, del, 4, &rs, &err), ANC_OK);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(rs[i].status, ANC_ANCHOR_DELETED);
		cr_assert_eq(rs[i].revision, 2);
		cr_assert_null(rs[i].text);
		cr_assert_str_eq(rs[i].source, s.source[rows[i]]);
		cr_assert_str_eq(rs[i].hash, "");
	}
	cr_assert_eq(rs[3].status, ANC_ANCHOR_UNKNOWN);
	cr_assert_null(rs[3].source);
	anc_resolved_free(rs, 4);

	/* Pins ride along with a query: in the order given, resolved as
	 * resolve does (live with text, deleted, unknown), whatever the
	 * search finds; a malformed pin refuses the query. */
	{
		anc_anchor_str pins[3];
		anc_query_opts qo;
		anc_query_result *qr = NULL;
		memcpy(pins[0], s.anchors[5], sizeof pins[0]);
		memcpy(pins[1], del[0], sizeof pins[1]);
		memcpy(pins[2], del[3], sizeof pins[2]);
		memset(&qo, 0, sizeof qo);
		qo.pins = (const anc_anchor_str *)pins;
		qo.npins = 3;
		cr_assert_eq(anc_db_query2(db, COLL, NULL, s.vecs, 1, s.dim, 3, 0,
		                           &qo, &qr, &err), ANC_OK, "%s", err.msg);
		cr_assert_eq(qr->npinned, 3);
		cr_assert_eq(qr->lists[0].nhits, 3);
		cr_assert_str_eq(qr->pinned[0].anchor, s.anchors[5]);
		cr_assert_eq(qr->pinned[0].status, ANC_ANCHOR_LIVE);
		cr_assert_str_eq(qr->pinned[0].text, s.text[5]);
		cr_assert_eq(qr->pinned[1].status, ANC_ANCHOR_DELETED);
		cr_assert_null(qr->pinned[1].text);
		cr_assert_eq(qr->pinned[2].status, ANC_ANCHOR_UNKNOWN);
		anc_query_result_free(qr);
		qr = NULL;
		memcpy(pins[1], "not-an-anchor-at-all-00000", sizeof pins[1]);
		cr_assert_eq(anc_db_query2(db, COLL, NULL, s.vecs, 1, s.dim, 3, 0,
		                           &qo, &qr, &err), ANC_EINVAL);
		cr_assert(strstr(err.msg, "pins") != NULL, "%s", err.msg);
		cr_assert_null(qr);
	}

	self_query_all(db, &s, NULL, skip);
	/* The deleted vectors themselves, asking for everything. */
	for (int i = 0; i < 3; i++) {
		anc_query_result *qr;
		cr_assert_eq(anc_db_query(db, COLL, NULL,
		                          s.vecs + (size_t)rows[i] * s.dim, 1, s.dim,
		                          100, 0, &qr, &err),
		             ANC_OK);
		/* Flat is exhaustive; HNSW, even asked for every entry, may
		 * miss a few (it is approximate), never return a deleted one. */
		if (kind == ANC_INDEX_FLAT)
			cr_assert_eq(qr->lists[0].nhits, 87);
		else
			cr_assert(qr->lists[0].nhits >= 84 &&
			              qr->lists[0].nhits <= 87,
			          "%u hits", qr->lists[0].nhits);
		for (uint32_t j = 0; j < qr->lists[0].nhits; j++)
			cr_assert(!skip[tu_sotu_row(&s, qr->lists[0].hits[j].anchor)]);
		anc_query_result_free(qr);
	}
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
	cr_assert_eq(info->collections[0].live, 87);
	cr_assert_eq(info->collections[0].deleted, 3);
	cr_assert_eq(info->collections[0].contracts[0].vectors, 87);
	cr_assert_eq(info->collections[0].contracts[0].index_ntotal, 90);
	anc_info_free(info);

	/* Still deleted after a reopen from the snapshot and after a rebuild. */
	tu_db_close(db);
	db = db_open(dir);
	self_query_all(db, &s, NULL, skip);
	tu_db_close(db);
	cr_assert_eq(unlink(snapshot_path(dir, id)), 0);
	db = db_open(dir);
	self_query_all(db, &s, NULL, skip);
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
	cr_assert_eq(info->collections[0].contracts[0].index_ntotal, 87);
	anc_info_free(info);

	/* Re-upsert revives with the next revision. */
	{
		anc_record r = tu_sotu_record(&s, 33);
		anc_upsert_result ur;
		cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &ur, NULL, &err),
		             ANC_OK);
		cr_assert_eq(ur.status, ANC_UPSERT_UPDATED);
		cr_assert_eq(ur.revision, 3);
		skip[33] = 0;
		anc_query_result *qr;
		cr_assert_eq(anc_db_query(db, COLL, NULL, r.vec, 1, s.dim, 1, 0,
		                          &qr, &err),
		             ANC_OK);
		cr_assert_str_eq(qr->lists[0].hits[0].anchor, s.anchors[33]);
		cr_assert_eq(qr->lists[0].hits[0].revision, 3);
		anc_query_result_free(qr);
	}
	tu_db_close(db);
	tu_sotu_free(&s);
}

Test(engine, delete_flat) { delete_checks(ANC_INDEX_FLAT); }
Test(engine, delete_hnsw) { delete_checks(ANC_INDEX_HNSW); }

/* Every bad input gets its own code, a message naming what is wrong, and
 * leaves the data as it was. */
Test(engine, error_paths)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_error err;
	anc_upsert_result res[3];
	anc_record r[3];
	anc_query_result *qr = NULL;
	anc_resolved *rs = NULL;
	anc_db *db;
	float *v;
	uint64_t seq;
	char big[ANC_STR_MAX + 2];
	float *llama = NULL;
	uint32_t ln, ld;

	tu_sotu_read(&s, COLL);
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);
	llama = tu_fvecs(LLAMA_FVECS, 0, 2, &ln, &ld);
	cr_assert_eq(ld, 4096);

	v = malloc(s.dim * sizeof *v);
	memcpy(v, s.vecs, s.dim * sizeof *v);
	memset(r, 0, sizeof r);
	for (int i = 0; i < 3; i++) {
		r[i].source = "new-source";
		r[i].chunk = i == 0 ? "a" : i == 1 ? "b" : "c";
		r[i].text = "new text";
		r[i].vec = s.vecs + (size_t)(10 + i) * s.dim;
		r[i].dim = s.dim;
	}

	/* Wrong dimension: the other model's 4096-d vector. */
	r[1].vec = llama;
	r[1].dim = 4096;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_EDIM);
	cr_assert_eq(err.code, ANC_EDIM);
	cr_assert(strstr(err.msg, "expects dim 384, got 4096") != NULL, "%s",
	          err.msg);
	cr_assert(strstr(err.msg, id) != NULL, "%s", err.msg);
	cr_assert(strstr(err.msg, "'sotu'") != NULL, "%s", err.msg);
	r[1].vec = s.vecs + 11 * s.dim;
	r[1].dim = s.dim;

	/* NaN, Inf: record and component named. */
	v[5] = NAN;
	r[2].vec = v;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_ENONFINITE);
	cr_assert(strstr(err.msg, "record 2") && strstr(err.msg, "component 5") &&
	              strstr(err.msg, "NaN"),
	          "%s", err.msg);
	v[5] = -INFINITY;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_ENONFINITE);
	cr_assert(strstr(err.msg, "Inf") != NULL, "%s", err.msg);
	/* Finite, but its distances would overflow float32 and drop it out
	 * of every answer: refused, naming the norm. */
	v[5] = 1e20f;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_ENONFINITE);
	cr_assert(strstr(err.msg, "record 2") &&
	          strstr(err.msg, "squared norm 1e+40") &&
	          strstr(err.msg, "overflow float32"), "%s", err.msg);
	{
		float big[4] = {9e18f, 0, 0, 0}, over[4] = {1e19f, 0, 0, 0};
		cr_assert_eq(anc_vector_check_finite(big, 4, &err), ANC_OK,
		             "%s", err.msg);
		cr_assert_eq(anc_vector_check_finite(over, 4, &err),
		             ANC_ENONFINITE);
	}

	/* Norm off for a normalize:true contract. */
	for (uint32_t i = 0; i < s.dim; i++)
		v[i] = s.vecs[i] * 1.5f;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_EVIOLATION);
	cr_assert(strstr(err.msg, "norm 1.5") != NULL, "%s", err.msg);
	memset(v, 0, s.dim * sizeof *v);
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_EVIOLATION);
	r[2].vec = s.vecs + 12 * s.dim;

	/* Unknown collection, bad collection name, unknown contract. */
	cr_assert_eq(anc_db_upsert(db, "nope", NULL, r, 3, res, &seq, &err),
	             ANC_ENOCOLL);
	cr_assert(strstr(err.msg, "'nope'") != NULL, "%s", err.msg);
	cr_assert_eq(anc_db_upsert(db, "bad name!", NULL, r, 3, res, &seq, &err),
	             ANC_EINVAL);
	cr_assert_eq(anc_db_upsert(db, NULL, NULL, r, 3, res, &seq, &err),
	             ANC_EINVAL);
	cr_assert_eq(anc_db_collection_create(db, "-x", NULL, &err), ANC_EINVAL);
	cr_assert_eq(anc_db_upsert(db, COLL, "0123456789abcdef", r, 3, res, &seq,
	                           &err),
	             ANC_ENOCONTRACT);
	cr_assert(strstr(err.msg, id) != NULL, "names the default: %s", err.msg);
	cr_assert_eq(anc_db_upsert(db, COLL, "minilm@2", r, 3, res, &seq, &err),
	             ANC_ENOCONTRACT);
	cr_assert_eq(anc_db_upsert(db, COLL, "zz", r, 3, res, &seq, &err),
	             ANC_EINVAL);

	/* Oversized and missing strings, bad meta. */
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	r[0].source = big;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_ETOOBIG);
	cr_assert(strstr(err.msg, "record 0") && strstr(err.msg, "source"),
	          "%s", err.msg);
	r[0].source = "new-source";
	r[1].chunk = big;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_ETOOBIG);
	r[1].chunk = NULL;
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_EINVAL);
	r[1].chunk = "b";
	r[1].source = "";
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
	             ANC_EINVAL);
	r[1].source = "new-source";
	{
		static const uint8_t notmap[] = {0x93, 1, 2, 3};
		static const uint8_t trunc[] = {0x82, 0xa1};
		r[2].meta = notmap;
		r[2].meta_len = sizeof notmap;
		cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
		             ANC_EINVAL);
		cr_assert(strstr(err.msg, "not a msgpack map"), "%s", err.msg);
		r[2].meta = trunc;
		r[2].meta_len = sizeof trunc;
		cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
		             ANC_EINVAL);
		/* {"a":1,"a":2}, and the same inside a nested map: refused;
		 */
		static const uint8_t dup[] = {0x82, 0xa1, 'a', 1, 0xa1, 'a', 2};
		static const uint8_t dup2[] = {0x81, 0xa1, 'm', 0x82, 0xa1, 'k', 1,
		                               0xa1, 'k', 2};
		const uint8_t *dups[2] = {dup, dup2};
		const uint32_t dlen[2] = {sizeof dup, sizeof dup2};
		for (int d = 0; d < 2; d++) {
			r[2].meta = dups[d];
			r[2].meta_len = dlen[d];
			cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq,
			                           &err), ANC_EINVAL);
			cr_assert(strstr(err.msg, "repeats a key"), "%s", err.msg);
		}
		r[2].meta = NULL;
		r[2].meta_len = 5;
		cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err),
		             ANC_EINVAL);
		r[2].meta_len = 0;
	}

	/* Queries: wrong dim, NaN, k 0, k too large, bad ref. */
	cr_assert_eq(anc_db_query(db, COLL, NULL, llama, 1, 4096, 5, 0, &qr,
	                          &err),
	             ANC_EDIM);
	cr_assert(strstr(err.msg, "expects dim 384, got 4096"), "%s", err.msg);
	cr_assert_null(qr);
	memcpy(v, s.vecs, s.dim * sizeof *v);
	v[3] = NAN;
	cr_assert_eq(anc_db_query(db, COLL, NULL, v, 1, s.dim, 5, 0, &qr, &err),
	             ANC_ENONFINITE);
	cr_assert(strstr(err.msg, "query 0") && strstr(err.msg, "component 3"),
	          "%s", err.msg);
	cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs, 1, s.dim, 0, 0, &qr,
	                          &err),
	             ANC_EINVAL);
	cr_assert_eq(anc_db_query(db, COLL, NULL, s.vecs, 1, s.dim, 1000000, 0,
	                          &qr, &err),
	             ANC_ETOOBIG);
	cr_assert_eq(anc_db_query(db, "nope", NULL, s.vecs, 1, s.dim, 5, 0, &qr,
	                          &err),
	             ANC_ENOCOLL);
	cr_assert_eq(anc_db_query(db, COLL, "deadbeefdeadbeef", s.vecs, 1, s.dim,
	                          5, 0, &qr, &err),
	             ANC_ENOCONTRACT);

	/* Resolve and delete with a malformed anchor: nothing happens. */
	{
		anc_anchor_str bad[2];
		anc_delete_result dr[2];
		memcpy(bad[0], s.anchors[0], sizeof bad[0]);
		snprintf(bad[1], sizeof bad[1], "%s", "not-an-anchor");
		cr_assert_eq(anc_db_resolve(db, COLL, bad, 2, &rs, &err),
		             ANC_EINVAL);
		cr_assert(strstr(err.msg, "anchor 1"), "%s", err.msg);
		cr_assert_eq(anc_db_delete(db, COLL, bad, 2, dr, &seq, &err),
		             ANC_EINVAL);
		cr_assert_eq(anc_db_delete(db, "nope", bad, 1, dr, &seq, &err),
		             ANC_ENOCOLL);
	}

	/* Contracts: bad ones, and the same ID with another index spec. */
	{
		anc_contract c;
		contract_minilm(&c, ANC_INDEX_FLAT);
		c.dim = 0;
		cr_assert_eq(anc_db_contract_register(db, COLL, &c, id, NULL, &err),
		             ANC_EINVAL);
		cr_assert(strstr(err.msg, "dim"), "%s", err.msg);
		contract_minilm(&c, ANC_INDEX_HNSW);
		anc_contract_id_str id2;
		cr_assert_eq(anc_db_contract_register(db, COLL, &c, id2, NULL, &err),
		             ANC_ECONFLICT);
		cr_assert(strstr(err.msg, "flat") && strstr(err.msg, "hnsw"), "%s",
		          err.msg);
		/* The same name@revision with a field of the ID changed is
		 * another contract: refused, naming the field and both values
		 * (else "name@revision" would pick one of two at random). */
		contract_minilm(&c, ANC_INDEX_FLAT);
		snprintf(c.preprocess, sizeof c.preprocess, "lowercase");
		cr_assert_eq(anc_db_contract_register(db, COLL, &c, id2, NULL, &err),
		             ANC_ECONFLICT);
		cr_assert(strstr(err.msg, "already registered as contract") &&
		          strstr(err.msg, "preprocess \"\"; got \"lowercase\""),
		          "%s", err.msg);
		contract_minilm(&c, ANC_INDEX_FLAT);
		c.dim = 768;
		cr_assert_eq(anc_db_contract_register(db, COLL, &c, id2, NULL, &err),
		             ANC_ECONFLICT);
		cr_assert(strstr(err.msg, "dim 384; got 768"), "%s", err.msg);
		cr_assert_eq(anc_db_contract_register(db, "nope", &c, id2, NULL,
		                                      &err),
		             ANC_ENOCOLL);
	}

	/* Nothing of the refused batches was stored, and the data is intact. */
	{
		anc_anchor_str a[3];
		for (int i = 0; i < 3; i++)
			tu_anchor(COLL, "new-source", i == 0 ? "a" : i == 1 ? "b" : "c",
			          a[i]);
		cr_assert_eq(anc_db_resolve(db, COLL, a, 3, &rs, &err), ANC_OK);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(rs[i].status, ANC_ANCHOR_UNKNOWN);
		anc_resolved_free(rs, 3);
		anc_info *info;
		cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
		cr_assert_eq(info->ncollections, 1);
		cr_assert_eq(info->collections[0].live, 90);
		cr_assert_eq(info->collections[0].ncontracts, 1);
		cr_assert_eq(info->collections[0].contracts[0].vectors, 90);
		anc_info_free(info);
		self_query_all(db, &s, NULL, NULL);
	}
	/* And the corrected batch goes in. */
	cr_assert_eq(anc_db_upsert(db, COLL, NULL, r, 3, res, &seq, &err), ANC_OK,
	             "%s", err.msg);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(res[i].status, ANC_UPSERT_CREATED);
	tu_db_close(db);
	free(v);
	free(llama);
	tu_sotu_free(&s);
}

/* A second contract (the 4096-d model) on the same passages: queries are
 * routed by contract, and delete removes the vectors of both. */
Test(engine, two_contracts)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id, id2;
	anc_contract c;
	anc_error err;
	anc_db *db;
	float *llama = NULL;
	uint32_t ln, ld;
	anc_record *r;
	anc_upsert_result *res;
	anc_query_result *qr;

	tu_sotu_read(&s, COLL);
	llama = tu_fvecs(LLAMA_FVECS, 0, UINT32_MAX, &ln, &ld);
	cr_assert_eq(ln, 90);
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);
	anc_contract_init(&c);
	snprintf(c.name, sizeof c.name, "llama");
	snprintf(c.model, sizeof c.model, "unknown-llama-7b-embedder");
	snprintf(c.revision, sizeof c.revision, "1");
	c.dim = 4096;
	c.metric = ANC_METRIC_COSINE;
	c.normalize = 0;
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, id2, NULL, &err),
	             ANC_OK, "%s", err.msg);
	r = calloc(ln, sizeof *r);
	res = calloc(ln, sizeof *res);
	for (uint32_t i = 0; i < ln; i++) {
		r[i].source = s.source[i];
		r[i].chunk = s.chunk[i];
		r[i].vec = llama + (size_t)i * ld;
		r[i].dim = ld;
	}
	cr_assert_eq(anc_db_upsert(db, COLL, "llama@1", r, ln, res, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(res[0].status, ANC_UPSERT_UPDATED);
	/* Default contract refuses the 4096-d vector; the named one takes it. */
	cr_assert_eq(anc_db_query(db, COLL, NULL, llama, 1, ld, 3, 1, &qr, &err),
	             ANC_EDIM);
	cr_assert_eq(anc_db_query(db, COLL, id2, llama + 20 * ld, 1, ld, 3, 1,
	                          &qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(qr->lists[0].hits[0].anchor, s.anchors[20]);
	cr_assert_str_eq(qr->lists[0].hits[0].text, s.text[20]);
	cr_assert_str_eq(qr->prov.contract, id2);
	anc_query_result_free(qr);
	{
		anc_delete_result dr;
		cr_assert_eq(anc_db_delete(db, COLL, &s.anchors[20], 1, &dr, NULL,
		                           &err),
		             ANC_OK);
		cr_assert_eq(anc_db_query(db, COLL, id2, llama + 20 * ld, 1, ld,
		                          90, 0, &qr, &err),
		             ANC_OK);
		cr_assert_eq(qr->lists[0].nhits, 89);
		anc_query_result_free(qr);
		anc_info *info;
		cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
		cr_assert_eq(info->collections[0].ncontracts, 2);
		cr_assert_eq(info->collections[0].contracts[1].state,
		             ANC_CSTATE_MIGRATING);
		cr_assert_eq(info->collections[0].contracts[0].vectors, 89);
		cr_assert_eq(info->collections[0].contracts[1].vectors, 89);
		anc_info_free(info);
	}
	tu_db_close(db);
	db = db_open(dir);
	{
		anc_db_open_stats st;
		anc_db_get_open_stats(db, &st);
		cr_assert_eq(st.indexes, 2);
		cr_assert_eq(st.snapshots_loaded, 2);
	}
	cr_assert_eq(anc_db_query(db, COLL, "llama@1", llama + 21 * ld, 1, ld, 1,
	                          0, &qr, &err),
	             ANC_OK);
	cr_assert_str_eq(qr->lists[0].hits[0].anchor, s.anchors[21]);
	anc_query_result_free(qr);
	tu_db_close(db);
	free(r);
	free(res);
	free(llama);
	tu_sotu_free(&s);
}

/* Replacing every vector leaves the index mostly stale: the engine must
 * rebuild it in place (generation bumps) and keep answering right. */
Test(engine, stale_rebuild)
{
	const char *dir = tu_tmpdir();
	anc_db *db = db_open(dir);
	anc_contract c;
	anc_error err;
	enum { N = 3000, D = 8 };
	static float v[N * D];
	static anc_record r[N];
	static anc_upsert_result res[N];
	static char chunks[N][12];
	anc_query_result *qr;
	uint64_t gen0;

	cr_assert_eq(anc_db_collection_create(db, "syn", NULL, &err), ANC_OK);
	tu_contract_l2(&c, "syn", "synthetic", D);
	cr_assert_eq(anc_db_contract_register(db, "syn", &c, NULL, NULL, &err),
	             ANC_OK, "%s", err.msg);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < N; i++) {
			for (int d = 0; d < D; d++)
				v[i * D + d] = (float)(i * 10 + d + round);
			snprintf(chunks[i], sizeof chunks[i], "%d", i);
			r[i].source = "s";
			r[i].chunk = chunks[i];
			r[i].vec = v + i * D;
			r[i].dim = D;
		}
		cr_assert_eq(anc_db_upsert(db, "syn", NULL, r, N, res, NULL, &err),
		             ANC_OK, "%s", err.msg);
		cr_assert_eq(anc_db_query(db, "syn", NULL, v + 1234 * D, 1, D, 3,
		                          0, &qr, &err),
		             ANC_OK);
		cr_assert_str_eq(qr->lists[0].hits[0].chunk, "1234");
		cr_assert_float_eq(qr->lists[0].hits[0].score, 0.0f, 1e-6);
		if (round == 0)
			gen0 = qr->prov.generation;
		else
			cr_assert_gt(qr->prov.generation, gen0,
			             "index was not rebuilt");
		cr_assert_eq(qr->prov.exact, 1);
		anc_query_result_free(qr);
	}
	anc_info *info;
	cr_assert_eq(anc_db_info(db, &info, &err), ANC_OK);
	cr_assert_eq(info->collections[0].contracts[0].vectors, N);
	cr_assert_eq(info->collections[0].contracts[0].index_ntotal, N);
	anc_info_free(info);
	tu_db_close(db);
}

/* Auto-snapshot after snapshot_every vectors, without close. */
Test(engine, snapshot_every)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_options o;
	anc_db *db;
	struct stat sb;

	tu_sotu_read(&s, COLL);
	tu_db_options(&o, TU_DB_DRIFT | TU_DB_CALIB, 1ull << 30);
	o.snapshot_every = 40;
	db = tu_db_open_with(dir, &o);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, 30);
	cr_assert_neq(stat(snapshot_path(dir, id), &sb), 0);
	sotu_load(db, &s, 30, 50);
	cr_assert_eq(stat(snapshot_path(dir, id), &sb), 0);
	tu_db_close(db);
	tu_sotu_free(&s);
}

/* ---- recall on sift5k ---------------------------------------------------- */

static anc_db *
sift_load(const char *dir, anc_index_kind kind, float **base, uint32_t *nb)
{
	anc_db *db = db_open(dir);
	anc_contract c;
	anc_error err;
	uint32_t d;
	anc_record *r;
	anc_upsert_result *res;
	char(*chunks)[12];

	*base = tu_fvecs("sift5k/sift5k_base.fvecs", 0, UINT32_MAX, nb, &d);
	cr_assert_eq(*nb, 5000);
	cr_assert_eq(d, 128);
	cr_assert_eq(anc_db_collection_create(db, "sift", NULL, &err), ANC_OK);
	anc_contract_init(&c);
	snprintf(c.name, sizeof c.name, "sift");
	snprintf(c.model, sizeof c.model, "sift-descriptor");
	snprintf(c.revision, sizeof c.revision, "1");
	c.dim = 128;
	c.metric = ANC_METRIC_L2;
	c.normalize = 0;
	c.index.kind = kind;
	if (kind == ANC_INDEX_HNSW) {
		c.index.m = 32;
		c.index.ef_construction = 200;
		c.index.ef_search = 128;
	}
	cr_assert_eq(anc_db_contract_register(db, "sift", &c, NULL, NULL, &err),
	             ANC_OK, "%s", err.msg);
	r = calloc(*nb, sizeof *r);
	res = calloc(*nb, sizeof *res);
	chunks = calloc(*nb, sizeof *chunks);
	for (uint32_t i = 0; i < *nb; i++) {
		snprintf(chunks[i], sizeof chunks[i], "%u", i);
		r[i].source = "sift5k";
		r[i].chunk = chunks[i];
		r[i].vec = *base + (size_t)i * 128;
		r[i].dim = 128;
	}
	cr_assert_eq(anc_db_upsert(db, "sift", NULL, r, *nb, res, NULL, &err),
	             ANC_OK, "%s", err.msg);
	free(r);
	free(res);
	free(chunks);
	return db;
}

static double
sift_recall(anc_db *db, const char *qfile, const char *gtfile, int expect_exact)
{
	float *q = NULL;
	int32_t *gt = NULL;
	uint32_t nq, d, ng, gd;
	anc_error err;
	anc_query_result *qr;
	uint64_t found = 0;

	q = tu_fvecs(qfile, 0, UINT32_MAX, &nq, &d);
	gt = tu_ivecs(gtfile, 0, UINT32_MAX, &ng, &gd);
	cr_assert_eq(nq, ng);
	cr_assert_eq(anc_db_query(db, "sift", NULL, q, nq, d, 10, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(qr->prov.exact, expect_exact);
	for (uint32_t i = 0; i < nq; i++) {
		cr_assert_eq(qr->lists[i].nhits, 10);
		for (uint32_t j = 0; j < 10; j++) {
			long row = strtol(qr->lists[i].hits[j].chunk, NULL, 10);
			for (uint32_t g = 0; g < 10; g++)
				if (gt[(size_t)i * gd + g] == row) {
					found++;
					break;
				}
		}
	}
	anc_query_result_free(qr);
	free(q);
	free(gt);
	return (double)found / (10.0 * nq);
}

Test(recall, sift5k_flat_exact)
{
	const char *dir = tu_tmpdir();
	float *base;
	uint32_t nb;
	anc_db *db = sift_load(dir, ANC_INDEX_FLAT, &base, &nb);
	double r = sift_recall(db, "sift5k/sift5k_query3.fvecs",
	                       "sift5k/sift5k_query3_groundtruth_l2_k100.ivecs", 1);
	cr_log_info("sift5k flat recall@10 (3 queries) = %.4f", r);
	cr_assert_float_eq(r, 1.0, 1e-9);
	r = sift_recall(db, "sift5k/siftsmall100_query.fvecs",
	                "sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100.ivecs",
	                1);
	cr_log_info("sift5k flat recall@10 (100 queries) = %.4f", r);
	cr_assert_geq(r, 0.999);
	tu_db_close(db);
	free(base);
}

Test(recall, sift5k_hnsw)
{
	const char *dir = tu_tmpdir();
	float *base;
	uint32_t nb;
	anc_db *db = sift_load(dir, ANC_INDEX_HNSW, &base, &nb);
	const char *qf = "sift5k/siftsmall100_query.fvecs";
	const char *gf =
	    "sift5k/siftsmall100_query_vs_sift5k_groundtruth_l2_k100.ivecs";
	double r = sift_recall(db, qf, gf, 0);
	fprintf(stderr, "sift5k HNSW(M32, efC200, efS128) recall@10 = %.4f\n", r);
	cr_assert_geq(r, 0.95);
	tu_db_close(db);
	/* Same after loading the snapshot. */
	db = db_open(dir);
	anc_db_open_stats st;
	anc_db_get_open_stats(db, &st);
	cr_assert_eq(st.snapshots_loaded, 1);
	r = sift_recall(db, qf, gf, 0);
	fprintf(stderr, "sift5k HNSW after snapshot load recall@10 = %.4f\n", r);
	cr_assert_geq(r, 0.95);
	tu_db_close(db);
	free(base);
}

/* ---- threads ----------------------------------------------------------------- */

#include <pthread.h>

typedef struct {
	anc_db *db;
	const tu_sotu *s;
	int stop;
	int bad;
	long queries;
} qthread;

static void *
query_loop(void *arg)
{
	qthread *t = arg;
	anc_error err;
	uint32_t i = 0;
	while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
		anc_query_result *qr;
		uint32_t row = i++ % 45; /* rows 0..44 are never touched */
		if (anc_db_query(t->db, COLL, NULL, t->s->vecs + (size_t)row * t->s->dim,
		                 1, t->s->dim, 5, 0, &qr, &err) != ANC_OK) {
			t->bad++;
			continue;
		}
		if (qr->lists[0].nhits == 0 ||
		    strcmp(qr->lists[0].hits[0].anchor, t->s->anchors[row]) != 0)
			t->bad++;
		anc_query_result_free(qr);
		t->queries++;
	}
	return NULL;
}

/* Queries keep answering right while a writer inserts, edits and deletes
 * other passages (and triggers snapshots). */
Test(engine, queries_during_writes)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_options o;
	anc_db *db;
	anc_error err;
	qthread t[2];
	pthread_t th[2];

	tu_sotu_read(&s, COLL);
	tu_db_options(&o, TU_DB_DRIFT | TU_DB_CALIB, 1ull << 30);
	o.snapshot_every = 20;
	db = tu_db_open_with(dir, &o);
	sotu_setup(db, ANC_INDEX_HNSW, id);
	sotu_load(db, &s, 0, 45);
	for (int i = 0; i < 2; i++) {
		t[i] = (qthread){.db = db, .s = &s};
		cr_assert_eq(pthread_create(&th[i], NULL, query_loop, &t[i]), 0);
	}
	for (int round = 0; round < 20; round++) {
		anc_record r = {0};
		anc_upsert_result ur;
		anc_delete_result dr;
		char text[32];
		uint32_t row = 45 + (uint32_t)round % 45;
		snprintf(text, sizeof text, "round %d", round);
		r.source = s.source[row];
		r.chunk = s.chunk[row];
		r.text = text;
		r.vec = s.vecs + (size_t)row * s.dim;
		r.dim = s.dim;
		cr_assert_eq(anc_db_upsert(db, COLL, NULL, &r, 1, &ur, NULL, &err),
		             ANC_OK, "%s", err.msg);
		if (round % 3 == 0)
			cr_assert_eq(anc_db_delete(db, COLL, &s.anchors[row], 1, &dr,
			                           NULL, &err),
			             ANC_OK);
	}
	for (int i = 0; i < 2; i++) {
		__atomic_store_n(&t[i].stop, 1, __ATOMIC_RELEASE);
		pthread_join(th[i], NULL);
		cr_assert_eq(t[i].bad, 0);
		cr_assert_gt(t[i].queries, 0);
	}
	tu_db_close(db);
	tu_sotu_free(&s);
}

/* ---- contract versions: two real models side by side ------------------------------
 *
 * The SOTU passages embedded by all-MiniLM-L6-v2 (384-d, normalised) and by
 * a 4096-d model (not normalised, norms 94-117). MiniLM is loaded with the
 * text; the 4096-d vectors are attached by (source, chunk) only, text NULL,
 * the way `anchorage load --contract V2` sends a JSONL without text.
 */


static void
contract_llama(anc_contract *c)
{
	anc_contract_init(c);
	snprintf(c->name, sizeof c->name, "llama");
	snprintf(c->model, sizeof c->model, "llama.cpp 4096-d embedder");
	snprintf(c->revision, sizeof c->revision, "1");
	c->dim = 4096;
	c->metric = ANC_METRIC_COSINE;
	c->normalize = 0; /* the model's vectors are not unit length */
}

static float *
llama_read(uint32_t *n)
{
	float *v = NULL;
	uint32_t d = 0;
	v = tu_fvecs(LLAMA_FVECS, 0, UINT32_MAX, n, &d);
	cr_assert_eq(d, 4096);
	cr_assert_eq(*n, TU_SOTU_ROWS);
	return v;
}

/* A fixed random Gaussian projection 4096 -> 384 (seeded LCG + Box-Muller)
 * of n rows; normalised to unit length when normalise is set. */
static float *
project_384(const float *x, uint32_t n, int normalise)
{
	float *p = malloc((size_t)4096 * 384 * sizeof *p);
	float *y = calloc((size_t)n * 384, sizeof *y);
	uint64_t st = 0x5eed1234abcdULL;
	cr_assert(p && y);
	for (size_t i = 0; i < (size_t)4096 * 384; i += 2) {
		double u1, u2;
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		u1 = ((double)(st >> 11) + 1.0) / 9007199254740993.0;
		st = st * 6364136223846793005ULL + 1442695040888963407ULL;
		u2 = (double)(st >> 11) / 9007199254740992.0;
		double r = sqrt(-2.0 * log(u1));
		p[i] = (float)(r * cos(2 * M_PI * u2));
		p[i + 1] = (float)(r * sin(2 * M_PI * u2));
	}
	for (uint32_t r = 0; r < n; r++) {
		for (uint32_t j = 0; j < 384; j++) {
			double acc = 0;
			for (uint32_t k = 0; k < 4096; k++)
				acc += (double)x[(size_t)r * 4096 + k] *
				       p[(size_t)k * 384 + j];
			y[(size_t)r * 384 + j] = (float)(acc / sqrt(384.0));
		}
		if (normalise) {
			double nn = anc_vector_norm(y + (size_t)r * 384, 384);
			for (uint32_t j = 0; j < 384; j++)
				y[(size_t)r * 384 + j] =
				    (float)(y[(size_t)r * 384 + j] / nn);
		}
	}
	free(p);
	return y;
}

/* Attach the 4096-d vectors to the existing passages, text NULL. */
static void
llama_load(anc_db *db, const tu_sotu *s, const float *lv, const char *ref)
{
	anc_record *r = calloc(s->n, sizeof *r);
	anc_upsert_result *res = calloc(s->n, sizeof *res);
	anc_error err;
	uint64_t seq;
	cr_assert(r && res);
	for (uint32_t i = 0; i < s->n; i++) {
		r[i].source = s->source[i];
		r[i].chunk = s->chunk[i];
		r[i].text = NULL;
		r[i].vec = lv + (size_t)i * 4096;
		r[i].dim = 4096;
	}
	cr_assert_eq(anc_db_upsert(db, COLL, ref, r, s->n, res, &seq, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < s->n; i++) {
		/* Same anchor as under MiniLM: the passage is shared, never
		 * created (unchanged when this vector was attached before). */
		cr_assert_str_eq(res[i].anchor, s->anchors[i]);
		cr_assert_neq(res[i].status, ANC_UPSERT_CREATED);
	}
	free(r);
	free(res);
}

static const anc_contract_info *
info_contract(const anc_info *in, const char *id, uint64_t *live)
{
	for (uint32_t i = 0; i < in->ncollections; i++)
		for (uint32_t j = 0; j < in->collections[i].ncontracts; j++)
			if (strcmp(in->collections[i].contracts[j].id, id) == 0) {
				*live = in->collections[i].live;
				return &in->collections[i].contracts[j];
			}
	cr_assert_fail("contract %s not in info", id);
	return NULL;
}

/* A snapshot that cannot be written (here a directory where the file
 * goes) does not turn a committed delete into an error, and the index
 * still counts it. */
Test(engine, delete_committed_when_snapshot_fails)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_db_options o;
	anc_db *db;
	anc_anchor_str del[1];
	anc_delete_result dr[1];
	anc_info *in = NULL;
	anc_error err;
	uint64_t seq, live = 0;

	tu_sotu_read(&s, COLL);
	tu_db_options(&o, 0, 1ull << 30);
	o.snapshot_every = 1;
	db = tu_db_open_with(dir, &o);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);
	tu_db_close(db);
	cr_assert_eq(unlink(snapshot_path(dir, id)), 0);
	cr_assert_eq(mkdir(snapshot_path(dir, id), 0700), 0);
	db = tu_db_open_with(dir, &o); /* rebuilt from LMDB */
	memcpy(del[0], s.anchors[7], sizeof del[0]);
	cr_assert_eq(anc_db_delete(db, COLL, del, 1, dr, &seq, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(dr[0].status, ANC_DELETE_DELETED);
	anc_db_write_stats ws;
	anc_db_get_write_stats(db, &ws);
	uint64_t failed = ws.snapshot_failures;
	cr_assert_geq(failed, 1, "the snapshot was tried and failed");
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info_contract(in, id, &live)->vectors, s.n - 1);
	cr_assert_eq(live, s.n - 1);
	anc_info_free(in);
	/* the next delete right after: no new snapshot attempt, no error */
	memcpy(del[0], s.anchors[8], sizeof del[0]);
	cr_assert_eq(anc_db_delete(db, COLL, del, 1, dr, &seq, &err), ANC_OK,
	             "%s", err.msg);
	anc_db_get_write_stats(db, &ws);
	cr_assert_eq(ws.snapshot_failures, failed, "retried at once");
	/* close snapshots, says it could not, and closes all the same */
	cr_assert_neq(anc_db_close(db, &err), ANC_OK);
	cr_assert(strstr(err.msg, "Is a directory") != NULL, "%s", err.msg);
	cr_assert_eq(rmdir(snapshot_path(dir, id)), 0);
	db = tu_db_open_with(dir, &o);
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info_contract(in, id, &live)->vectors, s.n - 2);
	anc_info_free(in);
	tu_db_close(db);
	tu_sotu_free(&s);
}

/* Query contract ref with vecs (n x dim): row i must find passage i
 * first. */
static void
self_first(anc_db *db, const tu_sotu *s, const char *ref, const float *vecs,
           uint32_t dim, const char *expect_id)
{
	anc_query_result *qr = NULL;
	anc_error err;
	cr_assert_eq(anc_db_query(db, COLL, ref, vecs, s->n, dim, 5, 1, &qr,
	                          &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(qr->prov.contract, expect_id);
	for (uint32_t i = 0; i < s->n; i++) {
		cr_assert_str_eq(qr->lists[i].hits[0].anchor, s->anchors[i],
		                 "contract %s, query %u", expect_id, i);
		cr_assert_str_eq(qr->lists[i].hits[0].text, s->text[i]);
	}
	anc_query_result_free(qr);
}

/* Scores stay within what the metric can take: the 90 normalised MiniLM
 * vectors queried with themselves (one batch: faiss's BLAS path) score at
 * most 1 (cosine), and SIFT vectors at least 0 (l2); each finds itself at
 * 1 / 0 up to rounding. */
Test(engine, scores_within_the_metric)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str id;
	anc_query_result *qr = NULL;
	anc_error err;
	anc_db *db;
	uint32_t over = 0;

	tu_sotu_read(&s, COLL);
	db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, id);
	sotu_load(db, &s, 0, s.n);
	cr_assert_eq(anc_db_query(db, COLL, id, s.vecs, s.n, s.dim, 5, 0, &qr,
	                          &err), ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < s.n; i++)
		for (uint32_t h = 0; h < qr->lists[i].nhits; h++) {
			float sc = qr->lists[i].hits[h].score;
			cr_assert_leq(sc, 1.0f, "query %u hit %u: %.9g", i, h,
			              (double)sc);
			over += h == 0 && sc == 1.0f;
			if (h == 0)
				cr_assert_geq(sc, 0.9999f);
		}
	anc_query_result_free(qr);
	tu_db_close(db);
	tu_sotu_free(&s);
	printf("cosine self-scores exactly 1: %u of 90\n", over);

	/* l2 over SIFT: 64 self-queries in one batch */
	float *base = NULL;
	uint32_t nb = 0;
	db = sift_load(tu_tmpdir(), ANC_INDEX_FLAT, &base, &nb);
	cr_assert_eq(anc_db_query(db, "sift", NULL, base, 64, 128, 3, 0, &qr,
	                          &err), ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < 64; i++) {
		for (uint32_t h = 0; h < qr->lists[i].nhits; h++)
			cr_assert_geq(qr->lists[i].hits[h].score, 0.0f);
		cr_assert_leq(qr->lists[i].hits[0].score, 1e-3f);
	}
	anc_query_result_free(qr);
	free(base);
	tu_db_close(db);
}

Test(engine, contracts_two_models_share_passages)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str mid, lid, got;
	anc_contract c;
	anc_error err;
	anc_info *in = NULL;
	anc_resolved *before = NULL, *after = NULL;
	uint64_t live = 0;
	uint32_t ln;
	int created;

	tu_sotu_read(&s, COLL);
	float *lv = llama_read(&ln);
	anc_db *db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, mid);
	contract_llama(&c);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, lid, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 1);
	/* Re-registering the same content: same ID, not created. */
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, got, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 0);
	cr_assert_str_eq(got, lid);
	/* A changed field is another contract. */
	snprintf(c.revision, sizeof c.revision, "2");
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, got, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 1);
	cr_assert_str_neq(got, lid);

	sotu_load(db, &s, 0, s.n);
	/* Before the 4096-d load: 0% coverage for llama. */
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info_contract(in, lid, &live)->vectors, 0);
	cr_assert_eq(info_contract(in, lid, &live)->state, ANC_CSTATE_MIGRATING);
	cr_assert_eq(info_contract(in, mid, &live)->state, ANC_CSTATE_DEFAULT);
	anc_info_free(in);
	cr_assert_eq(anc_db_resolve(db, COLL, s.anchors, s.n, &before, &err),
	             ANC_OK, "%s", err.msg);

	llama_load(db, &s, lv, "llama@1");

	/* Both contracts cover every live passage; text stored once. */
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK, "%s", err.msg);
	cr_assert_eq(info_contract(in, mid, &live)->vectors, 90);
	cr_assert_eq(info_contract(in, lid, &live)->vectors, 90);
	cr_assert_eq(live, 90);
	cr_assert_eq(in->collections[0].live, 90);
	anc_info_free(in);

	/* Each contract answers its own vectors with the passage itself. */
	self_first(db, &s, mid, s.vecs, 384, mid);
	self_first(db, &s, "minilm@1", s.vecs, 384, mid);
	self_first(db, &s, NULL, s.vecs, 384, mid); /* default */
	self_first(db, &s, lid, lv, 4096, lid);

	/* Cut over: the default moves, anchors resolve identically. */
	cr_assert_eq(anc_db_contract_promote(db, COLL, "llama@1", 0, got, NULL,
	                                     &err),
	             ANC_OK, "%s", err.msg);
	self_first(db, &s, NULL, lv, 4096, lid);
	self_first(db, &s, mid, s.vecs, 384, mid); /* old one still served */
	cr_assert_eq(anc_db_resolve(db, COLL, s.anchors, s.n, &after, &err),
	             ANC_OK, "%s", err.msg);
	for (uint32_t i = 0; i < s.n; i++) {
		cr_assert_eq(after[i].status, ANC_ANCHOR_LIVE);
		cr_assert_eq(after[i].revision, before[i].revision,
		             "attaching another contract's vector is not an "
		             "edit");
		cr_assert_str_eq(after[i].text, before[i].text);
		cr_assert_str_eq(after[i].hash, before[i].hash);
	}
	anc_resolved_free(before, s.n);
	anc_resolved_free(after, s.n);

	/* Durable: states and coverage after reopen. */
	tu_db_close(db);
	db = db_open(dir);
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK, "%s", err.msg);
	cr_assert_str_eq(in->collections[0].default_contract, lid);
	/* listed in registration order, as before the restart */
	cr_assert_str_eq(in->collections[0].contracts[0].id, mid);
	cr_assert_str_eq(in->collections[0].contracts[1].id, lid);
	cr_assert_eq(info_contract(in, lid, &live)->state, ANC_CSTATE_DEFAULT);
	cr_assert_eq(info_contract(in, mid, &live)->state, ANC_CSTATE_MIGRATING);
	cr_assert_eq(info_contract(in, lid, &live)->vectors, 90);
	anc_info_free(in);
	self_first(db, &s, NULL, lv, 4096, lid);
	tu_db_close(db);
	free(lv);
	tu_sotu_free(&s);
}

Test(engine, contract_violations_name_the_default)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str mid, lid;
	anc_contract c;
	anc_error err;
	anc_query_result *qr = NULL;
	uint32_t ln;

	tu_sotu_read(&s, COLL);
	float *lv = llama_read(&ln);
	anc_db *db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, mid);
	contract_llama(&c);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, lid, NULL, &err),
	             ANC_OK, "%s", err.msg);
	sotu_load(db, &s, 0, s.n);

	/* A 4096-d vector under the MiniLM contract: dimension error naming
	 * the default contract. */
	cr_assert_eq(anc_db_query(db, COLL, "minilm@1", lv, 1, 4096, 5, 0, &qr,
	                          &err),
	             ANC_EDIM);
	cr_assert(strstr(err.msg, "expects dim 384, got 4096") != NULL, "%s",
	          err.msg);
	cr_assert(strstr(err.msg, "; it is the default contract of collection "
	                 "'sotu' (minilm@1)") && strstr(err.msg, mid),
	          "%s", err.msg);

	/* A 384-d vector made from the 4096-d model by a fixed Gaussian
	 * projection, NOT normalised: its norm is nowhere near 1, so the
	 * normalize:true MiniLM contract refuses it (CONTRACT_VIOLATION) on
	 * queries as on upserts. Models differ in norm: this alone catches
	 * most same-dimension swaps. */
	float *pu = project_384(lv, 8, 0);
	cr_assert_eq(anc_db_query(db, COLL, mid, pu, 1, 384, 5, 0, &qr, &err),
	             ANC_EVIOLATION);
	cr_assert(strstr(err.msg, "requires unit vectors") && strstr(err.msg, mid),
	          "%s", err.msg);
	anc_record r = {.source = "x", .chunk = "1", .text = "t", .vec = pu,
	                .dim = 384};
	anc_upsert_result ur;
	cr_assert_eq(anc_db_upsert(db, COLL, mid, &r, 1, &ur, NULL, &err),
	             ANC_EVIOLATION, "%s", err.msg);

	/* The same projection, normalised: per vector it is a perfectly
	 * valid MiniLM-shaped vector (right dim, unit norm, finite), so the
	 * per-vector contract check CANNOT tell it apart and accepts it. It
	 * is caught by the canary check (contract_canaries test below:
	 * cosine with the registered MiniLM probes far below 0.99) and, on
	 * live traffic, by drift detection. */
	float *pn = project_384(lv, 8, 1);
	cr_assert_eq(anc_db_query(db, COLL, mid, pn, 8, 384, 5, 0, &qr, &err),
	             ANC_OK, "%s", err.msg);
	anc_query_result_free(qr);
	qr = NULL;

	/* Unknown contract: names the default. */
	cr_assert_eq(anc_db_query(db, COLL, "minilm@9", s.vecs, 1, 384, 5, 0,
	                          &qr, &err),
	             ANC_ENOCONTRACT);
	cr_assert(strstr(err.msg, "minilm@9") && strstr(err.msg, mid), "%s",
	          err.msg);

	/* Retired: CONTRACT_RETIRED naming the default, for query and upsert. */
	cr_assert_eq(anc_db_contract_retire(db, COLL, lid, NULL, &err), ANC_OK,
	             "%s", err.msg);
	cr_assert_eq(anc_db_query(db, COLL, lid, lv, 1, 4096, 5, 0, &qr, &err),
	             ANC_ERETIRED);
	cr_assert(strstr(err.msg, "retired") && strstr(err.msg, mid) &&
	              strstr(err.msg, "minilm@1"),
	          "%s", err.msg);
	anc_record lr = {.source = s.source[0], .chunk = s.chunk[0],
	                 .vec = lv, .dim = 4096};
	cr_assert_eq(anc_db_upsert(db, COLL, "llama@1", &lr, 1, &ur, NULL, &err),
	             ANC_ERETIRED);
	/* err may be NULL (anc_index.h): the code alone still says why, it
	 * is never ANC_OK for a refused request. */
	cr_assert_eq(anc_db_upsert(db, COLL, "llama@1", &lr, 1, &ur, NULL,
	                           NULL),
	             ANC_ERETIRED);
	cr_assert_eq(anc_db_query(db, COLL, lid, lv, 1, 4096, 5, 0, &qr, NULL),
	             ANC_ERETIRED);
	cr_assert_eq(anc_db_query(db, COLL, mid, lv, 1, 4096, 5, 0, &qr, NULL),
	             ANC_EDIM);
	cr_assert_eq(anc_db_upsert(db, COLL, mid, &r, 1, &ur, NULL, NULL),
	             ANC_EVIOLATION);
	cr_assert_eq(strcmp(anc_errname(ANC_ERETIRED), "CONTRACT_RETIRED"), 0);
	cr_assert_eq(strcmp(anc_errname(ANC_EPRECONDITION),
	                    "FAILED_PRECONDITION"),
	             0);
	/* Nothing stored was damaged by the refusals. */
	self_query_all(db, &s, NULL, NULL);
	free(pu);
	free(pn);
	free(lv);
	tu_db_close(db);
	tu_sotu_free(&s);
}

#define NPROBE 8

Test(engine, contract_canaries)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str mid, got;
	anc_contract c;
	anc_error err;
	anc_canary cs[NPROBE + 1];
	anc_check_result *cr = NULL;
	anc_info *in = NULL;
	uint64_t live;
	uint32_t ln;
	int created;

	tu_sotu_read(&s, COLL);
	float *lv = llama_read(&ln);
	anc_db *db = db_open(dir);
	cr_assert_eq(anc_db_collection_create(db, COLL, NULL, &err), ANC_OK);
	contract_minilm(&c, ANC_INDEX_FLAT);
	/* The probes: the first passages' texts with their MiniLM vectors. */
	for (uint32_t i = 0; i < NPROBE; i++) {
		cs[i].text = s.text[i];
		cs[i].vec = s.vecs + (size_t)i * 384;
		cs[i].dim = 384;
	}
	/* Bad probes are refused, naming the probe. */
	float *pu = project_384(lv, NPROBE, 0);
	cs[3].vec = pu;
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs, NPROBE,
	                                               mid, NULL, &err),
	             ANC_EVIOLATION);
	cr_assert(strstr(err.msg, "canaries[3]") != NULL, "%s", err.msg);
	cs[3].vec = lv;
	cs[3].dim = 4096;
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs, NPROBE,
	                                               mid, NULL, &err),
	             ANC_EDIM);
	cs[3].vec = s.vecs + 3 * 384;
	cs[3].dim = 384;
	cs[2].text = "";
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs, NPROBE,
	                                               mid, NULL, &err),
	             ANC_EINVAL);
	cr_assert(strstr(err.msg, "canaries[2].text") != NULL, "%s", err.msg);
	cs[2].text = s.text[2];
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs,
	                                               ANC_CANARY_MAX + 1, mid,
	                                               NULL, &err),
	             ANC_ETOOBIG);
	/* Nothing was registered by the refusals. */
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK);
	cr_assert_eq(in->collections[0].ncontracts, 0);
	anc_info_free(in);

	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs, NPROBE,
	                                               mid, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 1);
	/* Same contract, same probes: idempotent. */
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs, NPROBE,
	                                               got, &created, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(created, 0);
	cr_assert_str_eq(got, mid);
	/* Other probes for the same contract: CONFLICT; none: its ID. */
	cr_assert_eq(anc_db_contract_register_canaries(db, COLL, &c, cs + 1,
	                                               NPROBE - 1, got, NULL, &err),
	             ANC_ECONFLICT);
	cr_assert(strstr(err.msg, mid) != NULL, "%s", err.msg);
	memset(got, 0, sizeof got);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, got, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(got, mid);

	/* Never checked yet. */
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK);
	cr_assert_eq(info_contract(in, mid, &live)->canaries, NPROBE);
	cr_assert_eq(info_contract(in, mid, &live)->checked_at, 0);
	anc_info_free(in);

	/* Today's embedder is the same model: every probe passes. */
	cr_assert_eq(anc_db_contract_check(db, COLL, mid, s.vecs, NPROBE, 384,
	                                   &cr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(cr->pass, 1);
	cr_assert_eq(cr->n, NPROBE);
	cr_assert_float_eq(cr->threshold, 0.99f, 1e-6);
	for (uint32_t i = 0; i < NPROBE; i++) {
		cr_assert_eq(cr->results[i].probe, i);
		cr_assert_geq(cr->results[i].cosine, 0.9999f);
		cr_assert(cr->results[i].pass);
	}
	cr_assert_gt(cr->checked_at, 0);
	anc_check_result_free(cr);
	cr = NULL;

	/* The provider swapped the model behind the same name: the 4096-d
	 * model's vectors of the same texts, projected to 384-d and
	 * normalised (they pass every per-vector check, see above). The
	 * canaries catch it. */
	float *pn = project_384(lv, NPROBE, 1);
	cr_assert_eq(anc_db_contract_check(db, COLL, "minilm@1", pn, NPROBE, 384,
	                                   &cr, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(cr->pass, 0);
	for (uint32_t i = 0; i < NPROBE; i++)
		cr_assert_lt(cr->results[i].cosine, 0.5f, "probe %u: %f", i,
		             cr->results[i].cosine);
	float minc = cr->min_cosine;
	printf("canary check, projected 4096-d model vs MiniLM probes: min "
	       "cosine %.4f (threshold 0.99): fail\n",
	       (double)minc);
	anc_check_result_free(cr);
	cr = NULL;

	/* Bad checks. */
	cr_assert_eq(anc_db_contract_check(db, COLL, mid, s.vecs, NPROBE - 1, 384,
	                                   &cr, &err),
	             ANC_EINVAL);
	cr_assert(strstr(err.msg, "expected 8") != NULL, "%s", err.msg);
	cr_assert_eq(anc_db_contract_check(db, COLL, mid, lv, NPROBE, 4096, &cr,
	                                   &err),
	             ANC_EDIM);
	cr_assert_null(cr);

	/* The last result is durable. */
	tu_db_close(db);
	db = db_open(dir);
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK);
	const anc_contract_info *k = info_contract(in, mid, &live);
	cr_assert_eq(k->canaries, NPROBE);
	cr_assert_gt(k->checked_at, 0);
	cr_assert_eq(k->check_pass, 0);
	cr_assert_float_eq(k->check_min_cosine, minc, 1e-6);
	anc_info_free(in);
	/* A contract without probes cannot be checked. */
	anc_contract l;
	anc_contract_id_str lid;
	contract_llama(&l);
	cr_assert_eq(anc_db_contract_register(db, COLL, &l, lid, NULL, &err),
	             ANC_OK);
	cr_assert_eq(anc_db_contract_check(db, COLL, lid, lv, 1, 4096, &cr, &err),
	             ANC_EPRECONDITION);
	free(pu);
	free(pn);
	free(lv);
	tu_db_close(db);
	tu_sotu_free(&s);
}

Test(engine, contract_promote_retire_states)
{
	const char *dir = tu_tmpdir();
	tu_sotu s;
	anc_contract_id_str mid, lid, got, prev;
	anc_contract c;
	anc_error err;
	anc_info *in = NULL;
	anc_query_result *qr = NULL;
	anc_db_open_stats os;
	uint64_t live;
	uint32_t ln;

	tu_sotu_read(&s, COLL);
	float *lv = llama_read(&ln);
	anc_db *db = db_open(dir);
	sotu_setup(db, ANC_INDEX_FLAT, mid);
	contract_llama(&c);
	cr_assert_eq(anc_db_contract_register(db, COLL, &c, lid, NULL, &err),
	             ANC_OK);
	sotu_load(db, &s, 0, s.n);

	/* Half loaded under llama: promotion refused, unless forced. */
	tu_sotu half = s;
	half.n = 45;
	llama_load(db, &half, lv, lid);
	cr_assert_eq(anc_db_contract_promote(db, COLL, lid, 0, got, prev, &err),
	             ANC_EPRECONDITION);
	cr_assert(strstr(err.msg, "covers 45 of 90") != NULL, "%s", err.msg);
	/* Retiring the default: refused. */
	cr_assert_eq(anc_db_contract_retire(db, COLL, mid, NULL, &err),
	             ANC_EPRECONDITION);
	cr_assert(strstr(err.msg, "default") != NULL, "%s", err.msg);
	/* Missing or unknown references. */
	cr_assert_eq(anc_db_contract_promote(db, COLL, "", 0, got, prev, &err),
	             ANC_EINVAL);
	cr_assert_eq(anc_db_contract_promote(db, COLL, "nope@1", 0, got, prev,
	                                     &err),
	             ANC_ENOCONTRACT);
	cr_assert_eq(anc_db_contract_retire(db, "nope", lid, NULL, &err),
	             ANC_ENOCOLL);

	/* Forced promotion of a partial contract, then back. */
	cr_assert_eq(anc_db_contract_promote(db, COLL, lid, 1, got, prev, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(got, lid);
	cr_assert_str_eq(prev, mid);
	cr_assert_eq(anc_db_contract_promote(db, COLL, mid, 0, got, prev, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(prev, lid);
	/* Promoting the default again: no change. */
	cr_assert_eq(anc_db_contract_promote(db, COLL, mid, 0, got, prev, &err),
	             ANC_OK);
	cr_assert_str_eq(prev, "");

	/* Complete the load: promotion goes through without force. */
	llama_load(db, &s, lv, lid);
	cr_assert_eq(anc_db_contract_promote(db, COLL, lid, 0, got, prev, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(anc_db_contract_retire(db, COLL, lid, NULL, &err),
	             ANC_EPRECONDITION);
	cr_assert_eq(anc_db_contract_retire(db, COLL, "minilm@1", got, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_str_eq(got, mid);
	cr_assert_eq(anc_db_contract_retire(db, COLL, mid, NULL, &err), ANC_OK,
	             "retiring twice is not an error");
	/* Retirement is final. */
	cr_assert_eq(anc_db_contract_promote(db, COLL, mid, 1, got, prev, &err),
	             ANC_ERETIRED);
	cr_assert_eq(anc_db_query(db, COLL, mid, s.vecs, 1, 384, 5, 0, &qr, &err),
	             ANC_ERETIRED);
	/* A canary-less retired contract can still be looked at in info. */
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK);
	cr_assert_eq(info_contract(in, mid, &live)->state, ANC_CSTATE_RETIRED);
	cr_assert_eq(info_contract(in, lid, &live)->state, ANC_CSTATE_DEFAULT);
	anc_info_free(in);

	/* After a restart the retired index is not loaded; delete still
	 * removes the passage (and the retired contract's vector). */
	tu_db_close(db);
	db = db_open(dir);
	anc_db_get_open_stats(db, &os);
	cr_assert_eq(os.indexes, 1, "retired index loaded: %u", os.indexes);
	cr_assert_eq(anc_db_query(db, COLL, mid, s.vecs, 1, 384, 5, 0, &qr, &err),
	             ANC_ERETIRED);
	self_first(db, &s, NULL, lv, 4096, lid);
	anc_delete_result dr;
	cr_assert_eq(anc_db_delete(db, COLL, &s.anchors[7], 1, &dr, NULL, &err),
	             ANC_OK, "%s", err.msg);
	cr_assert_eq(dr.status, ANC_DELETE_DELETED);
	cr_assert_eq(anc_db_info(db, &in, &err), ANC_OK);
	cr_assert_eq(info_contract(in, lid, &live)->vectors, 89);
	cr_assert_eq(live, 89);
	cr_assert_eq(info_contract(in, mid, &live)->vectors, 0);
	anc_info_free(in);
	cr_assert_eq(anc_db_snapshot(db, &err), ANC_OK, "%s", err.msg);
	free(lv);
	tu_db_close(db);
	tu_sotu_free(&s);
}
